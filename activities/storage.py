"""The recording activity: a workflow's new events and the projections they lead to, stored atomically
and idempotently (``approvals.storage.records``), so Temporal may retry it freely.

A run an operator reset (``temporal workflow reset``) seals again events the old run recorded: the activity
tells it where the log ends (``AUDIT_FORK``, details: a :class:`~schemas.records.ResetFork`) instead of
refusing it, and the run records a ``case.reset`` there (``workflows.kernel.recorder``).

Its latency and failures are metrics of the worker (``activity.metric_meter()``: served with the SDK's own on
WORKER_METRICS_ADDRESS), recorded here and never in workflow code, which must stay deterministic."""

from __future__ import annotations

import time

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.resets import last_reset
from approvals.storage.records import AuditConflictError, fork_of, record_batch
from schemas.records import AUDIT_FORK, RecordBatch, ResetFork

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
            ApplicationError: non-retryable, type ``AUDIT_FORK`` (details: a ``ResetFork``) when this run was
                reset and seals again what the old run recorded; type ``AUDIT_CONFLICT`` when a stored event
                has the same sequence number but a different hash otherwise; type ``INVALID_BATCH`` when the
                batch mixes cases.
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
                raise await self._refusal(batch, error) from None
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

    async def _refusal(self, batch: RecordBatch, conflict: AuditConflictError) -> ApplicationError:
        """``AUDIT_FORK`` when an operator's reset made this run seal again what the log holds, else
        ``AUDIT_CONFLICT``: both non-retryable."""
        fork = await self._reset_fork(batch)
        if fork is None:
            return _conflict(conflict)
        log.warning("audit.reset_fork", case_id=batch.case_id, **fork.model_dump())
        return ApplicationError(
            f"case {batch.case_id} was reset: the log holds seq {fork.superseded_from}..{fork.stored_seq} "
            f"of run {fork.old_run_id}; run {fork.new_run_id} continues after seq {fork.stored_seq}",
            fork.model_dump(mode="json"),
            type=AUDIT_FORK,
            non_retryable=True,
        )

    async def _reset_fork(self, batch: RecordBatch) -> ResetFork | None:
        """Where this run left the stored chain, when an operator's reset made it leave; None otherwise.

        A reset is told by the run's own history (the ``WorkflowTaskFailed`` event the reset writes names the
        old run and the reason), not by the log: a run that was not reset, or that already recorded its
        ``case.reset``, and still conflicts with the log is a fault to stop at, not to record past.
        """
        stored = await fork_of(self._pool, batch)
        if stored is None:
            return None
        info = activity.info()
        if info.workflow_run_id in stored.reset_runs:
            return None
        try:
            history = await (
                activity.client().get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id).fetch_history()
            )
        except RPCError as error:  # any other error is retried: the run waits, it is not failed
            if error.status is RPCStatusCode.NOT_FOUND:
                return None  # no history of this run to show a reset (a batch recorded outside a workflow)
            raise
        reset = last_reset(history)
        if reset is None or reset.workflow_task_failed_event_attributes.new_run_id != info.workflow_run_id:
            return None
        failed = reset.workflow_task_failed_event_attributes
        return ResetFork(
            stored_seq=stored.stored_seq,
            stored_hash=stored.stored_hash,
            superseded_from=stored.superseded_from,
            old_run_id=failed.base_run_id,
            new_run_id=info.workflow_run_id,
            reason=failed.failure.message,
            reset_event_id=reset.event_id,
        )
