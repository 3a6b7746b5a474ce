"""The clocks' timer loop: reminders before a deadline, escalation at it (a vote closes at its deadline).

Since "clock-timer-follows-earliest-wake" the loop's timer is restarted only when the earliest wake time
changes, not whenever a clock is added or removed (each restart is a cancelled and a started timer in the
history): a stage's clock that falls due after the case's keeps the timer already running.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import TaskStatus
    from schemas.events import EventType
    from schemas.principal import SYSTEM
    from workflows.kernel.clocks import Alarm, Clock, Clocks
    from workflows.kernel.recorder import Recorder
    from workflows.kernel.routing import RoutingPolicy
    from workflows.kernel.stages import Stages

EARLIEST_WAKE_PATCH = "clock-timer-follows-earliest-wake"


class Deadlines:
    def __init__(self, clocks: Clocks, stages: Stages, recorder: Recorder) -> None:
        self._clocks = clocks
        self._stages = stages
        self._recorder = recorder
        self.finished = False

    async def watch(self) -> None:
        """One timer loop for every running clock, until the run is ``finished``."""
        clocks = self._clocks
        while not self.finished:
            if self._ring():
                await self._recorder.record()
            wake_at = clocks.next_wake()
            timeout = (wake_at - workflow.now()).total_seconds() if wake_at else None

            def woken(
                wake_at: datetime | None = wake_at,
                epoch: int = clocks.epoch,
                earliest: bool = workflow.patched(EARLIEST_WAKE_PATCH),
            ) -> bool:
                if self.finished:
                    return True
                return clocks.next_wake() != wake_at if earliest else clocks.epoch != epoch

            try:
                await workflow.wait_condition(
                    woken,
                    timeout=max(timeout, 0.001) if timeout is not None else None,
                )
            except TimeoutError:
                pass

    def _ring(self) -> bool:
        rang = False
        for clock, alarm in self._clocks.alarms(workflow.now()):
            rang = True
            if alarm is Alarm.reminder:
                self._remind(clock)
            elif clock.on_due is not None:
                clock.on_due()
            else:
                self._escalate(clock)
        return rang

    def _remind(self, clock: Clock) -> None:
        event = self._recorder.emit(
            EventType.clock_reminder,
            actor=SYSTEM,
            legal_basis=clock.legal_basis,
            stage_id=clock.stage_id,
            payload={"clock": clock.key, "due_at": clock.due_at.isoformat()},
        )
        for task in self._stages.clock_tasks(clock):
            self._stages.notify_holders(task, "task.reminder", event)

    def _escalate(self, clock: Clock) -> None:
        overdue = self._stages.clock_tasks(clock)
        for task in overdue:
            task.overdue = True
            task.touch()
            self._recorder.task_changed(task.id)
        event = self._recorder.emit(
            EventType.clock_escalated,
            actor=SYSTEM,
            legal_basis=clock.legal_basis,
            stage_id=clock.stage_id,
            payload={
                "clock": clock.key,
                "due_at": clock.due_at.isoformat(),
                "escalated_to_role": clock.escalate_to_role,
                "overdue_tasks": [task.id for task in overdue],
            },
        )
        if clock.escalate_to_role:
            self._recorder.notify(
                event,
                f"role:{clock.escalate_to_role}",
                "case.escalated",
                f"overdue: {clock.label}",
                {"clock": clock.key, "tasks": [task.id for task in overdue]},
            )
        run = self._stages.runs.get(clock.stage_id) if clock.stage_id else None
        if run and RoutingPolicy.of(run.stage).closes_at_deadline:
            # The stage closes at its deadline: members who did not act count as absent.
            for task in overdue:
                task.status = TaskStatus.expired
                self._recorder.emit(
                    EventType.task_expired,
                    actor=SYSTEM,
                    legal_basis=run.stage.legal_basis,
                    stage_id=run.stage.id,
                    task_id=task.id,
                    payload={"reason": "vote not cast by the deadline; counted as absent"},
                )
            self._stages.settle(run, actor=SYSTEM)
