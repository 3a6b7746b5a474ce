"""After the decision: recorded timers, periodic supervision reviews, adjustment child cases, and
continue-as-new of a case that runs for years (its ``CaseState`` passed whole, the hash chain unbroken)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from schemas.calendar import WorkingCalendar
    from schemas.case import CaseInput, CaseState, CaseStatus, CaseView
    from schemas.events import DomainEvent, EventType
    from schemas.principal import SYSTEM
    from schemas.process import Stage, Supervision
    from workflows import rules
    from workflows.kernel.recorder import Recorder
    from workflows.kernel.stages import Stages
    from workflows.kernel.state import StageRun
    from workflows.kernel.status import Status

OnAdjusted = Callable[[CaseView, DomainEvent], Awaitable[bool]]
"""Told when an adjustment case ends; False ends the supervision early."""

ENDED_EARLY = (CaseStatus.withdrawn, CaseStatus.cancelled)


class Supervisor:
    def __init__(
        self,
        case: CaseInput,
        case_id: str,
        state: CaseState,
        recorder: Recorder,
        status: Status,
        stages: Stages,
        calendar: Callable[[], WorkingCalendar | None],
        *,
        adjustment_workflow: Callable[[Any, CaseInput], Awaitable[CaseView]],
    ) -> None:
        self._case = case
        self._case_id = case_id
        self._state = state
        self._recorder = recorder
        self._status = status
        self._stages = stages
        self._calendar = calendar
        self._adjustment_workflow = adjustment_workflow

    def _started(self, legal_basis: str, payload: dict[str, Any]) -> None:
        self._recorder.emit(EventType.supervision_started, actor=SYSTEM, legal_basis=legal_basis, payload=payload)
        self._status.set(CaseStatus.under_supervision)

    async def supervise(self, supervision: Supervision, on_adjusted: OnAdjusted) -> None:
        """Periodic reviews while the decision is in force; a review that rejects opens an adjustment case."""
        state = self._state
        if state.status is not CaseStatus.under_supervision:
            state.next_review_at = workflow.now() + timedelta(days=supervision.every_days)
            self._started(
                supervision.legal_basis,
                {
                    "every_days": supervision.every_days,
                    "max_rounds": supervision.max_rounds,
                    "first_review_at": state.next_review_at.isoformat(),
                },
            )
            await self._recorder.record()
        rounds_this_run = 0
        ended_by: dict[str, Any] = {}
        while not state.status.is_final and (
            supervision.max_rounds is None or state.supervision_round < supervision.max_rounds
        ):
            if rounds_this_run == supervision.rounds_per_run:
                await self._continue_as_new()
            assert state.next_review_at is not None
            review = f"review {state.supervision_round + 1}"
            if not await self.wait_until(state.next_review_at, label=review, legal_basis=supervision.legal_basis):
                return
            state.supervision_round += 1
            rounds_this_run += 1
            state.next_review_at += timedelta(days=supervision.every_days)
            run = await self._stages.run_stage(supervision.review)
            if run and run.outcome == rules.StageOutcome.rejected and supervision.adjustment:
                adjustment, completed = await self._adjust(supervision)
                if not await on_adjusted(adjustment, completed):
                    ended_by = {"ended_early": True, "by_child_case": adjustment.case_id}
                    break
        if not state.status.is_final:
            self._recorder.emit(
                EventType.supervision_ended,
                actor=SYSTEM,
                legal_basis=supervision.legal_basis,
                payload={"rounds": state.supervision_round, **ended_by},
            )
            self._status.set(CaseStatus(state.outcome))
            await self._recorder.record()

    async def follow_up(
        self, stage: Stage, *, due: datetime, label: str, legal_basis: str, details: dict[str, Any]
    ) -> StageRun | None:
        """One review at a set moment after the decision, run as the case's single supervision round."""
        self._started(legal_basis, {"max_rounds": 1, "first_review_at": due.isoformat(), **details})
        self._state.supervision_round = 1
        await self._recorder.record()
        if not await self.wait_until(due, label=label, legal_basis=legal_basis):
            return None
        return await self._stages.run_stage(stage)

    async def wait_until(self, moment: datetime, *, label: str, legal_basis: str) -> bool:
        """A recorded timer; False when the case is ended early (withdrawn or cancelled) before the moment."""
        recorder = self._recorder
        recorder.emit(
            EventType.timer_started,
            actor=SYSTEM,
            legal_basis=legal_basis,
            payload={"label": label, "until": moment.isoformat()},
        )
        await recorder.record()
        seconds = (moment - workflow.now()).total_seconds()
        if seconds > 0:
            try:
                await workflow.wait_condition(lambda: self._state.status in ENDED_EARLY, timeout=seconds)
            except TimeoutError:
                pass
        if self._state.status in ENDED_EARLY:
            return False
        recorder.emit(EventType.timer_fired, actor=SYSTEM, legal_basis=legal_basis, payload={"label": label})
        await recorder.record()
        return True

    async def _adjust(self, supervision: Supervision) -> tuple[CaseView, DomainEvent]:
        """Runs the adjustment process as a child case of its own (own id, own record) and waits for it."""
        assert supervision.adjustment is not None
        case, review_round = self._case, self._state.supervision_round
        business_key = f"{case.business_key[:110]}.adj{review_round}"  # keys stay <= 128
        child_id = f"{supervision.adjustment.process}:{business_key}"
        child = CaseInput(
            business_key=business_key,
            definition=supervision.adjustment,
            title=f"{case.title}: adjustment after review {review_round}",
            applicant=case.applicant,
            started_by=SYSTEM,
            data={**case.data, "parent_case_id": self._case_id, "review_round": review_round},
            priority=case.priority,
            calendar=self._calendar(),
        )
        self._recorder.emit(
            EventType.case_child_started,
            actor=SYSTEM,
            legal_basis=supervision.legal_basis,
            payload={
                "child_case_id": child_id,
                "process": supervision.adjustment.process,
                "review_round": review_round,
            },
        )
        await self._recorder.record()
        result = await workflow.execute_child_workflow(
            self._adjustment_workflow, child, id=child_id, parent_close_policy=ParentClosePolicy.ABANDON
        )
        completed = self._recorder.emit(
            EventType.case_child_completed,
            actor=SYSTEM,
            legal_basis=supervision.legal_basis,
            payload={"child_case_id": child_id, "status": result.status.value, "conditions": result.conditions},
        )
        await self._recorder.record()
        return result, completed

    async def _continue_as_new(self) -> None:
        """Starts the next run of this case with its state carried over whole; the event chain goes on."""
        await self._recorder.settle()
        carried = self._state.model_copy(update={"run": self._state.run + 1}, deep=True)
        workflow.continue_as_new(self._case.model_copy(update={"carried": carried, "calendar": self._calendar()}))
