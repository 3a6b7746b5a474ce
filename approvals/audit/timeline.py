"""A case told event by event in plain language: who did what, when (UTC+8), on which legal basis."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.calendar import BeyondKnownYears, WorkingCalendar, load_calendar, working_days_between
from schemas.events import DomainEvent

CHINA_TIME = timezone(timedelta(hours=8), "UTC+8")
"""Auditors read times in the zone's local time (China has no daylight saving)."""


class TimelineRow(BaseModel):
    """One event told in plain language."""

    model_config = ConfigDict(frozen=True)

    seq: int
    at: datetime = Field(description="When, UTC.")
    local_time: str = Field(description="When, in the zone's local time (UTC+8).")
    type: str
    action: str = Field(description="What happened, in plain language.")
    actor_id: str
    actor_name: str
    actor_unit: str
    roles: list[str]
    legal_basis: str
    stage_id: str | None = None
    stage_title: str | None = None
    task_id: str | None = None
    comment: str = ""
    data: dict[str, Any] = Field(default_factory=dict, description="The event's recorded payload, as it was sealed.")
    duration: str | None = Field(None, description="For a completed stage: how long it took.")
    stage_time: str | None = Field(
        None, description="For a completed stage: how long it took against its working-day deadline, in words."
    )
    working_days_used: int | None = None
    working_days_allowed: int | None = None
    due_at: datetime | None = None
    on_time: bool | None = None
    clock: Literal["stopped", "resumed"] | None = Field(None, description="Where the clock stopped (补正).")


def local(at: datetime) -> str:
    return at.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S")


def local_due(at: datetime) -> str:
    """A working-day deadline ends at local midnight: say "end of <day>" rather than "<next day> 00:00"."""
    moment = at.astimezone(CHINA_TIME)
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return f"end of {(moment - timedelta(days=1)).strftime('%Y-%m-%d')}"
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _clock_name(key: str | None, stages: dict[str, dict[str, Any]]) -> str:
    """``stage:<id>:<round>`` -> the stage's title; ``case`` -> the statutory period."""
    if key == "case":
        return "the statutory period"
    parts = (key or "").split(":")
    if len(parts) == 3 and parts[0] == "stage":
        title = stages.get(parts[1], {}).get("title", parts[1])
        return f"stage “{title}”" + (f" (round {parts[2]})" if parts[2] != "1" else "")
    return key or "?"


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes or not (days or hours) else "",
    ]
    return " ".join(part for part in parts if part)


