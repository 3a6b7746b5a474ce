"""A live case: its runs from Temporal, its audit log from PostgreSQL, read so they describe one moment."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory

from approvals.audit.bundle import write_bundle
from approvals.audit.checkpoint import Leaf
from approvals.audit.crosscheck import VerifyReport, check_superseded, verify
from approvals.audit.findings import FindingKind, finding
from approvals.audit.history import continued_as, continued_from, is_running, recorded_batches, run_id
from approvals.audit.sealing import Notary
from approvals.audit.state import CaseState, state_at
from approvals.audit.timeline import TimelineRow, timeline
from approvals.storage.queries import case_events, get_case
from schemas.calendar import WorkingCalendar
from schemas.events import DomainEvent, EventType


async def fetch_runs(client: Client, case_id: str) -> list[WorkflowHistory]:
    """Every run of a case, first to latest, following continue-as-new back from the latest run.

    The chain is followed through the start events' ``continuedExecutionRunId`` (and forward through a
    ``workflowExecutionContinuedAsNew`` event's ``newExecutionRunId`` should the case continue while it is
    read), which every Temporal server keeps, unlike visibility queries (the time-skipping test server has
    none). A run whose history the server no longer retains ends the walk back: :func:`check_runs` notes it.
    """
    from temporalio.service import RPCError, RPCStatusCode

    latest = await client.get_workflow_handle(case_id).fetch_history()
    runs = [latest]
    seen = {run_id(latest)}
    while (previous := continued_from(runs[0])) and previous not in seen:
        try:
            runs.insert(0, await client.get_workflow_handle(case_id, run_id=previous).fetch_history())
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
            break
        seen.add(previous)
    return await _follow(client, case_id, runs)


async def _follow(client: Client, case_id: str, runs: list[WorkflowHistory]) -> list[WorkflowHistory]:
    """Refreshes the last run when it was still open, and follows it into the runs it continued as new."""
    runs = list(runs)
    if is_running(runs[-1]):
        runs[-1] = await client.get_workflow_handle(case_id, run_id=run_id(runs[-1])).fetch_history()
    seen = {run_id(run) for run in runs}
    while (following := continued_as(runs[-1])) and following not in seen:
        runs.append(await client.get_workflow_handle(case_id, run_id=following).fetch_history())
        seen.add(following)
    return runs


async def fetch_case(client: Client, pool: Any, case_id: str) -> tuple[list[WorkflowHistory], list[DomainEvent]]:
    """Every run's history (first to latest) and the audit events, read so that they describe the same moment.

    A case that continued as new has several workflow runs under one workflow id (:func:`fetch_runs`);
    its events and hash chain run through all of them, so every check takes them all.

    ``record_events`` is scheduled in the history before it writes, so a log read *before* the history
    holds nothing the history lacks. The log is read again after the history: when both reads agree,
    nothing was recorded in between and every completed record of the history must be in the log. A
    busy running case is retried a few times (only its open run is read again), then cut at the last
    event the history holds.
    """
    events = await case_events(pool, case_id)
    runs = await fetch_runs(client, case_id)
    for attempt in range(5):
        if attempt:
            runs = await _follow(client, case_id, runs)
        again = await case_events(pool, case_id)
        if _last_seq(again) == _last_seq(events):
            return runs, events
        events = again
    last_recorded = max((e.seq for batch in recorded_batches(runs) for e in batch.batch.events), default=0)
    return runs, [event for event in events if event.seq <= last_recorded]


def _last_seq(events: Sequence[DomainEvent]) -> int:
    return events[-1].seq if events else 0


async def export_case(client: Client, notary: Notary, case_id: str, out_dir: Path) -> Path:
    """Writes the case's bundle, signed with the notary's key, with the proof that its last event is sealed."""
    runs, events = await fetch_case(client, notary.pool, case_id)
    proof = await notary.proof(Leaf(case_id, events[-1].seq, events[-1].hash)) if events else None
    return write_bundle(out_dir, case_id, runs, events, signing_key=notary.key, proof=proof)


async def fetch_replaced_runs(
    client: Client, case_id: str, events: Sequence[DomainEvent]
) -> dict[str, WorkflowHistory | None]:
    """The history of every run a ``case.reset`` of the log names as replaced; None: Temporal no longer has it."""
    from temporalio.service import RPCError, RPCStatusCode

    replaced: dict[str, WorkflowHistory | None] = {}
    for event in events:
        old_run = event.payload.get("old_run_id") if event.type == EventType.case_reset else None
        if not isinstance(old_run, str) or old_run in replaced:
            continue
        try:
            replaced[old_run] = await client.get_workflow_handle(case_id, run_id=old_run).fetch_history()
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
            replaced[old_run] = None
    return replaced


async def verify_case(client: Client, pool: Any, case_id: str) -> VerifyReport:
    """Hash chain, cross-check and projection check of a live case (for ``GET /cases/{id}/verification``), and
    the rows a reset superseded against the runs it replaced, while Temporal keeps them."""
    runs, events = await fetch_case(client, pool, case_id)
    projection = await get_case(pool, case_id)
    extra = check_superseded(events, await fetch_replaced_runs(client, case_id, events))
    if projection is not None and projection.last_seq > _last_seq(events) and not is_running(runs):
        extra.append(
            finding(
                projection.last_seq,
                FindingKind.missing_from_log,
                f"the case projection reflects seq {projection.last_seq} but the audit log ends at seq "
                f"{_last_seq(events)}: recorded rows were removed",
            )
        )
    return verify(case_id, events, runs, extra_findings=extra)


async def case_timeline(pool: Any, case_id: str, *, calendar: WorkingCalendar | None = None) -> list[TimelineRow]:
    """The timeline of a live case from PostgreSQL alone (empty for an unknown case)."""
    return timeline(await case_events(pool, case_id), calendar=calendar)


async def case_state(pool: Any, case_id: str, *, seq: int | None = None, at: datetime | None = None) -> CaseState:
    """A live case as of event ``seq`` or instant ``at``, from PostgreSQL alone."""
    return state_at(await case_events(pool, case_id), seq=seq, at=at)
