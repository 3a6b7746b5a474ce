"""The recorder: seals domain events into the hash chain, records them in batches and sends notifications.

An event is sealed (sequence number, previous hash, hash) the moment it is emitted; ``record`` then writes
every unrecorded event, with the projections they lead to and the notifications they cause (the outbox), in
one ``record_events`` activity, one batch at a time, in order.

A run an operator reset (``temporal workflow reset``) seals again, with new times, events its old run already
recorded. The activity answers ``AUDIT_FORK`` with where the log ends; since "reset-continues-record" the run
moves its chain there, records a ``case.reset`` (the old run's events from the reset point on stay in the log,
superseded) and seals its unrecorded events again after it, with every task's row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from activities.storage import StorageActivities
    from schemas.case import CaseState
    from schemas.events import RESET_LEGAL_BASIS, DomainEvent, EventType, seal_event
    from schemas.notifications import Channel, Notification
    from schemas.principal import SYSTEM, Principal
    from schemas.records import AUDIT_FORK, CaseProjection, RecordBatch, ResetFork, TaskProjection

RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
"""Unlimited attempts: while PostgreSQL is down the case waits; no event is ever dropped."""

NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))

RESET_PATCH = "reset-continues-record"

Projections = Callable[[set[str] | None], tuple[CaseProjection, list[TaskProjection]]]
"""The case row and the rows of the given (changed) tasks, as they stand now; None: of every task."""


def reset_fork(error: BaseException) -> ResetFork | None:
    """The fork the recording activity reported (``AUDIT_FORK``), if that is why it failed."""
    cause = error.cause if isinstance(error, ActivityError) else None
    if isinstance(cause, ApplicationError) and cause.type == AUDIT_FORK and cause.details:
        return ResetFork.model_validate(cause.details[0])
    return None


class Recorder:
    def __init__(self, case_id: str, case_title: str, state: CaseState, projections: Projections) -> None:
        self._case_id = case_id
        self._case_title = case_title
        self._state = state
        self._projections = projections
        self._unrecorded: list[DomainEvent] = []
        self._unsent: list[Notification] = []
        self._changed_tasks: set[str] | None = set()
        """None: every task (the first batch after a reset)."""
        self._lock = asyncio.Lock()
        self._notify_activities: list[asyncio.Future[Any]] = []
        """notify activities of a case that started before "notifications-in-the-record"."""
        self._observe: Callable[[DomainEvent], None] = lambda event: None
        self._after_record: Callable[[], Awaitable[None]] | None = None

    def watch(self, observe: Callable[[DomainEvent], None], after_record: Callable[[], Awaitable[None]]) -> None:
        """``observe`` sees every event emitted; ``after_record`` runs after each ``record`` (the documents)."""
        self._observe, self._after_record = observe, after_record

    def emit(
        self,
        type_: EventType,
        *,
        actor: Principal,
        legal_basis: str,
        stage_id: str | None = None,
        task_id: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> DomainEvent:
        """Seals the next event of the chain; it is written by the next ``record``."""
        event = self._seal(
            type=type_,
            actor=actor,
            at=workflow.now(),
            legal_basis=legal_basis,
            stage_id=stage_id,
            task_id=task_id,
            payload=payload or {},
        )
        workflow.logger.info(
            "%s seq=%d stage=%s task=%s actor=%s basis=%s", type_, event.seq, stage_id, task_id, actor.id, legal_basis
        )
        self._observe(event)
        return event

    def _seal(self, **content: Any) -> DomainEvent:
        state = self._state
        event = seal_event(case_id=self._case_id, seq=state.last_seq + 1, prev_hash=state.last_hash, **content)
        state.last_seq, state.last_hash = event.seq, event.hash
        self._unrecorded.append(event)
        return event

    def task_changed(self, task_id: str) -> None:
        """The task's row is written with the next batch."""
        if self._changed_tasks is not None:
            self._changed_tasks.add(task_id)

    async def record(self) -> None:
        """Writes every unrecorded event with the projections it leads to, one batch at a time, in order."""
        async with self._lock:
            resealed = await self._record_batch()
            while resealed:  # the log was ahead (a reset): the events now follow a case.reset, and are recorded
                resealed = await self._record_batch()
        if self._after_record is not None:
            await self._after_record()

    async def _record_batch(self) -> bool:
        """Records the unrecorded events; True when the log refused them because a reset left it ahead, and they
        were sealed again after a ``case.reset`` (:meth:`_continue_after`), to record."""
        if not self._unrecorded and not self._unsent:
            return False
        events, self._unrecorded = self._unrecorded, []
        notifications, self._unsent = self._unsent, []
        task_ids, self._changed_tasks = self._changed_tasks, set()
        case, tasks = self._projections(task_ids)
        batch = RecordBatch(case_id=self._case_id, events=events, case=case, tasks=tasks, notifications=notifications)
        try:
            # A regular activity, not a local one: its input is in the history before it writes, so a
            # workflow task lost after the write (a worker killed, a server restart) cannot seal the same
            # seq again with another time and hash; a local activity would write first and be retried
            # with a new `workflow.now()`, and the log refuses a second version of an event.
            await workflow.execute_activity_method(
                StorageActivities.record_events,
                batch,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RECORD_RETRY,
            )
        except BaseException as error:  # e.g. AUDIT_CONFLICT or cancellation: nothing sealed may be forgotten
            self._unrecorded = events + self._unrecorded
            self._unsent = notifications + self._unsent
            self._changed_tasks = (
                None if task_ids is None or self._changed_tasks is None else (self._changed_tasks | task_ids)
            )
            fork = reset_fork(error)
            if fork is None or not workflow.patched(RESET_PATCH):
                raise
            self._continue_after(fork)
            return True
        return False

    def _continue_after(self, fork: ResetFork) -> None:
        """Moves the chain to the log's last event, records the reset there and seals the unrecorded events again
        after it (same content and times, new seqs), with the row of every task the new run has and their
        notifications under keys of the new run."""
        resealed, self._unrecorded = self._unrecorded, []
        self._state.last_seq, self._state.last_hash = fork.stored_seq, fork.stored_hash
        self._seal(
            type=EventType.case_reset,
            actor=SYSTEM,
            at=resealed[0].at,  # when the new run first sealed: the log refuses only batches with events
            legal_basis=RESET_LEGAL_BASIS,
            payload={
                "superseded_from": fork.superseded_from,
                "superseded_to": fork.stored_seq,
                "old_run_id": fork.old_run_id,
                "new_run_id": fork.new_run_id,
                "reason": fork.reason,
                "reset_event_id": fork.reset_event_id,
            },
        )
        renumbered: dict[int, int] = {}
        for event in resealed:
            content = event.model_dump(exclude={"case_id", "seq", "prev_hash", "hash"})
            concerns = content["payload"].get("concerns")  # the decision an Art. 38 notice concerns, by seq
            if isinstance(concerns, dict) and concerns.get("seq") in renumbered:
                content["payload"]["concerns"] = {**concerns, "seq": renumbered[concerns["seq"]]}
            renumbered[event.seq] = self._seal(**content).seq
        self._changed_tasks = None
        # Their keys name seqs the old run keyed its own notifications by: the outbox would take them for those.
        self._unsent = [
            notification.model_copy(update={"idempotency_key": f"{notification.idempotency_key}/{fork.new_run_id}"})
            for notification in self._unsent
        ]

    async def settle(self) -> None:
        """Before the run ends: every update answered, every event recorded, every notification handed over."""
        await self.record()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self.record()
        for notification in self._notify_activities:
            await notification

    def send(self, notification: Notification) -> None:
        """Queues a notification; a failing channel never blocks or fails the case.

        Since "notifications-in-the-record" it travels in the next record batch, written to the outbox in the
        same transaction as the events (the outbox dispatcher delivers it): no activity, no workflow task.
        """
        if workflow.patched("notifications-in-the-record"):
            self._unsent.append(notification)
            return
        self._notify_activities.append(
            workflow.start_activity_method(
                NotificationActivities.notify,
                notification,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=NOTIFY_RETRY,
            )
        )

    def notify(self, event: DomainEvent, recipient: str, kind: str, subject: str, data: dict[str, Any]) -> None:
        """A notification about ``event`` to one person (or ``role:<role>``), delivered to the log channel."""
        self.send(
            Notification(
                idempotency_key=f"{self._case_id}/{event.seq}/log/{recipient}",
                case_id=self._case_id,
                channel=Channel.log,
                kind=kind,
                recipient=recipient,
                subject=subject,
                data={"case_title": self._case_title, "event": event.type, **data},
            )
        )
