"""Auditing a case without trusting its operators: export, verify, replay, explain, reconstruct.

Two independent records exist for every case. Temporal's event history is immutable and replays
deterministically through the workflow code; the PostgreSQL audit log is hash-chained
(:mod:`schemas.events`). Every domain event is sealed inside the workflow and handed to the
``record_events`` activity, so the inputs of the ``record_events`` activity tasks in the history hold
exactly the events the log must hold. This module checks each record on its own (hash chain, replay)
and against the other (cross-check), and turns the events into a plain-language timeline and a
point-in-time state.

Everything here is a plain function over events and histories (no I/O), except ``fetch_case``,
``export_case``, ``verify_case``, ``case_timeline``, ``case_state`` (a Temporal client and/or an asyncpg
pool) and the bundle readers and writers, so the HTTP API and the CLI share it. Results are pydantic
models: they serialise to JSON as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter, deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from schemas.calendar import BeyondKnownYears, WorkingCalendar, load_calendar, working_days_between
from schemas.events import GENESIS_HASH, DomainEvent, compute_hash, event_content
from schemas.principal import Principal
from schemas.records import RecordBatch
from workflows import WORKFLOWS, workflow_runner

CHINA_TIME = timezone(timedelta(hours=8), "UTC+8")
"""Auditors read times in the zone's local time (China has no daylight saving)."""

HISTORY_FILE = "history.json"
"""The history of the case's first (usually only) workflow run; run N > 1 is in ``history-run-N.json``."""
EVENTS_FILE = "events.json"
MANIFEST_FILE = "manifest.json"
BUNDLE_FORMAT = "approvals-audit-bundle/2"
"""/2 added ``runs`` (every workflow run of a case continued as new); a /1 bundle is its ``history.json`` alone."""

RECORD_ACTIVITY = "record_events"


# ---------------------------------------------------------------------------------------------- findings


class Severity(StrEnum):
    error = "error"
    """The record cannot be trusted as it stands."""
    note = "note"
    """Worth knowing, not a breach (e.g. events of a running case not yet written)."""


class FindingKind(StrEnum):
    edited = "edited"
    """A row's content no longer matches its own hash."""
    reordered = "reordered"
    """A row was sealed under another sequence number than the one it is stored under."""
    deleted = "deleted"
    """A sequence number is missing."""
    inserted = "inserted"
    """A row whose content does not match its hash and whose hash no other row vouches for: forged."""
    chain_broken = "chain_broken"
    """A genuine row does not link to the row stored before it: something before it was changed."""
    foreign_case = "foreign_case"
    out_of_order = "out_of_order"
    missing_from_log = "missing_from_log"
    """An event the workflow recorded (history) is not in the audit log."""
    not_in_history = "not_in_history"
    """A row of the audit log the workflow never emitted."""
    differs_from_history = "differs_from_history"
    decision_not_logged = "decision_not_logged"
    """A reviewer's request the workflow accepted (a Workflow Update in the history) has no matching row."""
    pending = "pending"
    bundle_digest = "bundle_digest"
    history_unreadable = "history_unreadable"
    run_missing = "run_missing"
    """A workflow run of the case (continue-as-new) is not in the record, or the runs do not link up."""


class Finding(BaseModel):
    """One problem found in a case's record, pinned to the sequence number it concerns."""

    model_config = ConfigDict(frozen=True)

    seq: int | None = Field(description="Sequence number of the event concerned (None: the whole record).")
    kind: FindingKind
    message: str
    severity: Severity = Severity.error


def _finding(seq: int | None, kind: FindingKind, message: str, severity: Severity = Severity.error) -> Finding:
    return Finding(seq=seq, kind=kind, message=message, severity=severity)


def _hash_as(event: DomainEvent, seq: int) -> str:
    content = event_content(event)
    content["seq"] = seq
    return compute_hash(content)


# ---------------------------------------------------------------------------------------------- hash chain

_BRUTE_FORCE_LIMIT = 50
"""Rows whose original position is searched exhaustively; beyond it only the chain's hint is tried."""


def verify_chain(events: Sequence[DomainEvent], *, case_id: str | None = None) -> list[Finding]:
    """Recomputes the hash chain of one case's stored events, in stored order (by ``seq``).

    Every sealed event carries its own hash (over its content, ``seq`` and ``prev_hash`` included) and
    its predecessor's hash, so:

    - an **edited** row no longer matches its own hash;
    - a **deleted** row leaves a gap in the sequence numbers (the last row's deletion leaves no trace
      in the chain: :func:`cross_check` against the history finds it);
    - a **reordered** row (sequence numbers swapped or shifted) matches its hash only under the number it
      was sealed with, which is reported;
    - an **inserted** (forged) row matches neither its hash nor its predecessor; a forger who seals it
      correctly at the end of the chain is caught by :func:`cross_check`, never by the chain alone;
    - a row edited *and re-sealed* breaks the link of the row after it (``chain_broken``).

    Returns:
        Findings in sequence order; empty when the chain is intact.
    """
    findings: list[Finding] = []
    if not events:
        return findings
    case_id = case_id or events[0].case_id
    by_hash = {event.hash: event for event in events}
    referenced = {(event.prev_hash, event.seq) for event in events}
    hash_owners = Counter(event.hash for event in events)
    genuine = {event.seq: compute_hash(event_content(event)) == event.hash for event in events}
    tampered = sum(1 for ok in genuine.values() if not ok)
    max_seq = max(event.seq for event in events)
    expected_seq = 1
    previous: DomainEvent | None = None
    for event in events:
        if event.case_id != case_id:
            findings.append(
                _finding(event.seq, FindingKind.foreign_case, f"seq {event.seq} belongs to case {event.case_id}")
            )
        if previous is not None and event.seq <= previous.seq:
            findings.append(
                _finding(event.seq, FindingKind.out_of_order, f"seq {event.seq} is stored after seq {previous.seq}")
            )
        gap = event.seq > expected_seq
        for missing in range(expected_seq, event.seq):
            findings.append(
                _finding(missing, FindingKind.deleted, f"seq {missing} is missing from the audit log (deleted)")
            )
        expected_prev = previous.hash if previous is not None else GENESIS_HASH
        linked = event.prev_hash == expected_prev
        if not genuine[event.seq]:
            sealed_as = _sealed_seq(event, by_hash, max_seq, brute_force=tampered <= _BRUTE_FORCE_LIMIT)
            if sealed_as is not None:
                findings.append(
                    _finding(
                        event.seq,
                        FindingKind.reordered,
                        f"the row stored as seq {event.seq} ({event.type}) was sealed as seq {sealed_as}: "
                        "rows were reordered, or a row was inserted or deleted before it and the rest renumbered",
                    )
                )
            elif hash_owners[event.hash] == 1 and (
                any(h == event.hash and s != event.seq for h, s in referenced) or (linked and event.seq == max_seq)
            ):
                # Its stored hash is still vouched for by the row after it: a genuine row, edited.
                findings.append(
                    _finding(
                        event.seq,
                        FindingKind.edited,
                        f"seq {event.seq} ({event.type}) does not match its hash: its content was changed after "
                        "it was recorded",
                    )
                )
            else:
                findings.append(
                    _finding(
                        event.seq,
                        FindingKind.inserted,
                        f"seq {event.seq} ({event.type}) matches neither its own hash nor the chain: a forged "
                        "or inserted row",
                    )
                )
        elif not linked and not gap:
            before = f"seq {previous.seq}" if previous is not None else "the genesis hash"
            findings.append(
                _finding(
                    event.seq,
                    FindingKind.chain_broken,
                    f"seq {event.seq} does not link to {before}: "
                    f"{before} was changed (and re-sealed) or a row was inserted before seq {event.seq}",
                )
            )
        expected_seq = max(expected_seq, event.seq + 1)
        previous = event
    return sorted(findings, key=lambda f: (f.seq or 0, f.kind.value))


