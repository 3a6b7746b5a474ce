"""Temporal histories decoded: the runs of a case and the events each run handed to ``record_events``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from activities.resets import last_reset
from approvals.audit.findings import Finding, FindingKind, Severity, finding
from schemas.converter import data_converter
from schemas.events import DomainEvent
from schemas.records import AUDIT_FORK, RecordBatch

RECORD_ACTIVITY = "record_events"

Histories = WorkflowHistory | Sequence[WorkflowHistory]
"""One run's history, or every run of a case in order (a case that continued as new has several)."""


def runs_of(history: Histories) -> list[WorkflowHistory]:
    """The runs of ``history`` in order: a single history is a case with one run."""
    return [history] if isinstance(history, WorkflowHistory) else list(history)


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
    if last.event_type != HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
        return None
    return last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id or None


def run_id(history: WorkflowHistory) -> str | None:
    """The run's id. A run an operator reset starts with its old run's start event, which names the old run: the
    reset in its history names it (:func:`~activities.resets.last_reset`)."""
    reset = last_reset(history)
    if reset is not None:
        return reset.workflow_task_failed_event_attributes.new_run_id or None
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
        [case_input] = data_converter.payload_converter.from_payloads(payloads)
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
                finding(
                    None,
                    FindingKind.run_missing,
                    f"run 1 of the record continues run {previous}, which is not in the record: the events before "
                    "it are checked against the hash it carried in, not against a history",
                    Severity.note,
                )
            )
        elif index > 1 and previous != run_id(runs[index - 2]):
            findings.append(
                finding(
                    None,
                    FindingKind.run_missing,
                    f"run {index} ({run_id(run)}) continues run {previous}, not run {index - 1} "
                    f"({run_id(runs[index - 2])}): a run is missing or the runs are out of order",
                )
            )
        if index == len(runs) and (following := continued_as(run)):
            findings.append(
                finding(
                    None,
                    FindingKind.run_missing,
                    f"run {index} ({run_id(run)}) continued as new into run {following}, which is not in the record",
                )
            )
    return findings


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
    if event.event_type != HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return None
    attributes = event.activity_task_scheduled_event_attributes
    if attributes.activity_type.name != RECORD_ACTIVITY:
        return None
    [batch] = data_converter.payload_converter.from_payloads(list(attributes.input.payloads), [RecordBatch])
    return batch


class RecordedBatch(BaseModel):
    """One ``record_events`` activity task of the history, decoded."""

    model_config = ConfigDict(frozen=True)

    scheduled_event_id: int
    completed: bool
    batch: RecordBatch
    run: int = Field(1, description="Which run of the case (1-based) scheduled it; event ids restart per run.")


def _forked(history: WorkflowHistory) -> set[int]:
    """The ``record_events`` tasks a reset run's log refused (``AUDIT_FORK``), by scheduled event id."""
    return {
        event.activity_task_failed_event_attributes.scheduled_event_id
        for event in history.events
        if event.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
        and event.activity_task_failed_event_attributes.failure.application_failure_info.type == AUDIT_FORK
    }


def recorded_batches(history: Histories) -> list[RecordedBatch]:
    """The ``record_events`` batches of a history (every run), decoded with the pydantic converter, in order.

    A batch a reset run sealed before it learnt where the log ends (``AUDIT_FORK``) was never recorded: the run
    sealed its events again after its ``case.reset``, in a later batch. It is left out.
    """
    batches: list[RecordedBatch] = []
    for run, one in enumerate(runs_of(history), start=1):
        completed = {
            event.activity_task_completed_event_attributes.scheduled_event_id
            for event in one.events
            if event.event_type == HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        }
        forked = _forked(one)
        for event in one.events:
            batch = recorded_batch_of(event)
            if batch is None or event.event_id in forked:
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


_CLOSED = {
    HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}


def is_running(history: Histories) -> bool:
    """Whether the case's latest run is still open (a run that continued as new is closed)."""
    runs = runs_of(history)
    return bool(runs) and bool(runs[-1].events) and runs[-1].events[-1].event_type not in _CLOSED
