"""Re-recording what a PostgreSQL restore lost, from the histories (Temporal's, or the engine's archive).

After PostgreSQL is restored from an older backup, the events recorded since the backup are gone from
``audit_events``, and with them the projections they led to (cases, tasks, the inbox) and the notifications
they queued, while the histories still hold every ``record_events`` input: the sealed events and the
projections as the workflow made them. Rebuilding hands each completed input, in order, to the recording
code the activity runs (:func:`approvals.storage.records.record_batch`), so nothing is written that the
workflow did not record: events already stored with the same hash are skipped, projections only move
forward, notifications already queued stay as they are (a lost one is queued again, and its receiver
deduplicates it by its idempotency key, as for any redelivery). Running it again changes nothing.

An event stored under a seq with another hash is not overwritten: the case is reported and left alone
(``approvals audit verify`` names the difference).

Which cases to rebuild: those that may have recorded anything since the backup, i.e. every run of the task
queue that Temporal's visibility lists as running or closed since then (:func:`changed_since`). The archive
is restored with the rest of the database; the worker's archiver copies again, on its next pass, the runs
that closed since the restored archive's last one, while Temporal still has them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client

from approvals.audit.archive import quoted
from approvals.audit.history import recorded_batches
from approvals.audit.live import fetch_runs
from approvals.storage.queries import case_events
from approvals.storage.records import AuditConflictError, record_batch


class RebuildReport(BaseModel):
    """What rebuilding one case did."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    history_source: str = Field(description="`temporal`, `archive`, or `archive and temporal`.")
    batches: int = Field(description="Completed `record_events` inputs in the history, each recorded again.")
    restored: list[int] = Field(description="Seqs of the events that were missing from the log and are back.")
    last_seq: int | None = Field(description="The log's last seq after the rebuild.")
    conflict: str | None = Field(None, description="Why the case was left alone: the log holds other events.")


async def changed_since(client: Client, task_queue: str, since: datetime) -> list[str]:
    """The cases of ``task_queue`` that are running or whose run closed at or after ``since`` (visibility)."""
    query = (
        f"TaskQueue = {quoted(task_queue)} AND "
        f"(ExecutionStatus = 'Running' OR CloseTime >= {quoted(since.astimezone(UTC).isoformat())})"
    )
    return list(dict.fromkeys([execution.id async for execution in client.list_workflows(query)]))


async def rebuild_case(client: Client, pool: Any, case_id: str) -> RebuildReport:
    """Re-records the events and projections of ``case_id`` that its histories hold and the database lacks."""
    runs = await fetch_runs(client, case_id, pool)
    completed = [item.batch for item in recorded_batches(runs) if item.completed]
    before = {event.seq for event in await case_events(pool, case_id)}
    conflict = None
    for batch in completed:
        try:
            await record_batch(pool, batch)
        except AuditConflictError as error:
            conflict = str(error)
            break
    after = await case_events(pool, case_id)
    return RebuildReport(
        case_id=case_id,
        history_source=runs.source,
        batches=len(completed),
        restored=sorted({event.seq for event in after} - before),
        last_seq=after[-1].seq if after else None,
        conflict=conflict,
    )
