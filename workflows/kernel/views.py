"""What the case looks like from outside: the ``view`` query, and the rows the recorder writes (projections)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import CaseInput, CaseState, CaseView, ClockView, TaskView
    from schemas.records import CaseProjection, TaskProjection
    from workflows.kernel.clocks import Clocks
    from workflows.kernel.stages import Stages
    from workflows.kernel.state import Task
    from workflows.kernel.status import Status


class Views:
    def __init__(
        self, case: CaseInput, case_id: str, state: CaseState, status: Status, stages: Stages, clocks: Clocks
    ) -> None:
        self._case = case
        self._definition = case.definition
        self._case_id = case_id
        self._state = state
        self._status = status
        self._stages = stages
        self._clocks = clocks

    def task(self, task: Task) -> TaskView:
        stage = self._definition.stage(task.stage_id)
        clock = self._clocks.get(task.clock_key)
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
            due_assumed_years=list(clock.assumed_years) if clock else [],
        )

    def task_projection(self, task: Task) -> TaskProjection:
        view = self.task(task)
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
            last_seq=self._state.last_seq,
            due_assumed_years=view.due_assumed_years,
        )

    def case_projection(self) -> CaseProjection:
        state, case = self._state, self._case
        case_clock = self._clocks.get("case")
        return CaseProjection(
            case_id=self._case_id,
            process=self._definition.process,
            business_key=case.business_key,
            title=case.title,
            status=state.status.value,
            current_stages=list(self._status.active_stages),
            applicant_id=case.applicant.id,
            priority=case.priority,
            clock_state=self._clocks.state,
            due_at=case_clock.due_at if case_clock else None,
            outcome=state.outcome,
            started_at=state.started_at,
            updated_at=workflow.now(),
            summary={"conditions": self._status.merged_conditions(), "extended": state.extended},
            last_seq=state.last_seq,
            started_by=case.started_by.id,
            observers=list(state.observers),
        )

    def case(self) -> CaseView:
        state, case = self._state, self._case
        return CaseView(
            case_id=self._case_id,
            process=self._definition.process,
            business_key=case.business_key,
            title=case.title,
            status=state.status,
            applicant_id=case.applicant.id,
            priority=case.priority,
            current_stages=list(self._status.active_stages),
            tasks=[self.task(task) for task in self._stages.tasks.values()],
            stage_results=list(state.results.values()),
            clocks=[
                ClockView(
                    key=clock.key,
                    label=clock.label,
                    due_at=clock.due_at,
                    running=clock.running,
                    overdue=clock.escalated,
                )
                for clock in self._clocks
            ],
            clock_state=self._clocks.state,  # type: ignore[arg-type]
            pending_supplement=list(state.pending_supplement),
            extended=state.extended,
            outcome=state.outcome,
            conditions=self._status.merged_conditions(),
            observers=list(state.observers),
            warnings=list(state.warnings),
            last_seq=state.last_seq,
            last_hash=state.last_hash,
        )
