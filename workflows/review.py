"""The approval kernel: stages, human tasks, routing, working-day clocks and the hash-chained record.

Every statutory process is a subclass of ``KernelWorkflow`` that builds a ``ProcessDefinition`` and calls
``run_case``; they differ in stages and rules, never in mechanics. Reviewer operations are Workflow Updates
whose validators refuse bad requests before anything enters the history (the refusal carries a
machine-readable reason code as the ApplicationError type). Accepted operations change the in-workflow
state, append sealed domain events and return only after the recording activity has written events and
projections to PostgreSQL, so a reviewer who refreshes their inbox sees the result at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from schemas.calendar import (
        BeyondKnownYears,
        CalendarResult,
        WorkingCalendar,
        add_working_days,
        subtract_working_days,
        working_days_between,
    )
    from schemas.case import (
        AddSignerRequest,
        CarriedCase,
        CaseInput,
        CaseStatus,
        CaseView,
        CcRequest,
        ClaimRequest,
        ClockView,
        CommentRequest,
        DecideRequest,
        DelegateRequest,
        ExtendRequest,
        MissingItem,
        OperationResult,
        RequestSupplementRequest,
        StageResult,
        SupplementRequest,
        TaskRequest,
        TaskStatus,
        TaskView,
        TransferRequest,
        UnclaimRequest,
        UrgeRequest,
        WithdrawRequest,
    )
    from schemas.events import GENESIS_HASH, DomainEvent, seal_event
    from schemas.notifications import Channel, DisclosureNotice, Notification
    from schemas.principal import SYSTEM, Principal
    from schemas.process import Decision, OnReject, Parallel, ProcessDefinition, RoutingMode, Stage, Supervision
    from schemas.records import CaseProjection, RecordBatch, TaskProjection
    from workflows import rules
    from workflows.search_attributes import BUSINESS_KEY, CASE_STAGE, CASE_STATUS, CASE_TYPE

T = TypeVar("T")

SUPPLEMENT_LEGAL_BASIS = "Administrative Licensing Law Art. 32"
"""补正: everything missing is to be listed at once; the period restarts when the material arrives."""

RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
"""Unlimited attempts: while PostgreSQL is down the case waits; no event is ever dropped."""

NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))

ROUTING_WITH_SIGNERS = (RoutingMode.single, RoutingMode.sequential, RoutingMode.all)

OPTIONAL_UPDATE_BUDGET = 1500
"""Temporal accepts 2,000 updates per workflow run: past this many, comments, urges and copies are refused
so that decisions, withdrawal and 补正 always find room."""

URGE_INTERVAL = timedelta(days=1)
"""One urge (催办) per person per task per day is a reminder; more would be noise."""


def parse_application(parse: Callable[[Any], T], data: Any, what: str) -> T:
    """The case data as the process's application; a bad one fails the case at once, saying what is wrong."""
    try:
        return parse(data)
    except ValidationError as error:
        raise ApplicationError(f"invalid {what}: {error}", type="INVALID_APPLICATION", non_retryable=True) from None


def deny(code: str, message: str) -> ApplicationError:
    """A refusal: ``code`` is the machine-readable reason the API turns into a problem response."""
    return ApplicationError(message, {"reason": code}, type=code, non_retryable=True)


@dataclass
class Task:
    id: str
    stage_id: str
    round: int
    status: TaskStatus
    assignee_id: str | None
    candidate_roles: tuple[str, ...]
    created_at: datetime
    clock_key: str | None
    version: int = 1
    claimed_by: str | None = None
    delegate_id: str | None = None
    waiting_for: str | None = None
    added_by: str | None = None
    overdue: bool = False
    decision: Decision | None = None
    decided_by: str | None = None
    comment: str = ""
    conditions: list[str] = field(default_factory=list)

    @property
    def holder(self) -> str | None:
        """Who may act on the task now (None: any holder of a candidate role)."""
        return self.delegate_id or self.claimed_by or self.assignee_id

    def touch(self) -> None:
        self.version += 1


@dataclass
class StageRun:
    stage: Stage
    round: int
    task_ids: list[str] = field(default_factory=list)
    outcome: str | None = None
    return_to: str | None = None
    tally: dict[str, int] = field(default_factory=dict)


@dataclass
class Clock:
    """A working-day deadline: of the whole case (statutory period) or of one stage round."""

    key: str
    label: str
    legal_basis: str
    due_at: datetime
    remind_before: int
    escalate_to_role: str | None
    stage_id: str | None = None
    remind_at: datetime | None = None
    reminded: bool = False
    escalated: bool = False
    running: bool = True
    working_days_left: int = 0


