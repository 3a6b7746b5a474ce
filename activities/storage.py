"""The recording activity: a workflow's new events and the projections they lead to, stored atomically
and idempotently (``approvals.storage.records``), so Temporal may retry it freely.

Its latency and failures are metrics of the worker (``activity.metric_meter()``: served with the SDK's own on
WORKER_METRICS_ADDRESS), recorded here and never in workflow code, which must stay deterministic."""

from __future__ import annotations

import time

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from approvals.storage.records import AuditConflictError, record_batch
from schemas.records import RecordBatch

log = structlog.get_logger(__name__)

AUDIT_CONFLICT = "AUDIT_CONFLICT"
INVALID_BATCH = "INVALID_BATCH"


def _check_batch(batch: RecordBatch) -> None:
    """A batch mixing cases is a bug in the workflow; retrying would not change it."""
    mentioned = (
        {event.case_id for event in batch.events}
        | {task.case_id for task in batch.tasks}
        | {notification.case_id for notification in batch.notifications}
    )
    foreign = sorted((mentioned | {batch.case.case_id}) - {batch.case_id})
    if foreign:
        raise ApplicationError(
            f"record batch of case {batch.case_id} carries events or projections of other cases: {foreign}",
            type=INVALID_BATCH,
            non_retryable=True,
        )


def _conflict(conflict: AuditConflictError) -> ApplicationError:
    log.error(
        "audit.conflict",
        case_id=conflict.case_id,
        seqs=conflict.seqs,
        stored_hash=conflict.stored_hash,
        incoming_hash=conflict.incoming_hash,
    )
    return ApplicationError(str(conflict), type=AUDIT_CONFLICT, non_retryable=True)


class StorageActivities:
    """Activities that write to PostgreSQL; register the bound methods of one instance per worker."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="record_events")
    async def record_events(self, batch: RecordBatch) -> int:
        """Stores new events, upserts the case and task projections and queues the batch's notifications,
        in one transaction.

        Returns:
            How many events were new (0 when a retry finds everything already stored).

        Raises:
            ApplicationError: non-retryable, type ``AUDIT_CONFLICT``, when a stored event has the same
                sequence number but a different hash; type ``INVALID_BATCH`` when the batch mixes cases.
        """
        _check_batch(batch)
        meter = activity.metric_meter().with_additional_attributes({"process": batch.case.process})
        started = time.perf_counter()
        try:
            new_events = await record_batch(self._pool, batch)
        except Exception as error:
            meter.create_counter(
                "approvals_recording_errors", "Failed attempts of record_events (retried unless non-retryable)."
            ).add(1, {"error": type(error).__name__})
            if isinstance(error, AuditConflictError):
                raise _conflict(error) from None
            raise
        meter.create_histogram_float(
            "approvals_recording_seconds", "Time to store one batch: events, projections and outbox.", "s"
        ).record(time.perf_counter() - started)
        log.info(
            "audit.recorded",
            case_id=batch.case_id,
            new_events=new_events,
            skipped_events=len(batch.events) - new_events,
            last_seq=batch.case.last_seq,
        )
        return new_events