def _sealed_seq(event: DomainEvent, by_hash: dict[str, DomainEvent], max_seq: int, *, brute_force: bool) -> int | None:
    """The sequence number ``event`` was sealed with, when its content is otherwise genuine."""
    candidates: list[int] = []
    if event.prev_hash == GENESIS_HASH:
        candidates.append(1)
    predecessor = by_hash.get(event.prev_hash)
    if predecessor is not None:
        candidates.append(predecessor.seq + 1)
    if brute_force:
        candidates.extend(range(1, max_seq + 2))
    for seq in dict.fromkeys(candidates):
        if seq != event.seq and _hash_as(event, seq) == event.hash:
            return seq
    return None


# ---------------------------------------------------------------------------------------------- history


Histories = WorkflowHistory | Sequence[WorkflowHistory]
"""One run's history, or every run of a case in order (a case that continued as new has several)."""


def runs_of(history: Histories) -> list[WorkflowHistory]:
    """The runs of ``history`` in order: a single history is a case with one run."""
    return [history] if isinstance(history, WorkflowHistory) else list(history)


def history_file(run: int) -> str:
    """Bundle file name of the ``run``-th run (1-based): ``history.json``, then ``history-run-2.json`` …"""
    return HISTORY_FILE if run == 1 else f"history-run-{run}.json"


def continued_from(history: WorkflowHistory) -> str | None:
    """The run this run continued (continue-as-new), from its start event; None for a first run."""
    if not history.events:
        return None
    return history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id or None


def continued_as(history: WorkflowHistory) -> str | None:
    """The run this run continued as new into, from its last event; None when it did not."""
    if not history.events:
        return None
    last = history.events[-1]
    if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        return None
    return last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id or None


def _run_id(history: WorkflowHistory) -> str | None:
    try:
        return history.run_id or None
    except Exception:  # noqa: BLE001 - no start event
        return None


def carried_in(history: WorkflowHistory) -> tuple[int, str] | None:
    """``(last_seq, last_hash)`` a continued run carried in from the run before it (its start input)."""
    if not continued_from(history):
        return None
    payloads = list(history.events[0].workflow_execution_started_event_attributes.input.payloads)
    try:
        [case_input] = pydantic_data_converter.payload_converter.from_payloads(payloads)
        carried = case_input.get("carried") or {}
        return int(carried["last_seq"]), str(carried["last_hash"])
    except Exception:  # noqa: BLE001 - not an engine case input
        return None


def check_runs(history: Histories) -> list[Finding]:
    """The runs link up: each continued run names the run before it, and the last run did not continue.

    A first run that itself continued an earlier run means earlier runs are not in the record (their
    histories were not exported, or the server no longer retains them): a note, since the events they
    recorded are still vouched for by the hash chain the first present run carried in
    (see :func:`cross_check`).
    """
    runs = runs_of(history)
    findings: list[Finding] = []
    for index, run in enumerate(runs, start=1):
        previous = continued_from(run)
        if index == 1 and previous:
            findings.append(
                _finding(
                    None,
                    FindingKind.run_missing,
                    f"run 1 of the record continues run {previous}, which is not in the record: the events before "
                    "it are checked against the hash it carried in, not against a history",
                    Severity.note,
                )
            )
        elif index > 1 and previous != _run_id(runs[index - 2]):
            findings.append(
                _finding(
                    None,
                    FindingKind.run_missing,
                    f"run {index} ({_run_id(run)}) continues run {previous}, not run {index - 1} "
                    f"({_run_id(runs[index - 2])}): a run is missing or the runs are out of order",
                )
            )
        if index == len(runs) and (following := continued_as(run)):
            findings.append(
                _finding(
                    None,
                    FindingKind.run_missing,
                    f"run {index} ({_run_id(run)}) continued as new into run {following}, which is not in the record",
                )
            )
    return findings


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
    seen = {_run_id(latest)}
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
        runs[-1] = await client.get_workflow_handle(case_id, run_id=_run_id(runs[-1])).fetch_history()
    seen = {_run_id(run) for run in runs}
    while (following := continued_as(runs[-1])) and following not in seen:
        runs.append(await client.get_workflow_handle(case_id, run_id=following).fetch_history())
        seen.add(following)
    return runs


def history_from_json(data: str | bytes | dict[str, Any], *, workflow_id: str | None = None) -> WorkflowHistory:
    """Parses a history as ``temporal workflow show --output json`` (or the Web UI) prints it."""
    parsed = json.loads(data) if isinstance(data, str | bytes) else data
    history = WorkflowHistory.from_json(workflow_id or "", parsed)
    if not workflow_id:
        history = WorkflowHistory(workflow_id_of(history) or "", history.events)
    return history


def workflow_id_of(history: WorkflowHistory) -> str | None:
    """The workflow id a history file belongs to, which replay needs (task ids are built from it).

    ``temporal workflow show`` output does not carry it at the top level; servers fill it into the start
    event, but the time-skipping test server leaves it empty. The engine's own record then tells it:
    every ``record_events`` input names its case, and the case id is the workflow id.
    """
    if not history.events:
        return None
    started = history.events[0].workflow_execution_started_event_attributes
    if started.workflow_id:
        return started.workflow_id
    for event in history.events:
        batch = recorded_batch_of(event)
        if batch is not None:
            return batch.case_id
    return None


def recorded_batch_of(event: HistoryEvent) -> RecordBatch | None:
    """The batch a history event hands to ``record_events``, if it schedules that activity."""
    if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return None
    attributes = event.activity_task_scheduled_event_attributes
    if attributes.activity_type.name != RECORD_ACTIVITY:
        return None
    [batch] = pydantic_data_converter.payload_converter.from_payloads(list(attributes.input.payloads), [RecordBatch])
    return batch