class KernelWorkflow:
    """State and operations shared by every process workflow; subclasses add ``@workflow.run``."""

    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        info = workflow.info()
        self._case = case
        self._definition: ProcessDefinition = case.definition
        self._case_id = info.workflow_id
        self._status = CaseStatus.in_review
        self._started_at = workflow.now()
        self._tasks: dict[str, Task] = {}
        self._runs: dict[str, StageRun] = {}
        self._results: dict[str, StageResult] = {}
        self._rounds: dict[str, int] = {}
        self._task_numbers: dict[str, int] = {}
        self._active_stages: list[str] = []
        self._clocks: dict[str, Clock] = {}
        self._clock_epoch = 0
        self._abandoned_steps: set[str] = set()
        self._pending_supplement: list[MissingItem] = []
        self._extended = False
        self._outcome: str | None = None
        self._observers: list[str] = []
        self._warnings: list[str] = []
        self._calendar: WorkingCalendar | None = case.calendar
        self._last_seq = 0
        self._last_hash = GENESIS_HASH
        self._unrecorded: list[DomainEvent] = []
        self._dirty_tasks: set[str] = set()
        self._record_lock = asyncio.Lock()
        self._notifications: list[asyncio.Future[Any]] = []
        """notify activities of a case that started before "notifications-in-the-record"."""
        self._unsent: list[Notification] = []
        self._finished = False
        self._supervision_round = 0
        self._next_review_at: datetime | None = None
        self._status_before_supplement = CaseStatus.in_review
        self._updates_accepted = 0
        self._last_urged: dict[tuple[str, str], datetime] = {}
        if case.carried:
            self._restore(case.carried)

    # ------------------------------------------------------------------ running a case

    async def run_case(self) -> CaseView:
        """Runs the definition's steps to a final status, then any supervision; returns the final view."""
        case = self._case
        if case.carried is None and workflow.patched("refuse-unrunnable-definitions"):
            problems = rules.definition_problems(self._definition)
            if problems:
                raise ApplicationError(
                    "the process definition cannot run: " + "; ".join(problems),
                    {"reason": "INVALID_DEFINITION", "problems": problems},
                    type="INVALID_DEFINITION",
                    non_retryable=True,
                )
        if self._calendar is None:
            self._calendar = await workflow.execute_activity(
                "load_calendar",
                result_type=WorkingCalendar,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RECORD_RETRY,
            )
        workflow.upsert_search_attributes(
            [
                CASE_TYPE.value_set(self._definition.process),
                BUSINESS_KEY.value_set(case.business_key),
                CASE_STATUS.value_set(self._status.value),
            ]
        )
        if case.carried:
            self._emit(
                "case.continued",
                actor=SYSTEM,
                legal_basis=self._definition.supervision.legal_basis if self._definition.supervision else "-",
                payload={
                    "run": case.carried.run + 1,
                    "previous_run_id": workflow.info().continued_run_id,
                    "supervision_round": self._supervision_round,
                },
            )
        else:
            self._emit(
                "case.started",
                actor=case.started_by,
                legal_basis=self._definition.legal_basis,
                payload={
                    "business_key": case.business_key,
                    "title": case.title,
                    "applicant": case.applicant.model_dump(mode="json"),
                    "priority": case.priority,
                    "data": case.data,
                    "definition": self._definition.model_dump(mode="json"),
                },
            )
            deadline = self._definition.deadline
            if deadline and deadline.starts_after_stage is None:
                self._start_case_clock()
        await self._record()
        watcher = asyncio.create_task(self._watch_clocks())
        cancelled = False
        try:
            if case.carried is None:
                await self._run_steps()
                if not self._status.is_final:
                    self._decide_case()
                await self.on_final()
            if self._definition.supervision and self._outcome in rules.APPROVING_OUTCOMES:
                await self._supervise(self._definition.supervision)
        except asyncio.CancelledError:
            # An operator cancelled the workflow: record it, so no task lingers in an inbox, then end as cancelled.
            cancelled = True
            if not self._status.is_final:
                self._close(
                    CaseStatus.cancelled,
                    actor=SYSTEM,
                    legal_basis=self._definition.legal_basis,
                    reason="the workflow was cancelled by an operator",
                )
        finally:
            self._finished = True
            self._clock_epoch += 1
        await watcher
        await self._settle_side_effects()
        if cancelled:
            raise asyncio.CancelledError("cancelled by an operator")
        return self.view()

    async def _settle_side_effects(self) -> None:
        """Before the run ends: every update answered, every event recorded, every notification handed over."""
        await self._record()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._record()
        for notification in self._notifications:
            await notification

    async def on_final(self) -> None:
        """Runs once the case has its final status, before the workflow ends (e.g. Art. 18 disclosure)."""

    async def publish(
        self,
        *,
        event_legal_basis: str,
        notice_legal_basis: str,
        subject: dict[str, Any],
        applicant_subject: str,
        applicant_data: dict[str, Any],
    ) -> DisclosureNotice:
        """Discloses the decision (Art. 18): recorded as ``case.published``, told to the applicant, then handed
        to the publication channel through the outbox."""
        notice = DisclosureNotice(
            idempotency_key=f"{self._case_id}/{self._last_seq + 1}/disclosure",
            case_id=self._case_id,
            process=self._definition.process,
            title=self._case.title,
            decision=self._status.value,
            legal_basis=notice_legal_basis,
            conditions=self.merged_conditions(),
            decided_at=workflow.now().isoformat(),
            subject=subject,
        )
        event = self._emit(
            "case.published", actor=SYSTEM, legal_basis=event_legal_basis, payload=notice.model_dump(mode="json")
        )
        self._send_log(event, self._case.applicant.id, "case.decided", applicant_subject, applicant_data)
        await self._record()
        await workflow.execute_activity(
            "publish_disclosure",
            notice,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=NOTIFY_RETRY,
        )
        return notice

    # ------------------------------------------------------------------ supervision, timers, child cases

    async def _supervise(self, supervision: Supervision) -> None:
        """Periodic reviews while the decision is in force; a review that rejects opens an adjustment case."""
        if self._status is not CaseStatus.under_supervision:
            self._next_review_at = workflow.now() + timedelta(days=supervision.every_days)
            self._emit(
                "supervision.started",
                actor=SYSTEM,
                legal_basis=supervision.legal_basis,
                payload={
                    "every_days": supervision.every_days,
                    "max_rounds": supervision.max_rounds,
                    "first_review_at": self._next_review_at.isoformat(),
                },
            )
            self._set_status(CaseStatus.under_supervision)
            await self._record()
        rounds_this_run = 0
        ended_by: dict[str, Any] = {}
        while not self._status.is_final and (
            supervision.max_rounds is None or self._supervision_round < supervision.max_rounds
        ):
            if rounds_this_run == supervision.rounds_per_run:
                await self._continue_as_new()
            assert self._next_review_at is not None
            if not await self.wait_until(
                self._next_review_at, label=f"review {self._supervision_round + 1}", legal_basis=supervision.legal_basis
            ):
                return
            self._supervision_round += 1
            rounds_this_run += 1
            self._next_review_at += timedelta(days=supervision.every_days)
            run = await self._run_stage(supervision.review)
            if run and run.outcome == rules.StageOutcome.rejected and supervision.adjustment:
                adjustment, completed = await self._adjust(supervision)
                if not await self.on_adjusted(adjustment, completed):
                    ended_by = {"ended_early": True, "by_child_case": adjustment.case_id}
                    break
        if not self._status.is_final:
            self._emit(
                "supervision.ended",
                actor=SYSTEM,
                legal_basis=supervision.legal_basis,
                payload={"rounds": self._supervision_round, **ended_by},
            )
            self._set_status(CaseStatus(self._outcome))
            await self._record()

    async def on_adjusted(self, adjustment: CaseView, completed: DomainEvent) -> bool:
        """Called when an adjustment case ends (``completed`` is its ``case.child_completed`` event); returning
        False ends the supervision early, e.g. when the adjustment ended the decision's effect."""
        return True

    async def follow_up(
        self, stage: Stage, *, due: datetime, label: str, legal_basis: str, details: dict[str, Any]
    ) -> StageRun | None:
        """One review after the decision at a set moment (e.g. a rectification deadline), run as the case's
        single supervision round: the case is under supervision while it waits, so withdrawal, the inbox and
        the audit fold treat it as any supervision. None when the case ended first."""
        self._emit(
            "supervision.started",
            actor=SYSTEM,
            legal_basis=legal_basis,
            payload={"max_rounds": 1, "first_review_at": due.isoformat(), **details},
        )
        self._set_status(CaseStatus.under_supervision)
        self._supervision_round = 1
        await self._record()
        if not await self.wait_until(due, label=label, legal_basis=legal_basis):
            return None
        return await self._run_stage(stage)

    async def wait_until(self, moment: datetime, *, label: str, legal_basis: str) -> bool:
        """A recorded timer (an effective date, the next periodic review, a rectification deadline).

        Returns False when the case is ended early (withdrawn or cancelled) before the moment; a case that
        already has its decision still waits, so processes may time what follows the decision.
        """
        ended_early = (CaseStatus.withdrawn, CaseStatus.cancelled)
        self._emit(
            "timer.started",
            actor=SYSTEM,
            legal_basis=legal_basis,
            payload={"label": label, "until": moment.isoformat()},
        )
        await self._record()
        seconds = (moment - workflow.now()).total_seconds()
        if seconds > 0:
            try:
                await workflow.wait_condition(lambda: self._status in ended_early, timeout=seconds)
            except TimeoutError:
                pass
        if self._status in ended_early:
            return False
        self._emit("timer.fired", actor=SYSTEM, legal_basis=legal_basis, payload={"label": label})
        await self._record()
        return True

    async def _adjust(self, supervision: Supervision) -> tuple[CaseView, DomainEvent]:
        """Runs the adjustment process as a child case of its own (own id, own record) and waits for it."""
        assert supervision.adjustment is not None
        business_key = f"{self._case.business_key[:110]}.adj{self._supervision_round}"  # keys stay <= 128
        child_id = f"{supervision.adjustment.process}:{business_key}"
        child = CaseInput(
            business_key=business_key,
            definition=supervision.adjustment,
            title=f"{self._case.title}: adjustment after review {self._supervision_round}",
            applicant=self._case.applicant,
            started_by=SYSTEM,
            data={**self._case.data, "parent_case_id": self._case_id, "review_round": self._supervision_round},
            priority=self._case.priority,
            calendar=self._calendar,
        )
        self._emit(
            "case.child_started",
            actor=SYSTEM,
            legal_basis=supervision.legal_basis,
            payload={
                "child_case_id": child_id,
                "process": supervision.adjustment.process,
                "review_round": self._supervision_round,
            },
        )
        await self._record()
        result = await workflow.execute_child_workflow(
            "ApprovalWorkflow",
            child,
            id=child_id,
            result_type=CaseView,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        completed = self._emit(
            "case.child_completed",
            actor=SYSTEM,
            legal_basis=supervision.legal_basis,
            payload={"child_case_id": child_id, "status": result.status.value, "conditions": result.conditions},
        )
        await self._record()
        return result, completed

    async def _continue_as_new(self) -> None:
        """Starts the next run of this case with its state carried over; the event chain goes on unbroken."""
        await self._settle_side_effects()
        carried = CarriedCase(
            run=(self._case.carried.run if self._case.carried else 0) + 1,
            status=self._status,
            started_at=self._started_at,
            last_seq=self._last_seq,
            last_hash=self._last_hash,
            results=list(self._results.values()),
            rounds=dict(self._rounds),
            task_numbers=dict(self._task_numbers),
            observers=list(self._observers),
            warnings=list(self._warnings),
            extended=self._extended,
            outcome=self._outcome,
            supervision_round=self._supervision_round,
            next_review_at=self._next_review_at,
        )
        workflow.continue_as_new(self._case.model_copy(update={"carried": carried, "calendar": self._calendar}))

    def _restore(self, carried: CarriedCase) -> None:
        self._status = carried.status
        self._started_at = carried.started_at
        self._last_seq, self._last_hash = carried.last_seq, carried.last_hash
        self._results = {result.stage_id: result for result in carried.results}
        self._rounds = dict(carried.rounds)
        self._task_numbers = dict(carried.task_numbers)
        self._observers = list(carried.observers)
        self._warnings = list(carried.warnings)
        self._extended = carried.extended
        self._outcome = carried.outcome
        self._supervision_round = carried.supervision_round
        self._next_review_at = carried.next_review_at

    async def _run_steps(self) -> None:
        steps = self._definition.steps
        index, only_stage = 0, None
        while index < len(steps) and not self._status.is_final:
            step = steps[index]
            if isinstance(step, Stage):
                run = await self._run_stage(step)
                returned_to = run.return_to if run and run.outcome == rules.StageOutcome.returned else None
            else:
                returned_to = await self._run_parallel(step, only_stage)
            only_stage = None
            if returned_to is None:
                index += 1
                continue
            index = self._step_index(returned_to)
            if isinstance(steps[index], Parallel):
                only_stage = returned_to

    async def _run_parallel(self, step: Parallel, only_stage: str | None) -> str | None:
        """Runs every branch (or, after a return, only the branch holding ``only_stage``) to its end.

        Returns the stage a branch sent the case back to when that stage lies before this step; the
        other branches are abandoned then, since the case will come through them again.
        """
        self._abandoned_steps.discard(step.id)
        branches = [
            (branch, [stage.id for stage in branch].index(only_stage) if only_stage else 0)
            for branch in step.branches
            if only_stage is None or any(stage.id == only_stage for stage in branch)
        ]
        targets = await asyncio.gather(*(self._run_branch(step, branch, start) for branch, start in branches))
        return next((target for target in targets if target is not None), None)

    async def _run_branch(self, step: Parallel, stages: tuple[Stage, ...], start: int) -> str | None:
        ids = [stage.id for stage in stages]
        index = start
        while index < len(stages) and not self._status.is_final and step.id not in self._abandoned_steps:
            run = await self._run_stage(stages[index])
            if run is None or run.outcome != rules.StageOutcome.returned or not run.return_to:
                index += 1
            elif run.return_to in ids:
                index = ids.index(run.return_to)
            else:
                self._abandon_branches(step, reason=f"returned by {run.stage.id} to {run.return_to}")
                return run.return_to
        return None

    def _abandon_branches(self, step: Parallel, *, reason: str) -> None:
        """Stops every still-running stage of a parallel step: its open tasks are cancelled."""
        self._abandoned_steps.add(step.id)
        for stage in (stage for branch in step.branches for stage in branch):
            run = self._runs.get(stage.id)
            if run is None or run.outcome is not None:
                continue
            for task_id in run.task_ids:
                if self._tasks[task_id].status in (TaskStatus.open, TaskStatus.claimed, TaskStatus.waiting):
                    self._cancel_task(self._tasks[task_id], reason=reason)
            self._stop_clock(f"stage:{stage.id}:{run.round}")
            run.outcome = rules.StageOutcome.abandoned
            self._emit(
                "stage.abandoned",
                actor=SYSTEM,
                legal_basis=stage.legal_basis,
                stage_id=stage.id,
                payload={"round": run.round, "reason": reason},
            )

    def _step_index(self, stage_id: str) -> int:
        for index, step in enumerate(self._definition.steps):
            stages = [step] if isinstance(step, Stage) else [s for branch in step.branches for s in branch]
            if any(stage.id == stage_id for stage in stages):
                return index
        raise ValueError(f"unknown stage {stage_id}")

    async def _run_stage(self, stage: Stage) -> StageRun | None:
        """Opens the stage's tasks, waits until its routing rule decides, and applies the outcome."""
        if not rules.condition_holds(stage.when, self._case.data):
            self._emit(
                "stage.skipped",
                actor=SYSTEM,
                legal_basis=stage.legal_basis,
                stage_id=stage.id,
                payload={"condition": stage.when.model_dump(mode="json") if stage.when else None},
            )
            await self._record()
            return None
        while True:
            run = self._open_stage(stage)
            await self._record()
            await workflow.wait_condition(lambda run=run: run.outcome is not None or self._status.is_final)
            if self._status.is_final or run.outcome != rules.StageOutcome.no_quorum:
                break
        self._active_stages.remove(stage.id)
        self._set_stage_attribute()
        if run.outcome == rules.StageOutcome.rejected and stage.on_reject is OnReject.end_case:
            self._close(
                CaseStatus.rejected, actor=SYSTEM, legal_basis=stage.legal_basis, reason=f"rejected at {stage.id}"
            )
        elif run.outcome in rules.APPROVING_OUTCOMES and self._starts_case_clock(stage):
            self._start_case_clock()
        await self._record()
        return run

    def _open_stage(self, stage: Stage) -> StageRun:
        round_ = self._rounds.get(stage.id, 0) + 1
        self._rounds[stage.id] = round_
        run = StageRun(stage=stage, round=round_)
        self._runs[stage.id] = run
        if stage.id not in self._active_stages:
            self._active_stages.append(stage.id)
        self._set_stage_attribute()
        clock_key = None
        if stage.deadline:
            clock_key = f"stage:{stage.id}:{round_}"
            self._start_clock(
                Clock(
                    key=clock_key,
                    label=stage.title,
                    legal_basis=stage.legal_basis,
                    due_at=self._add_working_days(workflow.now(), stage.deadline.working_days),
                    remind_before=stage.deadline.remind_before_working_days,
                    escalate_to_role=stage.deadline.escalate_to_role,
                    stage_id=stage.id,
                ),
                working_days=stage.deadline.working_days,
            )
        self._emit(
            "stage.started",
            actor=SYSTEM,
            legal_basis=stage.legal_basis,
            stage_id=stage.id,
            payload={
                "title": stage.title,
                "round": round_,
                "mode": stage.mode.value,
                "assignees": list(stage.assignees),
                "candidate_roles": list(stage.candidate_roles),
                "due_at": self._clock_due(clock_key),
            },
        )
        if stage.assignees:
            previous: str | None = None
            for assignee in stage.assignees:
                waits = previous if stage.mode is RoutingMode.sequential else None
                task = self._new_task(run, assignee_id=assignee, waiting_for=waits, clock_key=clock_key)
                previous = task.id
        else:
            self._new_task(run, assignee_id=None, waiting_for=None, clock_key=clock_key)
        return run

    def _new_task(
        self,
        run: StageRun,
        *,
        assignee_id: str | None,
        waiting_for: str | None,
        clock_key: str | None,
        added_by: Principal | None = None,
    ) -> Task:
        number = self._task_numbers.get(run.stage.id, 0) + 1
        self._task_numbers[run.stage.id] = number
        task = Task(
            id=f"{self._case_id}/{run.stage.id}/{number}",
            stage_id=run.stage.id,
            round=run.round,
            status=TaskStatus.waiting if waiting_for else TaskStatus.open,
            assignee_id=assignee_id,
            candidate_roles=() if assignee_id else run.stage.candidate_roles,
            created_at=workflow.now(),
            clock_key=clock_key,
            waiting_for=waiting_for,
            added_by=added_by.id if added_by else None,
        )
        self._tasks[task.id] = task
        run.task_ids.append(task.id)
        self._dirty_tasks.add(task.id)
        event = self._emit(
            "task.created",
            actor=added_by or SYSTEM,
            legal_basis=run.stage.legal_basis,
            stage_id=run.stage.id,
            task_id=task.id,
            payload={
                "assignee_id": assignee_id,
                "candidate_roles": list(task.candidate_roles),
                "waiting_for": waiting_for,
                "round": run.round,
                "due_at": self._clock_due(clock_key),
            },
        )
        if task.status is TaskStatus.open:
            self._notify_task_holders(task, "task.assigned", event)
        return task

    def _settle(self, run: StageRun, *, actor: Principal) -> None:
        """Applies the routing rule after a task changed; closes the stage once it is decided."""
        if run.outcome is not None:
            return
        tasks = [self._tasks[task_id] for task_id in run.task_ids]
        facts = [
            rules.TaskFacts(
                counts=task.status is not TaskStatus.cancelled,
                decided=task.decision,
                expired=task.status is TaskStatus.expired,
            )
            for task in tasks
        ]
        outcome = rules.stage_outcome(run.stage.mode, facts, run.stage.quorum)
        if outcome is None:
            return
        if run.stage.mode is RoutingMode.quorum and run.stage.quorum:
            run.tally = rules.tally_votes([f.decided for f in facts if f.counts], run.stage.quorum).as_dict()
        for task in tasks:
            if task.status in (TaskStatus.open, TaskStatus.claimed, TaskStatus.waiting):
                self._cancel_task(task, reason=f"stage {run.stage.id} decided: {outcome}")
        conditions = rules.merge_conditions([t.conditions for t in tasks if t.status is TaskStatus.completed])
        self._stop_clock(f"stage:{run.stage.id}:{run.round}")
        run.outcome = outcome
        self._results[run.stage.id] = StageResult(
            stage_id=run.stage.id,
            outcome=outcome,
            round=run.round,
            conditions=conditions,
            decided_at=workflow.now(),
            tally=run.tally,
        )
        self._emit(
            "stage.completed",
            actor=actor,
            legal_basis=run.stage.legal_basis,
            stage_id=run.stage.id,
            payload={
                "outcome": outcome,
                "round": run.round,
                "conditions": conditions,
                "tally": run.tally,
                "return_to": run.return_to,
            },
        )

    def _decide_case(self) -> None:
        last_step = self._definition.steps[-1]
        final_stages = [last_step] if isinstance(last_step, Stage) else [b[-1] for b in last_step.branches]
        outcomes = [self._results[s.id].outcome for s in final_stages if s.id in self._results]
        self._outcome = rules.case_outcome(outcomes)
        status = {
            rules.StageOutcome.approved: CaseStatus.approved,
            rules.StageOutcome.approved_with_conditions: CaseStatus.approved_with_conditions,
            rules.StageOutcome.rejected: CaseStatus.rejected,
        }[self._outcome]
        self._stop_all_clocks()
        self._emit(
            "case.decided",
            actor=SYSTEM,
            legal_basis=final_stages[-1].legal_basis,
            payload={"outcome": self._outcome, "conditions": self.merged_conditions()},
        )
        self._set_status(status)

    def _close(self, status: CaseStatus, *, actor: Principal, legal_basis: str, reason: str) -> None:
        """Ends the case early (withdrawn, or rejected by a veto stage): every open task is cancelled."""
        for task in self._tasks.values():
            if task.status in (TaskStatus.open, TaskStatus.claimed, TaskStatus.waiting):
                self._cancel_task(task, reason=reason)
        self._stop_all_clocks()
        self._outcome = status.value
        self._emit(f"case.{status.value}", actor=actor, legal_basis=legal_basis, payload={"reason": reason})
        self._set_status(status)

    def _cancel_task(self, task: Task, *, reason: str) -> None:
        task.status = TaskStatus.cancelled
        task.touch()
        self._dirty_tasks.add(task.id)
        stage = self._definition.stage(task.stage_id)
        self._emit(
            "task.cancelled",
            actor=SYSTEM,
            legal_basis=stage.legal_basis,
            stage_id=stage.id,
            task_id=task.id,
            payload={"reason": reason},
        )

    def merged_conditions(self) -> list[str]:
        return rules.merge_conditions([result.conditions for result in self._results.values()])

    # ------------------------------------------------------------------ status, search attributes

    def _set_status(self, status: CaseStatus) -> None:
        if status is self._status:
            return
        previous, self._status = self._status, status
        workflow.upsert_search_attributes([CASE_STATUS.value_set(status.value)])
        if self._case.callback_url:
            self._send(
                Notification(
                    idempotency_key=f"{self._case_id}/{self._last_seq}/callback",
                    case_id=self._case_id,
                    channel=Channel.webhook,
                    kind="case.status_changed",
                    recipient=str(self._case.callback_url),
                    subject=f"{self._case.title}: {previous.value} -> {status.value}",
                    data={
                        "case_id": self._case_id,
                        "business_key": self._case.business_key,
                        "process": self._definition.process,
                        "previous_status": previous.value,
                        "status": status.value,
                        "seq": self._last_seq,
                        "conditions": self.merged_conditions(),
                    },
                )
            )

    def _set_stage_attribute(self) -> None:
        workflow.upsert_search_attributes([CASE_STAGE.value_set(",".join(self._active_stages) or "-")])

    # ------------------------------------------------------------------ clocks (working-day deadlines)

    def _calendar_result(self, result: CalendarResult, purpose: str) -> None:
        """Records, once per year, that a deadline was counted on weekends only for want of a schedule."""
        for year in result.assumed_years:
            warning = f"no official holiday schedule for {year}: working days counted as Monday-Friday"
            if warning not in self._warnings:
                self._warnings.append(warning)
                self._emit(
                    "case.calendar_assumption",
                    actor=SYSTEM,
                    legal_basis=self._definition.legal_basis,
                    payload={"year": year, "purpose": purpose, "assumption": "weekends_only"},
                )

    def _add_working_days(self, start: datetime, days: int) -> datetime:
        assert self._calendar is not None
        result = add_working_days(self._calendar, start, days, beyond_known_years=BeyondKnownYears.weekends_only)
        self._calendar_result(result, "deadline")
        return result.at

    def _working_days_left(self, now: datetime, due: datetime) -> int:
        assert self._calendar is not None
        result = working_days_between(self._calendar, now, due, beyond_known_years=BeyondKnownYears.weekends_only)
        self._calendar_result(result, "clock stopped")
        return result.days

    def _reminder_time(self, clock: Clock) -> datetime | None:
        if clock.remind_before < 1:
            return None
        assert self._calendar is not None
        result = subtract_working_days(
            self._calendar, clock.due_at, clock.remind_before, beyond_known_years=BeyondKnownYears.weekends_only
        )
        self._calendar_result(result, "reminder")
        return result.at

    def _start_clock(self, clock: Clock, *, working_days: int) -> None:
        if self._status is CaseStatus.awaiting_supplement:
            # A period that begins while 补正 stops the clock begins stopped, whole, until the material arrives.
            clock.running = False
            clock.working_days_left = working_days
        clock.remind_at = self._reminder_time(clock)
        self._clocks[clock.key] = clock
        self._clock_epoch += 1

    def _start_case_clock(self) -> None:
        deadline = self._definition.deadline
        assert deadline is not None
        clock = Clock(
            key="case",
            label="statutory period",
            legal_basis=deadline.legal_basis,
            due_at=self._add_working_days(workflow.now(), deadline.working_days),
            remind_before=deadline.remind_before_working_days,
            escalate_to_role=deadline.escalate_to_role,
        )
        self._start_clock(clock, working_days=deadline.working_days)
        self._emit(
            "clock.started",
            actor=SYSTEM,
            legal_basis=deadline.legal_basis,
            payload={"clock": "case", "working_days": deadline.working_days, "due_at": clock.due_at.isoformat()},
        )

    def _starts_case_clock(self, stage: Stage) -> bool:
        deadline = self._definition.deadline
        return bool(deadline and deadline.starts_after_stage == stage.id and "case" not in self._clocks)

    def _stop_clock(self, key: str) -> None:
        if self._clocks.pop(key, None) is not None:
            self._clock_epoch += 1

    def _stop_all_clocks(self) -> None:
        self._clocks.clear()
        self._clock_epoch += 1

    def _clock_due(self, key: str | None) -> str | None:
        clock = self._clocks.get(key) if key else None
        return clock.due_at.isoformat() if clock else None

    def _pause_clocks(self) -> None:
        now = workflow.now()
        for clock in self._clocks.values():
            clock.running = False
            clock.working_days_left = self._working_days_left(now, clock.due_at)
        self._clock_epoch += 1

    def _resume_clocks(self) -> None:
        """The period goes on from where it stopped: the working days left when 补正 was requested remain.

        A clock already overdue stays overdue; one stopped on its last day gets that day back.
        """
        now = workflow.now()
        for clock in self._clocks.values():
            clock.running = True
            if not clock.escalated:
                clock.due_at = self._add_working_days(now, max(1, clock.working_days_left))
                clock.remind_at = self._reminder_time(clock)
                clock.reminded = False
        self._clock_epoch += 1

    async def _watch_clocks(self) -> None:
        """One timer loop for every running clock: reminders before the due time, escalation at it."""
        while not self._finished:
            now = workflow.now()
            if self._fire_clocks(now):
                await self._record()
            wake_times = [
                moment
                for clock in self._clocks.values()
                if clock.running
                for moment in (
                    clock.remind_at if not clock.reminded else None,
                    clock.due_at if not clock.escalated else None,
                )
                if moment is not None
            ]
            epoch = self._clock_epoch
            timeout = (min(wake_times) - workflow.now()).total_seconds() if wake_times else None
            try:
                await workflow.wait_condition(
                    lambda epoch=epoch: self._finished or self._clock_epoch != epoch,
                    timeout=max(timeout, 0.001) if timeout is not None else None,
                )
            except TimeoutError:
                pass

    def _fire_clocks(self, now: datetime) -> bool:
        fired = False
        for clock in list(self._clocks.values()):
            if not clock.running:
                continue
            if clock.remind_at and not clock.reminded and now >= clock.remind_at and now < clock.due_at:
                clock.reminded = True
                fired = True
                event = self._emit(
                    "clock.reminder",
                    actor=SYSTEM,
                    legal_basis=clock.legal_basis,
                    stage_id=clock.stage_id,
                    payload={"clock": clock.key, "due_at": clock.due_at.isoformat()},
                )
                for task in self._clock_tasks(clock):
                    self._notify_task_holders(task, "task.reminder", event)
            if not clock.escalated and now >= clock.due_at:
                clock.escalated = clock.reminded = True
                fired = True
                self._escalate(clock)
        return fired

    def _clock_tasks(self, clock: Clock) -> list[Task]:
        return [
            task
            for task in self._tasks.values()
            if task.status.is_actionable and (clock.stage_id is None or task.clock_key == clock.key)
        ]

    def _escalate(self, clock: Clock) -> None:
        overdue = self._clock_tasks(clock)
        for task in overdue:
            task.overdue = True
            task.touch()
            self._dirty_tasks.add(task.id)
        event = self._emit(
            "clock.escalated",
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
            self._send_log(
                event,
                f"role:{clock.escalate_to_role}",
                "case.escalated",
                f"overdue: {clock.label}",
                {"clock": clock.key, "tasks": [task.id for task in overdue]},
            )
        run = self._runs.get(clock.stage_id) if clock.stage_id else None
        if run and run.stage.mode is RoutingMode.quorum:
            # A vote closes at its deadline: members who did not vote count as absent.
            for task in overdue:
                task.status = TaskStatus.expired
                self._emit(
                    "task.expired",
                    actor=SYSTEM,
                    legal_basis=run.stage.legal_basis,
                    stage_id=run.stage.id,
                    task_id=task.id,
                    payload={"reason": "vote not cast by the deadline; counted as absent"},
                )
            self._settle(run, actor=SYSTEM)

    # ------------------------------------------------------------------ recording and notifications

    def _emit(
        self,
        type_: str,
        *,
        actor: Principal,
        legal_basis: str,
        stage_id: str | None = None,
        task_id: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> DomainEvent:
        event = seal_event(
            case_id=self._case_id,
            seq=self._last_seq + 1,
            type=type_,
            actor=actor,
            at=workflow.now(),
            legal_basis=legal_basis,
            stage_id=stage_id,
            task_id=task_id,
            payload=payload or {},
            prev_hash=self._last_hash,
        )
        self._last_seq, self._last_hash = event.seq, event.hash
        self._unrecorded.append(event)
        workflow.logger.info(
            "%s seq=%d stage=%s task=%s actor=%s basis=%s", type_, event.seq, stage_id, task_id, actor.id, legal_basis
        )
        return event

    async def _record(self) -> None:
        """Writes every unrecorded event with the projections it leads to, one batch at a time, in order."""
        async with self._record_lock:
            if not self._unrecorded and not self._unsent:
                return
            events, self._unrecorded = self._unrecorded, []
            notifications, self._unsent = self._unsent, []
            task_ids, self._dirty_tasks = self._dirty_tasks, set()
            batch = RecordBatch(
                case_id=self._case_id,
                events=events,
                case=self._case_projection(),
                tasks=[self._task_projection(self._tasks[task_id]) for task_id in sorted(task_ids)],
                notifications=notifications,
            )
            try:
                # A regular activity, not a local one: its input is in the history before it writes, so a
                # workflow task lost after the write (a worker killed, a server restart) cannot seal the same
                # seq again with another time and hash; a local activity would write first and be retried
                # with a new `workflow.now()`, and the log refuses a second version of an event.
                await workflow.execute_activity(
                    "record_events",
                    batch,
                    result_type=int,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=RECORD_RETRY,
                )
            except BaseException:  # e.g. AUDIT_CONFLICT or cancellation: nothing sealed may be forgotten
                self._unrecorded = events + self._unrecorded
                self._unsent = notifications + self._unsent
                self._dirty_tasks |= task_ids
                raise

    def _send(self, notification: Notification) -> None:
        """Queues a notification; a failing channel never blocks or fails the case.

        Since "notifications-in-the-record" it travels in the next record batch, written to the outbox in the
        same transaction as the events (the outbox dispatcher delivers it): no activity, no workflow task.
        """
        if workflow.patched("notifications-in-the-record"):
            self._unsent.append(notification)
            return
        self._notifications.append(
            workflow.start_activity(
                "notify",
                notification,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=NOTIFY_RETRY,
            )
        )

    def _send_log(self, event: DomainEvent, recipient: str, kind: str, subject: str, data: dict[str, Any]) -> None:
        self._send(
            Notification(
                idempotency_key=f"{self._case_id}/{event.seq}/log/{recipient}",
                case_id=self._case_id,
                channel=Channel.log,
                kind=kind,
                recipient=recipient,
                subject=subject,
                data={"case_title": self._case.title, "event": event.type, **data},
            )
        )

    def _notify_task_holders(self, task: Task, kind: str, event: DomainEvent, **data: Any) -> None:
        recipients = [task.holder] if task.holder else [f"role:{role}" for role in task.candidate_roles]
        stage = self._definition.stage(task.stage_id)
        for recipient in recipients:
            self._send_log(
                event,
                recipient,
                kind,
                f"{stage.title}: {self._case.title}",
                {"task_id": task.id, "due_at": self._clock_due(task.clock_key), **data},
            )

    # ------------------------------------------------------------------ views and projections

    def _task_view(self, task: Task) -> TaskView:
        stage = self._definition.stage(task.stage_id)
        clock = self._clocks.get(task.clock_key) if task.clock_key else None
        return TaskView(
            task_id=task.id,
            stage_id=task.stage_id,
            stage_title=stage.title,
            legal_basis=stage.legal_basis,
            round=task.round,
            status=task.status,
            version=task.version,
            assignee_id=task.assignee_id,
            candidate_roles=list(task.candidate_roles),
            claimed_by=task.claimed_by,
            delegate_id=task.delegate_id,
            waiting_for=task.waiting_for,
            added_by=task.added_by,
            due_at=clock.due_at if clock else None,
            overdue=task.overdue,
            decision=task.decision,
            decided_by=task.decided_by,
            comment=task.comment,
            conditions=list(task.conditions),
            created_at=task.created_at,
            criteria=list(stage.criteria),
        )

    def _task_projection(self, task: Task) -> TaskProjection:
        view = self._task_view(task)
        return TaskProjection(
            task_id=task.id,
            case_id=self._case_id,
            process=self._definition.process,
            stage_id=task.stage_id,
            stage_title=view.stage_title,
            legal_basis=view.legal_basis,
            status=task.status.value,
            assignee_id=task.assignee_id,
            candidate_roles=list(task.candidate_roles),
            claimed_by=task.claimed_by,
            delegate_id=task.delegate_id,
            priority=self._case.priority,
            due_at=view.due_at,
            overdue=task.overdue,
            decision=task.decision.value if task.decision else None,
            version=task.version,
            created_at=task.created_at,
            updated_at=workflow.now(),
            last_seq=self._last_seq,
        )

    def _clock_state(self) -> str:
        if not self._clocks:
            return "none"
        return "running" if all(clock.running for clock in self._clocks.values()) else "stopped"

    def _case_projection(self) -> CaseProjection:
        case_clock = self._clocks.get("case")
        return CaseProjection(
            case_id=self._case_id,
            process=self._definition.process,
            business_key=self._case.business_key,
            title=self._case.title,
            status=self._status.value,
            current_stages=list(self._active_stages),
            applicant_id=self._case.applicant.id,
            priority=self._case.priority,
            clock_state=self._clock_state(),
            due_at=case_clock.due_at if case_clock else None,
            outcome=self._outcome,
            started_at=self._started_at,
            updated_at=workflow.now(),
            summary={"conditions": self.merged_conditions(), "extended": self._extended},
            last_seq=self._last_seq,
            started_by=self._case.started_by.id,
            observers=list(self._observers),
        )

    @workflow.query
    def view(self) -> CaseView:
        return CaseView(
            case_id=self._case_id,
            process=self._definition.process,
            business_key=self._case.business_key,
            title=self._case.title,
            status=self._status,
            applicant_id=self._case.applicant.id,
            priority=self._case.priority,
            current_stages=list(self._active_stages),
            tasks=[self._task_view(task) for task in self._tasks.values()],
            stage_results=list(self._results.values()),
            clocks=[
                ClockView(
                    key=clock.key,
                    label=clock.label,
                    due_at=clock.due_at,
                    running=clock.running,
                    overdue=clock.escalated,
                )
                for clock in self._clocks.values()
            ],
            clock_state=self._clock_state(),  # type: ignore[arg-type]
            pending_supplement=list(self._pending_supplement),
            extended=self._extended,
            outcome=self._outcome,
            conditions=self.merged_conditions(),
            observers=list(self._observers),
            warnings=list(self._warnings),
            last_seq=self._last_seq,
            last_hash=self._last_hash,
        )

    async def _accepted(self, task: Task | None = None) -> OperationResult:
        """Records what the update did; the caller gets the result once PostgreSQL has it."""
        self._updates_accepted += 1
        await self._record()
        return OperationResult(
            case_id=self._case_id,
            status=self._status,
            last_seq=self._last_seq,
            task=self._task_view(task) if task else None,
        )

    # ------------------------------------------------------------------ validation shared by operations

    def _check_open_case(self) -> None:
        if self._status.is_final:
            raise deny("CASE_CLOSED", f"case {self._case_id} is {self._status.value}; nothing can change it now")

    def _check_not_applicant(self, actor: Principal) -> None:
        if actor.id == self._case.applicant.id:
            raise deny(
                "SEPARATION_OF_DUTIES",
                f"{actor.id} is the applicant of case {self._case_id} and may not act as its reviewer",
            )

    def _task_for(self, request: TaskRequest) -> Task:
        """The task named by the request, open, at the expected version, for an actor other than the applicant."""
        self._check_open_case()
        task = self._tasks.get(request.task_id)
        if task is None:
            raise deny("TASK_NOT_FOUND", f"case {self._case_id} has no task {request.task_id}")
        self._check_not_applicant(request.actor)
        if request.expected_version is not None and request.expected_version != task.version:
            raise deny(
                "STALE_TASK_VERSION",
                f"task {task.id} is at version {task.version}, not {request.expected_version}: reload it",
            )
        if not task.status.is_actionable:
            raise deny("TASK_NOT_OPEN", f"task {task.id} is {task.status.value}, not open")
        return task

    def _check_holder(self, task: Task, actor: Principal) -> None:
        """The actor may work the task: its delegate, claimant or assignee, or a candidate of a pool task."""
        holder = task.holder
        if holder is not None and actor.id != holder:
            if task.claimed_by and not task.delegate_id and not task.assignee_id:
                raise deny("CLAIMED_BY_OTHER", f"task {task.id} is claimed by {task.claimed_by}")
            raise deny("NOT_ASSIGNEE", f"task {task.id} is assigned to {holder}, not {actor.id}")
        if holder is None and not actor.has_any_role(task.candidate_roles):
            raise deny(
                "NOT_ASSIGNEE",
                f"{actor.id} holds none of the roles {list(task.candidate_roles)} of task {task.id}",
            )

    def _check_user(self, user_id: str, what: str) -> None:
        if user_id == self._case.applicant.id:
            raise deny("SEPARATION_OF_DUTIES", f"the applicant {user_id} cannot be made {what} of their own case")

    def _involved(self, actor: Principal, *, observers_count: bool = True) -> bool:
        """Whether the actor takes part: applicant, starter, a role or assignee of the process, a task holder,
        or (when ``observers_count``) someone copied on the case."""
        definition = self._definition
        roles = {role for stage in definition.stages() for role in stage.candidate_roles}
        roles |= {stage.deadline.escalate_to_role for stage in definition.stages() if stage.deadline}
        if definition.deadline:
            roles |= {definition.deadline.extension_role, definition.deadline.escalate_to_role}
        if definition.supplement_role:
            roles.add(definition.supplement_role)
        users = {self._case.applicant.id, self._case.started_by.id}
        if observers_count:
            users |= set(self._observers)
        users |= {user for stage in definition.stages() for user in stage.assignees}
        users |= {
            u for task in self._tasks.values() for u in (task.assignee_id, task.claimed_by, task.delegate_id) if u
        }
        return actor.id in users or actor.has_any_role([r for r in roles if r])

    def _check_optional_budget(self) -> None:
        if self._updates_accepted >= OPTIONAL_UPDATE_BUDGET:
            raise deny(
                "UPDATE_BUDGET_EXHAUSTED",
                f"case {self._case_id} has taken {self._updates_accepted} operations; comments, urges and copies "
                "are closed so that decisions always get through",
            )

    def _check_reassignable(self, task: Task, actor: Principal, target: str) -> None:
        """Transfer and delegation hand a task on; they must not let one person sign twice or dissolve
        accountability."""
        stage = self._definition.stage(task.stage_id)
        if stage.mode is RoutingMode.quorum:
            raise deny(
                "REASSIGN_NOT_ALLOWED", f"a committee member's vote at {stage.id} is personal: it cannot be handed on"
            )
        if task.delegate_id == actor.id:
            raise deny(
                "REASSIGN_NOT_ALLOWED", f"{actor.id} acts for {task.assignee_id or task.claimed_by} and may only decide"
            )
        others = [self._tasks[t] for t in self._runs[stage.id].task_ids if t != task.id]
        if any(target in (o.holder, o.decided_by) for o in others if o.status is not TaskStatus.cancelled):
            raise deny("DUPLICATE_SIGNER", f"{target} already signs at stage {stage.id}; one person, one signature")

    def _check_not_paused(self) -> None:
        if self._status is CaseStatus.awaiting_supplement:
            raise deny(
                "CASE_PAUSED",
                "the case waits for supplementary material (补正); decisions resume when the applicant supplies it",
            )

    # ------------------------------------------------------------------ task operations (Workflow Updates)

    @workflow.update
    async def claim(self, request: ClaimRequest) -> OperationResult:
        self.validate_claim(request)
        task = self._tasks[request.task_id]
        task.claimed_by = request.actor.id
        task.status = TaskStatus.claimed
        self._changed(task, "task.claimed", request.actor, {})
        return await self._accepted(task)

    @claim.validator
    def validate_claim(self, request: ClaimRequest) -> None:
        task = self._task_for(request)
        if task.assignee_id is not None:
            raise deny(
                "NOT_CLAIMABLE", f"task {task.id} is assigned to {task.assignee_id}; only pool tasks are claimed"
            )
        if task.claimed_by is not None:
            raise deny("ALREADY_CLAIMED", f"task {task.id} is already claimed by {task.claimed_by}")
        self._check_holder(task, request.actor)

    @workflow.update
    async def unclaim(self, request: UnclaimRequest) -> OperationResult:
        self.validate_unclaim(request)
        task = self._tasks[request.task_id]
        task.claimed_by = None
        task.delegate_id = None
        task.status = TaskStatus.open
        self._changed(task, "task.unclaimed", request.actor, {})
        return await self._accepted(task)

    @unclaim.validator
    def validate_unclaim(self, request: UnclaimRequest) -> None:
        task = self._task_for(request)
        if task.claimed_by != request.actor.id:
            raise deny("NOT_CLAIMANT", f"task {task.id} is not claimed by {request.actor.id}")

    @workflow.update
    async def decide(self, request: DecideRequest) -> OperationResult:
        self.validate_decide(request)
        task = self._tasks[request.task_id]
        run = self._runs[task.stage_id]
        task.status = TaskStatus.completed
        task.decision = request.decision
        task.decided_by = request.actor.id
        task.comment = request.comment
        task.conditions = list(request.conditions)
        if request.decision is Decision.return_:
            run.return_to = request.return_to or self._default_return_target(run.stage)
        owner = (task.assignee_id or task.claimed_by) if task.delegate_id else None
        event = self._changed(
            task,
            "task.decided",
            request.actor,
            {
                "decision": request.decision.value,
                "comment": request.comment,
                "conditions": request.conditions,
                "return_to": run.return_to if request.decision is Decision.return_ else None,
                "on_behalf_of": owner,
                "findings": [finding.model_dump(mode="json") for finding in request.findings],
            },
        )
        if owner:  # the owner stays accountable for what the delegate decided, so they are told
            self._send_log(
                event,
                owner,
                "task.decided_by_delegate",
                f"{run.stage.title}: {self._case.title}",
                {"task_id": task.id, "delegate": request.actor.id, "decision": request.decision.value},
            )
        if request.decision in rules.APPROVING:
            self._activate_waiting_on(task)
        self._settle(run, actor=request.actor)
        return await self._accepted(task)

    @decide.validator
    def validate_decide(self, request: DecideRequest) -> None:
        task = self._task_for(request)
        stage = self._definition.stage(task.stage_id)
        if stage.mode is not RoutingMode.any and any(
            self._tasks[other].decided_by == request.actor.id for other in self._runs[stage.id].task_ids
        ):
            if stage.mode is RoutingMode.quorum:
                raise deny("DUPLICATE_VOTE", f"{request.actor.id} has already voted in stage {stage.id}")
            raise deny("ALREADY_SIGNED", f"{request.actor.id} has already signed at stage {stage.id}")
        self._check_holder(task, request.actor)
        self._check_not_paused()
        if request.decision not in stage.allowed_decisions:
            allowed = ", ".join(d.value for d in stage.allowed_decisions)
            raise deny(
                "DECISION_NOT_ALLOWED",
                f"decision {request.decision.value} is not allowed at stage {stage.id} (allowed: {allowed})",
            )
        if request.needs_comment and not request.comment.strip():
            raise deny("COMMENT_REQUIRED", f"a {request.decision.value} needs a comment giving the reasons")
        if request.decision in rules.APPROVING:
            blocking = [s for s in stage.approval_blocked_by if self._result_outcome(s) == rules.StageOutcome.rejected]
            if blocking:
                raise deny(
                    "APPROVAL_BLOCKED",
                    f"cannot approve at {stage.id} while {', '.join(blocking)} stands rejected; "
                    "reject, or return the case to that stage for re-review",
                )
        if request.decision is Decision.return_:
            self._check_return_target(stage, request.return_to)
        elif stage.criteria:
            self._check_findings(stage, request)

    def _check_findings(self, stage: Stage, request: DecideRequest) -> None:
        """A decision on statutory criteria states a finding on each, once, and on nothing else."""
        given = [finding.criterion for finding in request.findings]
        missing = [criterion for criterion in stage.criteria if criterion not in given]
        unknown = [criterion for criterion in given if criterion not in stage.criteria]
        repeated = sorted({criterion for criterion in given if given.count(criterion) > 1})
        failing = [finding.criterion for finding in request.findings if not finding.holds]
        if request.decision in rules.APPROVING and failing and not (missing or unknown or repeated):
            raise deny(
                "FINDINGS_CONTRADICT_APPROVAL",
                f"stage {stage.id} cannot approve while criteria {failing} do not hold: reject, or correct them",
            )
        if missing or unknown or repeated:
            raise deny(
                "FINDINGS_INCOMPLETE",
                f"stage {stage.id} decides on the criteria {list(stage.criteria)}: "
                + "; ".join(
                    part
                    for part in (
                        f"no finding on {missing}" if missing else "",
                        f"unknown criteria {unknown}" if unknown else "",
                        f"more than one finding on {repeated}" if repeated else "",
                    )
                    if part
                ),
            )

    def _result_outcome(self, stage_id: str) -> str | None:
        result = self._results.get(stage_id)
        return result.outcome if result else None

    def _default_return_target(self, stage: Stage) -> str:
        target = self._return_targets(stage)
        return target[-1]

    def _return_targets(self, stage: Stage) -> list[str]:
        """Stages a return from ``stage`` may go back to, nearest last: decided stages of earlier steps,
        then, inside a parallel branch, the earlier stages of the same branch."""
        earlier: list[str] = []
        for step in self._definition.steps:
            if isinstance(step, Stage):
                if step.id == stage.id:
                    break
                stages = [step]
            else:
                branch = next((b for b in step.branches if any(s.id == stage.id for s in b)), None)
                if branch is not None:
                    ids = [s.id for s in branch]
                    earlier.extend(ids[: ids.index(stage.id)])
                    break
                stages = [s for b in step.branches for s in b]
            earlier.extend(s.id for s in stages)
        return [stage_id for stage_id in earlier if stage_id in self._results]

    def _check_return_target(self, stage: Stage, target: str | None) -> None:
        targets = self._return_targets(stage)
        if target is None and targets:
            return
        if target not in targets:
            raise deny(
                "INVALID_RETURN_TARGET",
                f"stage {stage.id} can return to {targets or 'no earlier stage'}, not {target!r}",
            )

    def _activate_waiting_on(self, done: Task) -> None:
        for task in self._tasks.values():
            if task.waiting_for == done.id and task.status is TaskStatus.waiting:
                task.waiting_for = None
                task.status = TaskStatus.open
                event = self._changed(task, "task.activated", SYSTEM, {"after": done.id})
                self._notify_task_holders(task, "task.assigned", event)

    @workflow.update
    async def transfer(self, request: TransferRequest) -> OperationResult:
        self.validate_transfer(request)
        task = self._tasks[request.task_id]
        previous = task.holder
        task.assignee_id = request.to_user
        task.candidate_roles = ()
        task.claimed_by = task.delegate_id = None
        task.status = TaskStatus.open
        event = self._changed(
            task,
            "task.transferred",
            request.actor,
            {"from": previous, "to": request.to_user, "comment": request.comment},
        )
        self._notify_task_holders(task, "task.assigned", event)
        return await self._accepted(task)

    @transfer.validator
    def validate_transfer(self, request: TransferRequest) -> None:
        task = self._task_for(request)
        self._check_holder(task, request.actor)
        self._check_user(request.to_user, "the reviewer")
        if request.to_user == task.holder:
            raise deny("INVALID_TARGET", f"task {task.id} is already with {request.to_user}")
        self._check_reassignable(task, request.actor, request.to_user)

    @workflow.update
    async def delegate(self, request: DelegateRequest) -> OperationResult:
        self.validate_delegate(request)
        task = self._tasks[request.task_id]
        if task.assignee_id is None:
            task.claimed_by = request.actor.id  # the owner who stays accountable
            task.status = TaskStatus.claimed
        task.delegate_id = request.to_user
        event = self._changed(
            task,
            "task.delegated",
            request.actor,
            {"owner": request.actor.id, "delegate": request.to_user, "comment": request.comment},
        )
        self._notify_task_holders(task, "task.assigned", event)
        return await self._accepted(task)

    @delegate.validator
    def validate_delegate(self, request: DelegateRequest) -> None:
        task = self._task_for(request)
        if task.delegate_id is not None:
            raise deny("ALREADY_DELEGATED", f"task {task.id} is already delegated to {task.delegate_id}")
        self._check_holder(task, request.actor)
        self._check_user(request.to_user, "a delegate")
        if request.to_user == request.actor.id:
            raise deny("INVALID_TARGET", "a task cannot be delegated to its own holder")
        self._check_reassignable(task, request.actor, request.to_user)

    @workflow.update
    async def add_signer(self, request: AddSignerRequest) -> OperationResult:
        self.validate_add_signer(request)
        task = self._tasks[request.task_id]
        run = self._runs[task.stage_id]
        if request.position == "before":
            added = self._new_task(
                run, assignee_id=request.signer, waiting_for=None, clock_key=task.clock_key, added_by=request.actor
            )
            task.waiting_for = added.id
            task.status = TaskStatus.waiting
        else:
            added = self._new_task(
                run, assignee_id=request.signer, waiting_for=task.id, clock_key=task.clock_key, added_by=request.actor
            )
            for other in self._tasks.values():
                if other.waiting_for == task.id and other.id != added.id:
                    other.waiting_for = added.id
                    self._dirty_tasks.add(other.id)
        self._changed(
            task,
            "task.signer_added",
            request.actor,
            {
                "signer": request.signer,
                "position": request.position,
                "added_task_id": added.id,
                "comment": request.comment,
            },
        )
        return await self._accepted(task)

    @add_signer.validator
    def validate_add_signer(self, request: AddSignerRequest) -> None:
        task = self._task_for(request)
        self._check_holder(task, request.actor)
        stage = self._definition.stage(task.stage_id)
        if stage.mode not in ROUTING_WITH_SIGNERS:
            raise deny("ADD_SIGNER_NOT_ALLOWED", f"signers cannot be added to a {stage.mode.value} stage")
        self._check_user(request.signer, "a signer")
        if task.delegate_id == request.actor.id:
            raise deny("REASSIGN_NOT_ALLOWED", f"{request.actor.id} acts for another and may only decide")
        holders = {
            self._tasks[t].holder
            for t in self._runs[stage.id].task_ids
            if self._tasks[t].status is not TaskStatus.cancelled
        }
        if request.signer in holders or request.signer == request.actor.id:
            raise deny("DUPLICATE_SIGNER", f"{request.signer} already signs at stage {stage.id}")

    @workflow.update
    async def urge(self, request: UrgeRequest) -> OperationResult:
        self.validate_urge(request)
        task = self._tasks[request.task_id]
        event = self._emit(
            "task.urged",
            actor=request.actor,
            legal_basis=self._definition.stage(task.stage_id).legal_basis,
            stage_id=task.stage_id,
            task_id=task.id,
            payload={"comment": request.comment},
        )
        self._last_urged[(task.id, request.actor.id)] = workflow.now()
        self._notify_task_holders(task, "task.urged", event, comment=request.comment)
        return await self._accepted(task)

    @urge.validator
    def validate_urge(self, request: UrgeRequest) -> None:
        self._check_open_case()
        task = self._tasks.get(request.task_id)
        if task is None or not task.status.is_actionable:
            raise deny("TASK_NOT_OPEN", f"case {self._case_id} has no open task {request.task_id}")
        if not self._involved(request.actor):
            raise deny("NOT_INVOLVED", f"{request.actor.id} takes no part in case {self._case_id}")
        self._check_optional_budget()
        last = self._last_urged.get((task.id, request.actor.id))
        if last is not None and workflow.now() - last < URGE_INTERVAL:
            raise deny("URGED_RECENTLY", f"{request.actor.id} urged task {task.id} at {last.isoformat()}; once a day")

    @workflow.update
    async def comment(self, request: CommentRequest) -> OperationResult:
        self.validate_comment(request)
        task = self._tasks.get(request.task_id) if request.task_id else None
        self._emit(
            "case.commented",
            actor=request.actor,
            legal_basis=self._definition.stage(task.stage_id).legal_basis if task else self._definition.legal_basis,
            stage_id=task.stage_id if task else None,
            task_id=task.id if task else None,
            payload={"text": request.text},
        )
        return await self._accepted(task)

    @comment.validator
    def validate_comment(self, request: CommentRequest) -> None:
        if request.task_id is not None and request.task_id not in self._tasks:
            raise deny("TASK_NOT_FOUND", f"case {self._case_id} has no task {request.task_id}")
        if not self._involved(request.actor):
            raise deny("NOT_INVOLVED", f"{request.actor.id} takes no part in case {self._case_id}")
        self._check_optional_budget()

    @workflow.update
    async def cc(self, request: CcRequest) -> OperationResult:
        self.validate_cc(request)
        new = [observer for observer in request.observers if observer not in self._observers]
        self._observers.extend(new)
        event = self._emit(
            "case.cc",
            actor=request.actor,
            legal_basis=self._definition.legal_basis,
            task_id=request.task_id,
            payload={"observers": request.observers, "comment": request.comment},
        )
        for observer in request.observers:
            self._send_log(
                event,
                observer,
                "case.cc",
                f"抄送: {self._case.title}",
                {"comment": request.comment, "from": request.actor.id},
            )
        return await self._accepted(self._tasks.get(request.task_id) if request.task_id else None)

    @cc.validator
    def validate_cc(self, request: CcRequest) -> None:
        if request.task_id is not None and request.task_id not in self._tasks:
            raise deny("TASK_NOT_FOUND", f"case {self._case_id} has no task {request.task_id}")
        self._check_not_applicant(request.actor)
        if not self._involved(request.actor, observers_count=False):
            raise deny("NOT_INVOLVED", f"{request.actor.id} may not copy others on case {self._case_id}")
        self._check_optional_budget()

    def _changed(self, task: Task, type_: str, actor: Principal, payload: dict[str, Any]) -> DomainEvent:
        task.touch()
        self._dirty_tasks.add(task.id)
        return self._emit(
            type_,
            actor=actor,
            legal_basis=self._definition.stage(task.stage_id).legal_basis,
            stage_id=task.stage_id,
            task_id=task.id,
            payload={**payload, "version": task.version},
        )

    # ------------------------------------------------------------------ case operations (Workflow Updates)

    @workflow.update
    async def withdraw(self, request: WithdrawRequest) -> OperationResult:
        self.validate_withdraw(request)
        self._close(
            CaseStatus.withdrawn, actor=request.actor, legal_basis=self._definition.legal_basis, reason=request.reason
        )
        return await self._accepted()

    @withdraw.validator
    def validate_withdraw(self, request: WithdrawRequest) -> None:
        self._check_open_case()
        if request.actor.id not in (self._case.applicant.id, self._case.started_by.id):
            raise deny("NOT_APPLICANT", f"only the applicant may withdraw case {self._case_id}")

    @workflow.update
    async def request_supplement(self, request: RequestSupplementRequest) -> OperationResult:
        self.validate_request_supplement(request)
        self._pending_supplement = list(request.items)
        self._pause_clocks()
        event = self._emit(
            "case.supplement_requested",
            actor=request.actor,
            legal_basis=SUPPLEMENT_LEGAL_BASIS,
            payload={
                "items": [item.model_dump() for item in request.items],
                "comment": request.comment,
                "working_days_left": {clock.key: clock.working_days_left for clock in self._clocks.values()},
            },
        )
        self._status_before_supplement = self._status
        self._set_status(CaseStatus.awaiting_supplement)
        self._send_log(
            event,
            self._case.applicant.id,
            "case.supplement_requested",
            f"补正: {self._case.title}",
            {"items": [item.model_dump() for item in request.items]},
        )
        return await self._accepted()

    @request_supplement.validator
    def validate_request_supplement(self, request: RequestSupplementRequest) -> None:
        self._check_open_case()
        self._check_not_applicant(request.actor)
        if self._status is CaseStatus.awaiting_supplement:
            raise deny(
                "SUPPLEMENT_ALREADY_PENDING",
                "a request for supplementary material is already pending; everything missing is listed at once",
            )
        role = self._definition.supplement_role
        may = role is not None and role in request.actor.roles
        for task in self._tasks.values():
            stage = self._definition.stage(task.stage_id)
            if task.status.is_actionable and stage.may_request_supplement:
                try:
                    self._check_holder(task, request.actor)
                    may = True
                except ApplicationError:
                    pass
        if not may:
            raise deny(
                "NOT_ALLOWED",
                f"{request.actor.id} may not request supplementary material: it needs an open task at a stage "
                f"that allows it{f' or the role {role}' if role else ''}",
            )

    @workflow.update
    async def supplement(self, request: SupplementRequest) -> OperationResult:
        self.validate_supplement(request)
        requested, self._pending_supplement = self._pending_supplement, []
        self._resume_clocks()
        self._emit(
            "case.supplemented",
            actor=request.actor,
            legal_basis=SUPPLEMENT_LEGAL_BASIS,
            payload={
                "requested": [item.model_dump() for item in requested],
                "documents": [document.model_dump() for document in request.documents],
                "comment": request.comment,
                "due_at": {clock.key: clock.due_at.isoformat() for clock in self._clocks.values()},
            },
        )
        for task in self._tasks.values():
            if task.status.is_actionable:
                self._dirty_tasks.add(task.id)
        self._set_status(self._status_before_supplement)
        return await self._accepted()

    @supplement.validator
    def validate_supplement(self, request: SupplementRequest) -> None:
        self._check_open_case()
        if request.actor.id not in (self._case.applicant.id, self._case.started_by.id):
            raise deny("NOT_APPLICANT", f"only the applicant supplies material for case {self._case_id}")
        if self._status is not CaseStatus.awaiting_supplement:
            raise deny("NO_SUPPLEMENT_PENDING", f"case {self._case_id} is not waiting for supplementary material")

    @workflow.update
    async def extend(self, request: ExtendRequest) -> OperationResult:
        self.validate_extend(request)
        deadline = self._definition.deadline
        assert deadline is not None
        clock = self._clocks["case"]
        previous = clock.due_at
        if not clock.running:  # stopped for 补正: the days left grow, the due date follows on resume
            clock.working_days_left += deadline.extension_working_days
        clock.due_at = self._add_working_days(previous, deadline.extension_working_days)
        clock.remind_at = self._reminder_time(clock)
        clock.reminded = clock.escalated = False
        self._extended = True
        self._clock_epoch += 1
        self._emit(
            "case.extended",
            actor=request.actor,
            legal_basis=deadline.legal_basis,
            payload={
                "reason": request.reason,
                "working_days": deadline.extension_working_days,
                "previous_due_at": previous.isoformat(),
                "due_at": clock.due_at.isoformat(),
            },
        )
        return await self._accepted()

    @extend.validator
    def validate_extend(self, request: ExtendRequest) -> None:
        self._check_open_case()
        deadline = self._definition.deadline
        if deadline is None or not deadline.extension_working_days or deadline.extension_role is None:
            raise deny("NO_EXTENSION", f"process {self._definition.process} has no extendable deadline")
        if deadline.extension_role not in request.actor.roles:
            raise deny("NOT_ALLOWED", f"extending the period needs the role {deadline.extension_role}")
        if self._extended:
            raise deny("EXTENSION_USED", "the period has already been extended once")
        if "case" not in self._clocks:
            raise deny("CLOCK_NOT_STARTED", "the statutory period has not started yet")
