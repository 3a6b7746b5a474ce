"""Closed workflow runs' histories as the engine keeps them after Temporal's retention deletes them: the row
that archives a run (``approvals.storage.archive``, append-only), and reading it back, digest-checked.

:mod:`~approvals.audit.archiver` writes them; :mod:`~approvals.audit.live` falls back to them for every run
Temporal no longer has.
"""

from __future__ import annotations

import hashlib
from datetime import UTC

import asyncpg
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import WorkflowHistory

from approvals.audit.history import continued_from, history_from_json
from approvals.storage import archive as storage
from approvals.storage.archive import ArchivedHistory


class ArchivedHistoryCorrupted(ValueError):
    """An archived history's bytes no longer have the SHA-256 stored with them."""


def archived_history(row: ArchivedHistory) -> WorkflowHistory:
    """The run's history, once its bytes are checked against the digest stored with them."""
    digest = hashlib.sha256(row.history).hexdigest()
    if digest != row.sha256:
        raise ArchivedHistoryCorrupted(
            f"the archived history of run {row.run_id} of {row.workflow_id} has SHA-256 {digest}, not the "
            f"{row.sha256} stored when it was archived: it was altered or damaged"
        )
    return history_from_json(row.history, workflow_id=row.workflow_id)


async def archived_runs(pool: asyncpg.Pool, workflow_id: str) -> dict[str, WorkflowHistory]:
    """Every archived run of a workflow by run id, digest-checked, in the order they closed."""
    return {row.run_id: archived_history(row) for row in await storage.archived_histories(pool, workflow_id)}


_CLOSE_STATUS = {
    HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued_as_new",
}


def to_archive(history: WorkflowHistory, run_id: str) -> ArchivedHistory | None:
    """The row that archives run ``run_id``: how and when it closed, from its history itself; None while the run
    is open (its history may still grow)."""
    if not history.events or (status := _CLOSE_STATUS.get(history.events[-1].event_type)) is None:
        return None
    data = history.to_json().encode()
    started = history.events[0].workflow_execution_started_event_attributes
    return ArchivedHistory(
        workflow_id=history.workflow_id,
        run_id=run_id,
        task_queue=started.task_queue.name,
        close_status=status,
        closed_at=history.events[-1].event_time.ToDatetime(tzinfo=UTC),
        continued_from=continued_from(history),
        history_events=len(history.events),
        history=data,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def quoted(value: str) -> str:
    """A string literal of Temporal's visibility query language (task queues and times in archive queries)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