class RecordedBatch(BaseModel):
    """One ``record_events`` activity task of the history, decoded."""

    model_config = ConfigDict(frozen=True)

    scheduled_event_id: int
    completed: bool
    batch: RecordBatch
    run: int = Field(1, description="Which run of the case (1-based) scheduled it; event ids restart per run.")


def recorded_batches(history: Histories) -> list[RecordedBatch]:
    """The ``record_events`` batches of a history (every run), decoded with the pydantic converter, in order."""
    batches: list[RecordedBatch] = []
    for run, one in enumerate(runs_of(history), start=1):
        completed = {
            event.activity_task_completed_event_attributes.scheduled_event_id
            for event in one.events
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        }
        for event in one.events:
            batch = recorded_batch_of(event)
            if batch is None:
                continue
            batches.append(
                RecordedBatch(
                    scheduled_event_id=event.event_id, completed=event.event_id in completed, batch=batch, run=run
                )
            )
    return batches


def history_events(history: Histories) -> list[DomainEvent]:
    """Every domain event the workflow handed to ``record_events`` (in every run), in sequence order."""
    events = {event.seq: event for recorded in recorded_batches(history) for event in recorded.batch.events}
    return [events[seq] for seq in sorted(events)]


UPDATE_EVENTS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "claim": ("task.claimed", ()),
    "unclaim": ("task.unclaimed", ()),
    "decide": ("task.decided", (("decision", "decision"), ("comment", "comment"), ("conditions", "conditions"))),
    "transfer": ("task.transferred", (("to_user", "to"), ("comment", "comment"))),
    "delegate": ("task.delegated", (("to_user", "delegate"), ("comment", "comment"))),
    "add_signer": ("task.signer_added", (("signer", "signer"), ("position", "position"), ("comment", "comment"))),
    "urge": ("task.urged", (("comment", "comment"),)),
    "comment": ("case.commented", (("text", "text"),)),
    "cc": ("case.cc", (("observers", "observers"), ("comment", "comment"))),
    "withdraw": ("case.withdrawn", (("reason", "reason"),)),
    "request_supplement": ("case.supplement_requested", (("items", "items"), ("comment", "comment"))),
    "supplement": ("case.supplemented", (("documents", "documents"), ("comment", "comment"))),
    "extend": ("case.extended", (("reason", "reason"),)),
}
"""Workflow Update name -> the event it must leave, and (request field, payload field) pairs that must agree."""


class DecisionRequest(BaseModel):
    """A reviewer's or applicant's request as the Temporal history holds it (an accepted Workflow Update)."""

    model_config = ConfigDict(frozen=True)

    update_id: str
    name: str
    request: dict[str, Any]
    accepted_event_id: int
    after_seq: int = Field(description="Last event seq recorded before the update was accepted.")
    result_last_seq: int | None = Field(None, description="`last_seq` of the update's result; None: failed/open.")
    run: int = Field(1, description="Which run of the case (1-based) accepted it.")

    @property
    def where(self) -> str:
        return f"history event {self.accepted_event_id}" + (f" of run {self.run}" if self.run > 1 else "")


def decision_requests(history: Histories) -> list[DecisionRequest]:
    """Every accepted Workflow Update of the history (every run, in order), with its request and result.

    An update never spans runs (a run continues as new only once every handler has finished); the seq
    recorded before it carries over from the run before, or from what a continued run carried in.
    """
    accepted: dict[tuple[int, str], DecisionRequest] = {}
    recorded_upto = 0
    for run, one in enumerate(runs_of(history), start=1):
        recorded_upto = max(recorded_upto, (carried_in(one) or (0, ""))[0])
        recorded_upto = _run_decision_requests(one, run, recorded_upto, accepted)
    return list(accepted.values())


def _run_decision_requests(
    history: WorkflowHistory, run: int, recorded_upto: int, accepted: dict[tuple[int, str], DecisionRequest]
) -> int:
    converter = pydantic_data_converter.payload_converter
    for event in history.events:
        batch = recorded_batch_of(event)
        if batch is not None:
            recorded_upto = max([recorded_upto, *(e.seq for e in batch.events)])
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            args = converter.from_payloads(list(request.input.args.payloads))
            accepted[(run, request.meta.update_id)] = DecisionRequest(
                update_id=request.meta.update_id,
                name=request.input.name,
                request=args[0] if args and isinstance(args[0], dict) else {},
                accepted_event_id=event.event_id,
                after_seq=recorded_upto,
                run=run,
            )
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            attributes = event.workflow_execution_update_completed_event_attributes
            known = accepted.get((run, attributes.meta.update_id))
            if known is not None and attributes.outcome.HasField("success"):
                [result] = converter.from_payloads(list(attributes.outcome.success.payloads)) or [None]
                last_seq = result.get("last_seq") if isinstance(result, dict) else None
                accepted[(run, known.update_id)] = known.model_copy(update={"result_last_seq": last_seq})
    return recorded_upto


def check_decisions(events: Sequence[DomainEvent], history: Histories) -> list[Finding]:
    """Every request the workflow accepted and completed is in the log: same actor, task and content.

    The ``record_events`` inputs are what the workflow *made* of the requests; the accepted Workflow
    Updates are the requests themselves, as the API sent them. Comparing the log with both means neither
    a rewritten row nor workflow code that recorded something else than what was asked goes unnoticed.
    """
    findings: list[Finding] = []
    for decision in decision_requests(history):
        if decision.name not in UPDATE_EVENTS or decision.result_last_seq is None:
            continue
        event_type, fields = UPDATE_EVENTS[decision.name]
        request = decision.request
        actor = request.get("actor") or {}
        candidates = [
            event
            for event in events
            if decision.after_seq < event.seq <= decision.result_last_seq
            and event.type == event_type
            and (request.get("task_id") is None or event.task_id == request.get("task_id"))
        ]
        candidates.sort(key=lambda event: event.actor.id != actor.get("id"))  # the requester's own row first
        described = f"the {decision.name} request by {actor.get('id')} ({decision.where})"
        if not candidates:
            findings.append(
                _finding(
                    decision.after_seq + 1,
                    FindingKind.decision_not_logged,
                    f"{described} has no {event_type} row in seq "
                    f"{decision.after_seq + 1}..{decision.result_last_seq} of the audit log",
                )
            )
            continue
        event = candidates[0]
        differing = [
            name
            for name, key in fields
            if _json_ready(request.get(name)) != _json_ready(event.payload.get(key))
            and not (request.get(name) in (None, "", []) and event.payload.get(key) in (None, "", []))
        ]
        if _json_ready(event.actor.model_dump(mode="json")) != _json_ready(
            Principal.model_validate(actor).model_dump(mode="json")
        ):
            differing.insert(0, "actor")
        if differing:
            findings.append(
                _finding(
                    event.seq,
                    FindingKind.differs_from_history,
                    f"seq {event.seq} ({event.type}) does not say what {described} asked: {', '.join(differing)}",
                )
            )
    return findings


