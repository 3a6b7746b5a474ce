"""``KernelWorkflow``: wires the parts together, runs a case, and carries the Workflow Updates.

Each update's validator asks the guards; its handler changes the case through the parts and returns once the
change is recorded. The process API (hooks and protected methods) is described in ``workflows.kernel``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.calendar import CalendarActivities
    from schemas.calendar import WorkingCalendar
    from schemas.case import (
        AddSignerRequest,
        AdoptCalendarRequest,
        CaseInput,
        CaseState,
        CaseStatus,
        CaseView,
        CcRequest,
        ClaimRequest,
        CommentRequest,
        ConcernedPerson,
        DecideRequest,
        DeclareConflictRequest,
        DelegateRequest,
        ExcludePeriodRequest,
        ExtendRequest,
        OperationResult,
        RecallRequest,
        RequestSupplementRequest,
        StageResult,
        SupplementRequest,
        TaskStatus,
        TransferRequest,
        UnclaimRequest,
        UrgeRequest,
        WithdrawRequest,
        attachments_record,
    )
    from schemas.disclosure import DisclosureRules
    from schemas.events import DomainEvent, EventType
    from schemas.notifications import DisclosureNotice, Notification
    from schemas.principal import SYSTEM, Principal
    from schemas.process import Decision, ProcessDefinition, Stage
    from schemas.records import CaseProjection, TaskProjection
    from workflows import rules
    from workflows.kernel.calendars import CaseCalendar
    from workflows.kernel.clocks import Clocks
    from workflows.kernel.deadlines import Deadlines
    from workflows.kernel.documents import Documents
    from workflows.kernel.guards import Guards
    from workflows.kernel.periods import Periods
    from workflows.kernel.publication import Publisher
    from workflows.kernel.recorder import RECORD_RETRY, Recorder
    from workflows.kernel.recusal import Recusal
    from workflows.kernel.stages import Stages
    from workflows.kernel.state import StageRun, Task
    from workflows.kernel.status import Status
    from workflows.kernel.supervision import Supervisor
    from workflows.kernel.views import Views
    from workflows.search_attributes import BUSINESS_KEY, CASE_STATUS, CASE_TYPE

SUPPLEMENT_LEGAL_BASIS = "Administrative Licensing Law Art. 32"
"""补正 comes before acceptance: everything missing is listed at once, and the stages' deadlines start again,
whole, when the material arrives (the statutory period has not begun). Cases started before this rule
(``CaseState.statutory_periods`` false) continue with the working days that were left."""

"""The clock of a disclosure until the publication channel has it (Art. 18: within the rules' working days)."""

STATUTORY_PERIODS_PATCH = "statutory-acceptance-and-periods"
"""Cases started since: Art. 32 acceptance and 补正, the Art. 42 extension rule, Art. 45 excluded periods and
stage deadlines that fit the period."""


class KernelWorkflow:
    """State and operations shared by every process workflow; subclasses add ``@workflow.run``."""

    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        self._case = case
        self._case_id = case_id = workflow.info().workflow_id
        self._state = state = (
            case.carried.model_copy(deep=True) if case.carried else CaseState(started_at=workflow.now())
        )
        self._recorder = Recorder(case_id, case.title, state, self._projections)
        self._calendar = CaseCalendar(case_id, case.definition.legal_basis, state, self._recorder)
        self._clocks = Clocks(case.calendar, self._calendar.assumed)
        self._status = Status(case, case_id, state, self._recorder)
        self._stages = Stages(case, case_id, state, self._recorder, self._clocks, self._status)
        self._recusal = Recusal(case, case_id, state, self._stages)
        self._guards = Guards(case, case_id, state, self._stages, self._clocks, self._recusal)
        self._deadlines = Deadlines(self._clocks, self._stages, self._recorder)
        self._periods = Periods(case, state, self._recorder, self._clocks, self._stages)
        self._supervisor = Supervisor(
            case,
            case_id,
            state,
            self._recorder,
            self._status,
            self._stages,
            lambda: self._clocks.calendar,
            adjustment_workflow=ApprovalWorkflow.run,
        )
        self._publisher = Publisher(self._recorder, self._clocks)
        self._views = Views(case, case_id, state, self._status, self._stages, self._clocks)
        self._documents = Documents(case, case_id, state, self._recorder, lambda: self._clocks.calendar)

    # ------------------------------------------------------------------ running a case

    async def run_case(self) -> CaseView:
        """Runs the definition's steps to a final status, then any supervision; returns the final view."""
        case, definition = self._case, self.definition
        if case.carried is None:
            self._state.statutory_periods = workflow.patched(STATUTORY_PERIODS_PATCH)
        if case.carried is None and workflow.patched("refuse-unrunnable-definitions"):
            problems = rules.definition_problems(definition, check_periods=self._state.statutory_periods)
            if problems:
                raise ApplicationError(
                    "the process definition cannot run: " + "; ".join(problems),
                    {"reason": "INVALID_DEFINITION", "problems": problems},
                    type="INVALID_DEFINITION",
                    non_retryable=True,
                )
        if self._clocks.calendar is None:
            self._clocks.calendar = await workflow.execute_activity_method(
                CalendarActivities.load_calendar,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RECORD_RETRY,
            )
        workflow.upsert_search_attributes(
            [
                CASE_TYPE.value_set(definition.process),
                BUSINESS_KEY.value_set(case.business_key),
                CASE_STATUS.value_set(self.status.value),
            ]
        )
        self._announce_start()
        await self.record()
        watcher = asyncio.create_task(self._deadlines.watch())
        cancelled = False
        try:
            if case.carried is None:
                await self._stages.run_steps()
                if not self.status.is_final:
                    self._stages.decide_case()
                await self.on_final()
            if definition.supervision and self.outcome in rules.APPROVING_OUTCOMES:
                await self._supervisor.supervise(definition.supervision, self.on_adjusted)
        except asyncio.CancelledError:
            # An operator cancelled the workflow: record it, so no task lingers in an inbox, then end as cancelled.
            cancelled = True
            if not self.status.is_final:
                reason = "the workflow was cancelled by an operator"
                self._stages.close(
                    CaseStatus.cancelled, actor=SYSTEM, legal_basis=definition.legal_basis, reason=reason
                )
        finally:
            self._deadlines.finished = True
            self._clocks.wake()
        await watcher
        await self._recorder.settle()
        if cancelled:
            raise asyncio.CancelledError("cancelled by an operator")
        return self.view()

    def _announce_start(self) -> None:
        case, definition = self._case, self.definition
        if case.carried:
            supervision = definition.supervision
            self.emit(
                EventType.case_continued,
                actor=SYSTEM,
                legal_basis=supervision.legal_basis if supervision else "-",
                payload={
                    "run": case.carried.run + 1,
                    "previous_run_id": workflow.info().continued_run_id,
                    "supervision_round": self._state.supervision_round,
                },
            )
            return
        self.emit(
            EventType.case_started,
            actor=case.started_by,
            legal_basis=definition.legal_basis,
            payload={
                "business_key": case.business_key,
                "title": case.title,
                # As the input holds them: a field added to the schema since (with its default) must not change
                # what a running case re-seals when a new worker replays it (tests/test_reseal.py).
                "applicant": case.applicant.model_dump(mode="json", exclude_unset=True),
                "priority": case.priority,
                "data": case.data,
                "definition": definition.model_dump(mode="json", exclude_unset=True),
                **case.registered_definition_record(),
                **self._recusal.started(),
            },
        )
        if definition.deadline and definition.deadline.starts_after_stage is None:
            self._stages.start_case_clock()
        self._periods.open_acceptance_window()

    def _projections(self, task_ids: set[str] | None) -> tuple[CaseProjection, list[TaskProjection]]:
        tasks = self._stages.tasks
        ids = sorted(tasks if task_ids is None else task_ids)
        return self.case_projection(), [self._views.task_projection(tasks[task_id]) for task_id in ids]

    # ------------------------------------------------------------------ hooks for process workflows

    async def on_final(self) -> None:
        """Runs once the case has its final status, before the workflow ends (e.g. Art. 18 disclosure)."""

    async def on_adjusted(self, adjustment: CaseView, completed: DomainEvent) -> bool:
        """Called when an adjustment case ends (``completed`` is its ``case.child_completed`` event); returning
        False ends the supervision early, e.g. when the adjustment ended the decision's effect."""
        return True

    def on_decided(self, stage: Stage, request: DecideRequest) -> None:
        """A decision was accepted at ``stage`` (recorded, not yet settled), e.g. to keep the date it set."""

    def case_projection(self) -> CaseProjection:
        """The case's row as the recorder writes it; a process may add to its ``summary``."""
        return self._views.case_projection()

    # ------------------------------------------------------------------ services for process workflows

    @property
    def case(self) -> CaseInput:
        return self._case

    @property
    def case_id(self) -> str:
        return self._case_id

    @property
    def definition(self) -> ProcessDefinition:
        return self._case.definition

    @property
    def status(self) -> CaseStatus:
        return self._state.status

    @property
    def outcome(self) -> str | None:
        return self._state.outcome

    @property
    def results(self) -> Mapping[str, StageResult]:
        """Each decided stage's last result, by stage id."""
        return self._state.results

    @property
    def last_seq(self) -> int:
        return self._state.last_seq

    @property
    def supervision_round(self) -> int:
        return self._state.supervision_round

    @property
    def calendar(self) -> WorkingCalendar:
        assert self._clocks.calendar is not None, "loaded when the case starts"
        return self._clocks.calendar

    def merged_conditions(self) -> list[str]:
        return self._status.merged_conditions()

    def concern(self, persons: Iterable[ConcernedPerson]) -> None:
        """Persons the application shows the case concerns: they must recuse themselves (回避)."""
        self._recusal.add(persons)

    def emit(self, type_: EventType, *, actor: Principal, legal_basis: str, **where: Any) -> DomainEvent:
        """Seals the next event of the case; ``where``: ``stage_id``, ``task_id``, ``payload``."""
        return self._recorder.emit(type_, actor=actor, legal_basis=legal_basis, **where)

    async def record(self) -> None:
        await self._recorder.record()

    def notify(self, event: DomainEvent, recipient: str, kind: str, subject: str, data: dict[str, Any]) -> None:
        self._recorder.notify(event, recipient, kind, subject, data)

    def send(self, notification: Notification) -> None:
        self._recorder.send(notification)

    async def wait_until(self, moment: datetime, *, label: str, legal_basis: str) -> bool:
        """A recorded timer (an effective date, the next periodic review, a rectification deadline).

        Returns False when the case is ended early (withdrawn or cancelled) before the moment; a case that
        already has its decision still waits, so processes may time what follows the decision.
        """
        return await self._supervisor.wait_until(moment, label=label, legal_basis=legal_basis)

    async def follow_up(
        self, stage: Stage, *, due: datetime, label: str, legal_basis: str, details: dict[str, Any]
    ) -> StageRun | None:
        """One review after the decision at a set moment (e.g. a rectification deadline), run as the case's
        single supervision round: the case is under supervision while it waits, so withdrawal, the inbox and
        the audit fold treat it as any supervision. None when the case ended first."""
        return await self._supervisor.follow_up(stage, due=due, label=label, legal_basis=legal_basis, details=details)

    async def publish(
        self,
        *,
        event_legal_basis: str,
        notice_legal_basis: str,
        subject: dict[str, Any],
        applicant_subject: str,
        applicant_data: dict[str, Any],
        rules: DisclosureRules | None = None,
        decision: str | None = None,
    ) -> DisclosureNotice:
        """Discloses the decision (Art. 18): recorded as ``case.published``, told to the applicant, then handed
        to the publication channel through the outbox. With ``rules`` the notice is redacted and carries its due
        date, a clock that reminds and escalates until the channel has it. ``decision``: what is published as
        decided when it is not the case status (e.g. an adjustment during supervision)."""
        clock = self._publisher.clock(rules, event_legal_basis)
        notice = DisclosureNotice(
            idempotency_key=f"{self._case_id}/{self.last_seq + 1}/disclosure",
            case_id=self._case_id,
            process=self.definition.process,
            title=self._case.title,
            decision=decision or self.status.value,
            legal_basis=notice_legal_basis,
            conditions=self.merged_conditions(),
            decided_at=workflow.now().isoformat(),
            subject=subject,
            publication_due_at=clock.due_at.isoformat() if clock else None,
        )
        told = (self._case.applicant.id, applicant_subject, applicant_data)
        return await self._publisher.publish(notice, event_legal_basis, told, rules, clock)

    @workflow.query
    def view(self) -> CaseView:
        return self._views.case()

    async def _accepted(self, task: Task | None = None) -> OperationResult:
        """Records what the update did; the caller gets the result once PostgreSQL has it."""
        self._guards.updates_accepted += 1
        await self.record()
        return OperationResult(
            case_id=self._case_id,
            status=self.status,
            last_seq=self.last_seq,
            task=self._views.task(task) if task else None,
        )

    # ------------------------------------------------------------------ task operations (Workflow Updates)

    @workflow.update
    async def claim(self, request: ClaimRequest) -> OperationResult:
        task = self._stages.task(request.task_id)
        task.claimed_by = request.actor.id
        task.status = TaskStatus.claimed
        self._stages.changed(task, EventType.task_claimed, request.actor, {})
        return await self._accepted(task)

    @claim.validator
    def validate_claim(self, request: ClaimRequest) -> None:
        self._guards.claim(request)

    @workflow.update
    async def unclaim(self, request: UnclaimRequest) -> OperationResult:
        task = self._stages.task(request.task_id)
        task.claimed_by = None
        task.delegate_id = None
        task.status = TaskStatus.open
        self._stages.changed(task, EventType.task_unclaimed, request.actor, {})
        return await self._accepted(task)

    @unclaim.validator
    def validate_unclaim(self, request: UnclaimRequest) -> None:
        self._guards.unclaim(request)

    @workflow.update
    async def recall(self, request: RecallRequest) -> OperationResult:
        task = self._stages.task(request.task_id)
        payload = {"from": task.claimed_by, "reason": request.reason}
        task.claimed_by = task.delegate_id = None
        task.status = TaskStatus.open
        self._hand_on(task, EventType.task_recalled, request.actor, payload)  # the pool is told it is back
        return await self._accepted(task)

    @recall.validator
    def validate_recall(self, request: RecallRequest) -> None:
        self._guards.recall(request)

    @workflow.update
    async def declare_conflict(self, request: DeclareConflictRequest) -> OperationResult:
        task = self._stages.task(request.task_id)
        self._recusal.declare(task, request)
        return await self._accepted(task)

    @declare_conflict.validator
    def validate_declare_conflict(self, request: DeclareConflictRequest) -> None:
        self._guards.declare_conflict(request)

    @workflow.update
    async def decide(self, request: DecideRequest) -> OperationResult:
        stages = self._stages
        task = stages.task(request.task_id)
        run = stages.runs[task.stage_id]
        task.status = TaskStatus.completed
        task.decision = request.decision
        task.decided_by = request.actor.id
        task.comment = request.comment
        task.conditions = list(request.conditions)
        returns = request.decision is Decision.return_
        if returns:
            run.return_to = request.return_to or stages.return_targets(run.stage)[-1]
        owner = (task.assignee_id or task.claimed_by) if task.delegate_id else None
        event = stages.changed(
            task,
            EventType.task_decided,
            request.actor,
            {
                "decision": request.decision.value,
                "comment": request.comment,
                "conditions": request.conditions,
                "return_to": run.return_to if returns else None,
                "on_behalf_of": owner,
                "findings": [finding.model_dump(mode="json") for finding in request.findings],
                **({"due_date": request.due_date.isoformat()} if request.due_date else {}),  # only where asked
                **({"deadline_profile": request.deadline_profile} if request.deadline_profile else {}),
                **attachments_record(request.attachments),
            },
        )
        self._state.deadline_profile = request.deadline_profile or self._state.deadline_profile  # 受理 chose it
        self.on_decided(run.stage, request)
        if owner:  # the owner stays accountable for what the delegate decided, so they are told
            self.notify(
                event,
                owner,
                "task.decided_by_delegate",
                f"{run.stage.title}: {self._case.title}",
                {"task_id": task.id, "delegate": request.actor.id, "decision": request.decision.value},
            )
        if request.decision in rules.APPROVING:
            stages.activate_waiting_on(task)
        stages.settle(run, actor=request.actor)
        return await self._accepted(task)

    @decide.validator
    def validate_decide(self, request: DecideRequest) -> None:
        self._guards.decide(request)

    def _hand_on(self, task: Task, type_: EventType, actor: Principal, payload: dict[str, Any]) -> None:
        """The task is with someone new (transfer, delegation): recorded, and they are told."""
        event = self._stages.changed(task, type_, actor, payload)
        self._stages.notify_holders(task, "task.assigned", event)

    @workflow.update
    async def transfer(self, request: TransferRequest) -> OperationResult:
        task = self._stages.task(request.task_id)
        previous = task.holder
        task.assignee_id = request.to_user
        task.candidate_roles = ()
        task.claimed_by = task.delegate_id = None
        task.status = TaskStatus.open
        payload = {"from": previous, "to": request.to_user, "comment": request.comment}
        self._hand_on(task, EventType.task_transferred, request.actor, payload)
        return await self._accepted(task)

    @transfer.validator
    def validate_transfer(self, request: TransferRequest) -> None:
        self._guards.transfer(request)

    @workflow.update
    async def delegate(self, request: DelegateRequest) -> OperationResult:
        task = self._stages.task(request.task_id)
        if task.assignee_id is None:
            task.claimed_by = request.actor.id  # the owner who stays accountable
            task.status = TaskStatus.claimed
        task.delegate_id = request.to_user
        payload = {"owner": request.actor.id, "delegate": request.to_user, "comment": request.comment}
        self._hand_on(task, EventType.task_delegated, request.actor, payload)
        return await self._accepted(task)

    @delegate.validator
    def validate_delegate(self, request: DelegateRequest) -> None:
        self._guards.delegate(request)

    @workflow.update
    async def add_signer(self, request: AddSignerRequest) -> OperationResult:
        stages = self._stages
        task = stages.task(request.task_id)
        run = stages.runs[task.stage_id]
        before = request.position == "before"
        added = stages.new_task(
            run,
            assignee_id=request.signer,
            waiting_for=None if before else task.id,
            clock_key=task.clock_key,
            added_by=request.actor,
        )
        if before:
            task.waiting_for = added.id
            task.status = TaskStatus.waiting
        else:
            for other in stages.tasks.values():
                if other.waiting_for == task.id and other.id != added.id:
                    other.waiting_for = added.id
                    self._recorder.task_changed(other.id)
        payload = {"signer": request.signer, "position": request.position, "added_task_id": added.id}
        stages.changed(task, EventType.task_signer_added, request.actor, {**payload, "comment": request.comment})
        return await self._accepted(task)

    @add_signer.validator
    def validate_add_signer(self, request: AddSignerRequest) -> None:
        self._guards.add_signer(request)

    @workflow.update
    async def urge(self, request: UrgeRequest) -> OperationResult:
        task = self._stages.task(request.task_id)
        event = self.emit(
            EventType.task_urged,
            actor=request.actor,
            legal_basis=self.definition.stage(task.stage_id).legal_basis,
            stage_id=task.stage_id,
            task_id=task.id,
            payload={"comment": request.comment},
        )
        self._guards.last_urged[(task.id, request.actor.id)] = workflow.now()
        self._stages.notify_holders(task, "task.urged", event, comment=request.comment)
        return await self._accepted(task)

    @urge.validator
    def validate_urge(self, request: UrgeRequest) -> None:
        self._guards.urge(request)

    @workflow.update
    async def comment(self, request: CommentRequest) -> OperationResult:
        task = self._stages.tasks.get(request.task_id) if request.task_id else None
        definition = self.definition
        self.emit(
            EventType.case_commented,
            actor=request.actor,
            legal_basis=definition.stage(task.stage_id).legal_basis if task else definition.legal_basis,
            stage_id=task.stage_id if task else None,
            task_id=task.id if task else None,
            payload={"text": request.text, **attachments_record(request.attachments)},
        )
        return await self._accepted(task)

    @comment.validator
    def validate_comment(self, request: CommentRequest) -> None:
        self._guards.comment(request)

    @workflow.update
    async def cc(self, request: CcRequest) -> OperationResult:
        observers = self._state.observers
        observers.extend([observer for observer in request.observers if observer not in observers])
        event = self.emit(
            EventType.case_cc,
            actor=request.actor,
            legal_basis=self.definition.legal_basis,
            task_id=request.task_id,
            payload={"observers": request.observers, "comment": request.comment},
        )
        for observer in request.observers:
            data = {"comment": request.comment, "from": request.actor.id}
            self.notify(event, observer, "case.cc", f"抄送: {self._case.title}", data)
        return await self._accepted(self._stages.tasks.get(request.task_id) if request.task_id else None)

    @cc.validator
    def validate_cc(self, request: CcRequest) -> None:
        self._guards.cc(request)

    # ------------------------------------------------------------------ case operations (Workflow Updates)

    @workflow.update
    async def withdraw(self, request: WithdrawRequest) -> OperationResult:
        legal_basis = self.definition.legal_basis
        self._stages.close(CaseStatus.withdrawn, actor=request.actor, legal_basis=legal_basis, reason=request.reason)
        return await self._accepted()

    @withdraw.validator
    def validate_withdraw(self, request: WithdrawRequest) -> None:
        self._guards.withdraw(request)

    @workflow.update
    async def request_supplement(self, request: RequestSupplementRequest) -> OperationResult:
        state = self._state
        state.pending_supplement = list(request.items)
        self._clocks.pause(workflow.now())
        notice = {"items": [item.model_dump() for item in request.items], **attachments_record(request.attachments)}
        payload: dict[str, Any] = {
            **notice,
            "comment": request.comment,
            "working_days_left": {clock.key: clock.working_days_left for clock in self._clocks if clock.pausable},
        }
        if state.statutory_periods:
            state.supplements_requested += 1
            self._periods.close_acceptance_window()
            payload["supplied_material_defective"] = request.supplied_material_defective
        event = self.emit(
            EventType.case_supplement_requested,
            actor=request.actor,
            legal_basis=SUPPLEMENT_LEGAL_BASIS,
            payload=payload,
        )
        state.status_before_supplement = state.status
        self._status.set(CaseStatus.awaiting_supplement)
        subject = f"补正: {self._case.title}"
        self.notify(event, self._case.applicant.id, "case.supplement_requested", subject, notice)
        return await self._accepted()

    @request_supplement.validator
    def validate_request_supplement(self, request: RequestSupplementRequest) -> None:
        self._guards.request_supplement(request)

    @workflow.update
    async def supplement(self, request: SupplementRequest) -> OperationResult:
        state = self._state
        requested, state.pending_supplement = state.pending_supplement, []
        self._clocks.resume(workflow.now(), whole=state.statutory_periods)
        self.emit(
            EventType.case_supplemented,
            actor=request.actor,
            legal_basis=SUPPLEMENT_LEGAL_BASIS,
            payload={
                "requested": [item.model_dump() for item in requested],
                "documents": [document.model_dump() for document in request.documents],
                "comment": request.comment,
                "due_at": {clock.key: clock.due_at.isoformat() for clock in self._clocks},
            },
        )
        self._stages.due_times_changed()
        self._status.set(state.status_before_supplement)
        return await self._accepted()

    @supplement.validator
    def validate_supplement(self, request: SupplementRequest) -> None:
        self._guards.supplement(request)

    @workflow.update
    async def extend(self, request: ExtendRequest) -> OperationResult:
        deadline = self.definition.period(self._state.deadline_profile)
        assert deadline is not None
        previous = self._clocks.extend("case", deadline.extension_working_days)
        self._state.extended = True
        due_at = self._clocks.due_iso("case")
        event = self.emit(
            EventType.case_extended,
            actor=request.actor,
            legal_basis=deadline.extension_legal_basis if self._state.statutory_periods else deadline.legal_basis,
            payload={
                "reason": request.reason,
                "working_days": deadline.extension_working_days,
                "previous_due_at": previous.isoformat(),
                "due_at": due_at,
            },
        )
        if self._state.statutory_periods:  # Art. 42: the applicant is told the reason
            data = {"reason": request.reason, "working_days": deadline.extension_working_days, "due_at": due_at}
            self.notify(event, self._case.applicant.id, "case.extended", f"延期: {self._case.title}", data)
        return await self._accepted()

    @extend.validator
    def validate_extend(self, request: ExtendRequest) -> None:
        self._guards.extend(request)

    @workflow.update
    async def exclude_period(self, request: ExcludePeriodRequest) -> OperationResult:
        self._periods.exclude(request)
        return await self._accepted()

    @exclude_period.validator
    def validate_exclude_period(self, request: ExcludePeriodRequest) -> None:
        self._guards.exclude_period(request)

    # ------------------------------------------------------------------ sent by the engine

    @workflow.update
    async def adopt_calendar(self, request: AdoptCalendarRequest) -> OperationResult:
        """A calendar year was published: the open deadlines are counted again on the new calendar."""
        await workflow.wait_condition(lambda: self._clocks.calendar is not None)
        self._calendar.adopt(request, self._clocks, self._stages)
        return await self._accepted()

    @adopt_calendar.validator
    def validate_adopt_calendar(self, request: AdoptCalendarRequest) -> None:
        self._calendar.check(request, self._clocks)


@workflow.defn(name="ApprovalWorkflow")
class ApprovalWorkflow(KernelWorkflow):
    """The generic approval: the process definition in the input is the whole process, no code needed. It also
    runs every supervision's adjustment as a child case, which is why it lives beside the kernel."""

    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        return await self.run_case()
