"""Services registered a callback URL at start: every status change is POSTed to it, signed."""

from __future__ import annotations

import json

import asyncpg
from temporalio.testing import WorkflowEnvironment

from activities.notifications import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from approvals.settings import load_settings
from schemas.case import CaseStatus, DecideRequest, MissingItem, RequestSupplementRequest, SupplementRequest
from schemas.process import Decision
from tests.cases import (
    APPLICANT,
    definition,
    finished,
    open_tasks,
    outbox_when,
    person,
    stage,
    start_case,
    view_when,
)
from tests.fixtures.webhooks import WebhookReceiver, closed_port
from workflows.kernel import ApprovalWorkflow

ALICE = person("alice", "reviewer")
PROCESS = definition(stage("review", assignees=("alice",), may_request_supplement=True))


async def drive_to_approval(env: WorkflowEnvironment, queue: str, callback_url: str):
    handle = await start_case(env.client, queue, PROCESS, callback_url=callback_url)
    [task] = open_tasks(await view_when(handle, open_tasks))
    await handle.execute_update(
        ApprovalWorkflow.request_supplement,
        RequestSupplementRequest(actor=ALICE, items=[MissingItem(item="land title")]),
    )
    await handle.execute_update(
        ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="land title attached")
    )
    await handle.execute_update(
        ApprovalWorkflow.decide, DecideRequest(actor=ALICE, task_id=task.task_id, decision=Decision.approve)
    )
    return handle, await finished(env, handle)


async def test_every_status_change_is_posted_signed_to_the_callback_url(
    time_skipping_env: WorkflowEnvironment, engine_worker, receiver: WebhookReceiver
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle, result = await drive_to_approval(time_skipping_env, queue, receiver.url)
        await receiver.wait_for(3)

    assert result.status is CaseStatus.approved
    bodies = [json.loads(request.body) for request in receiver.received]
    assert [(b["data"]["previous_status"], b["data"]["status"]) for b in bodies] == [
        ("in_review", "awaiting_supplement"),
        ("awaiting_supplement", "in_review"),
        ("in_review", "approved"),
    ]
    assert all(b["case_id"] == handle.id and b["kind"] == "case.status_changed" for b in bodies)
    secret = load_settings().webhook_signing_secret
    for request in receiver.received:
        timestamp = request.headers[TIMESTAMP_HEADER.lower()]
        assert verify_signature(secret, timestamp, request.body, request.headers[SIGNATURE_HEADER.lower()])


async def test_an_unreachable_callback_never_blocks_the_case_and_stays_in_the_outbox(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle, result = await drive_to_approval(time_skipping_env, queue, f"http://127.0.0.1:{closed_port()}/hook")
        failed = await outbox_when(
            db_pool,
            handle.id,
            lambda rows: len(rows) == 3 and all(r["attempts"] for r in rows),
            kind="case.status_changed",
        )

    assert result.status is CaseStatus.approved
    assert {row["kind"] for row in failed} == {"case.status_changed"}
    assert {row["status"] for row in failed} == {"pending"}  # tried again later, with backoff
    assert all("127.0.0.1" in row["last_error"] and row["next_attempt_at"] > row["created_at"] for row in failed)
