"""Recusal (回避): who may not act on a case, and a reviewer's declaration of a conflict of interest.

A public servant recuses themselves from official business touching their own interest, a relative's, or any
other relationship that may affect impartiality (Civil Servants Law Art. 76). The engine reads three grounds:

- the persons the case concerns: any relationship declared when the case was started (``CaseInput.concerned``)
  and those a process finds in its application (``KernelWorkflow.concern``: an Art. 25 case's persons
  concerned, whose own liability it decides);
- a conflict of interest a reviewer declared on one of its tasks (``declare_conflict``), for the rest of the case;
- at a committee vote (a personal stage), membership of the applicant's own unit: a unit does not vote on its
  own case. It compares the principals' ``unit``; a principal without one (or an applicant without one) is not
  held to this rule, since no unit can be compared.

Whatever their role, such a person may not claim, decide or vote, nor be handed a task (transfer, delegation,
加签); the guards refuse it with ``RECUSAL_REQUIRED`` naming the ground.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import CaseInput, CaseState, ConcernedPerson, DeclareConflictRequest, TaskStatus
    from schemas.events import EventType
    from schemas.principal import Principal
    from schemas.process import Stage
    from workflows.kernel.refusal import deny
    from workflows.kernel.routing import RoutingPolicy
    from workflows.kernel.stages import Stages
    from workflows.kernel.state import Task

RECUSAL_LEGAL_BASIS = "Civil Servants Law Art. 76 (公务回避)"


class Recusal:
    def __init__(self, case: CaseInput, case_id: str, state: CaseState, stages: Stages) -> None:
        self._case = case
        self._case_id = case_id
        self._state = state
        self._stages = stages
        self._concerned = list(case.concerned)

    def add(self, persons: Iterable[ConcernedPerson]) -> None:
        """Persons the process finds concerned in its application, besides those the case was started with."""
        self._concerned.extend(persons)

    def started(self) -> dict[str, Any]:
        """What ``case.started`` records of the persons concerned: nothing when there are none, so a case without
        any (every case started before they were recorded) seals its start as before."""
        return (
            {"concerned": [person.model_dump(mode="json") for person in self._case.concerned]}
            if self._case.concerned
            else {}
        )

    def ground(self, user_id: str, *, unit: str = "", stage: Stage | None = None) -> str | None:
        """Why the user must recuse themselves from the case (at ``stage``, for a member of ``unit``), or None."""
        for person in self._concerned:
            if person.user_id == user_id:
                return f"{person.relationship.value}: {person.reason}"
        declared = self._state.recused.get(user_id)
        if declared is not None:
            return f"declared a conflict of interest: {declared}"
        applicant_unit = self._case.applicant.unit.strip()
        if stage is not None and RoutingPolicy.of(stage).personal and applicant_unit and unit.strip() == applicant_unit:
            return f"member of the applicant's unit {applicant_unit}, which does not vote on its own case"
        return None

    def check(self, user_id: str, *, unit: str = "", stage: Stage | None = None, what: str = "act on") -> None:
        ground = self.ground(user_id, unit=unit, stage=stage)
        if ground is not None:
            raise deny(
                "RECUSAL_REQUIRED",
                f"{user_id} must recuse themselves (回避) and may not {what} case {self._case_id}: {ground}",
            )

    def pool(self, task: Task) -> tuple[str, ...]:
        """The roles a task goes to when its holder recuses: the stage's candidates, else its supervisor."""
        stage = self._case.definition.stage(task.stage_id)
        if stage.candidate_roles:
            return stage.candidate_roles
        return (stage.deadline.escalate_to_role,) if stage.deadline and stage.deadline.escalate_to_role else ()

    def check_declaration(self, task: Task, actor: Principal) -> None:
        stage = self._case.definition.stage(task.stage_id)
        if not RoutingPolicy.of(stage).personal and task.delegate_id != actor.id and not self.pool(task):
            raise deny(
                "NO_SUBSTITUTE",
                f"stage {stage.id} has no candidate roles and no supervisor to take task {task.id} over: ask the "
                "holder's superior to transfer it",
            )

    def declare(self, task: Task, request: DeclareConflictRequest) -> None:
        """The declarer recuses themselves from the case. Their task goes on without them: a committee vote is
        withdrawn (the member does not sit, attendance counts those present); a delegated task goes back to its
        owner; any other goes to the pool, which they can no longer claim from."""
        actor, stages = request.actor, self._stages
        stage = self._case.definition.stage(task.stage_id)
        self._state.recused[actor.id] = request.reason
        withdrawn = RoutingPolicy.of(stage).personal
        if task.delegate_id == actor.id:
            task.delegate_id = None
        elif not withdrawn:
            task.claimed_by = None
            if task.assignee_id is not None:
                task.assignee_id, task.candidate_roles = None, self.pool(task)
            task.status = TaskStatus.open
        payload = {
            "relationship": request.relationship.value,
            "reason": request.reason,
            "withdrawn_from_vote": withdrawn,
            "assignee_id": task.assignee_id,
            "candidate_roles": list(task.candidate_roles),
            "claimed_by": task.claimed_by,
            "to": None if withdrawn else task.holder,
        }
        legal_basis = f"{RECUSAL_LEGAL_BASIS}; {stage.legal_basis}"
        event = stages.changed(task, EventType.task_conflict_declared, actor, payload, legal_basis=legal_basis)
        if withdrawn:
            stages.cancel_task(task, reason=f"{actor.id} recused themselves (回避) from the vote")
            stages.settle(stages.runs[stage.id], actor=actor)
        else:
            stages.notify_holders(task, "task.assigned", event)
