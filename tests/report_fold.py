"""The report's figures folded from ``audit_events`` case by case, in Python, independently of the SQL and its
projection (migration 0014): the point-in-time fold (``approvals.audit.state.state_at``) for statuses, the statutory
period's due time before the decision and the open tasks, and the calendar's ``working_days_between`` for days."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg
import httpx

from approvals.audit.state import state_at
from approvals.calendar_publishing import current_calendar
from approvals.event_wording import CHINA_TIME
from approvals.reports.summary import ONE_DAY, local_start
from approvals.storage.queries import case_events
from schemas.calendar import BeyondKnownYears, WorkingCalendar, working_days_between
from schemas.events import DomainEvent, in_force

APPROVING = ("approved", "approved_with_conditions")


@dataclass
class CaseFacts:
    key: dict[str, str]
    received: bool = True
    accepted: bool = False
    refused_to_accept: bool = False
    decision: str | None = None
    withdrawn: bool = False
    under_supervision: bool = False
    decision_days: int | None = None
    with_period: bool = False
    on_time: bool = False
    extensions: int = 0
    supplements: int = 0
    excluded_periods: int = 0
    error_tolerance: str | None = None
    talent: str | None = None
    publications: int = 0
    functions: int = 0
    overdue_units: list[str] = field(default_factory=list)


def _local(at: datetime) -> date:
    return at.astimezone(CHINA_TIME).date()


def _of(events: list[DomainEvent], *types: str) -> list[DomainEvent]:
    return [event for event in events if event.type in types]


def _overdue_units(events: list[DomainEvent], as_of: datetime) -> list[str]:
    state = state_at(events)
    created = {e.task_id: e.payload.get("due_at") for e in _of(events, "task.created")}
    units = []
    for task in state.tasks:
        due = created.get(task.task_id)
        if task.status not in ("open", "claimed") or not due or datetime.fromisoformat(due) >= as_of:
            continue
        claims = [e for e in _of(events, "task.claimed") if e.task_id == task.task_id]
        if task.status == "claimed" and claims:
            units.append(claims[-1].actor.unit)
        elif task.candidate_roles:
            units.append("role:" + ",".join(task.candidate_roles))
        else:
            units.append(f"user:{task.assignee_id or ''}")
    return units


def fold_case(recorded: list[DomainEvent], calendar: WorkingCalendar, as_of: datetime) -> CaseFacts:
    events = in_force(recorded)  # a reset's superseded events count for nothing, as in the point-in-time state
    [started] = _of(events, "case.started")
    state = state_at(events)
    ends = _of(events, "case.decided", "case.rejected")
    decision = ends[0] if ends else None
    before = [e for e in events if decision is None or e.seq < decision.seq]
    stages = _of(events, "stage.started")
    deciders = [e for e in _of(before, "task.decided") if e.actor.id != "system"]
    facts = CaseFacts(
        key={
            "process": str(state.process),
            "unit": deciders[-1].actor.unit if deciders else "",
            "stage": (stages[-1].stage_id or "") if stages else "",
            "month": _local(started.at).strftime("%Y-%m"),
        }
    )
    accepted = _of(events, "case.accepted")
    facts.accepted = bool(accepted)
    facts.refused_to_accept = any(
        (e.payload.get("concerns") or {}).get("kind") == "refusal_to_accept"
        for e in _of(events, "case.remedies_notified")
    )
    facts.withdrawn = bool(_of(events, "case.withdrawn"))
    facts.under_supervision = state.status == "under_supervision"
    facts.extensions = len(_of(events, "case.extended"))
    facts.supplements = len(_of(events, "case.supplement_requested"))
    facts.excluded_periods = len(_of(events, "clock.paused"))
    if decision is not None and not facts.refused_to_accept:
        approving = decision.type == "case.decided" and decision.payload.get("outcome") in APPROVING
        facts.decision = "granted" if approving else "refused"
        start = datetime.fromisoformat(accepted[0].payload["accepted_at"]) if accepted else started.at
        end = datetime.combine(_local(decision.at) + timedelta(days=1), time(0), tzinfo=CHINA_TIME)
        days = working_days_between(calendar, start, end, beyond_known_years=BeyondKnownYears.weekends_only)
        facts.decision_days = days.days
        prior = state_at(events, seq=decision.seq - 1)
        period_ran = any(e.payload.get("clock") == "case" for e in _of(before, "clock.started"))
        due = prior.clocks.get("case")
        standing_still = period_ran and due is None and prior.clock_state == "stopped"  # an Art. 45 period
        facts.with_period = due is not None or standing_still
        facts.on_time = standing_still or (due is not None and decision.at <= due)
    for determined in _of(events, "error_tolerance.determined"):
        facts.error_tolerance = determined.payload.get("determination")
    if state.process == "talent-policy":
        for notified in _of(events, "case.notified"):
            facts.talent = notified.payload.get("decision", facts.talent)
    if state.process == "power-adjustment":
        published = _of(events, "case.published")
        facts.publications = len(published)
        facts.functions = sum(len((e.payload.get("subject") or {}).get("items") or []) for e in published)
    facts.overdue_units = _overdue_units(events, as_of)
    return facts


def percentile(values: list[int], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks, as PostgreSQL's ``percentile_cont``."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def figures(cases: list[CaseFacts]) -> dict[str, Any]:
    days = [c.decision_days for c in cases if c.decision_days is not None]
    with_period = sum(c.with_period for c in cases)
    on_time = sum(c.on_time for c in cases)
    return {
        "received": len(cases),
        "accepted": sum(c.accepted for c in cases),
        "refused_to_accept": sum(c.refused_to_accept for c in cases),
        "granted": sum(c.decision == "granted" for c in cases),
        "refused": sum(c.decision == "refused" for c in cases),
        "withdrawn": sum(c.withdrawn for c in cases),
        "under_supervision": sum(c.under_supervision for c in cases),
        "decision_days_mean": sum(days) / len(days) if days else None,
        "decision_days_median": percentile(days, 0.5),
        "decision_days_p90": percentile(days, 0.9),
        "with_statutory_period": with_period,
        "on_time": on_time,
        "on_time_rate": on_time / with_period if with_period else None,
        "extensions": sum(c.extensions for c in cases),
        "supplements": sum(c.supplements for c in cases),
        "excluded_periods": sum(c.excluded_periods for c in cases),
    }


async def folded_cases(
    pool: asyncpg.Pool, start: datetime, end: datetime, calendar: WorkingCalendar, as_of: datetime
) -> list[CaseFacts]:
    """Every case received in ``[start, end)``, folded from its recorded events."""
    rows = await pool.fetch(
        "SELECT case_id FROM audit_events WHERE type = 'case.started' AND at >= $1 AND at < $2 ORDER BY case_id",
        start,
        end,
    )
    return [fold_case(await case_events(pool, row["case_id"]), calendar, as_of) for row in rows]


def folded_summary(cases: list[CaseFacts], group_by: str) -> dict[str, Any]:
    """The summary's figures, breakdowns and histogram as plain data, from the folded cases."""
    groups: dict[str, list[CaseFacts]] = defaultdict(list)
    for case in cases:
        groups[case.key[group_by]].append(case)
    counted = lambda values: dict(Counter(v for v in values if v is not None))  # noqa: E731
    return {
        "groups": {key: figures(members) for key, members in sorted(groups.items())},
        "total": figures(cases),
        "overdue_open_tasks": counted(unit for case in cases for unit in case.overdue_units),
        "error_tolerance_outcomes": counted(case.error_tolerance for case in cases),
        "talent_decisions": counted(case.talent for case in cases),
        "catalogue_changes": {
            "publications": sum(c.publications for c in cases),
            "functions": sum(c.functions for c in cases),
        },
        "decision_days": counted(str(case.decision_days) if case.decision_days is not None else None for case in cases),
    }


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The HTTP answer in the fold's shape (lists of counts as mappings)."""

    def counts(items: list[dict[str, Any]]) -> dict[str, int]:
        return {item["key"]: item["count"] for item in items}

    return {
        "groups": {group["key"]: {k: v for k, v in group.items() if k != "key"} for group in report["groups"]},
        "total": {k: v for k, v in report["total"].items() if k != "key"},
        "overdue_open_tasks": counts(report["overdue_open_tasks"]),
        "error_tolerance_outcomes": counts(report["error_tolerance_outcomes"]),
        "talent_decisions": counts(report["talent_decisions"]),
        "catalogue_changes": report["catalogue_changes"],
        "decision_days": counts(report["decision_days"]),
    }


