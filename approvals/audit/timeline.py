"""A case told event by event in plain language, in Chinese and English: who did what, when (UTC+8), in which
role, on which legal basis.

The words come from the operation registry (``approvals.operations``: each operation words the events it
records, ``approvals.event_wording`` the events no operation causes). The registry is read when a timeline is
first worded, not when this module is imported: its entries name the workflows' Updates by method, and a
process that only serialises ``TimelineRow`` (the API's response model) need not load the workflow code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from approvals.event_wording import CHINA_TIME, LANGS, Lang, Wording, WordingContext, duration, local, parse_time
from schemas.calendar import BeyondKnownYears, WorkingCalendar, load_calendar, working_days_between
from schemas.case import AttachmentRef
from schemas.events import DomainEvent, EventType, superseded_by_resets

__all__ = ["CHINA_TIME", "TimelineRow", "attachments_of", "local", "timeline"]


class TimelineRow(BaseModel):
    """One event told in plain language."""

    model_config = ConfigDict(frozen=True)

    seq: int
    at: datetime = Field(description="When: ISO 8601 with its offset, for clients to parse.")
    local_time: str = Field(
        description="When, in the zone's local time and saying so (``2026-03-02 10:00:00 UTC+8``), for people."
    )
    type: str
    action: str = Field(description="What happened, in plain language (times in UTC+8, labelled).")
    action_zh: str = Field("", description="What happened, in Chinese (the terms of government approval work).")
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
    stage_time_zh: str | None = Field(None, description="``stage_time`` in Chinese.")
    working_days_used: int | None = None
    working_days_allowed: int | None = None
    due_at: datetime | None = None
    attachments: list[AttachmentRef] = Field(
        default_factory=list, description="Documents the act carried, by reference (a 补正's supplied documents too)."
    )
    on_time: bool | None = None
    clock: Literal["stopped", "resumed"] | None = Field(None, description="Where the clock stopped (补正).")
    superseded_by: int | None = Field(
        None, description="The seq of the `case.reset` that superseded this event (an operator reset the workflow)."
    )


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


@cache
def _registry_wording() -> Mapping[EventType, Wording]:
    from approvals.operations import event_wording

    return event_wording()


def _describe(event: DomainEvent, context: WordingContext) -> tuple[dict[Lang, str], str]:
    """The event's action in each language, and the comment shown under it."""
    p = event.payload
    comment = str(p.get("comment") or p.get("text") or p.get("reason") or "")
    wording = _registry_wording().get(event.type)
    if wording is None:  # a type this code does not know (recorded by newer code): said as it was recorded
        return dict.fromkeys(LANGS, event.type), comment
    return {lang: wording.describe(event, context, lang) for lang in LANGS}, comment if wording.comment else ""


