"""Recusal (回避): whoever the case concerns may not claim, decide or vote on it, nor be handed one of its tasks,
whatever their role; a reviewer declares a conflict of interest and the task goes on without them.

Whole cases on the Temporal test server and real PostgreSQL. A refusal is an ``ApplicationError`` whose type
is ``RECUSAL_REQUIRED`` and whose message names the ground; the API records it as a denied attempt
(tests/test_api.py, ``test_declare_conflict_route_and_a_recorded_recusal_refusal``).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from approvals.audit.chain import verify_chain
from approvals.audit.state import state_at
from approvals.audit.timeline import timeline
from approvals.processes import GenericStartRequest
from approvals.storage.queries import case_events
from schemas.case import (
    AddSignerRequest,
    CaseStatus,
    CaseView,
    ClaimRequest,
    ConcernedPerson,
    DecideRequest,
    DeclareConflictRequest,
    DelegateRequest,
    Relationship,
    TaskStatus,
    TransferRequest,
    WithdrawRequest,
)
from schemas.error_tolerance import CONDITION_IDS
from schemas.process import Deadline, Decision, QuorumRule, RoutingMode
from tests.cases import (
    APPLICANT,
    CALENDAR,
    decide,
    definition,
    events,
    finished,
    open_tasks,
    person,
    stage,
    start_case,
    view_when,
    wind_up,
)
from tests.test_error_tolerance import INSPECTOR, UNIT_OFFICER, findings
from tests.test_error_tolerance import act as act_on_error_tolerance
from tests.test_error_tolerance import start as start_error_tolerance
from workflows.error_tolerance import ErrorToleranceWorkflow
from workflows.kernel import ApprovalWorkflow

Handle = WorkflowHandle[Any, CaseView]

OFFICER = person("officer-1", "one_window")
OFFICER_2 = person("officer-2", "one_window")
COUSIN = person("officer-3", "one_window")
POOL = definition(stage("acceptance", candidate_roles=("one_window",)))
COUSIN_OF_THE_APPLICANT = ConcernedPerson(
    user_id=COUSIN.id, relationship=Relationship.close_relative, reason="表兄弟 of the applicant's director"
)


async def refused(handle: Handle, operation: Any, request: BaseModel) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(operation, request)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def first_open(handle: Handle, stage_id: str | None = None) -> str:
    view = await view_when(handle, lambda v: bool(open_tasks(v, stage_id)))
    return open_tasks(view, stage_id)[0].task_id


# ---------------------------------------------------------------- declared relationships


async def test_a_declared_relationship_blocks_claiming_deciding_and_being_handed_the_task(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, POOL, concerned=[COUSIN_OF_THE_APPLICANT])
        task_id = await first_open(handle)
        claim = await refused(handle, ApprovalWorkflow.claim, ClaimRequest(actor=COUSIN, task_id=task_id))
        decision = await refused(
            handle, ApprovalWorkflow.decide, DecideRequest(actor=COUSIN, task_id=task_id, decision=Decision.approve)
        )
        await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task_id))
        handed = [
            await refused(handle, operation, request)
            for operation, request in (
                (ApprovalWorkflow.transfer, TransferRequest(actor=OFFICER, task_id=task_id, to_user=COUSIN.id)),
                (ApprovalWorkflow.delegate, DelegateRequest(actor=OFFICER, task_id=task_id, to_user=COUSIN.id)),
                (
                    ApprovalWorkflow.add_signer,
                    AddSignerRequest(actor=OFFICER, task_id=task_id, signer=COUSIN.id, position="after"),
                ),
            )
        ]
        await wind_up(time_skipping_env, handle)

    for cause in (claim, decision, *handed):
        assert cause.type == "RECUSAL_REQUIRED", cause.message
        assert "close_relative" in cause.message and "表兄弟" in cause.message  # the ground is named
    assert "may not be made the reviewer of" in handed[0].message


def test_a_declared_relationship_names_a_user_once_and_states_its_reason() -> None:
    body: dict[str, Any] = {
        "business_key": "K-1",
        "title": "t",
        "applicant": APPLICANT.model_dump(),
        "definition": POOL.model_dump(mode="json"),
    }
    twice = [COUSIN_OF_THE_APPLICANT.model_dump(mode="json")] * 2
    with pytest.raises(ValidationError, match="concerned lists \\['officer-3'\\] more than once"):
        GenericStartRequest.model_validate({**body, "concerned": twice})
    with pytest.raises(ValidationError) as unexplained:
        GenericStartRequest.model_validate(
            {**body, "concerned": [{"user_id": "x", "relationship": "interest", "reason": ""}]}
        )
    assert unexplained.value.errors()[0]["loc"] == ("concerned", 0, "reason")


# ---------------------------------------------------------------- declaring a conflict of interest


async def test_declaring_a_conflict_returns_the_task_to_the_pool_on_record_and_the_declarer_is_out(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    reason = "I hold shares in the applicant"
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, POOL)
        task_id = await first_open(handle)
        await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task_id))
        declared = await handle.execute_update(
            ApprovalWorkflow.declare_conflict, DeclareConflictRequest(actor=OFFICER, task_id=task_id, reason=reason)
        )
        again = await refused(handle, ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task_id))
        await decide(handle, OFFICER_2, task_id, Decision.approve)
        result = await finished(time_skipping_env, handle)

    assert declared.task.status is TaskStatus.open and declared.task.claimed_by is None
    assert declared.task.candidate_roles == ["one_window"]
    assert again.type == "RECUSAL_REQUIRED" and reason in again.message
    assert result.status is CaseStatus.approved and result.tasks[0].decided_by == OFFICER_2.id
    [event] = await events(db_pool, handle.id, "task.conflict_declared")
    assert event["actor_id"] == OFFICER.id and event["at"] is not None
    assert event["legal_basis"] == "Civil Servants Law Art. 76 (公务回避); Art. 10"
    assert event["payload"]["reason"] == reason and event["payload"]["relationship"] == "interest"
    chain = await case_events(db_pool, handle.id)
    assert verify_chain(chain) == []
    [folded] = [t for t in state_at(chain, seq=event["seq"]).tasks if t.task_id == task_id]
    assert (folded.status, folded.claimed_by, folded.candidate_roles) == ("open", None, ["one_window"])
    [row] = [r for r in timeline(chain, calendar=CALENDAR) if r.type == "task.conflict_declared"]
    assert f"申请回避（利害关系）：{reason}；任务退回任务池（one_window），本人不再办理本案" in row.action_zh
    assert f"declared a conflict of interest (回避, interest): {reason}; the task goes to the pool of one_window" in (
        row.action
    )


async def test_a_named_reviewer_who_declares_a_conflict_hands_the_task_to_the_stage_supervisor(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    """A stage of named reviewers has no pool: the task goes to its supervisor's role, who takes it over."""
    supervised = definition(
        stage("review", assignees=("alice",), deadline=Deadline(working_days=5, escalate_to_role="head"))
    )
    alice, head = person("alice", "reviewer"), person("head-1", "head")
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, supervised)
        task_id = await first_open(handle)
        declared = await handle.execute_update(
            ApprovalWorkflow.declare_conflict,
            DeclareConflictRequest(
                actor=alice, task_id=task_id, relationship=Relationship.close_relative, reason="my spouse applies"
            ),
        )
        await decide(handle, head, task_id, Decision.approve)
        result = await finished(time_skipping_env, handle)

    assert (declared.task.assignee_id, declared.task.candidate_roles) == (None, ["head"])
    assert result.status is CaseStatus.approved


