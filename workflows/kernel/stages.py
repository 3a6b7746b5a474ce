"""Stages and tasks: running the definition's steps, opening each stage's tasks as its routing policy lays them
out, settling a stage when its policy decides, returns (退回) and parallel branches, and ending the case."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import CaseInput, CaseState, CaseStatus, StageResult, TaskStatus
    from schemas.events import DomainEvent, EventType
    from schemas.principal import SYSTEM, Principal
    from schemas.process import OnReject, Parallel, Stage
    from workflows import rules
    from workflows.kernel.clocks import Clock, Clocks
    from workflows.kernel.recorder import Recorder
    from workflows.kernel.refusal import deny
    from workflows.kernel.remedies import RemedyNotices
    from workflows.kernel.routing import RoutingPolicy
    from workflows.kernel.state import OPEN_STATUSES, StageRun, Task
    from workflows.kernel.status import Status


ACCEPTANCE_WINDOW = "acceptance"
"""The clock of the Art. 32 window: accept, refuse or ask for 补正 in time, or the application counts as accepted."""
EXCLUDED_PERIOD = "excluded"
"""The clock of an Art. 45 excluded period: the deadlines run again at its end."""


def stage_clock_key(run: StageRun) -> str:
    return f"stage:{run.stage.id}:{run.round}"


class Stages:
    def __init__(
        self, case: CaseInput, case_id: str, state: CaseState, recorder: Recorder, clocks: Clocks, status: Status
    ) -> None:
        self._case = case
        self._definition = case.definition
        self._case_id = case_id
        self._state = state
        self._recorder = recorder
        self._clocks = clocks
        self._status = status
        self.tasks: dict[str, Task] = {}
        self.runs: dict[str, StageRun] = {}
        self._abandoned_steps: set[str] = set()
        self._remedies = RemedyNotices(case, recorder, self.tasks)

    def task(self, task_id: str) -> Task:
        """The task, or the TASK_NOT_FOUND refusal. Handlers look tasks up here although their validators
        checked: on replay of a history made by other code the update then fails as it did when recorded
        (and replay reports where the commands diverge) instead of failing the workflow task."""
        task = self.tasks.get(task_id)
        if task is None:
            raise deny("TASK_NOT_FOUND", f"case {self._case_id} has no task {task_id}")
        return task

    # ------------------------------------------------------------------ running the steps

    async def run_steps(self) -> None:
        steps = self._definition.steps
        index, only_stage = 0, None
        while index < len(steps) and not self._status.current.is_final:
            step = steps[index]
            if isinstance(step, Stage):
                run = await self.run_stage(step)
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
        while index < len(stages) and not self._status.current.is_final and step.id not in self._abandoned_steps:
            run = await self.run_stage(stages[index])
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
            run = self.runs.get(stage.id)
            if run is None or run.outcome is not None:
                continue
            for task_id in run.task_ids:
                if self.tasks[task_id].status in OPEN_STATUSES:
                    self.cancel_task(self.tasks[task_id], reason=reason)
            self._clocks.stop(stage_clock_key(run))
            run.outcome = rules.StageOutcome.abandoned
            self._recorder.emit(
                EventType.stage_abandoned,
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

    # ------------------------------------------------------------------ one stage

    async def run_stage(self, stage: Stage) -> StageRun | None:
        """Opens the stage's tasks, waits until its routing policy decides, and applies the outcome."""
        if not rules.condition_holds(stage.when, self._case.data):
            self._recorder.emit(
                EventType.stage_skipped,
                actor=SYSTEM,
                legal_basis=stage.legal_basis,
                stage_id=stage.id,
                payload={"condition": stage.when.model_dump(mode="json") if stage.when else None},
            )
            await self._recorder.record()
            return None
        while True:
            run = self._open_stage(stage)
            await self._recorder.record()
            await workflow.wait_condition(lambda run=run: run.outcome is not None or self._status.current.is_final)
            if self._status.current.is_final or run.outcome != rules.StageOutcome.no_quorum:
                break
        self._status.stage_ended(stage.id)
        if run.outcome == rules.StageOutcome.rejected and stage.on_reject is OnReject.end_case:
            decision = self.close(
                CaseStatus.rejected, actor=SYSTEM, legal_basis=stage.legal_basis, reason=f"rejected at {stage.id}"
            )
            self._remedies.refused(decision, [run])
        elif run.outcome in rules.APPROVING_OUTCOMES and self._starts_case_clock(stage):
            self.start_case_clock()
        await self._recorder.record()
        return run

    def _open_stage(self, stage: Stage) -> StageRun:
        round_ = self._state.rounds.get(stage.id, 0) + 1
        self._state.rounds[stage.id] = round_
        run = StageRun(stage=stage, round=round_)
        self.runs[stage.id] = run
        self._status.stage_started(stage.id)
        clock_key = None
        if stage.deadline:
            clock_key = stage_clock_key(run)
            self._start_clock(
                self._clocks.counted(
                    workflow.now(),
                    stage.deadline.working_days,
                    key=clock_key,
                    label=stage.title,
                    legal_basis=stage.legal_basis,
                    remind_before=stage.deadline.remind_before_working_days,
                    escalate_to_role=stage.deadline.escalate_to_role,
                    stage_id=stage.id,
                ),
                working_days=stage.deadline.working_days,
            )
        self._recorder.emit(
            EventType.stage_started,
            actor=SYSTEM,
            legal_basis=stage.legal_basis,
            stage_id=stage.id,
            payload={
                "title": stage.title,
                "round": round_,
                "mode": stage.mode.value,
                "assignees": list(stage.assignees),
                "candidate_roles": list(stage.candidate_roles),
                "due_at": self._clocks.due_iso(clock_key),
            },
        )
        if stage.assignees:
            in_turn = RoutingPolicy.of(stage).in_turn
            previous: str | None = None
            for assignee in stage.assignees:
                waits = previous if in_turn else None
                task = self.new_task(run, assignee_id=assignee, waiting_for=waits, clock_key=clock_key)
                previous = task.id
        else:
            self.new_task(run, assignee_id=None, waiting_for=None, clock_key=clock_key)
        return run

    def new_task(
        self,
        run: StageRun,
        *,
        assignee_id: str | None,
        waiting_for: str | None,
        clock_key: str | None,
        added_by: Principal | None = None,
    ) -> Task:
        number = self._state.task_numbers.get(run.stage.id, 0) + 1
        self._state.task_numbers[run.stage.id] = number
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
        self.tasks[task.id] = task
        run.task_ids.append(task.id)
        self._recorder.task_changed(task.id)
        event = self._recorder.emit(
            EventType.task_created,
            actor=added_by or SYSTEM,
            legal_basis=run.stage.legal_basis,
            stage_id=run.stage.id,
            task_id=task.id,
            payload={
                "assignee_id": assignee_id,
                "candidate_roles": list(task.candidate_roles),
                "waiting_for": waiting_for,
                "round": run.round,
                "due_at": self._clocks.due_iso(clock_key),
            },
        )
        if task.status is TaskStatus.open:
            self.notify_holders(task, "task.assigned", event)
        return task

    def settle(self, run: StageRun, *, actor: Principal) -> None:
        """Applies the routing policy after a task changed; closes the stage once it is decided."""
        if run.outcome is not None:
            return
        tasks = [self.tasks[task_id] for task_id in run.task_ids]
        facts = [
            rules.TaskFacts(
                counts=task.status is not TaskStatus.cancelled,
                decided=task.decision,
                expired=task.status is TaskStatus.expired,
            )
            for task in tasks
        ]
        policy = RoutingPolicy.of(run.stage)
        outcome = policy.outcome(facts, run.stage.quorum)
        if outcome is None:
            return
        run.tally = policy.tally(facts, run.stage.quorum)
        self._complete(run, outcome, actor=actor, legal_basis=run.stage.legal_basis)

    def complete_by_law(self, run: StageRun, *, legal_basis: str, reason: str) -> None:
        """The law decides the stage (an application counts as accepted): its open tasks are cancelled."""
        self._complete(run, rules.StageOutcome.approved, actor=SYSTEM, legal_basis=legal_basis, reason=reason)

    def _complete(
        self, run: StageRun, outcome: str, *, actor: Principal, legal_basis: str, reason: str | None = None
    ) -> None:
        tasks = [self.tasks[task_id] for task_id in run.task_ids]
        for task in tasks:
            if task.status in OPEN_STATUSES:
                self.cancel_task(task, reason=reason or f"stage {run.stage.id} decided: {outcome}")
        conditions = rules.merge_conditions([t.conditions for t in tasks if t.status is TaskStatus.completed])
        self._clocks.stop(stage_clock_key(run))
        if self._is_acceptance(run.stage):
            self._clocks.stop(ACCEPTANCE_WINDOW)  # decided in time: the window has done its work
        run.outcome = outcome
        self._state.results[run.stage.id] = StageResult(
            stage_id=run.stage.id,
            outcome=outcome,
            round=run.round,
            conditions=conditions,
            decided_at=workflow.now(),
            tally=run.tally,
        )
        self._recorder.emit(
            EventType.stage_completed,
            actor=actor,
            legal_basis=legal_basis,
            stage_id=run.stage.id,
            payload={
                "outcome": outcome,
                "round": run.round,
                "conditions": conditions,
                "tally": run.tally,
                "return_to": run.return_to,
            },
        )

    # ------------------------------------------------------------------ the case's end

    def decide_case(self) -> None:
        last_step = self._definition.steps[-1]
        final_stages = [last_step] if isinstance(last_step, Stage) else [b[-1] for b in last_step.branches]
        results = self._state.results
        outcome = rules.case_outcome([results[s.id].outcome for s in final_stages if s.id in results])
        self._state.outcome = outcome
        status = {
            rules.StageOutcome.approved: CaseStatus.approved,
            rules.StageOutcome.approved_with_conditions: CaseStatus.approved_with_conditions,
            rules.StageOutcome.rejected: CaseStatus.rejected,
        }[outcome]
        self._clocks.stop_all()
        decision = self._recorder.emit(
            EventType.case_decided,
            actor=SYSTEM,
            legal_basis=final_stages[-1].legal_basis,
            payload={"outcome": outcome, "conditions": self._status.merged_conditions()},
        )
        self._status.set(status)
        if status is CaseStatus.rejected:
            rejecting = [s for s in final_stages if s.id in results and results[s.id].outcome == outcome]
            self._remedies.refused(decision, [self.runs[s.id] for s in rejecting])

    def close(self, status: CaseStatus, *, actor: Principal, legal_basis: str, reason: str) -> DomainEvent:
        """Ends the case early (withdrawn, cancelled, or rejected by a veto stage): every open task is cancelled.
        Returns the event that ends it."""
        for task in self.tasks.values():
            if task.status in OPEN_STATUSES:
                self.cancel_task(task, reason=reason)
        self._clocks.stop_all()
        self._state.outcome = status.value
        event = self._recorder.emit(
            EventType(f"case.{status.value}"), actor=actor, legal_basis=legal_basis, payload={"reason": reason}
        )
        self._status.set(status)
        return event

    def cancel_task(self, task: Task, *, reason: str) -> None:
        task.status = TaskStatus.cancelled
        task.touch()
        self._recorder.task_changed(task.id)
        stage = self._definition.stage(task.stage_id)
        self._recorder.emit(
            EventType.task_cancelled,
            actor=SYSTEM,
            legal_basis=stage.legal_basis,
            stage_id=stage.id,
            task_id=task.id,
            payload={"reason": reason},
        )

    # ------------------------------------------------------------------ clocks of the case and of stages

    def _start_clock(self, clock: Clock, *, working_days: int) -> None:
        stopped = self._status.current is CaseStatus.awaiting_supplement or EXCLUDED_PERIOD in self._clocks
        self._clocks.start(clock, working_days=working_days, stopped=stopped)

    def due_times_changed(self) -> None:
        """The deadlines moved (补正, excluded time): the open tasks are written again with their due times."""
        for task in self.tasks.values():
            if task.status.is_actionable:
                self._recorder.task_changed(task.id)

    def start_case_clock(self, *, deemed: bool = False) -> None:
        """The statutory period starts: at acceptance, or from receipt when the application counts as accepted
        (``deemed``, Art. 32). In a case under the statutory rules the acceptance is recorded first, with the
        deadline profile it chose, if any."""
        state = self._state
        deadline = self._definition.period(state.deadline_profile)
        assert deadline is not None
        start = state.started_at if deemed else workflow.now()
        if state.statutory_periods:
            state.accepted_at = start
            chosen = {
                "deadline_profile": state.deadline_profile,
                "period_working_days": deadline.working_days,
                "period_legal_basis": deadline.legal_basis,
                "extension_working_days": deadline.extension_working_days,
            }
            self._recorder.emit(
                EventType.case_accepted,
                actor=SYSTEM,
                legal_basis=deadline.acceptance_legal_basis,
                payload={
                    "received_at": state.started_at.isoformat(),
                    "accepted_at": start.isoformat(),
                    "deemed": deemed,
                    "acceptance_stage": deadline.starts_after_stage,
                    **(chosen if state.deadline_profile else {}),  # cases without a choice recorded as before
                },
            )
        clock = self._clocks.counted(
            start,
            deadline.working_days,
            key="case",
            label="statutory period",
            legal_basis=deadline.legal_basis,
            remind_before=deadline.remind_before_working_days,
            escalate_to_role=deadline.escalate_to_role,
        )
        self._start_clock(clock, working_days=deadline.working_days)
        self._recorder.emit(
            EventType.clock_started,
            actor=SYSTEM,
            legal_basis=deadline.legal_basis,
            payload={"clock": "case", "working_days": deadline.working_days, "due_at": clock.due_at.isoformat()},
        )

    def _starts_case_clock(self, stage: Stage) -> bool:
        return self._is_acceptance(stage) and "case" not in self._clocks

    def _is_acceptance(self, stage: Stage) -> bool:
        deadline = self._definition.deadline
        return bool(deadline and deadline.starts_after_stage == stage.id)

    def clock_tasks(self, clock: Clock) -> list[Task]:
        """The actionable tasks a clock runs for: all of the case's, or those of its stage round."""
        return [
            task
            for task in self.tasks.values()
            if task.status.is_actionable and (clock.stage_id is None or task.clock_key == clock.key)
        ]

    # ------------------------------------------------------------------ task changes

    def changed(
        self, task: Task, type_: EventType, actor: Principal, payload: dict[str, Any], *, legal_basis: str = ""
    ) -> DomainEvent:
        """A new version of the task, recorded as ``type_`` with the version in the payload; under the stage's
        legal basis unless the change has its own."""
        task.touch()
        self._recorder.task_changed(task.id)
        return self._recorder.emit(
            type_,
            actor=actor,
            legal_basis=legal_basis or self._definition.stage(task.stage_id).legal_basis,
            stage_id=task.stage_id,
            task_id=task.id,
            payload={**payload, "version": task.version},
        )

    def activate_waiting_on(self, done: Task) -> None:
        for task in self.tasks.values():
            if task.waiting_for == done.id and task.status is TaskStatus.waiting:
                task.waiting_for = None
                task.status = TaskStatus.open
                event = self.changed(task, EventType.task_activated, SYSTEM, {"after": done.id})
                self.notify_holders(task, "task.assigned", event)

    def notify_holders(self, task: Task, kind: str, event: DomainEvent, **data: Any) -> None:
        recipients = [task.holder] if task.holder else [f"role:{role}" for role in task.candidate_roles]
        stage = self._definition.stage(task.stage_id)
        for recipient in recipients:
            self._recorder.notify(
                event,
                recipient,
                kind,
                f"{stage.title}: {self._case.title}",
                {"task_id": task.id, "due_at": self._clocks.due_iso(task.clock_key), **data},
            )

    # ------------------------------------------------------------------ returns (退回)

    def return_targets(self, stage: Stage) -> list[str]:
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
        return [stage_id for stage_id in earlier if stage_id in self._state.results]
