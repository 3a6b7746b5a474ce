"""The durable record: idempotent recording, a verifiable hash chain, projections, and the inbox query."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.storage import StorageActivities
from approvals.storage.queries import case_events, case_tasks, get_case, inbox
from schemas.case import (
    CaseView,
    ClaimRequest,
    CommentRequest,
    DecideRequest,
    TaskStatus,
    TransferRequest,
    WithdrawRequest,
)
from schemas.events import GENESIS_HASH, DomainEvent, compute_hash, event_content, seal_event
from schemas.principal import SYSTEM
from schemas.process import Decision, RoutingMode
from schemas.records import CaseProjection, RecordBatch, TaskProjection
from tests.cases import APPLICANT, definition, open_tasks, person, stage, start_case, view_when
from workflows.kernel import ApprovalWorkflow

OFFICER = person("officer-1", "one_window")
OFFICER_2 = person("officer-2", "one_window")
ALICE = person("alice", "reviewer")
BOB = person("bob", "reviewer")


async def finished(env: WorkflowEnvironment, handle) -> CaseView:  # type: ignore[no-untyped-def]
    with env.auto_time_skipping_disabled():
        return await handle.result()


def a_batch(case_id: str, count: int) -> RecordBatch:
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    events: list[DomainEvent] = []
    prev = GENESIS_HASH
    for seq in range(1, count + 1):
        event = seal_event(
            case_id=case_id, seq=seq, type="case.commented", actor=SYSTEM, at=at + timedelta(minutes=seq),
            legal_basis="Art. 4", payload={"text": f"第{seq}条"}, prev_hash=prev,
        )  # fmt: skip
        events.append(event)
        prev = event.hash
    case = CaseProjection(
        case_id=case_id, process="generic", business_key=case_id, title="Recorded twice", status="in_review",
        applicant_id="ent-001", started_at=at, updated_at=at, last_seq=count, started_by=SYSTEM.id, observers=[],
    )  # fmt: skip
    task = TaskProjection(
        task_id=f"{case_id}/review/1", case_id=case_id, process="generic", stage_id="review", stage_title="Review",
        legal_basis="Art. 10", status="open", assignee_id="alice", version=1, created_at=at, updated_at=at, last_seq=count,
    )  # fmt: skip
    return RecordBatch(case_id=case_id, events=events, case=case, tasks=[task])


async def test_recording_the_same_batch_twice_writes_one_row_per_event(db_pool: asyncpg.Pool) -> None:
    case_id = f"generic:R-{uuid.uuid4().hex[:10]}"
    batch = a_batch(case_id, 3)
    env = ActivityEnvironment()
    record = StorageActivities(db_pool).record_events

    assert await env.run(record, batch) == 3
    assert await env.run(record, batch) == 0  # a retry after a lost reply

    assert await db_pool.fetchval("SELECT count(*) FROM audit_events WHERE case_id = $1", case_id) == 3
    assert await db_pool.fetchval("SELECT count(*) FROM cases WHERE case_id = $1", case_id) == 1
    assert await db_pool.fetchval("SELECT count(*) FROM tasks WHERE case_id = $1", case_id) == 1
    stored = await case_events(db_pool, case_id)
    assert [e.hash for e in stored] == [e.hash for e in batch.events]


async def test_a_finished_case_has_a_verifiable_hash_chain_and_complete_events(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(
        stage("acceptance", candidate_roles=("one_window",)),
        stage("review", mode=RoutingMode.all, assignees=("alice", "bob")),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process, title="链式审计 case")
        [task] = open_tasks(await view_when(handle, open_tasks))
        await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id))
        await handle.execute_update(
            ApprovalWorkflow.decide, DecideRequest(actor=OFFICER, task_id=task.task_id, decision=Decision.approve)
        )
        view = await view_when(handle, lambda v: len(open_tasks(v, "review")) == 2)
        for reviewer in (ALICE, BOB):
            [mine] = [t for t in open_tasks(view) if t.assignee_id == reviewer.id]
            await handle.execute_update(
                ApprovalWorkflow.decide, DecideRequest(actor=reviewer, task_id=mine.task_id, decision=Decision.approve)
            )
        result = await finished(time_skipping_env, handle)

    stored = await case_events(db_pool, handle.id)
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))  # no gaps
    assert stored[0].prev_hash == GENESIS_HASH
    for earlier, later in zip(stored, stored[1:], strict=False):
        assert later.prev_hash == earlier.hash
    for event in stored:
        assert compute_hash(event_content(event)) == event.hash, f"event {event.seq} does not verify"
        assert event.actor.id and event.at.tzinfo is not None and event.legal_basis
    assert (stored[-1].seq, stored[-1].hash) == (result.last_seq, result.last_hash)
    assert stored[0].payload["title"] == "链式审计 case"


async def test_a_tampered_event_breaks_the_chain_from_that_point(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, definition(stage("review", assignees=("alice",))))
        [task] = open_tasks(await view_when(handle, open_tasks))
        await handle.execute_update(
            ApprovalWorkflow.decide, DecideRequest(actor=ALICE, task_id=task.task_id, decision=Decision.approve)
        )
        await finished(time_skipping_env, handle)
    stored = await case_events(db_pool, handle.id)
    decided = next(e for e in stored if e.type == "task.decided")
    forged = event_content(decided) | {"payload": {**decided.payload, "decision": "reject"}}
    assert compute_hash(forged) != decided.hash


async def test_the_projections_reflect_the_final_state(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(stage("review", mode=RoutingMode.any, assignees=("alice", "bob")))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 2)
        alices = next(t for t in view.tasks if t.assignee_id == "alice")
        await handle.execute_update(
            ApprovalWorkflow.transfer, TransferRequest(actor=ALICE, task_id=alices.task_id, to_user="dave")
        )
        await handle.execute_update(
            ApprovalWorkflow.decide,
            DecideRequest(actor=person("dave"), task_id=alices.task_id, decision=Decision.approve),
        )
        result = await finished(time_skipping_env, handle)

    rows = {t.task_id: t for t in await case_tasks(db_pool, handle.id)}
    assert set(rows) == {t.task_id for t in result.tasks}
    for task in result.tasks:
        row = rows[task.task_id]
        assert (row.status, row.version, row.assignee_id, row.decision) == (
            task.status.value, task.version, task.assignee_id, task.decision.value if task.decision else None,
        )  # fmt: skip
    assert {r.assignee_id: r.status for r in rows.values()} == {"dave": "completed", "bob": "cancelled"}
    case = await get_case(db_pool, handle.id)
    assert case is not None
    assert (case.status, case.outcome, case.last_seq, case.current_stages) == (
        "approved",
        "approved",
        result.last_seq,
        [],
    )


async def test_the_inbox_finds_open_tasks_by_user_and_by_role_from_the_database_alone(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    # People and a role of this test's own: the session's database holds every other test's tasks too.
    unique = uuid.uuid4().hex[:8]
    role, officer, officer_2 = f"one_window_{unique}", f"officer-{unique}", f"officer-2-{unique}"
    reviewer = person(f"alice-{unique}", "reviewer")
    process = definition(stage("acceptance", candidate_roles=(role,)), stage("review", assignees=(reviewer.id,)))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        [task] = open_tasks(await view_when(handle, open_tasks))

        # By role: any holder of the candidate role sees the pool task; others do not.
        assert task.task_id in [t.task_id for t in await inbox(db_pool, "officer-9", [role])]
        assert task.task_id not in [t.task_id for t in await inbox(db_pool, reviewer.id, ["reviewer"])]

        await handle.execute_update(
            ApprovalWorkflow.claim, ClaimRequest(actor=person(officer, role), task_id=task.task_id)
        )
        assert task.task_id in [t.task_id for t in await inbox(db_pool, officer, [])]
        assert task.task_id not in [t.task_id for t in await inbox(db_pool, officer_2, [role])]

        await handle.execute_update(
            ApprovalWorkflow.decide,
            DecideRequest(actor=person(officer, role), task_id=task.task_id, decision=Decision.approve),
        )
        [review] = open_tasks(await view_when(handle, lambda v: bool(open_tasks(v, "review"))), "review")
        # The update returns once PostgreSQL has its result: the decided task has left every inbox.
        assert task.task_id not in [t.task_id for t in await inbox(db_pool, officer, [role])]
        # The next stage opens after the decision was recorded; any later accepted update is recorded after it.
        await handle.execute_update(
            ApprovalWorkflow.comment, CommentRequest(actor=reviewer, text="looking", task_id=review.task_id)
        )
        # By user id: the named reviewer's task, whatever their roles.
        assert [t.task_id for t in await inbox(db_pool, reviewer.id, []) if t.case_id == handle.id] == [review.task_id]
        # The query reads PostgreSQL only (it takes a pool, no Temporal client).
        [found] = [t for t in await inbox(db_pool, reviewer.id, []) if t.case_id == handle.id]
        assert found.status == TaskStatus.open.value and found.stage_id == "review"

        await handle.execute_update(ApprovalWorkflow.withdraw, WithdrawRequest(actor=APPLICANT, reason="test over"))
        await finished(time_skipping_env, handle)
    # A withdrawn case's tasks leave every inbox.
    assert [t for t in await inbox(db_pool, reviewer.id, []) if t.case_id == handle.id] == []
