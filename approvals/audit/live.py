"""A live case: its runs from Temporal, its audit log from PostgreSQL, read so they describe one moment."""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import asyncpg
from asn1crypto import x509
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from approvals.audit.archive import ArchivedHistoryCorrupted, archived_runs
from approvals.audit.bundle import write_bundle
from approvals.audit.checkpoint import Leaf
from approvals.audit.crosscheck import VerifyReport, check_superseded, verify
from approvals.audit.documents import check_documents
from approvals.audit.findings import FindingKind, finding
from approvals.audit.history import continued_as, continued_from, is_running, recorded_batches, run_id
from approvals.audit.sealing import Notary
from approvals.audit.timeline import TimelineRow, timeline
from approvals.storage.queries import case_events, get_case
from schemas.calendar import WorkingCalendar
from schemas.events import DomainEvent, EventType

HistorySource = Literal["temporal", "archive"]
"""Where a run's history was read: Temporal, or the engine's archive once Temporal no longer has it."""


class FetchedRuns(list[WorkflowHistory]):
    """Every run of a case, first to latest, and where each run's history was read (``sources``)."""

    def __init__(self, runs: Sequence[tuple[WorkflowHistory, HistorySource]] = ()) -> None:
        super().__init__(history for history, _ in runs)
        self.sources: list[HistorySource] = [source for _, source in runs]

    @property
    def source(self) -> str:
        """``temporal``, ``archive``, or ``archive and temporal`` when some runs were read from each."""
        return " and ".join(sorted(set(self.sources))) or "temporal"

    def runs(self) -> list[tuple[WorkflowHistory, HistorySource]]:
        return list(zip(self, self.sources, strict=True))


class _RunReader:
    """Reads a case's runs from Temporal, and from the archive (digest-checked) when Temporal has not got one."""

    def __init__(self, client: Client, archive: asyncpg.Pool | None, case_id: str) -> None:
        self.client = client
        self.archive = archive
        self.case_id = case_id
        self._archived: dict[str, WorkflowHistory] | None = None

    async def run(self, wanted: str | None) -> tuple[WorkflowHistory, HistorySource] | None:
        """Run ``wanted`` (None: the latest); None when neither Temporal nor the archive has it."""
        try:
            return await self.client.get_workflow_handle(self.case_id, run_id=wanted).fetch_history(), "temporal"
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
            archived = await self._archived_runs()
            found = archived.get(wanted) if wanted is not None else next(reversed(archived.values()), None)
            if found is None and wanted is None:
                raise  # no such case: the caller's 404
            return (found, "archive") if found is not None else None

    async def _archived_runs(self) -> dict[str, WorkflowHistory]:
        if self._archived is None:
            self._archived = {} if self.archive is None else await archived_runs(self.archive, self.case_id)
        return self._archived


async def fetch_runs(client: Client, case_id: str, archive: asyncpg.Pool | None = None) -> FetchedRuns:
    """Every run of a case, first to latest, following continue-as-new back from the latest run.

    The chain is followed through the start events' ``continuedExecutionRunId`` (and forward through a
    ``workflowExecutionContinuedAsNew`` event's ``newExecutionRunId`` should the case continue while it is
    read), which every Temporal server keeps, unlike visibility queries (the time-skipping test server has
    none). A run Temporal no longer retains is read from ``archive`` (:mod:`~approvals.audit.archive`);
    one that neither has ends the walk back, and :func:`check_runs` notes it.

    Raises:
        RPCError: NOT_FOUND when neither Temporal nor the archive knows the case.
        ArchivedHistoryCorrupted: an archived run no longer has its digest.
    """
    return await _fetch_runs(_RunReader(client, archive, case_id))


async def _fetch_runs(reader: _RunReader) -> FetchedRuns:
    latest = await reader.run(None)
    assert latest is not None  # run(None) raises instead
    runs = [latest]
    seen = {run_id(latest[0])}
    while (previous := continued_from(runs[0][0])) and previous not in seen:
        earlier = await reader.run(previous)
        if earlier is None:
            break
        runs.insert(0, earlier)
        seen.add(previous)
    return await _follow(reader, FetchedRuns(runs))


async def _follow(reader: _RunReader, fetched: FetchedRuns) -> FetchedRuns:
    """Refreshes the last run when it was still open, and follows it into the runs it continued as new."""
    runs = fetched.runs()
    if is_running(runs[-1][0]):
        runs[-1] = await reader.run(run_id(runs[-1][0])) or runs[-1]
    seen = {run_id(run) for run, _ in runs}
    while (following := continued_as(runs[-1][0])) and following not in seen:
        later = await reader.run(following)
        if later is None:
            break
        runs.append(later)
        seen.add(following)
    return FetchedRuns(runs)


