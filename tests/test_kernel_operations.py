"""Task and case operations of the kernel, and every refusal of their validators.

Each operation is a Workflow Update. An accepted one is recorded as a domain event; a refused one leaves
no trace in the workflow history, and the caller gets ``WorkflowUpdateFailedError`` whose cause is an
``ApplicationError`` with the machine-readable reason code as its ``type``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities import build_activities
from approvals.settings import load_settings
from schemas.case import (
    AddSignerRequest,
    AttachmentRef,
    CaseInput,
    CaseStatus,
    CaseView,
    CcRequest,
    ClaimRequest,
    CommentRequest,
    DecideRequest,
    DelegateRequest,
    ExtendRequest,
    Finding,
    MissingItem,
    RequestSupplementRequest,
    SupplementRequest,
    TaskStatus,
    TaskView,
    TransferRequest,
    UnclaimRequest,
    UrgeRequest,
    WithdrawRequest,
)
from schemas.principal import Principal
from schemas.process import CaseDeadline, Condition, Deadline, Decision, OnReject, Parallel, QuorumRule, RoutingMode
from tests.cases import (
    ALICE,
    APPLICANT,
    BOB,
    CALENDAR,
    HEAD,
    SERVICE,
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
from tests.fixtures.documents import organ_signer
from workflows.catalog import WORKFLOWS
from workflows.kernel import ApprovalWorkflow, KernelWorkflow

OFFICER = person("officer-1", "one_window")
OFFICER_2 = person("officer-2", "one_window")
OUTSIDER = person("mallory", "tourist", unit="elsewhere")
DAVE = person("dave", "reviewer")
# The applicant's own staff member who also holds a reviewer role at the bureau: still the applicant.
APPLICANT_AS_OFFICER = Principal(id=APPLICANT.id, name=APPLICANT.name, unit=APPLICANT.unit, roles=("one_window",))

Handle = WorkflowHandle[Any, CaseView]

POOL = definition(stage("acceptance", candidate_roles=("one_window",)))
ASSIGNED = definition(stage("review", assignees=("alice",)))
TWO_STAGES = definition(stage("acceptance", assignees=("alice",)), stage("review", assignees=("bob",)))
SUPPLEMENTABLE = definition(
    stage("review", assignees=("alice",), may_request_supplement=True, deadline=Deadline(working_days=5)),
    deadline=CaseDeadline(
        working_days=20, starts_after_stage="review", extension_working_days=10, extension_role="head"
    ),
)
"""补正 comes before acceptance (Art. 32): here the review is the acceptance, the period starts after it."""
EXTENDABLE = definition(
    stage("review", assignees=("alice",)),
    deadline=CaseDeadline(working_days=20, extension_working_days=10, extension_role="head"),
)


# ---------------------------------------------------------------- helpers


async def update(handle: Handle, operation: Any, request: BaseModel) -> Any:
    return await handle.execute_update(operation, request)


async def first_open(handle: Handle, stage_id: str | None = None) -> TaskView:
    view = await view_when(handle, lambda v: bool(open_tasks(v, stage_id)))
    return open_tasks(view, stage_id)[0]


def task_of(view: CaseView, user_id: str) -> TaskView:
    [task] = [t for t in view.tasks if t.assignee_id == user_id and t.status is not TaskStatus.cancelled]
    return task


async def outbox(db_pool: asyncpg.Pool, case_id: str) -> list[asyncpg.Record]:
    return await db_pool.fetch("SELECT kind, recipient, data::text AS data FROM outbox WHERE case_id = $1", case_id)


UPDATE_EVENT_ATTRIBUTES = (
    ("workflow_execution_update_admitted_event_attributes", lambda a: a.request.meta.update_id),
    ("workflow_execution_update_accepted_event_attributes", lambda a: a.accepted_request.meta.update_id),
    ("workflow_execution_update_rejected_event_attributes", lambda a: a.rejected_request.meta.update_id),
    ("workflow_execution_update_completed_event_attributes", lambda a: a.meta.update_id),
)


async def update_ids_in_history(handle: Handle) -> set[str]:
    history = await handle.fetch_history()
    found: set[str] = set()
    for event in history.events:
        for attribute, update_id in UPDATE_EVENT_ATTRIBUTES:
            if event.HasField(attribute):
                found.add(update_id(getattr(event, attribute)))
    return found


async def denied(handle: Handle, operation: Any, request: BaseModel, code: str) -> ApplicationError:
    """Sends a request the kernel must refuse with ``code``; checks the refusal left no trace in the history."""
    update_id = f"refused-{uuid.uuid4().hex[:12]}"
    before = await handle.query(ApprovalWorkflow.view)
    with pytest.raises(WorkflowUpdateFailedError) as raised:
        await handle.execute_update(operation, request, id=update_id)
    cause = raised.value.cause
    assert isinstance(cause, ApplicationError), cause
    assert cause.type == code, f"expected {code}, got {cause.type}: {cause.message}"
    assert cause.non_retryable
    assert cause.details and cause.details[0]["reason"] == code

    history = await handle.fetch_history()
    assert update_id not in history.to_json(), f"refused update {update_id} left a trace in the history"
    assert update_id not in await update_ids_in_history(handle)
    after = await handle.query(ApprovalWorkflow.view)
    assert after.last_seq == before.last_seq, "a refused update emitted a domain event"
    return cause


# A case that stays open after its decision, as the statutory processes do (effective dates, supervision):
# operations that would change a decided case are refused with CASE_CLOSED.


@workflow.defn(name="LingeringApprovalWorkflow")
class LingeringApprovalWorkflow(KernelWorkflow):
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        super().__init__(case)
        self._released = False

    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        view = await self.run_case()
        await workflow.wait_condition(lambda: self._released)
        return view

    @workflow.signal
    def release(self) -> None:
        self._released = True


@asynccontextmanager
async def lingering_worker(env: WorkflowEnvironment, db_pool: asyncpg.Pool) -> AsyncIterator[str]:
    task_queue = f"test-linger-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[*WORKFLOWS, LingeringApprovalWorkflow],
        activities=build_activities(
            db_pool,
            publication_webhook_url=None,
            calendar_path=None,
            organ=load_settings().document_organ(),
            signer=organ_signer(),
        ),
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        yield task_queue


# ---------------------------------------------------------------- claim / unclaim


async def test_claim_takes_a_pool_task_and_unclaim_returns_it_to_the_pool(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, POOL)
        task = await first_open(handle)
        assert (task.status, task.claimed_by, task.version) == (TaskStatus.open, None, 1)

        claimed = (await update(handle, ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id))).task
        assert (claimed.status, claimed.claimed_by, claimed.version) == (TaskStatus.claimed, OFFICER.id, 2)
        released = (
            await update(handle, ApprovalWorkflow.unclaim, UnclaimRequest(actor=OFFICER, task_id=task.task_id))
        ).task
        assert (released.status, released.claimed_by, released.version) == (TaskStatus.open, None, 3)

        # Back in the pool: another candidate claims and decides.
        await update(handle, ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER_2, task_id=task.task_id))
        await decide(handle, OFFICER_2, task, Decision.approve)
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.approved and result.tasks[0].decided_by == OFFICER_2.id
    kinds = [(e["type"], e["actor_id"]) for e in await events(db_pool, handle.id) if e["type"].startswith("task.")]
    assert kinds[1:] == [
        ("task.claimed", OFFICER.id), ("task.unclaimed", OFFICER.id), ("task.claimed", OFFICER_2.id),
        ("task.decided", OFFICER_2.id),
    ]  # fmt: skip


async def test_a_candidate_may_decide_a_pool_task_without_claiming_it(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, POOL)
        await decide(handle, OFFICER, await first_open(handle), Decision.approve)
        assert (await finished(time_skipping_env, handle)).status is CaseStatus.approved


# ---------------------------------------------------------------- decide


async def test_decide_with_conditions_records_them_on_the_task_the_stage_and_the_case(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    allowed = (Decision.approve, Decision.approve_with_conditions, Decision.reject)
    process = definition(
        stage("review", assignees=("alice",), allowed_decisions=allowed),
        stage("decision", assignees=("bob",), allowed_decisions=allowed),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        result = await decide(
            handle, ALICE, await first_open(handle), Decision.approve_with_conditions,
            comment="acceptable", conditions=["hire locally", "report yearly"],
        )  # fmt: skip
        assert result.task.conditions == ["hire locally", "report yearly"]
        assert result.task.decision is Decision.approve_with_conditions
        await decide(
            handle, BOB, await first_open(handle, "decision"), Decision.approve_with_conditions,
            conditions=["report yearly", "keep emissions low"],
        )  # fmt: skip
        view = await finished(time_skipping_env, handle)

    assert view.status is CaseStatus.approved_with_conditions
    assert view.conditions == ["hire locally", "report yearly", "keep emissions low"]
    [decided, _] = [e for e in await events(db_pool, handle.id) if e["type"] == "task.decided"]
    assert decided["payload"]["conditions"] == ["hire locally", "report yearly"]
    assert decided["payload"]["comment"] == "acceptable"


async def test_decide_records_findings_per_criterion(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    from schemas.case import AttachmentRef, Finding

    evidence = AttachmentRef(uri="s3://docs/minutes.pdf", sha256="a" * 64, size=1024, name="minutes.pdf")
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)
        await decide(
            handle, ALICE, await first_open(handle), Decision.approve,
            findings=[Finding(criterion="art25.1", holds=True, note="procedure followed", evidence=[evidence])],
        )  # fmt: skip
        await finished(time_skipping_env, handle)
    [decided] = [e for e in await events(db_pool, handle.id) if e["type"] == "task.decided"]
    [finding] = decided["payload"]["findings"]
    assert finding["criterion"] == "art25.1" and finding["holds"] and finding["evidence"][0]["sha256"] == "a" * 64


# ---------------------------------------------------------------- transfer, delegate, add signer


async def test_transfer_hands_the_task_to_another_reviewer_who_then_decides(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)
        task = await first_open(handle)
        moved = (
            await update(
                handle,
                ApprovalWorkflow.transfer,
                TransferRequest(actor=ALICE, task_id=task.task_id, to_user="dave", comment="on leave"),
            )
        ).task
        assert (moved.assignee_id, moved.status, moved.version) == ("dave", TaskStatus.open, 2)

        await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=task.task_id, decision=Decision.approve),
            "NOT_ASSIGNEE",
        )
        await decide(handle, DAVE, task, Decision.approve)
        view = await finished(time_skipping_env, handle)

    assert view.status is CaseStatus.approved and view.tasks[0].decided_by == "dave"
    [transferred] = [e for e in await events(db_pool, handle.id) if e["type"] == "task.transferred"]
    assert transferred["actor_id"] == "alice"
    assert transferred["payload"] == {"from": "alice", "to": "dave", "comment": "on leave", "version": 2}
    assert ("task.assigned", "dave") in {(r["kind"], r["recipient"]) for r in await outbox(db_pool, handle.id)}


async def test_transfer_of_a_pool_task_makes_it_a_named_task(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, POOL)
        task = await first_open(handle)
        await update(handle, ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id))
        moved = (
            await update(
                handle,
                ApprovalWorkflow.transfer,
                TransferRequest(actor=OFFICER, task_id=task.task_id, to_user="officer-2"),
            )
        ).task
        assert (moved.assignee_id, moved.candidate_roles, moved.claimed_by) == ("officer-2", [], None)
        await wind_up(time_skipping_env, handle)


async def test_delegate_acts_and_the_event_says_on_whose_behalf(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)
        task = await first_open(handle)
        delegated = (
            await update(
                handle, ApprovalWorkflow.delegate, DelegateRequest(actor=ALICE, task_id=task.task_id, to_user="dave")
            )
        ).task
        assert (delegated.assignee_id, delegated.delegate_id) == ("alice", "dave")

        await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=task.task_id, decision=Decision.approve),
            "NOT_ASSIGNEE",
        )
        await decide(handle, DAVE, task, Decision.approve, comment="checked for alice")
        view = await finished(time_skipping_env, handle)

    # The owner stays accountable: the task is still hers, and she sees who decided for her.
    [done] = view.tasks
    assert (done.assignee_id, done.delegate_id, done.decided_by, done.decision) == (
        "alice",
        "dave",
        "dave",
        Decision.approve,
    )
    stored = await events(db_pool, handle.id)
    [delegation] = [e for e in stored if e["type"] == "task.delegated"]
    assert delegation["payload"]["owner"] == "alice" and delegation["payload"]["delegate"] == "dave"
    [decided] = [e for e in stored if e["type"] == "task.decided"]
    assert decided["actor_id"] == "dave" and decided["payload"]["on_behalf_of"] == "alice"
    told = await db_pool.fetchval(
        "SELECT count(*) FROM outbox WHERE case_id = $1 AND kind = 'task.decided_by_delegate' AND recipient = 'alice'",
        handle.id,
    )
    assert told == 1


async def test_delegating_a_pool_task_claims_it_for_the_accountable_owner(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, POOL)
        task = await first_open(handle)
        delegated = (
            await update(
                handle, ApprovalWorkflow.delegate, DelegateRequest(actor=OFFICER, task_id=task.task_id, to_user="dave")
            )
        ).task
        assert (delegated.claimed_by, delegated.delegate_id, delegated.status) == (
            OFFICER.id,
            "dave",
            TaskStatus.claimed,
        )
        await decide(handle, DAVE, task, Decision.approve)
        await finished(time_skipping_env, handle)
    [decided] = [e for e in await events(db_pool, handle.id) if e["type"] == "task.decided"]
    assert decided["payload"]["on_behalf_of"] == OFFICER.id


async def test_add_signer_before_makes_the_current_signer_wait_for_the_new_one(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)
        task = await first_open(handle)
        result = await update(
            handle,
            ApprovalWorkflow.add_signer,
            AddSignerRequest(actor=ALICE, task_id=task.task_id, signer="dave", position="before"),
        )
        assert result.task.status is TaskStatus.waiting
        view = await handle.query(ApprovalWorkflow.view)
        added = task_of(view, "dave")
        assert (added.status, added.added_by) == (TaskStatus.open, "alice")
        assert task_of(view, "alice").waiting_for == added.task_id
        await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=task.task_id, decision=Decision.approve),
            "TASK_NOT_OPEN",
        )

        await decide(handle, DAVE, added, Decision.approve)
        view = await handle.query(ApprovalWorkflow.view)
        assert task_of(view, "alice").status is TaskStatus.open and view.status is CaseStatus.in_review
        await decide(handle, ALICE, task, Decision.approve)
        view = await finished(time_skipping_env, handle)

    assert view.status is CaseStatus.approved
    [added_event] = [e for e in await events(db_pool, handle.id) if e["type"] == "task.signer_added"]
    assert added_event["payload"]["position"] == "before" and added_event["payload"]["added_task_id"] == added.task_id


async def test_add_signer_after_opens_the_new_signer_once_the_current_one_approves(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)
        task = await first_open(handle)
        await update(
            handle,
            ApprovalWorkflow.add_signer,
            AddSignerRequest(actor=ALICE, task_id=task.task_id, signer="dave", position="after"),
        )
        view = await handle.query(ApprovalWorkflow.view)
        added = task_of(view, "dave")
        assert (added.status, added.waiting_for) == (TaskStatus.waiting, task.task_id)

        await decide(handle, ALICE, task, Decision.approve)
        view = await handle.query(ApprovalWorkflow.view)
        assert task_of(view, "dave").status is TaskStatus.open and view.stage_results == []
        await decide(handle, DAVE, added, Decision.approve)
        assert (await finished(time_skipping_env, handle)).status is CaseStatus.approved


async def test_add_signer_after_in_a_sequence_goes_before_the_next_signer(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    process = definition(stage("chain", mode=RoutingMode.sequential, assignees=("alice", "bob")))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        task = await first_open(handle)
        await update(
            handle,
            ApprovalWorkflow.add_signer,
            AddSignerRequest(actor=ALICE, task_id=task.task_id, signer="dave", position="after"),
        )
        view = await handle.query(ApprovalWorkflow.view)
        assert task_of(view, "bob").waiting_for == task_of(view, "dave").task_id
        await decide(handle, ALICE, task, Decision.approve)
        view = await handle.query(ApprovalWorkflow.view)
        assert [t.assignee_id for t in open_tasks(view)] == ["dave"]
        await decide(handle, DAVE, task_of(view, "dave"), Decision.approve)
        view = await handle.query(ApprovalWorkflow.view)
        assert [t.assignee_id for t in open_tasks(view)] == ["bob"]
        await wind_up(time_skipping_env, handle)


# ---------------------------------------------------------------- comment, urge, cc


async def test_comment_is_recorded_on_the_case_or_a_task(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)
        task = await first_open(handle)
        await update(handle, ApprovalWorkflow.comment, CommentRequest(actor=APPLICANT, text="营业执照已上传"))
        result = await update(
            handle, ApprovalWorkflow.comment, CommentRequest(actor=ALICE, text="checking", task_id=task.task_id)
        )
        assert result.task.task_id == task.task_id
        await wind_up(time_skipping_env, handle)
    comments = [e for e in await events(db_pool, handle.id) if e["type"] == "case.commented"]
    assert [(c["actor_id"], c["task_id"], c["payload"]["text"]) for c in comments] == [
        (APPLICANT.id, None, "营业执照已上传"), ("alice", task.task_id, "checking"),
    ]  # fmt: skip


async def test_urge_notifies_the_assignee(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)
        task = await first_open(handle)
        await update(
            handle, ApprovalWorkflow.urge, UrgeRequest(actor=APPLICANT, task_id=task.task_id, comment="请尽快")
        )
        again = UrgeRequest(actor=APPLICANT, task_id=task.task_id, comment="再催")
        await denied(handle, ApprovalWorkflow.urge, again, "URGED_RECENTLY")  # once a day is a reminder
        await time_skipping_env.sleep(timedelta(days=1, minutes=1))
        await update(handle, ApprovalWorkflow.urge, again)
        await decide(handle, ALICE, task, Decision.approve)
        await finished(time_skipping_env, handle)  # the case ends only once its notifications are out
    urged = [e for e in await events(db_pool, handle.id) if e["type"] == "task.urged"]
    assert [(e["actor_id"], e["payload"]["comment"]) for e in urged] == [
        (APPLICANT.id, "请尽快"),
        (APPLICANT.id, "再催"),
    ]
    sent = [r for r in await outbox(db_pool, handle.id) if r["kind"] == "task.urged"]
    assert sorted((r["recipient"], json.loads(r["data"])["comment"]) for r in sent) == [
        ("alice", "再催"),
        ("alice", "请尽快"),
    ]


async def test_cc_adds_observers_and_notifies_each(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)
        task = await first_open(handle)
        await update(handle, ApprovalWorkflow.cc, CcRequest(actor=ALICE, observers=["zhang", "li"], comment="FYI"))
        await update(handle, ApprovalWorkflow.cc, CcRequest(actor=ALICE, observers=["li"]))
        view = await handle.query(ApprovalWorkflow.view)
        assert view.observers == ["zhang", "li"]
        # An observer takes part in the case from now on: they may comment, but not copy in others in turn.
        await update(handle, ApprovalWorkflow.comment, CommentRequest(actor=person("zhang"), text="noted"))
        await denied(handle, ApprovalWorkflow.cc, CcRequest(actor=person("zhang"), observers=["wang"]), "NOT_INVOLVED")
        await decide(handle, ALICE, task, Decision.approve)
        await finished(time_skipping_env, handle)
    ccs = [(r["recipient"]) for r in await outbox(db_pool, handle.id) if r["kind"] == "case.cc"]
    assert sorted(ccs) == ["li", "li", "zhang"]


# ---------------------------------------------------------------- withdraw, 补正


async def test_a_definition_that_cannot_run_fails_the_case_at_once_with_its_problems(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    process = definition(
        stage("review", assignees=("alice", "alice"), mode=RoutingMode.all, when=Condition(rule="no_such_rule")),
        stage("vote", mode=RoutingMode.quorum, assignees=("m1",), quorum=QuorumRule(min_attendance=2)),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        with pytest.raises(WorkflowFailureError) as failure:
            await finished(time_skipping_env, handle)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "INVALID_DEFINITION"
    problems = cause.details[0]["problems"]
    assert any("no_such_rule" in p for p in problems) and any("listed twice" in p for p in problems)
    assert any("needs a deadline" in p for p in problems) and any("exceeds the 1 members" in p for p in problems)


async def test_applicant_withdraws_before_the_decision_and_open_tasks_are_cancelled(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, TWO_STAGES)
        await first_open(handle)
        result = await update(
            handle, ApprovalWorkflow.withdraw, WithdrawRequest(actor=APPLICANT, reason="project relocated")
        )
        assert result.status is CaseStatus.withdrawn
        view = await finished(time_skipping_env, handle)
    assert view.status is CaseStatus.withdrawn and view.outcome == "withdrawn"
    assert [t.status for t in view.tasks] == [TaskStatus.cancelled]
    stored = await events(db_pool, handle.id)
    assert stored[-1]["type"] == "case.withdrawn" and stored[-1]["actor_id"] == APPLICANT.id
    assert stored[-1]["payload"]["reason"] == "project relocated"


async def test_request_supplement_pauses_the_case_and_supplement_resumes_it(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, SUPPLEMENTABLE)
        task = await first_open(handle)
        items = [MissingItem(item="环评批复", reason="missing"), MissingItem(item="land title", reason="expired")]
        paused = await update(
            handle, ApprovalWorkflow.request_supplement, RequestSupplementRequest(actor=ALICE, items=items)
        )
        assert paused.status is CaseStatus.awaiting_supplement
        view = await handle.query(ApprovalWorkflow.view)
        assert view.pending_supplement == items and view.clock_state == "stopped"

        resumed = await update(
            handle, ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="attached")
        )
        assert resumed.status is CaseStatus.in_review
        view = await handle.query(ApprovalWorkflow.view)
        assert view.pending_supplement == [] and view.clock_state == "running"
        await decide(handle, ALICE, task, Decision.approve)
        await finished(time_skipping_env, handle)

    stored = await events(db_pool, handle.id)
    [requested] = [e for e in stored if e["type"] == "case.supplement_requested"]
    assert [i["item"] for i in requested["payload"]["items"]] == ["环评批复", "land title"]
    [supplied] = [e for e in stored if e["type"] == "case.supplemented"]
    assert supplied["actor_id"] == APPLICANT.id and len(supplied["payload"]["requested"]) == 2
    notices = [r for r in await outbox(db_pool, handle.id) if r["kind"] == "case.supplement_requested"]
    assert [r["recipient"] for r in notices] == [APPLICANT.id]


async def test_a_process_supplement_role_may_request_material_without_a_task(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    process = definition(stage("review", assignees=("alice",)), supplement_role="one_window")
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        await first_open(handle)
        request = RequestSupplementRequest(actor=OFFICER, items=[MissingItem(item="seal")])
        assert (
            await update(handle, ApprovalWorkflow.request_supplement, request)
        ).status is CaseStatus.awaiting_supplement
        await wind_up(time_skipping_env, handle)


async def test_extend_lengthens_the_statutory_period_once(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, EXTENDABLE)
        view = await view_when(handle, open_tasks)
        [clock] = view.clocks
        await update(handle, ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="site inspection needed"))
        view = await handle.query(ApprovalWorkflow.view)
        assert view.extended and view.clocks[0].due_at > clock.due_at
        await denied(handle, ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="again"), "EXTENSION_USED")
        await wind_up(time_skipping_env, handle)


# ---------------------------------------------------------------- every refusal, with its reason code


async def test_an_accepted_update_is_in_the_history_unlike_a_refused_one(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    """The control for ``denied``: the history check does see updates that were accepted."""
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, POOL)
        task = await first_open(handle)
        await handle.execute_update(
            ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id), id="accepted-claim"
        )
        assert "accepted-claim" in await update_ids_in_history(handle)
        await denied(
            handle, ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER_2, task_id=task.task_id), "ALREADY_CLAIMED"
        )
        await wind_up(time_skipping_env, handle)


async def test_refused_not_assignee_when_someone_else_decides_an_assigned_task(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)
        task = await first_open(handle)
        cause = await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=BOB, task_id=task.task_id, decision=Decision.approve),
            "NOT_ASSIGNEE",
        )
        assert "alice" in cause.message and "bob" in cause.message
        await wind_up(time_skipping_env, handle)


async def test_refused_not_assignee_when_the_actor_holds_no_candidate_role(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, POOL)
        task = await first_open(handle)
        await denied(handle, ApprovalWorkflow.claim, ClaimRequest(actor=OUTSIDER, task_id=task.task_id), "NOT_ASSIGNEE")
        await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=OUTSIDER, task_id=task.task_id, decision=Decision.approve),
            "NOT_ASSIGNEE",
        )
        await denied(
            handle,
            ApprovalWorkflow.transfer,
            TransferRequest(actor=OUTSIDER, task_id=task.task_id, to_user="mallory-2"),
            "NOT_ASSIGNEE",
        )
        await wind_up(time_skipping_env, handle)


async def test_refused_task_not_open_for_a_decided_task_and_a_waiting_one(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    process = definition(stage("chain", mode=RoutingMode.sequential, assignees=("alice", "bob", "dave")))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(v.tasks) == 3)
        first, second, third = view.tasks
        await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=BOB, task_id=second.task_id, decision=Decision.approve),
            "TASK_NOT_OPEN",
        )
        await decide(handle, ALICE, first, Decision.approve)
        await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=first.task_id, decision=Decision.reject, comment="changed my mind"),
            "TASK_NOT_OPEN",
        )
        await denied(
            handle, ApprovalWorkflow.urge, UrgeRequest(actor=APPLICANT, task_id=third.task_id), "TASK_NOT_OPEN"
        )
        await wind_up(time_skipping_env, handle)


async def test_one_member_one_vote_a_vote_is_neither_cast_twice_nor_handed_on(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    members = ("m1", "m2", "m3")
    process = definition(
        stage(
            "vote", mode=RoutingMode.quorum, assignees=members, quorum=QuorumRule(min_attendance=2),
            allowed_decisions=(Decision.approve, Decision.reject, Decision.abstain), deadline=Deadline(working_days=5),
        )
    )  # fmt: skip
    m1, m2 = person("m1", "committee"), person("m2", "committee")
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 3)
        await decide(handle, m1, task_of(view, "m1"), Decision.approve)
        cause = await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=m1, task_id=task_of(view, "m2").task_id, decision=Decision.approve),
            "DUPLICATE_VOTE",
        )
        assert "m1" in cause.message
        for operation, request in (
            (ApprovalWorkflow.delegate, DelegateRequest(actor=m2, task_id=task_of(view, "m2").task_id, to_user="m1")),
            (ApprovalWorkflow.transfer, TransferRequest(actor=m2, task_id=task_of(view, "m2").task_id, to_user="x")),
        ):
            await denied(handle, operation, request, "REASSIGN_NOT_ALLOWED")
        await wind_up(time_skipping_env, handle)


async def test_one_person_signs_a_countersign_stage_once(time_skipping_env: WorkflowEnvironment, engine_worker) -> None:
    """会签 needs every assignee: handing a task to someone who signs already must not let one person sign twice."""
    process = definition(stage("joint", mode=RoutingMode.all, assignees=("alice", "bob")))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 2)
        alice_task, bob_task = task_of(view, "alice"), task_of(view, "bob")
        for operation, request in (
            (ApprovalWorkflow.transfer, TransferRequest(actor=ALICE, task_id=alice_task.task_id, to_user="bob")),
            (ApprovalWorkflow.delegate, DelegateRequest(actor=ALICE, task_id=alice_task.task_id, to_user="bob")),
        ):
            await denied(handle, operation, request, "DUPLICATE_SIGNER")
        await decide(handle, BOB, bob_task, Decision.approve)
        await update(
            handle, ApprovalWorkflow.delegate, DelegateRequest(actor=ALICE, task_id=alice_task.task_id, to_user="dave")
        )
        dave = person("dave", "reviewer")
        await denied(
            handle,
            ApprovalWorkflow.transfer,
            TransferRequest(actor=dave, task_id=alice_task.task_id, to_user="mallory"),
            "REASSIGN_NOT_ALLOWED",
        )
        await wind_up(time_skipping_env, handle)


async def test_refused_stale_task_version(time_skipping_env: WorkflowEnvironment, engine_worker) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, POOL)
        task = await first_open(handle)
        await update(
            handle, ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id, expected_version=1)
        )
        # The officer's screen still shows version 1.
        await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=OFFICER, task_id=task.task_id, decision=Decision.approve, expected_version=1),
            "STALE_TASK_VERSION",
        )
        await decide(handle, OFFICER, task, Decision.approve, expected_version=2)
        assert (await finished(time_skipping_env, handle)).status is CaseStatus.approved


async def test_refused_separation_of_duties_when_the_applicant_acts_on_their_own_case(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, POOL)
        task = await first_open(handle)
        await denied(
            handle,
            ApprovalWorkflow.claim,
            ClaimRequest(actor=APPLICANT_AS_OFFICER, task_id=task.task_id),
            "SEPARATION_OF_DUTIES",
        )
        await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=APPLICANT_AS_OFFICER, task_id=task.task_id, decision=Decision.approve),
            "SEPARATION_OF_DUTIES",
        )
        await update(handle, ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id))
        await denied(
            handle,
            ApprovalWorkflow.transfer,
            TransferRequest(actor=OFFICER, task_id=task.task_id, to_user=APPLICANT.id),
            "SEPARATION_OF_DUTIES",
        )
        await denied(
            handle,
            ApprovalWorkflow.delegate,
            DelegateRequest(actor=OFFICER, task_id=task.task_id, to_user=APPLICANT.id),
            "SEPARATION_OF_DUTIES",
        )
        await denied(
            handle,
            ApprovalWorkflow.request_supplement,
            RequestSupplementRequest(actor=APPLICANT_AS_OFFICER, items=[MissingItem(item="x")]),
            "SEPARATION_OF_DUTIES",
        )
        await wind_up(time_skipping_env, handle)


async def test_refused_decision_not_allowed_at_the_stage(time_skipping_env: WorkflowEnvironment, engine_worker) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)
        task = await first_open(handle)
        cause = await denied(
            handle, ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=task.task_id, decision=Decision.approve_with_conditions, conditions=["x"]),
            "DECISION_NOT_ALLOWED",
        )  # fmt: skip
        assert "approve_with_conditions" in cause.message
        await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=task.task_id, decision=Decision.abstain),
            "DECISION_NOT_ALLOWED",
        )
        await wind_up(time_skipping_env, handle)


async def test_a_decision_on_statutory_criteria_needs_one_finding_on_each(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    criteria = ("reform_direction", "lawful_procedure", "no_dereliction", "no_improper_benefit", "no_harm")
    process = definition(stage("findings", assignees=("alice",), legal_basis="Art. 25", criteria=criteria))
    evidence = AttachmentRef(uri="s3://evidence/minutes.pdf", sha256="b" * 64, size=2048, name="会议纪要")
    findings = [Finding(criterion=c, holds=True, evidence=[evidence]) for c in criteria]
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        task = await first_open(handle)
        cause = await denied(
            handle, ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=task.task_id, decision=Decision.approve, findings=findings[:3] + [findings[0]]),
            "FINDINGS_INCOMPLETE",
        )  # fmt: skip
        assert "no_improper_benefit" in cause.message and "reform_direction" in cause.message
        unknown = Finding(criterion="popular_with_the_press", holds=True)
        await denied(
            handle, ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=task.task_id, decision=Decision.approve, findings=[*findings, unknown]),
            "FINDINGS_INCOMPLETE",
        )  # fmt: skip
        one_fails = [*findings[:4], findings[4].model_copy(update={"holds": False})]
        await denied(
            handle, ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=task.task_id, decision=Decision.approve, findings=one_fails),
            "FINDINGS_CONTRADICT_APPROVAL",
        )  # fmt: skip
        await handle.execute_update(
            ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=task.task_id, decision=Decision.approve, findings=findings),
        )
        await finished(time_skipping_env, handle)
    decided = await db_pool.fetchval(
        "SELECT payload FROM audit_events WHERE case_id = $1 AND type = 'task.decided'", handle.id
    )
    recorded = json.loads(decided)["findings"]
    assert [f["criterion"] for f in recorded] == list(criteria)
    assert recorded[0]["evidence"][0]["sha256"] == "b" * 64


@pytest.mark.parametrize("decision", [Decision.reject, Decision.return_])
async def test_refused_comment_required_to_reject_or_return(
    time_skipping_env: WorkflowEnvironment, engine_worker, decision: Decision
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, TWO_STAGES)
        await decide(handle, ALICE, await first_open(handle), Decision.approve)
        task = await first_open(handle, "review")
        for comment in ("", "   "):
            cause = await denied(
                handle,
                ApprovalWorkflow.decide,
                DecideRequest(actor=BOB, task_id=task.task_id, decision=decision, comment=comment),
                "COMMENT_REQUIRED",
            )
            assert cause.details[0] == {"reason": "COMMENT_REQUIRED", "field": "comment"}  # the API names it
        await wind_up(time_skipping_env, handle)


async def test_refused_claimed_by_other_and_already_claimed(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, POOL)
        task = await first_open(handle)
        await update(handle, ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id))
        await denied(
            handle, ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER_2, task_id=task.task_id), "ALREADY_CLAIMED"
        )
        await denied(
            handle, ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id), "ALREADY_CLAIMED"
        )
        cause = await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=OFFICER_2, task_id=task.task_id, decision=Decision.approve),
            "CLAIMED_BY_OTHER",
        )
        assert OFFICER.id in cause.message
        await denied(
            handle,
            ApprovalWorkflow.transfer,
            TransferRequest(actor=OFFICER_2, task_id=task.task_id, to_user="dave"),
            "CLAIMED_BY_OTHER",
        )
        await denied(
            handle, ApprovalWorkflow.unclaim, UnclaimRequest(actor=OFFICER_2, task_id=task.task_id), "NOT_CLAIMANT"
        )
        await wind_up(time_skipping_env, handle)


async def test_refused_approval_blocked_while_a_blocking_stage_stands_rejected(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    process = definition(
        stage("legality", assignees=("alice",), on_reject=OnReject.continue_),
        stage("decision", assignees=("bob",), approval_blocked_by=("legality",)),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        await decide(handle, ALICE, await first_open(handle), Decision.reject, comment="no legal basis")
        task = await first_open(handle, "decision")
        cause = await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=BOB, task_id=task.task_id, decision=Decision.approve),
            "APPROVAL_BLOCKED",
        )
        assert "legality" in cause.message
        # Rejecting, or returning the case to the blocking stage, stays possible.
        await decide(handle, BOB, task, Decision.return_, comment="re-examine legality", return_to="legality")
        task = await first_open(handle, "legality")
        await decide(handle, ALICE, task, Decision.approve)
        await decide(handle, BOB, await first_open(handle, "decision"), Decision.approve)
        assert (await finished(time_skipping_env, handle)).status is CaseStatus.approved


async def test_refused_invalid_return_target(time_skipping_env: WorkflowEnvironment, engine_worker) -> None:
    process = definition(
        stage("acceptance", assignees=("alice",)),
        stage("review", assignees=("bob",)),
        stage("decision", assignees=("dave",)),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        first = await first_open(handle)
        await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=first.task_id, decision=Decision.return_, comment="?"),
            "INVALID_RETURN_TARGET",
        )
        await decide(handle, ALICE, first, Decision.approve)
        task = await first_open(handle, "review")
        for target in ("decision", "review", "nowhere"):
            await denied(
                handle,
                ApprovalWorkflow.decide,
                DecideRequest(
                    actor=BOB, task_id=task.task_id, decision=Decision.return_, comment="?", return_to=target
                ),
                "INVALID_RETURN_TARGET",
            )
        await wind_up(time_skipping_env, handle)


async def test_refused_case_closed_after_the_decision(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool
) -> None:
    async with lingering_worker(time_skipping_env, db_pool) as queue:
        case = CaseInput(
            business_key=f"T-{uuid.uuid4().hex[:10]}", definition=SUPPLEMENTABLE, title="Lingering case",
            applicant=APPLICANT, started_by=SERVICE, calendar=CALENDAR,
        )  # fmt: skip
        handle = await time_skipping_env.client.start_workflow(
            LingeringApprovalWorkflow.run, case, id=f"linger:{case.business_key}", task_queue=queue,
            execution_timeout=timedelta(days=400),
        )  # fmt: skip
        task = await first_open(handle)
        await decide(handle, ALICE, task, Decision.approve)
        await view_when(handle, lambda v: v.status is CaseStatus.approved)

        await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=task.task_id, decision=Decision.reject, comment="x"),
            "CASE_CLOSED",
        )
        await denied(
            handle, ApprovalWorkflow.withdraw, WithdrawRequest(actor=APPLICANT, reason="too late"), "CASE_CLOSED"
        )
        await denied(
            handle,
            ApprovalWorkflow.request_supplement,
            RequestSupplementRequest(actor=ALICE, items=[MissingItem(item="x")]),
            "CASE_CLOSED",
        )
        await denied(handle, ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT), "CASE_CLOSED")
        await denied(handle, ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="x"), "CASE_CLOSED")
        await denied(handle, ApprovalWorkflow.urge, UrgeRequest(actor=APPLICANT, task_id=task.task_id), "CASE_CLOSED")
        await handle.signal(LingeringApprovalWorkflow.release)
        with time_skipping_env.auto_time_skipping_disabled():
            assert (await handle.result()).status is CaseStatus.approved


async def test_refused_case_paused_while_waiting_for_supplementary_material(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, SUPPLEMENTABLE)
        task = await first_open(handle)
        await update(
            handle,
            ApprovalWorkflow.request_supplement,
            RequestSupplementRequest(actor=ALICE, items=[MissingItem(item="seal")]),
        )
        await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=task.task_id, decision=Decision.approve),
            "CASE_PAUSED",
        )
        await denied(
            handle, ApprovalWorkflow.request_supplement,
            RequestSupplementRequest(actor=ALICE, items=[MissingItem(item="one more thing")]), "SUPPLEMENT_ALREADY_PENDING",
        )  # fmt: skip
        await denied(handle, ApprovalWorkflow.supplement, SupplementRequest(actor=ALICE), "NOT_APPLICANT")
        await denied(handle, ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT), "NOTHING_SUPPLIED")
        await update(handle, ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="sealed"))
        await denied(handle, ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT), "NO_SUPPLEMENT_PENDING")
        await decide(handle, ALICE, task, Decision.approve)
        assert (await finished(time_skipping_env, handle)).status is CaseStatus.approved


async def test_refused_no_supplement_pending(time_skipping_env: WorkflowEnvironment, engine_worker) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, SUPPLEMENTABLE)
        await first_open(handle)
        await denied(
            handle,
            ApprovalWorkflow.supplement,
            SupplementRequest(actor=APPLICANT, comment="unasked"),
            "NO_SUPPLEMENT_PENDING",
        )
        await wind_up(time_skipping_env, handle)


async def test_refused_not_applicant_when_a_reviewer_withdraws(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)
        await first_open(handle)
        await denied(
            handle, ApprovalWorkflow.withdraw, WithdrawRequest(actor=ALICE, reason="I'd rather not"), "NOT_APPLICANT"
        )
        # The service that filed the case for the applicant may withdraw it.
        assert (
            await update(handle, ApprovalWorkflow.withdraw, WithdrawRequest(actor=SERVICE, reason="filed twice"))
        ).status is CaseStatus.withdrawn
        await finished(time_skipping_env, handle)


async def test_refused_extension_used_and_not_allowed(time_skipping_env: WorkflowEnvironment, engine_worker) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, EXTENDABLE)
        await first_open(handle)
        cause = await denied(handle, ApprovalWorkflow.extend, ExtendRequest(actor=ALICE, reason="busy"), "NOT_ALLOWED")
        assert "head" in cause.message
        await update(handle, ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="hearing"))
        await denied(handle, ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="another"), "EXTENSION_USED")
        await wind_up(time_skipping_env, handle)


async def test_refused_not_allowed_to_request_supplement_without_a_task_at_a_stage_that_allows_it(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)  # may_request_supplement=False
        await first_open(handle)
        request = RequestSupplementRequest(actor=ALICE, items=[MissingItem(item="seal")])
        await denied(handle, ApprovalWorkflow.request_supplement, request, "NOT_ALLOWED")
        await wind_up(time_skipping_env, handle)
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, SUPPLEMENTABLE)
        await first_open(handle)
        request = RequestSupplementRequest(actor=BOB, items=[MissingItem(item="seal")])  # not the stage's reviewer
        await denied(handle, ApprovalWorkflow.request_supplement, request, "NOT_ALLOWED")
        await wind_up(time_skipping_env, handle)


async def test_refusals_of_the_remaining_operations(time_skipping_env: WorkflowEnvironment, engine_worker) -> None:
    """Codes beyond the issue's list: each operation refuses what makes no sense, with its own code."""
    quorum = definition(
        stage("vote", mode=RoutingMode.quorum, assignees=("alice", "bob"), quorum=QuorumRule(min_attendance=1),
              allowed_decisions=(Decision.approve, Decision.reject), deadline=Deadline(working_days=5)),
    )  # fmt: skip
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)
        task = await first_open(handle)
        missing = f"{handle.id}/review/99"
        await denied(
            handle,
            ApprovalWorkflow.decide,
            DecideRequest(actor=ALICE, task_id=missing, decision=Decision.approve),
            "TASK_NOT_FOUND",
        )
        await denied(
            handle, ApprovalWorkflow.comment, CommentRequest(actor=ALICE, text="x", task_id=missing), "TASK_NOT_FOUND"
        )
        await denied(handle, ApprovalWorkflow.claim, ClaimRequest(actor=ALICE, task_id=task.task_id), "NOT_CLAIMABLE")
        await denied(
            handle, ApprovalWorkflow.unclaim, UnclaimRequest(actor=ALICE, task_id=task.task_id), "NOT_CLAIMANT"
        )
        await denied(
            handle,
            ApprovalWorkflow.transfer,
            TransferRequest(actor=ALICE, task_id=task.task_id, to_user="alice"),
            "INVALID_TARGET",
        )
        await denied(
            handle,
            ApprovalWorkflow.delegate,
            DelegateRequest(actor=ALICE, task_id=task.task_id, to_user="alice"),
            "INVALID_TARGET",
        )
        await denied(
            handle,
            ApprovalWorkflow.add_signer,
            AddSignerRequest(actor=ALICE, task_id=task.task_id, signer="alice", position="after"),
            "DUPLICATE_SIGNER",
        )
        await denied(handle, ApprovalWorkflow.comment, CommentRequest(actor=OUTSIDER, text="hello"), "NOT_INVOLVED")
        await denied(handle, ApprovalWorkflow.urge, UrgeRequest(actor=OUTSIDER, task_id=task.task_id), "NOT_INVOLVED")
        await denied(handle, ApprovalWorkflow.cc, CcRequest(actor=OUTSIDER, observers=["x"]), "NOT_INVOLVED")
        await denied(handle, ApprovalWorkflow.cc, CcRequest(actor=APPLICANT, observers=["x"]), "SEPARATION_OF_DUTIES")
        await denied(handle, ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="x"), "NO_EXTENSION")
        await update(
            handle, ApprovalWorkflow.delegate, DelegateRequest(actor=ALICE, task_id=task.task_id, to_user="dave")
        )
        await denied(
            handle,
            ApprovalWorkflow.delegate,
            DelegateRequest(actor=DAVE, task_id=task.task_id, to_user="bob"),
            "ALREADY_DELEGATED",
        )
        await wind_up(time_skipping_env, handle)

        handle = await start_case(time_skipping_env.client, queue, quorum)
        task = await first_open(handle)
        await denied(
            handle,
            ApprovalWorkflow.add_signer,
            AddSignerRequest(actor=ALICE, task_id=task.task_id, signer="dave", position="after"),
            "ADD_SIGNER_NOT_ALLOWED",
        )
        await wind_up(time_skipping_env, handle)

        late = definition(
            stage("acceptance", assignees=("alice",)), stage("review", assignees=("bob",)),
            deadline=CaseDeadline(working_days=20, starts_after_stage="acceptance", extension_working_days=5, extension_role="head"),
        )  # fmt: skip
        handle = await start_case(time_skipping_env.client, queue, late)
        await first_open(handle)
        await denied(handle, ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="x"), "CLOCK_NOT_STARTED")
        await wind_up(time_skipping_env, handle)


