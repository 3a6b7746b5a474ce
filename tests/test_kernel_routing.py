"""Routing modes of the kernel, driven end to end on the Temporal test server and real PostgreSQL."""

from __future__ import annotations

import asyncpg
from temporalio.testing import WorkflowEnvironment

from schemas.case import CaseStatus, ClaimRequest, DecideRequest, TaskStatus
from schemas.process import Decision, RoutingMode
from workflows.generic import ApprovalWorkflow
from tests.cases import definition, open_tasks, person, stage, start_case, view_when

OFFICER = person("officer-1", "one_window")
OFFICER_2 = person("officer-2", "one_window")


async def test_single_pool_stage_approved_by_a_candidate(time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(
            time_skipping_env.client, queue, definition(stage("acceptance", candidate_roles=("one_window",)))
        )
        [task] = open_tasks(await view_when(handle, open_tasks))
        assert task.status is TaskStatus.open and task.candidate_roles == ["one_window"]

        claimed = await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id))
        assert claimed.task.claimed_by == OFFICER.id
        await handle.execute_update(
            ApprovalWorkflow.decide, DecideRequest(actor=OFFICER, task_id=task.task_id, decision=Decision.approve)
        )
        result = await handle.result()

    assert result.status is CaseStatus.approved
    rows = await db_pool.fetch("SELECT seq, type, actor_id FROM audit_events WHERE case_id = $1 ORDER BY seq", handle.id)
    assert [row["type"] for row in rows] == [
        "case.started", "stage.started", "task.created", "task.claimed", "task.decided", "stage.completed", "case.decided",
    ]
    assert rows[3]["actor_id"] == OFFICER.id