RECENTLY_CLOSED = timedelta(days=7)
"""How far back ``audit replay --from-temporal`` samples closed runs by default."""


def running_or_recently_closed(closed_within: timedelta = RECENTLY_CLOSED, now: datetime | None = None) -> str:
    """The visibility query of the runs a release will meet: those running, and those closed lately (a reset or a
    late query replays them too)."""
    since = ((now or datetime.now(UTC)) - closed_within).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'ExecutionStatus = "Running" OR CloseTime > "{since}"'


async def sampled_runs(
    client: Client, sample: int, query: str | None = None
) -> AsyncIterator[tuple[str, WorkflowHistory]]:
    """Up to ``sample`` runs the visibility ``query`` lists (default: :func:`running_or_recently_closed`), newest
    first, each with its history, named for the verdicts by case id, run and status. Each run of a case that
    continued as new is listed, and replays, on its own."""
    async for execution in client.list_workflows(query or running_or_recently_closed(), limit=sample):
        history = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
        status = execution.status.name.lower() if execution.status else "unknown"
        yield f"case {execution.id} (run {execution.run_id}, {status})", history


async def fetch_case(client: Client, pool: Any, case_id: str) -> tuple[FetchedRuns, list[DomainEvent]]:
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
    reader = _RunReader(client, pool, case_id)
    runs = await _fetch_runs(reader)
    for attempt in range(5):
        if attempt:
            runs = await _follow(reader, runs)
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
    return write_bundle(out_dir, case_id, runs, events, signing_key=notary.key, proof=proof, history_source=runs.source)


async def export_case_zip(client: Client, notary: Notary, case_id: str) -> bytes:
    """The case's bundle (``export_case``) as one zip, its folder at the top, for a download."""
    with tempfile.TemporaryDirectory() as directory:
        folder = await export_case(client, notary, case_id, Path(directory))
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for file in sorted(folder.rglob("*")):
                if file.is_file():
                    zipped.write(file, file.relative_to(folder.parent).as_posix())
        return archive.getvalue()


async def fetch_replaced_runs(
    client: Client, case_id: str, events: Sequence[DomainEvent], archive: asyncpg.Pool | None = None
) -> dict[str, WorkflowHistory | None]:
    """The history of every run a ``case.reset`` of the log names as replaced, from Temporal or the archive;
    None: neither has it."""
    reader = _RunReader(client, archive, case_id)
    replaced: dict[str, WorkflowHistory | None] = {}
    for event in events:
        old_run = event.payload.get("old_run_id") if event.type == EventType.case_reset else None
        if isinstance(old_run, str) and old_run not in replaced:
            found = await reader.run(old_run)
            replaced[old_run] = found[0] if found is not None else None
    return replaced


async def verify_case(
    client: Client, pool: Any, case_id: str, organ_certificate: x509.Certificate | None = None
) -> VerifyReport:
    """Hash chain, cross-check and projection check of a live case (for ``GET /cases/{id}/verification`` and
    ``approvals audit verify``), against Temporal's history or, once Temporal no longer has it, the archive's
    (``history_source`` says which), and the rows a reset superseded against the runs it replaced. An archived
    history that fails its digest is a finding; so is an issued document changed, missing or not signed with
    ``organ_certificate``."""
    try:
        runs, events = await fetch_case(client, pool, case_id)
    except ArchivedHistoryCorrupted as corrupted:
        unreadable = finding(None, FindingKind.history_unreadable, str(corrupted))
        return verify(case_id, await case_events(pool, case_id), extra_findings=[unreadable])
    projection = await get_case(pool, case_id)
    extra = check_superseded(events, await fetch_replaced_runs(client, case_id, events, pool))
    extra += await check_documents(pool, events, organ_certificate)
    if projection is not None and projection.last_seq > _last_seq(events) and not is_running(runs):
        extra.append(
            finding(
                projection.last_seq,
                FindingKind.missing_from_log,
                f"the case projection reflects seq {projection.last_seq} but the audit log ends at seq "
                f"{_last_seq(events)}: recorded rows were removed",
            )
        )
    return verify(case_id, events, runs, extra_findings=extra, history_source=runs.source)


async def latest_history(client: Client, pool: Any, case_id: str) -> tuple[WorkflowHistory, HistorySource]:
    """The latest run's history (``GET /cases/{id}/history``), from the archive once Temporal no longer has it.

    Raises:
        RPCError: NOT_FOUND when neither has the case.
    """
    latest = await _RunReader(client, pool, case_id).run(None)
    assert latest is not None  # run(None) raises instead
    return latest


async def case_timeline(pool: Any, case_id: str, *, calendar: WorkingCalendar | None = None) -> list[TimelineRow]:
    """The timeline of a live case from PostgreSQL alone (empty for an unknown case)."""
    return timeline(await case_events(pool, case_id), calendar=calendar)