async def test_a_committee_member_who_declares_a_conflict_is_withdrawn_from_the_vote(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    committee = definition(
        stage(
            "vote", mode=RoutingMode.quorum, assignees=("m1", "m2", "m3"), quorum=QuorumRule(min_attendance=2),
            allowed_decisions=(Decision.approve, Decision.reject, Decision.abstain), deadline=Deadline(working_days=5),
        )
    )  # fmt: skip
    m1, m2, m3 = (person(m, "committee") for m in ("m1", "m2", "m3"))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, committee)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 3)
        tasks = {task.assignee_id: task.task_id for task in view.tasks}
        await decide(handle, m1, tasks["m1"], Decision.approve)
        await handle.execute_update(
            ApprovalWorkflow.declare_conflict,
            DeclareConflictRequest(actor=m3, task_id=tasks["m3"], reason="I advised the applicant last year"),
        )
        await decide(handle, m2, tasks["m2"], Decision.approve)
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.approved
    assert {t.assignee_id: t.status for t in result.tasks}["m3"] is TaskStatus.cancelled
    [completed] = await events(db_pool, handle.id, "stage.completed")
    tally = completed["payload"]["tally"]
    assert (tally["approve"], tally["absent"]) == (2, 0)  # the recused member is neither present nor absent


# ---------------------------------------------------------------- Art. 25: persons concerned and the applicant's unit


async def test_a_concerned_inspector_cannot_decide_nor_a_member_of_the_applying_unit_vote(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    """official-he is a person concerned of the example application and also holds the inspector's role."""
    concerned_inspector = person("official-he", "discipline_inspector", unit="纪检监察工委")
    own_unit_member = person("committee-member-a", "committee_member", unit=UNIT_OFFICER.unit)
    env = time_skipping_env
    async with engine_worker(env) as queue:
        handle = await start_error_tolerance(env, queue)
        acceptance = await first_open(handle, "acceptance")
        inspector = await refused(
            handle,
            ErrorToleranceWorkflow.decide,
            DecideRequest(actor=concerned_inspector, task_id=acceptance, decision=Decision.approve),
        )
        await act_on_error_tolerance(handle, "acceptance", INSPECTOR)
        await act_on_error_tolerance(handle, "investigation", INSPECTOR, findings=findings(CONDITION_IDS))
        view = await view_when(handle, lambda v: len(open_tasks(v, "deliberation")) == 3)
        [vote] = [t.task_id for t in open_tasks(view, "deliberation") if t.assignee_id == own_unit_member.id]
        member = await refused(
            handle,
            ErrorToleranceWorkflow.decide,
            DecideRequest(actor=own_unit_member, task_id=vote, decision=Decision.approve),
        )
        await handle.execute_update(ErrorToleranceWorkflow.withdraw, WithdrawRequest(actor=UNIT_OFFICER, reason="over"))

    assert inspector.type == "RECUSAL_REQUIRED"
    assert "person_concerned" in inspector.message and "Art. 25" in inspector.message
    assert member.type == "RECUSAL_REQUIRED" and UNIT_OFFICER.unit in member.message