def _json_ready(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


_COMPARED_FIELDS = ("type", "actor", "at", "legal_basis", "stage_id", "task_id", "payload", "prev_hash", "hash")


def cross_check(events: Sequence[DomainEvent], history: Histories) -> list[Finding]:
    """Compares the audit log with the events the workflow recorded according to its Temporal history.

    ``history`` is every run of the case (a case that continued as new has several; one sequence and one
    hash chain run through all of them). Every event in the runs' ``record_events`` inputs must be in the
    log with the same actor, payload, hash and every other field; every row of the log must be in one of
    them. Events of a ``record_events`` task that has not completed yet (a running case) may legitimately
    be missing from the log: that is a note. When the first run present continued an earlier run that is
    not, the log's rows up to the seq it carried in are checked against the hash it carried instead.
    """
    runs = runs_of(history)
    findings: list[Finding] = check_runs(runs)
    try:
        batches = recorded_batches(runs)
    except Exception as error:  # noqa: BLE001 - an unreadable history is a finding, not a crash
        return [_finding(None, FindingKind.history_unreadable, f"record_events inputs cannot be decoded: {error}")]
    carried = carried_in(runs[0]) if runs else None
    before = carried[0] if carried else 0
    if carried:
        last_seq, last_hash = carried
        row = next((event for event in events if event.seq == last_seq), None)
        if row is not None and row.hash != last_hash:
            findings.append(
                _finding(
                    last_seq,
                    FindingKind.differs_from_history,
                    f"seq {last_seq} does not have the hash the next run carried in from it ({last_hash[:12]}…)",
                )
            )
    recorded: dict[int, tuple[DomainEvent, bool]] = {}
    for item in batches:
        for event in item.batch.events:
            known = recorded.get(event.seq)
            if known is not None and known[0].hash != event.hash:
                findings.append(
                    _finding(
                        event.seq,
                        FindingKind.differs_from_history,
                        f"the history records seq {event.seq} twice with different hashes",
                    )
                )
            recorded[event.seq] = (event, item.completed or (known is not None and known[1]))
    logged: dict[int, DomainEvent] = {}
    for event in events:
        logged.setdefault(event.seq, event)
    for seq in sorted(recorded.keys() | logged.keys()):
        in_history, in_log = recorded.get(seq), logged.get(seq)
        if in_log is None:
            assert in_history is not None
            event, completed = in_history
            if completed:
                findings.append(
                    _finding(
                        seq,
                        FindingKind.missing_from_log,
                        f"seq {seq} ({event.type} by {event.actor.id}) is in the Temporal history but not in the "
                        "audit log (deleted)",
                    )
                )
            else:
                findings.append(
                    _finding(
                        seq,
                        FindingKind.pending,
                        f"seq {seq} ({event.type}) is being recorded (its record_events task has not completed)",
                        Severity.note,
                    )
                )
            continue
        if in_history is None:
            if seq <= before:
                continue  # recorded by an earlier run not in the record: vouched for by the carried hash
            findings.append(
                _finding(
                    seq,
                    FindingKind.not_in_history,
                    f"seq {seq} ({in_log.type} by {in_log.actor.id}) is in the audit log but the workflow never "
                    "recorded it (forged or inserted)",
                )
            )
            continue
        differences = _differences(in_log, in_history[0])
        if differences:
            findings.append(
                _finding(
                    seq,
                    FindingKind.differs_from_history,
                    f"seq {seq} differs from the history in {', '.join(differences)}",
                )
            )
    findings += check_decisions(events, runs)
    return sorted(findings, key=lambda f: (f.seq or 0, f.kind.value))


def _differences(logged: DomainEvent, recorded: DomainEvent) -> list[str]:
    differences = []
    for name in _COMPARED_FIELDS:
        ours, theirs = getattr(logged, name), getattr(recorded, name)
        if name == "actor":
            ours, theirs = ours.model_dump(mode="json"), theirs.model_dump(mode="json")
            if ours != theirs:
                differences.append(f"actor (log: {ours['id']!r}, history: {theirs['id']!r})")
            continue
        if name == "payload":
            ours, theirs = json.loads(json.dumps(ours, default=str)), json.loads(json.dumps(theirs, default=str))
        if ours != theirs:
            if name in ("payload", "hash", "prev_hash"):
                differences.append(name)
            else:
                differences.append(f"{name} (log: {ours!r}, history: {theirs!r})")
    return differences


class VerifyReport(BaseModel):
    """The verdict on one case's record: intact when no finding is an error."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    events: int
    history_events: int | None = Field(None, description="Domain events in the history; None when not checked.")
    run_ids: list[str] = Field(
        default_factory=list, description="The workflow runs checked, first to latest (continue-as-new)."
    )
    last_seq: int | None
    last_hash: str | None
    findings: list[Finding]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """Serialised with the report, so API clients need not re-derive it."""
        return not any(finding.severity is Severity.error for finding in self.findings)


def verify(
    case_id: str,
    events: Sequence[DomainEvent],
    history: Histories | None = None,
    *,
    extra_findings: Iterable[Finding] = (),
) -> VerifyReport:
    """Hash chain, and when a history is given (one run, or every run of the case), the cross-check against it."""
    findings = list(extra_findings) + verify_chain(events, case_id=case_id)
    recorded = None
    run_ids: list[str] = []
    if history is not None:
        findings += cross_check(events, history)
        try:
            recorded = len(history_events(history))
        except Exception:  # noqa: BLE001 - cross_check reported it
            recorded = None
        run_ids = [run_id for run in runs_of(history) if (run_id := _run_id(run))]
    last = events[-1] if events else None
    return VerifyReport(
        case_id=case_id,
        events=len(events),
        history_events=recorded,
        run_ids=run_ids,
        last_seq=last.seq if last else None,
        last_hash=last.hash if last else None,
        findings=sorted(findings, key=lambda f: (f.seq or 0, f.kind.value)),
    )


# ---------------------------------------------------------------------------------------------- bundles


def engine_version() -> str:
    try:
        return metadata.version("alashankou-approvals")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout without install
        return "unknown"


def bundle_dirname(case_id: str) -> str:
    """A file-system-safe directory name for a case id (``process:key`` -> ``process_key``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", case_id)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(out_dir: Path, case_id: str, history: Histories, events: Sequence[DomainEvent]) -> Path:
    """Writes the runs' histories, ``events.json`` and ``manifest.json`` (SHA-256 of each) to ``out_dir/<case>``.

    The first run's history is ``history.json``; a case that continued as new has its later runs in
    ``history-run-2.json``, ``history-run-3.json`` …, and the manifest lists the runs in order (``runs``:
    run number, run id, file, history events, the run it continued). Each is ``WorkflowHistory.to_json()``,
    the format ``temporal workflow show --output json`` prints, so the Temporal CLI, the Web UI and
    ``Replayer`` all read it. Child cases have their own records: ``child_case_ids`` names them, to be
    exported as cases of their own.
    """
    runs = runs_of(history)
    if not runs:
        raise ValueError(f"case {case_id}: no history to export")
    directory = out_dir / bundle_dirname(case_id)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("history-run-*.json"):  # a re-export of fewer runs leaves none behind
        stale.unlink()
    files = {history_file(run): one.to_json().encode() for run, one in enumerate(runs, start=1)}
    files[EVENTS_FILE] = json.dumps(
        [event.model_dump(mode="json") for event in events], ensure_ascii=False, indent=2
    ).encode()
    for name, data in files.items():
        (directory / name).write_bytes(data)
    manifest = {
        "format": BUNDLE_FORMAT,
        "case_id": case_id,
        "workflow_id": runs[0].workflow_id or case_id,
        "run_id": _run_id(runs[0]),
        "run_ids": [_run_id(run) for run in runs],
        "runs": [
            {
                "run": number,
                "run_id": _run_id(run),
                "file": history_file(number),
                "history_events": len(run.events),
                "continued_from": continued_from(run),
            }
            for number, run in enumerate(runs, start=1)
        ],
        "exported_at": datetime.now(UTC).isoformat(),
        "engine_version": engine_version(),
        "temporalio_version": metadata.version("temporalio"),
        "history_events": sum(len(run.events) for run in runs),
        "workflow_closed": not is_running(runs),
        "audit_events": len(events),
        "last_seq": events[-1].seq if events else None,
        "last_hash": events[-1].hash if events else None,
        "child_case_ids": list(
            dict.fromkeys(
                str(event.payload["child_case_id"])
                for event in events
                if event.type == "case.child_started" and event.payload.get("child_case_id")
            )
        ),
        "files": {name: {"sha256": _sha256(data), "bytes": len(data)} for name, data in files.items()},
    }
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    return directory


class Bundle(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    case_id: str
    manifest: dict[str, Any]
    runs: list[WorkflowHistory] = Field(description="The histories of the case's workflow runs, first to latest.")
    events: list[DomainEvent]
    findings: list[Finding] = Field(default_factory=list, description="Files whose digest differs.")


def is_bundle(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST_FILE).is_file() and (path / HISTORY_FILE).is_file()


_PLAIN_NAME = re.compile(r"^[A-Za-z0-9._-]+\.json$")


def bundle_run_files(manifest: dict[str, Any]) -> list[str]:
    """The history files of a bundle's runs, in order (a /1 bundle, or a one-run case: ``history.json``)."""
    runs = manifest.get("runs") or [{"file": HISTORY_FILE}]
    names = [str(run.get("file") or "") for run in runs]
    for name in names:
        if not _PLAIN_NAME.match(name) or name.startswith("."):
            raise ValueError(f"manifest names a history file outside the bundle: {name!r}")
    return names


def load_bundle(path: Path) -> Bundle:
    """Reads a bundle; every file whose SHA-256 differs from the manifest becomes a finding."""
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    findings = []
    listed = manifest.get("files", {})
    for name, expected in listed.items():
        actual = _sha256((path / name).read_bytes()) if (path / name).is_file() else None
        if actual != expected["sha256"]:
            findings.append(
                _finding(
                    None,
                    FindingKind.bundle_digest,
                    f"{name} {'is missing' if actual is None else 'differs from its SHA-256 in the manifest'}",
                )
            )
    case_id = manifest["case_id"]
    workflow_id = manifest.get("workflow_id") or case_id
    runs = []
    for name in bundle_run_files(manifest):
        if name not in listed:
            findings.append(_finding(None, FindingKind.bundle_digest, f"{name} has no SHA-256 in the manifest"))
        if not (path / name).is_file():
            if name in listed:
                continue  # reported as missing above
            findings.append(_finding(None, FindingKind.bundle_digest, f"{name} is missing"))
            continue
        runs.append(history_from_json((path / name).read_text(), workflow_id=workflow_id))
    events = [DomainEvent.model_validate(item) for item in json.loads((path / EVENTS_FILE).read_text())]
    return Bundle(path=path, case_id=case_id, manifest=manifest, runs=runs, events=events, findings=findings)


def verify_bundle(path: Path) -> VerifyReport:
    bundle = load_bundle(path)
    return verify(bundle.case_id, bundle.events, bundle.runs, extra_findings=bundle.findings)


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
    from activities.queries import case_events

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


_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}


def is_running(history: Histories) -> bool:
    """Whether the case's latest run is still open (a run that continued as new is closed)."""
    runs = runs_of(history)
    return bool(runs) and bool(runs[-1].events) and runs[-1].events[-1].event_type not in _CLOSED


async def export_case(client: Client, pool: Any, case_id: str, out_dir: Path) -> Path:
    runs, events = await fetch_case(client, pool, case_id)
    return write_bundle(out_dir, case_id, runs, events)


async def verify_case(client: Client, pool: Any, case_id: str) -> VerifyReport:
    """Hash chain, cross-check and projection check of a live case (for ``GET /cases/{id}/verification``)."""
    from activities.queries import get_case

    runs, events = await fetch_case(client, pool, case_id)
    projection = await get_case(pool, case_id)
    extra = []
    if projection is not None and projection.last_seq > _last_seq(events) and not is_running(runs):
        extra.append(
            _finding(
                projection.last_seq,
                FindingKind.missing_from_log,
                f"the case projection reflects seq {projection.last_seq} but the audit log ends at seq "
                f"{_last_seq(events)}: recorded rows were removed",
            )
        )
    return verify(case_id, events, runs, extra_findings=extra)


async def case_timeline(pool: Any, case_id: str, *, calendar: WorkingCalendar | None = None) -> list[TimelineRow]:
    """The timeline of a live case from PostgreSQL alone (empty for an unknown case)."""
    from activities.queries import case_events

    return timeline(await case_events(pool, case_id), calendar=calendar)


async def case_state(pool: Any, case_id: str, *, seq: int | None = None, at: datetime | None = None) -> CaseState:
    """A live case as of event ``seq`` or instant ``at``, from PostgreSQL alone."""
    from activities.queries import case_events

    return state_at(await case_events(pool, case_id), seq=seq, at=at)


# ---------------------------------------------------------------------------------------------- replay


class ReplayVerdict(BaseModel):
    """Whether a history replays through the current workflow code."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="File, bundle or case the history came from.")
    workflow_id: str
    run_id: str | None
    ok: bool
    error_type: str | None = None
    message: str | None = None
    event_id: int | None = Field(None, description="History event where replay diverged, when the error says.")
    history_events: int = 0


_EVENT_ID = re.compile(r"HistoryEvent\(id: (\d+)|event[ _]?id[\s:=#]+(\d+)", re.IGNORECASE)
_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


_PATCH_ID = re.compile(r"patch marker encountered for change (\S+?),")


def _diverged_at(message: str, history: WorkflowHistory) -> int | None:
    """The history event where replay diverged: the id core names (``HistoryEvent(id: 35, ...)``), or, for
    a patch marker the code no longer asks for, the marker event recording that change id."""
    match = _EVENT_ID.search(message)
    if match:
        return int(match.group(1) or match.group(2))
    patch = _PATCH_ID.search(message)
    if patch:
        for event in history.events:
            if event.HasField("marker_recorded_event_attributes") and patch.group(1).encode() in (
                event.marker_recorded_event_attributes.SerializeToString()
            ):
                return event.event_id
    return None


def _short(message: str) -> str:
    """Core wraps the reason in a Debug dump of the failure; the quoted message is what a person reads."""
    match = _CORE_MESSAGE.search(message)
    return match.group(1) if match else message


HistorySource = WorkflowHistory | Path | str | tuple[str, WorkflowHistory]
"""A history, a history file, a bundle directory (every run in it), or ``(source name, history)``."""


def _load_histories(item: HistorySource) -> list[tuple[str, WorkflowHistory]]:
    """The runs ``item`` holds, each named for the verdicts: a bundle of a continued case holds several."""
    if isinstance(item, WorkflowHistory):
        if not item.workflow_id:
            item = WorkflowHistory(workflow_id_of(item) or "", item.events)
        return [(item.workflow_id, item)]
    if isinstance(item, tuple):
        return [item]
    path = Path(item)
    if is_bundle(path):
        manifest = json.loads((path / MANIFEST_FILE).read_text())
        workflow_id = manifest.get("workflow_id") or manifest["case_id"]
        names = bundle_run_files(manifest)
        return [
            (
                str(path) if len(names) == 1 else f"{path} (run {number} of {len(names)})",
                history_from_json((path / name).read_text(), workflow_id=workflow_id),
            )
            for number, name in enumerate(names, start=1)
        ]
    history = history_from_json(path.read_text())
    if not history.workflow_id:
        history = WorkflowHistory(path.stem, history.events)
    return [(str(path), history)]


def history_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Expands directories: bundles count once, other ``*.json`` files are histories."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if is_bundle(path) or path.is_file():
            found.append(path)
        elif path.is_dir():
            for child in sorted(path.rglob("*.json")):
                if is_bundle(child.parent):
                    if child.name == HISTORY_FILE:
                        found.append(child.parent)
                else:
                    found.append(child)
        else:
            raise FileNotFoundError(f"no such history file or bundle: {path}")
    return found


def make_replayer(workflows: Sequence[type] | None = None, *, sandbox: bool = True) -> Replayer:
    """A replayer configured as the worker is: same workflows, converter and (by default) sandbox.

    ``sandbox=False`` runs the workflow code without the sandbox: the same command-by-command comparison
    against the history, without the sandbox's import restrictions (see :data:`SANDBOX_FOR_AUDIT`).
    """
    return Replayer(
        workflows=list(WORKFLOWS if workflows is None else workflows),
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner() if sandbox else UnsandboxedWorkflowRunner(),
    )


SANDBOX_FOR_AUDIT = False
"""Whether ``approvals audit replay`` runs the workflow code in the sandbox (``--sandbox`` forces it).

Why an audit replay may leave the sandbox out (measured: it costs ~3/4 of the replay time, because every
workflow run re-imports the workflow modules into a fresh sandbox and re-validates their classes):

- **What detects non-determinism is the same either way.** Temporal's core compares the commands the
  workflow code issues with the events in the history, command by command; the sandboxed and the
  unsandboxed runner drive the very same workflow instance code and hand core the same commands. A
  change made without ``workflow.patched`` fails with the same ``NondeterminismError`` at the same history
  event (``tests/test_replay.py`` replays the corpus and the unguarded change both ways).
- **What the sandbox adds is a check of the code, not of the history.** It makes a call that is not
  deterministic (``datetime.now()``, ``random``, I/O, ...) or a module-level side effect fail the workflow
  task. That is a property of the workflow code, and the code is held to it where it matters: every
  worker runs workflows in the sandbox (a forbidden call fails the workflow task in production), and CI
  replays the determinism corpus in the sandbox (``tests/test_replay.py``, ``tests/test_determinism_corpus``,
  through :func:`make_replayer` and :func:`replay`, whose default stays ``sandbox=True``).
- **Isolation between runs** (fresh module globals per replayed history) matters only to code that
  keeps mutable module-level state; ``workflows/`` keeps none (module globals are constant stage
  definitions), and ``schemas`` is passed through the sandbox anyway.

What is given up, then: an audit replay of code that calls a forbidden API on a path a history
exercises reports that history clean when its commands match, where the sandbox would report the failed
workflow task. Use ``approvals audit replay --sandbox`` to replay exactly as the worker runs (e.g. to
audit a workflow code change before it ships).
"""


async def replay(
    histories: Iterable[HistorySource] | AsyncIterable[HistorySource],
    *,
    workflows: Sequence[type] | None = None,
    sandbox: bool = True,
) -> AsyncIterator[ReplayVerdict]:
    """Replays each history through the workflow code (no server needed), yielding one verdict each.

    Each workflow run is a replay of its own: a bundle of a case that continued as new yields one verdict
    per run (a continued run's history starts with the run it continued and the state it carried in).
    Histories are read lazily, one at a time, so thousands of files stream through in constant memory.
    An unreadable file is a failed verdict, not an exception. One replayer (one core worker) replays them
    all; ``sandbox=False``: see :data:`SANDBOX_FOR_AUDIT`.
    """
    replayer = make_replayer(workflows, sandbox=sandbox)
    sources: deque[tuple[str, int]] = deque()  # the replayer works through histories one at a time, in order
    broken: list[ReplayVerdict] = []

    async def items() -> AsyncIterator[HistorySource]:
        if isinstance(histories, AsyncIterable):
            async for item in histories:
                yield item
        else:
            for item in histories:
                yield item

    async def loaded() -> AsyncIterator[WorkflowHistory]:
        async for item in items():
            try:
                loaded_runs = _load_histories(item)
                for _, history in loaded_runs:
                    history.run_id  # noqa: B018 - raises when the history has no start event
            except Exception as error:  # noqa: BLE001 - reported as a verdict
                broken.append(
                    ReplayVerdict(
                        source=str(item),
                        workflow_id="",
                        run_id=None,
                        ok=False,
                        error_type=type(error).__name__,
                        message=str(error),
                    )
                )
                continue
            for source, history in loaded_runs:
                sources.append((source, len(history.events)))
                yield history

    async with replayer.workflow_replay_iterator(loaded()) as results:
        async for result in results:
            while broken:
                yield broken.pop(0)
            history = result.history
            source, count = sources.popleft() if sources else (history.workflow_id, len(history.events))
            failure = result.replay_failure
            yield ReplayVerdict(
                source=source,
                workflow_id=history.workflow_id,
                run_id=history.run_id,
                ok=failure is None,
                error_type=type(failure).__name__ if failure else None,
                message=_short(str(failure)) if failure else None,
                event_id=_diverged_at(str(failure), history) if failure else None,
                history_events=count,
            )
    for verdict in broken:
        yield verdict


async def replay_all(
    histories: Iterable[HistorySource] | AsyncIterable[HistorySource],
    *,
    workflows: Sequence[type] | None = None,
    sandbox: bool = True,
) -> list[ReplayVerdict]:
    return [verdict async for verdict in replay(histories, workflows=workflows, sandbox=sandbox)]


def _replay_chunk(paths: list[str], sandbox: bool = True) -> list[dict[str, Any]]:
    """Runs in a worker process: replays a chunk of files, returns JSON-ready verdicts."""
    import asyncio

    async def run() -> list[dict[str, Any]]:
        return [v.model_dump(mode="json") for v in await replay_all(paths, sandbox=sandbox)]

    return asyncio.run(run())


def replay_jobs(files: int, jobs: int | None = None) -> int:
    """Processes worth starting for ``files`` history files: ``jobs`` if given, else one per CPU, but one
    per :data:`FILES_PER_PROCESS` files at most (starting a process and importing the engine costs about
    as much as replaying that many histories), and never more than there are files."""
    if jobs is not None and jobs > 0:
        return max(1, min(jobs, files))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, files // FILES_PER_PROCESS))


FILES_PER_PROCESS = 40


def replay_parallel(paths: Sequence[Path | str], *, jobs: int, sandbox: bool = True) -> Iterable[ReplayVerdict]:
    """Replays files in ``jobs`` processes (replay is CPU-bound Python; one process uses one core).

    Each process keeps one replayer for every chunk it gets and reads its files itself (the parent sends
    paths, not histories); chunks are small enough that the processes finish together.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    chunk = max(1, min(200, len(paths) // (jobs * 4) or 1))
    chunks = [[str(p) for p in paths[i : i + chunk]] for i in range(0, len(paths), chunk)]
    # spawn, not fork: the parent may already run Temporal's core runtime threads, which fork does not copy.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_replay_chunk, c, sandbox) for c in chunks]
        for future in as_completed(futures):
            for item in future.result():
                yield ReplayVerdict.model_validate(item)


# ---------------------------------------------------------------------------------------------- timeline


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


def _parse_time(value: Any) -> datetime | None:
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
            due = _parse_time(p.get("due_at"))
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
            due = _parse_time(p.get("due_at"))
            return (
                f"{who} extended the statutory period by {p.get('working_days')} working days"
                + (f" to {local_due(due)}" if due else ""),
                comment,
            )
        case "clock.started":
            due = _parse_time(p.get("due_at"))
            return (
                f"statutory period started: {p.get('working_days')} working days"
                + (f", due {local_due(due)}" if due else ""),
                "",
            )
        case "clock.reminder":
            due = _parse_time(p.get("due_at"))
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
            first = _parse_time(p.get("first_review_at"))
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
            until = _parse_time(p.get("until"))
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
            due = _parse_time(p.get("due_at"))
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
                if (moved := _parse_time(value)) is not None:
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


# ---------------------------------------------------------------------------------------------- state at


class TaskState(BaseModel):
    task_id: str
    stage_id: str
    round: int = 1
    status: str
    assignee_id: str | None = None
    candidate_roles: list[str] = Field(default_factory=list)
    claimed_by: str | None = None
    delegate_id: str | None = None
    waiting_for: str | None = None
    overdue: bool = False
    decision: str | None = None
    decided_by: str | None = None
    comment: str = ""
    version: int = 1


class StageResultState(BaseModel):
    stage_id: str
    outcome: str
    round: int
    conditions: list[str] = Field(default_factory=list)
    tally: dict[str, int] = Field(default_factory=dict)
    decided_at: datetime


class CaseState(BaseModel):
    """A case as it stood right after one event, rebuilt by folding the events up to it."""

    case_id: str | None = None
    process: str | None = None
    business_key: str | None = None
    title: str | None = None
    as_of_seq: int = 0
    as_of: datetime | None = None
    status: str = "not_started"
    outcome: str | None = None
    current_stages: list[str] = Field(default_factory=list)
    tasks: list[TaskState] = Field(default_factory=list)
    stage_results: list[StageResultState] = Field(default_factory=list)
    clocks: dict[str, datetime] = Field(default_factory=dict, description="Running deadlines: key -> due time.")
    clock_state: Literal["running", "stopped", "none"] = "none"
    pending_supplement: list[str] = Field(default_factory=list)
    extended: bool = False
    observers: list[str] = Field(default_factory=list)
    run: int = Field(1, description="Workflow run of the case (continue-as-new starts the next).")
    supervision_round: int = Field(0, description="Periodic reviews started while under supervision.")
    next_review_at: datetime | None = Field(None, description="When the next periodic review is due.")
    child_cases: dict[str, str | None] = Field(
        default_factory=dict, description="Child case id -> its final status (None while it runs)."
    )
    last_hash: str = GENESIS_HASH

    @property
    def open_tasks(self) -> list[TaskState]:
        return [task for task in self.tasks if task.status in ("open", "claimed")]


_OUTCOME_STATUS = {
    "approved": "approved",
    "approved_with_conditions": "approved_with_conditions",
    "rejected": "rejected",
}


def state_at(events: Sequence[DomainEvent], seq: int | None = None, at: datetime | None = None) -> CaseState:
    """The case's state as of event ``seq`` (inclusive) or instant ``at`` (inclusive); the latest by default.

    A pure fold over the events in sequence order, independent of the workflow code, so it also answers
    "what did the inbox show on that day" for cases recorded by older code.
    """
    if at is not None and at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    state = CaseState()
    tasks: dict[str, TaskState] = {}
    results: dict[str, StageResultState] = {}
    for event in sorted(events, key=lambda e: e.seq):
        if (seq is not None and event.seq > seq) or (at is not None and event.at > at):
            break
        _apply(state, tasks, results, event)
        state.as_of_seq, state.as_of, state.last_hash = event.seq, event.at, event.hash
    state.tasks = list(tasks.values())
    state.stage_results = list(results.values())
    if not state.clocks:
        state.clock_state = "none"
    else:
        state.clock_state = "stopped" if state.status == "awaiting_supplement" else "running"
    return state


def _apply(
    state: CaseState, tasks: dict[str, TaskState], results: dict[str, StageResultState], event: DomainEvent
) -> None:
    p = event.payload
    task = tasks.get(event.task_id or "")
    if task is not None and "version" in p:
        task.version = int(p["version"])
    match event.type:
        case "case.started":
            state.case_id = event.case_id
            state.process = (p.get("definition") or {}).get("process")
            state.business_key, state.title = p.get("business_key"), p.get("title")
            state.status = "in_review"
        case "stage.started":
            if event.stage_id and event.stage_id not in state.current_stages:
                state.current_stages.append(event.stage_id)
            if p.get("due_at"):
                state.clocks[f"stage:{event.stage_id}:{p.get('round')}"] = _parse_time(p["due_at"])  # type: ignore[assignment]
        case "task.created":
            tasks[event.task_id or ""] = TaskState(
                task_id=event.task_id or "",
                stage_id=event.stage_id or "",
                round=int(p.get("round") or 1),
                status="waiting" if p.get("waiting_for") else "open",
                assignee_id=p.get("assignee_id"),
                candidate_roles=list(p.get("candidate_roles") or []),
                waiting_for=p.get("waiting_for"),
            )
        case "task.claimed" if task:
            task.claimed_by, task.status = event.actor.id, "claimed"
        case "task.unclaimed" if task:
            task.claimed_by = task.delegate_id = None
            task.status = "open"
        case "task.decided" if task:
            task.status, task.decision, task.decided_by = "completed", p.get("decision"), event.actor.id
            task.comment = p.get("comment") or ""
        case "task.activated" if task:
            task.status, task.waiting_for = "open", None
        case "task.transferred" if task:
            task.assignee_id, task.candidate_roles = p.get("to"), []
            task.claimed_by = task.delegate_id = None
            task.status = "open"
        case "task.delegated" if task:
            if task.assignee_id is None:
                task.claimed_by, task.status = p.get("owner"), "claimed"
            task.delegate_id = p.get("delegate")
        case "task.signer_added" if task:
            added = p.get("added_task_id")
            if p.get("position") == "before":
                task.waiting_for, task.status = added, "waiting"
            else:
                for other in tasks.values():
                    if other.waiting_for == task.task_id and other.task_id != added:
                        other.waiting_for = added
        case "task.cancelled" if task:
            task.status = "cancelled"
            task.version += 1  # the workflow touches a cancelled task; the event carries no version
        case "task.expired" if task:
            task.status = "expired"
        case "stage.completed":
            if event.stage_id in state.current_stages:
                state.current_stages.remove(event.stage_id)
            state.clocks.pop(f"stage:{event.stage_id}:{p.get('round')}", None)
            results[event.stage_id or ""] = StageResultState(
                stage_id=event.stage_id or "",
                outcome=p.get("outcome", ""),
                round=int(p.get("round") or 1),
                conditions=list(p.get("conditions") or []),
                tally=dict(p.get("tally") or {}),
                decided_at=event.at,
            )
        case "case.decided":
            state.outcome = p.get("outcome")
            state.status = _OUTCOME_STATUS.get(state.outcome or "", state.status)
            state.clocks.clear()
            state.current_stages.clear()
        case "case.rejected" | "case.withdrawn" | "case.cancelled":
            state.status = state.outcome = event.type.split(".", 1)[1]
            state.clocks.clear()
            state.current_stages.clear()
            state.next_review_at = None
        case "case.supplement_requested":
            state.status = "awaiting_supplement"
            state.pending_supplement = [item.get("item", "") for item in p.get("items") or []]
        case "case.supplemented":
            state.status = "in_review"
            state.pending_supplement = []
            for key, value in (p.get("due_at") or {}).items():
                state.clocks[key] = _parse_time(value)  # type: ignore[assignment]
        case "case.extended":
            state.extended = True
            if p.get("due_at"):
                state.clocks["case"] = _parse_time(p["due_at"])  # type: ignore[assignment]
        case "clock.started":
            if p.get("due_at"):
                state.clocks[p.get("clock") or "case"] = _parse_time(p["due_at"])  # type: ignore[assignment]
        case "clock.escalated":
            for task_id in p.get("overdue_tasks") or []:
                if task_id in tasks:
                    tasks[task_id].overdue = True
                    tasks[task_id].version += 1
        case "case.cc":
            state.observers += [o for o in p.get("observers") or [] if o not in state.observers]
        case "stage.abandoned":
            if event.stage_id in state.current_stages:
                state.current_stages.remove(event.stage_id)
            state.clocks.pop(f"stage:{event.stage_id}:{p.get('round')}", None)
        case "supervision.started":
            state.status = "under_supervision"
            state.next_review_at = _parse_time(p.get("first_review_at"))
        case "timer.started" if state.status == "under_supervision":
            state.next_review_at = _parse_time(p.get("until")) or state.next_review_at
        case "timer.fired" if state.status == "under_supervision":
            state.supervision_round += 1
        case "supervision.ended":
            state.status = _OUTCOME_STATUS.get(state.outcome or "", state.status)
            state.supervision_round = int(p.get("rounds") or state.supervision_round)
            state.next_review_at = None
        case "case.child_started" if p.get("child_case_id"):
            state.child_cases[str(p["child_case_id"])] = None
        case "case.child_completed" if p.get("child_case_id"):
            state.child_cases[str(p["child_case_id"])] = p.get("status")
        case "case.continued":
            state.run = int(p.get("run") or state.run + 1)
            state.supervision_round = int(p.get("supervision_round") or state.supervision_round)
        case _:
            pass


__all__ = [
    "Bundle",
    "CaseState",
    "case_state",
    "case_timeline",
    "Finding",
    "FindingKind",
    "ReplayVerdict",
    "Severity",
    "TimelineRow",
    "VerifyReport",
    "check_decisions",
    "cross_check",
    "decision_requests",
    "check_runs",
    "export_case",
    "fetch_case",
    "fetch_runs",
    "history_events",
    "history_from_json",
    "history_paths",
    "load_bundle",
    "recorded_batches",
    "replay",
    "replay_all",
    "replay_jobs",
    "replay_parallel",
    "SANDBOX_FOR_AUDIT",
    "runs_of",
    "state_at",
    "timeline",
    "verify",
    "verify_bundle",
    "verify_case",
    "verify_chain",
    "write_bundle",
]