async def test_a_stage_in_a_parallel_branch_may_return_the_case_to_a_stage_before_the_branches(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    process = definition(
        stage("acceptance", assignees=("alice",)),
        Parallel(
            id="opinions",
            title="Opinions",
            branches=((stage("land", assignees=("bob",)),), (stage("environment", assignees=("dave",)),)),
        ),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        await decide(handle, ALICE, await first_open(handle), Decision.approve)
        land = await first_open(handle, "land")
        try:
            await decide(
                handle, BOB, land, Decision.return_, comment="acceptance missed the land title", return_to="acceptance"
            )
            view = await view_when(handle, lambda v: bool(open_tasks(v, "acceptance")), timeout=3)
            assert open_tasks(view, "acceptance")[0].round == 2
        finally:
            await wind_up(time_skipping_env, handle)


async def test_an_operator_cancelling_the_workflow_closes_the_case_and_its_tasks_on_record(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, ASSIGNED)
        await first_open(handle)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await finished(time_skipping_env, handle)
    recorded = await events(db_pool, handle.id)
    assert [row["type"] for row in recorded[-2:]] == ["task.cancelled", "case.cancelled"]
    statuses = await db_pool.fetch("SELECT status FROM tasks WHERE case_id = $1", handle.id)
    assert {row["status"] for row in statuses} == {"cancelled"}
    assert await db_pool.fetchval("SELECT status FROM cases WHERE case_id = $1", handle.id) == "cancelled"