def _stages_of(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    stages: dict[str, dict[str, Any]] = {}
    for step in definition.get("steps", []):
        if step.get("kind", "stage") == "stage" and "id" in step:
            stages[step["id"]] = step
        for branch in step.get("branches", []) or []:
            for stage in branch:
                stages[stage["id"]] = stage
    review = (definition.get("supervision") or {}).get("review")
    if review and "id" in review:
        stages[review["id"]] = review
    return stages


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _who(event: DomainEvent) -> str:
    return event.actor.name or event.actor.id


def _describe(event: DomainEvent, stages: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """(action, comment) of an event, in plain language."""
    p = event.payload
    who = _who(event)
    stage_title = stages.get(event.stage_id or "", {}).get("title", event.stage_id)
    comment = str(p.get("comment") or p.get("text") or p.get("reason") or "")
    match event.type:
        case "case.started":
            applicant = (p.get("applicant") or {}).get("name") or (p.get("applicant") or {}).get("id")
            parent = (p.get("data") or {}).get("parent_case_id")
            child_of = f", a child case of {parent}" if parent else ""
            return f"{who} started case “{p.get('title')}” ({p.get('business_key')}) for {applicant}{child_of}", ""
        case "stage.started":
            due = parse_time(p.get("due_at"))
            due_text = f", due {local_due(due)}" if due else ""
            return f"stage “{stage_title}” opened (round {p.get('round')}, {p.get('mode')}){due_text}", ""
        case "stage.skipped":
            return f"stage “{stage_title}” skipped: its condition does not hold for this case", ""
        case "task.created":
            target = p.get("assignee_id") or "any holder of role " + " or ".join(p.get("candidate_roles") or [])
            waits = f" (waits for {p['waiting_for']})" if p.get("waiting_for") else ""
            by = f"{who} added a task for {target}" if event.actor.id != "system" else f"task for {target}"
            return f"{by}{waits}", ""
        case "task.claimed":
            return f"{who} claimed the task", ""
        case "task.unclaimed":
            return f"{who} released the task back to the pool", ""
        case "task.decided":
            decision = str(p.get("decision", "")).replace("_", " ")
            text = f"{who} decided: {decision}"
            if p.get("conditions"):
                text += f" (conditions: {'; '.join(p['conditions'])})"
            if p.get("return_to"):
                text += f", back to stage {p['return_to']}"
            if p.get("on_behalf_of"):
                text += f", on behalf of {p['on_behalf_of']}"
            return text, comment
        case "task.activated":
            return f"task opened after {p.get('after')} approved", ""
        case "task.transferred":
            return f"{who} transferred the task from {p.get('from')} to {p.get('to')}", comment
        case "task.delegated":
            return f"{who} delegated the task to {p.get('delegate')} (stays accountable)", comment
        case "task.signer_added":
            return f"{who} added signer {p.get('signer')} {p.get('position')} this task", comment
        case "task.urged":
            return f"{who} urged the task holder (催办)", comment
        case "task.cancelled":
            return "task cancelled", comment
        case "task.expired":
            return "vote not cast by the deadline: counted as absent", comment
        case "stage.completed":
            text = f"stage “{stage_title}” completed: {str(p.get('outcome', '')).replace('_', ' ')}"
            if p.get("tally"):
                text += " (" + ", ".join(f"{k} {v}" for k, v in p["tally"].items()) + ")"
            if p.get("conditions"):
                text += f"; conditions: {'; '.join(p['conditions'])}"
            return text, ""
        case "case.decided":
            return f"case decided: {str(p.get('outcome', '')).replace('_', ' ')}", ""
        case "case.rejected" | "case.withdrawn" | "case.approved" | "case.cancelled":
            return f"{who} ended the case: {event.type.split('.', 1)[1]}", comment
        case "case.commented":
            return f"{who} commented", comment
        case "case.cc":
            return f"{who} copied the case to {', '.join(p.get('observers') or [])} (抄送)", comment
        case "case.supplement_requested":
            items = "; ".join(item.get("item", "") for item in p.get("items") or [])
            return f"{who} requested supplementary material (补正): {items} — the clock stops", comment
        case "case.supplemented":
            count = len(p.get("documents") or [])
            return f"{who} supplied the material ({count} document(s)) — the clock runs again", comment
        case "case.extended":
            due = parse_time(p.get("due_at"))
            return (
                f"{who} extended the statutory period by {p.get('working_days')} working days"
                + (f" to {local_due(due)}" if due else ""),
                comment,
            )
        case "clock.started":
            due = parse_time(p.get("due_at"))
            return (
                f"statutory period started: {p.get('working_days')} working days"
                + (f", due {local_due(due)}" if due else ""),
                "",
            )
        case "clock.reminder":
            due = parse_time(p.get("due_at"))
            return f"reminder: {_clock_name(p.get('clock'), stages)} is due {local_due(due) if due else '?'}", ""
        case "clock.escalated":
            to = f", escalated to role {p['escalated_to_role']}" if p.get("escalated_to_role") else ""
            overdue = ", ".join(p.get("overdue_tasks") or []) or "none"
            return f"deadline of {_clock_name(p.get('clock'), stages)} passed{to}; overdue tasks: {overdue}", ""
        case "case.calendar_assumption":
            return f"no official holiday schedule for {p.get('year')}: working days counted Monday to Friday", ""
        case "stage.abandoned":
            return (
                f"stage “{stage_title}” abandoned (round {p.get('round')}): another branch returned the case"
                + (f" ({p['reason']})" if p.get("reason") else ""),
                "",
            )
        case "supervision.started":
            first = parse_time(p.get("first_review_at"))
            limit = f", at most {p['max_rounds']} reviews" if p.get("max_rounds") else ", until withdrawn"
            return (
                f"supervision started: the decision stays in force under review every {p.get('every_days')} days"
                + limit
                + (f"; first review {local(first)}" if first else ""),
                "",
            )
        case "supervision.ended":
            return f"supervision ended after {p.get('rounds')} review(s): the decision stands", ""
        case "timer.started":
            until = parse_time(p.get("until"))
            return f"timer started for {p.get('label')}: fires {local(until) if until else '?'}", ""
        case "timer.fired":
            return f"timer fired: {p.get('label')} is due", ""
        case "case.child_started":
            after = f" after review {p['review_round']}" if p.get("review_round") else ""
            return (
                f"child case {p.get('child_case_id')} started ({p.get('process')}){after}; it keeps its own record",
                "",
            )
        case "case.child_completed":
            status = str(p.get("status", "")).replace("_", " ")
            conditions = f" (conditions: {'; '.join(p['conditions'])})" if p.get("conditions") else ""
            return f"child case {p.get('child_case_id')} completed: {status}{conditions}", ""
        case "case.continued":
            previous = f" (previous run {p['previous_run_id']})" if p.get("previous_run_id") else ""
            return (
                f"case continued as new in run {p.get('run')}{previous}, state and hash chain carried over; "
                f"{p.get('supervision_round', 0)} review(s) so far",
                "",
            )
        case _:
            return event.type, comment


def timeline(events: Sequence[DomainEvent], *, calendar: WorkingCalendar | None = None) -> list[TimelineRow]:
    """The case told event by event: who did what, when (UTC+8), in which role, on which legal basis.

    A completed stage carries how long it took (calendar time, and working days with the time the clock
    stood still for 补正 taken out) against its working-day deadline; the rows requesting and supplying
    material mark where the clock stopped and resumed.
    """
    calendar = calendar or load_calendar()
    stages: dict[str, dict[str, Any]] = {}
    opened: dict[tuple[str, int], DomainEvent] = {}
    dues: dict[str, datetime] = {}
    stops: list[tuple[datetime, datetime | None]] = []
    rows: list[TimelineRow] = []

    def wd(start: datetime, end: datetime) -> int:
        return working_days_between(calendar, start, end, beyond_known_years=BeyondKnownYears.weekends_only).days

    for event in events:
        p = event.payload
        if event.type == "case.started":
            stages = _stages_of(p.get("definition") or {})
        action, comment = _describe(event, stages)
        extra: dict[str, Any] = {}
        if event.type == "stage.started":
            opened[(event.stage_id or "", int(p.get("round") or 1))] = event
            due = parse_time(p.get("due_at"))
            if due:
                dues[f"stage:{event.stage_id}:{p.get('round')}"] = due
                extra["due_at"] = due
        elif event.type == "case.supplement_requested":
            stops.append((event.at, None))
            extra["clock"] = "stopped"
        elif event.type == "case.supplemented":
            if stops and stops[-1][1] is None:
                stopped_at = stops[-1][0]
                stops[-1] = (stopped_at, event.at)
                action += f" (stopped {_duration(event.at - stopped_at)}, {wd(stopped_at, event.at)} working days)"
            for key, value in (p.get("due_at") or {}).items():
                if (moved := parse_time(value)) is not None:
                    dues[key] = moved
            extra["clock"] = "resumed"
        elif event.type == "stage.completed":
            round_ = int(p.get("round") or 1)
            start = opened.get((event.stage_id or "", round_))
            if start is not None:
                stopped_days = sum(
                    wd(max(a, start.at), min(b or event.at, event.at))
                    for a, b in stops
                    if a < event.at and (b or event.at) > start.at
                )
                used = max(0, wd(start.at, event.at) - stopped_days)
                deadline = (stages.get(event.stage_id or "", {}).get("deadline") or {}).get("working_days")
                due = dues.get(f"stage:{event.stage_id}:{round_}")
                extra.update(
                    duration=_duration(event.at - start.at),
                    working_days_used=used,
                    working_days_allowed=deadline,
                    due_at=due,
                    on_time=(event.at <= due) if due else None,
                )
                verdict = ""
                if due:
                    verdict = "on time" if event.at <= due else f"LATE by {_duration(event.at - due)}"
                    verdict = f"; {used} of {deadline} working days, {verdict}" if deadline else f"; {verdict}"
                extra["stage_time"] = f"{extra['duration']}{verdict}"
                action += f" after {extra['stage_time']}"
        rows.append(
            TimelineRow(
                seq=event.seq,
                at=event.at,
                local_time=local(event.at),
                type=event.type,
                action=action,
                actor_id=event.actor.id,
                actor_name=event.actor.name,
                actor_unit=event.actor.unit,
                roles=list(event.actor.roles),
                legal_basis=event.legal_basis,
                stage_id=event.stage_id,
                stage_title=stages.get(event.stage_id or "", {}).get("title") if event.stage_id else None,
                task_id=event.task_id,
                comment=comment,
                data=p,
                **extra,
            )
        )
    return rows