def timeline(events: Sequence[DomainEvent], *, calendar: WorkingCalendar | None = None) -> list[TimelineRow]:
    """The case told event by event: who did what, when (UTC+8), in which role, on which legal basis.

    A completed stage carries how long it took (calendar time, and working days with the time the clock
    stood still for 补正 taken out) against its working-day deadline; the rows requesting and supplying
    material mark where the clock stopped and resumed. An event a ``case.reset`` superseded is told as it was
    recorded, marked with that reset, and counts for no stage's time.
    """
    superseded = superseded_by_resets(events)
    calendar = calendar or load_calendar()
    context = WordingContext()
    opened: dict[tuple[str, int], DomainEvent] = {}
    dues: dict[str, datetime] = {}
    stops: list[tuple[datetime, datetime | None]] = []
    rows: list[TimelineRow] = []

    def wd(start: datetime, end: datetime) -> int:
        return working_days_between(calendar, start, end, beyond_known_years=BeyondKnownYears.weekends_only).days

    for event in events:
        p = event.payload
        if event.type == EventType.case_started:
            context = WordingContext(_stages_of(p.get("definition") or {}))
        action, comment = _describe(event, context)
        extra: dict[str, Any] = {}
        if event.seq in superseded:
            reset = extra["superseded_by"] = superseded[event.seq]
            action["en"] += f" [superseded by the reset at seq {reset}]"
            action["zh"] += f"［已被第{reset}号事件记录的重置取代］"
        elif event.type == EventType.stage_started:
            opened[(event.stage_id or "", int(p.get("round") or 1))] = event
            due = parse_time(p.get("due_at"))
            if due:
                dues[f"stage:{event.stage_id}:{p.get('round')}"] = due
                extra["due_at"] = due
        elif event.type == EventType.case_supplement_requested:
            stops.append((event.at, None))
            extra["clock"] = "stopped"
        elif event.type == EventType.case_supplemented:
            if stops and stops[-1][1] is None:
                stopped_at = stops[-1][0]
                stops[-1] = (stopped_at, event.at)
                days, stopped = wd(stopped_at, event.at), event.at - stopped_at
                action["en"] += f" (stopped {duration(stopped)}, {days} working days)"
                action["zh"] += f"（期限暂停{duration(stopped, 'zh')}，计{days}个工作日）"
            for key, value in (p.get("due_at") or {}).items():
                if (moved := parse_time(value)) is not None:
                    dues[key] = moved
            extra["clock"] = "resumed"
        elif event.type == EventType.stage_completed:
            round_ = int(p.get("round") or 1)
            start = opened.get((event.stage_id or "", round_))
            if start is not None:
                stopped_days = sum(
                    wd(max(a, start.at), min(b or event.at, event.at))
                    for a, b in stops
                    if a < event.at and (b or event.at) > start.at
                )
                deadline = (context.stages.get(event.stage_id or "", {}).get("deadline") or {}).get("working_days")
                extra = _stage_time(
                    event, start, max(0, wd(start.at, event.at) - stopped_days), deadline,
                    dues.get(f"stage:{event.stage_id}:{round_}"),
                )  # fmt: skip
                action["en"] += f" after {extra['stage_time']}"
                action["zh"] += f"，用时{extra['stage_time_zh']}"
        attached = attachments_of(p)
        if attached:
            action["en"] += "; attached: " + ", ".join(_named(ref) for ref in attached)
            action["zh"] += "；附件：" + "、".join(_named(ref) for ref in attached)
        rows.append(
            TimelineRow(
                seq=event.seq,
                at=event.at,
                local_time=local(event.at),
                type=event.type,
                action=action["en"],
                action_zh=action["zh"],
                actor_id=event.actor.id,
                actor_name=event.actor.name,
                actor_unit=event.actor.unit,
                roles=list(event.actor.roles),
                legal_basis=event.legal_basis,
                stage_id=event.stage_id,
                stage_title=context.stages.get(event.stage_id or "", {}).get("title") if event.stage_id else None,
                task_id=event.task_id,
                comment=comment,
                data=p,
                attachments=attached,
                **extra,
            )
        )
    return rows


def attachments_of(payload: Mapping[str, Any]) -> list[AttachmentRef]:
    """The documents an event recorded: an act's attachments, or a 补正's supplied documents. As they were sealed,
    not validated again: a reference recorded under older rules is still shown."""
    recorded = [*(payload.get("attachments") or ()), *(payload.get("documents") or ())]
    return [AttachmentRef.model_construct(**ref) for ref in recorded]


def _named(ref: AttachmentRef) -> str:
    return f"{ref.name or ref.uri} (sha256 {ref.sha256[:12]}…, {ref.size} B)"


def _stage_time(
    event: DomainEvent, start: DomainEvent, used: int, deadline: int | None, due: datetime | None
) -> dict[str, Any]:
    """A completed stage's time: calendar time, working days used of those allowed, on time or late."""
    verdict = verdict_zh = ""
    if due:
        on_time = event.at <= due
        verdict = "on time" if on_time else f"LATE by {duration(event.at - due)}"
        verdict_zh = "按期办结" if on_time else f"超期{duration(event.at - due, 'zh')}"
        verdict = f"; {used} of {deadline} working days, {verdict}" if deadline else f"; {verdict}"
        verdict_zh = f"；时限{deadline}个工作日，用{used}个工作日，{verdict_zh}" if deadline else f"；{verdict_zh}"
    took = event.at - start.at
    return {
        "duration": duration(took),
        "working_days_used": used,
        "working_days_allowed": deadline,
        "due_at": due,
        "on_time": (event.at <= due) if due else None,
        "stage_time": f"{duration(took)}{verdict}",
        "stage_time_zh": f"{duration(took, 'zh')}{verdict_zh}",
    }