def rounded(value: Any) -> Any:
    """Floats to nine places (the SQL's mean and percentiles are float8), everything else as it is."""
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    return round(value, 9) if isinstance(value, float) else value


async def demo_reports_equal_the_fold(api_url: str, auditor_token: str, database_url: str) -> None:
    """After ``approvals demo``: the summary of today's cases, in every form, has a case of every process and
    their outcomes (Art. 25, talent, catalogue, the demo's refused action), and equals the fold of the log."""
    today = datetime.now(CHINA_TIME).date().isoformat()
    query = {"from": today, "to": today}
    headers = {"Authorization": f"Bearer {auditor_token}"}
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=60) as http:
            for format_ in ("csv", "xlsx", "pdf"):
                response = await http.get("/v1/reports/summary", params={**query, "format": format_})
                assert response.status_code == 200 and len(response.content) > 1000, (format_, response.text[:500])
            calendar = await current_calendar(pool, None)
            start, end = local_start(date.fromisoformat(today)), local_start(date.fromisoformat(today) + ONE_DAY)
            for _ in range(20):  # a supervised case may still be recording its last events
                answer = (await http.get("/v1/reports/summary", params=query)).json()
                as_of = datetime.fromisoformat(answer["as_of"])
                folded = folded_summary(await folded_cases(pool, start, end, calendar, as_of), "process")
                again = (await http.get("/v1/reports/summary", params=query)).json()
                if {**answer, "as_of": None} == {**again, "as_of": None}:
                    break
    finally:
        await pool.close()
    assert rounded(comparable(answer)) == rounded(folded)
    processes = {group["key"] for group in answer["groups"]}
    assert {"generic", "project-approval", "power-adjustment", "error-tolerance", "talent-policy"} <= processes
    assert answer["error_tolerance_outcomes"] and answer["talent_decisions"], answer
    assert answer["catalogue_changes"]["publications"] >= 1 and answer["total"]["granted"] >= 1
    assert "NOT_ASSIGNEE" in {item["key"] for item in answer["denied_attempts"]}
