"""收回 (recall): the stage's supervisor takes a claimed pool task back to the pool, e.g. when the claimant is
absent. The operation was added with one registry entry, its request model and its handler: these tests show
the kernel, the audit (cross-check, timeline in both languages, state fold), the HTTP route and the CLI
command all follow."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from approvals.audit.crosscheck import verify
from approvals.audit.state import state_at
from approvals.audit.timeline import timeline
from approvals.cli import app
from approvals.operations import Scope, operations
from approvals.storage.queries import case_events
from schemas.case import ClaimRequest, RecallRequest, TaskStatus
from schemas.process import Deadline, Decision
from tests.cases import (
    APPLICANT,
    decide,
    definition,
    events,
    finished,
    open_tasks,
    person,
    stage,
    start_case,
    view_when,
)
from workflows.kernel import ApprovalWorkflow

OFFICER = person("officer-1", "one_window")
OFFICER_2 = person("officer-2", "one_window")
SUPERVISOR = person("chief-1", "section_chief")
POOL_WITH_SUPERVISOR = definition(
    stage(
        "acceptance",
        candidate_roles=("one_window",),
        deadline=Deadline(working_days=5, remind_before_working_days=0, escalate_to_role="section_chief"),
    )
)
POOL_WITHOUT_SUPERVISOR = definition(stage("acceptance", candidate_roles=("one_window",)))


async def refused(handle: Any, request: RecallRequest) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as raised:
        await handle.execute_update(ApprovalWorkflow.recall, request)
    cause = raised.value.cause
    assert isinstance(cause, ApplicationError)
    return str(cause.type)


async def test_the_supervisor_recalls_a_claimed_task_and_another_reviewer_takes_it(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, POOL_WITH_SUPERVISOR)
        task = open_tasks(await view_when(handle, lambda v: bool(open_tasks(v))))[0]
        await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id))

        recall = RecallRequest(actor=SUPERVISOR, task_id=task.task_id, reason="officer-1 is on leave")
        recalled = (await handle.execute_update(ApprovalWorkflow.recall, recall)).task
        assert (recalled.status, recalled.claimed_by, recalled.version) == (TaskStatus.open, None, 3)

        await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER_2, task_id=task.task_id))
        await decide(handle, OFFICER_2, task.task_id, Decision.approve)
        result = await finished(time_skipping_env, handle)
        history = await handle.fetch_history()

    assert result.tasks[0].decided_by == OFFICER_2.id
    [row] = await events(db_pool, handle.id, "task.recalled")
    assert (row["actor_id"], row["payload"]["from"], row["payload"]["reason"]) == (
        SUPERVISOR.id, OFFICER.id, "officer-1 is on leave",
    )  # fmt: skip
    notified = await db_pool.fetch(
        "SELECT recipient FROM outbox WHERE case_id = $1 AND kind = 'task.assigned'", handle.id
    )
    assert "role:one_window" in {r["recipient"] for r in notified}  # the pool hears the task is back

    logged = await case_events(db_pool, handle.id)
    # The cross-check compares the request in the history with its event, by the registry's `agrees`.
    assert verify(handle.id, logged, history).ok
    rows = {row.seq: row for row in timeline(logged)}
    [recalled_row] = [rows[event.seq] for event in logged if event.type == "task.recalled"]
    assert recalled_row.action == f"{SUPERVISOR.name} recalled the task from {OFFICER.id} to the pool"
    assert recalled_row.action_zh == f"{SUPERVISOR.name}将任务从{OFFICER.id}处收回任务池"
    assert recalled_row.comment == "officer-1 is on leave"
    as_recalled = state_at(logged, seq=row["seq"])
    assert [(t.status, t.claimed_by) for t in as_recalled.tasks] == [("open", None)]


async def test_recall_is_refused_to_anyone_but_the_stage_supervisor_and_for_tasks_not_claimed(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, POOL_WITH_SUPERVISOR)
        task = open_tasks(await view_when(handle, lambda v: bool(open_tasks(v))))[0]

        def recall(actor: Any) -> RecallRequest:
            return RecallRequest(actor=actor, task_id=task.task_id, reason="absent")

        assert await refused(handle, recall(SUPERVISOR)) == "NOT_CLAIMED"  # nothing to recall yet
        await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id))
        assert await refused(handle, recall(OFFICER_2)) == "NOT_SUPERVISOR"  # a fellow reviewer may not
        assert await refused(handle, recall(APPLICANT)) == "SEPARATION_OF_DUTIES"
        chief_who_claimed = person(OFFICER.id, "one_window", "section_chief")
        assert await refused(handle, recall(chief_who_claimed)) == "INVALID_TARGET"  # unclaim your own task
        await decide(handle, OFFICER, task.task_id, Decision.approve)
        await finished(time_skipping_env, handle)

        without = await start_case(time_skipping_env.client, queue, POOL_WITHOUT_SUPERVISOR)
        other = open_tasks(await view_when(without, lambda v: bool(open_tasks(v))))[0]
        await without.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=other.task_id))
        request = RecallRequest(actor=SUPERVISOR, task_id=other.task_id, reason="absent")
        assert await refused(without, request) == "NOT_SUPERVISOR"  # the stage names no supervisor
        await decide(without, OFFICER, other.task_id, Decision.approve)
        await finished(time_skipping_env, without)


def test_recall_is_an_http_route_and_a_cli_command_generated_from_its_registry_entry() -> None:
    from api.app import create_app
    from approvals.settings import Settings

    recall = operations(Scope.task)["recall"]
    assert "recall" not in operations(Scope.case)
    spec = create_app(Settings()).openapi()
    route = spec["paths"]["/v1/tasks/{task_id}/recall"]["post"]
    assert route["summary"] == recall.summary
    body = spec["components"]["schemas"]["RecallTaskBody"]
    assert body["required"] == ["reason"] and "actor" not in body["properties"]

    help_text = CliRunner().invoke(app, ["recall", "--help"], env={"COLUMNS": "200"}).output
    assert "TASK_ID" in help_text and "REASON" in help_text and "收回" in help_text
