"""The notify activity against a real local HTTP receiver: signed, sent once, and never failing the case."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.notifications import (
    IDEMPOTENCY_KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NotificationActivities,
    WebhookRetry,
    sign_body,
    verify_signature,
)
from approvals.settings import load_settings
from schemas.notifications import Channel, DeliveryResult, Notification
from tests.fixtures.webhooks import WebhookReceiver, closed_port

SECRET = "test-webhook-secret"


@pytest.fixture
async def notifier(db_pool: asyncpg.Pool) -> AsyncIterator[NotificationActivities]:
    async with httpx.AsyncClient() as http:
        yield NotificationActivities(
            db_pool,
            http,
            load_settings(webhook_signing_secret=SECRET, webhook_timeout_seconds=2),
            retry=WebhookRetry(attempts=3, first_delay_seconds=0.01),
        )


def notification(recipient: str, *, channel: Channel = Channel.webhook) -> Notification:
    return Notification(
        idempotency_key=f"project_approval:NOTIFY/{uuid.uuid4().hex}/7/{recipient}",
        case_id="project_approval:NOTIFY",
        channel=channel,
        kind="case.status_changed",
        recipient=recipient,
        subject="项目备案已批准",
        data={"status": "approved", "legal_basis": "Art. 12"},
    )


async def notify(notifier: NotificationActivities, message: Notification) -> DeliveryResult:
    return await ActivityEnvironment().run(notifier.notify, message)


async def outbox_row(pool: asyncpg.Pool, key: str) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT status, attempts, last_error, delivered_at FROM outbox WHERE idempotency_key = $1", key
    )
    assert row is not None
    return row


async def test_webhook_is_posted_signed_with_the_agreed_body_and_headers(
    notifier: NotificationActivities, receiver: WebhookReceiver, db_pool: asyncpg.Pool
) -> None:
    message = notification(receiver.url)

    result = await notify(notifier, message)

    assert (result.status, result.attempts, result.error) == ("delivered", 1, None)
    [request] = receiver.received
    assert request.path == "/hooks/approvals"
    assert verify_signature(SECRET, request.body, request.headers[SIGNATURE_HEADER.lower()])
    assert request.headers[SIGNATURE_HEADER.lower()] == sign_body(SECRET, request.body)
    assert not verify_signature("another-secret", request.body, request.headers[SIGNATURE_HEADER.lower()])
    assert request.headers[IDEMPOTENCY_KEY_HEADER.lower()] == message.idempotency_key
    assert request.headers[TIMESTAMP_HEADER.lower()].isdigit()
    assert json.loads(request.body) == {
        "idempotency_key": message.idempotency_key,
        "case_id": message.case_id,
        "kind": message.kind,
        "subject": "项目备案已批准",
        "data": message.data,
    }
    row = await outbox_row(db_pool, message.idempotency_key)
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 1, None)
    assert row["delivered_at"] is not None


async def test_a_delivered_key_is_not_posted_again(notifier: NotificationActivities, receiver: WebhookReceiver) -> None:
    message = notification(receiver.url)

    first = await notify(notifier, message)
    second = await notify(notifier, message)

    assert (first.status, second.status) == ("delivered", "duplicate")
    assert len(receiver.received) == 1


async def test_a_transient_failure_is_retried_within_the_activity(
    notifier: NotificationActivities, receiver: WebhookReceiver
) -> None:
    receiver.statuses = [503, 200]

    result = await notify(notifier, notification(receiver.url))

    assert (result.status, result.attempts) == ("delivered", 2)
    assert len(receiver.received) == 2
    assert receiver.received[0].body == receiver.received[1].body


async def test_an_endpoint_answering_500_marks_the_row_failed_and_the_activity_returns(
    notifier: NotificationActivities, receiver: WebhookReceiver, db_pool: asyncpg.Pool
) -> None:
    receiver.statuses = [500]
    message = notification(receiver.url)

    result = await notify(notifier, message)

    assert (result.status, result.attempts) == ("failed", 3)
    assert result.error is not None and "HTTP 500" in result.error
    assert len(receiver.received) == 3
    row = await outbox_row(db_pool, message.idempotency_key)
    assert (row["status"], row["attempts"], row["last_error"]) == ("failed", 3, result.error)


async def test_a_closed_port_marks_the_row_failed_and_the_activity_returns(
    notifier: NotificationActivities, db_pool: asyncpg.Pool
) -> None:
    message = notification(f"http://127.0.0.1:{closed_port()}/hooks")

    result = await notify(notifier, message)

    assert (result.status, result.attempts) == ("failed", 3)
    assert result.error is not None and "ConnectError" in result.error
    assert (await outbox_row(db_pool, message.idempotency_key))["status"] == "failed"


async def test_a_rejected_request_is_not_retried(notifier: NotificationActivities, receiver: WebhookReceiver) -> None:
    receiver.statuses = [400]

    result = await notify(notifier, notification(receiver.url))

    assert (result.status, result.attempts) == ("failed", 1)
    assert len(receiver.received) == 1


async def test_a_failed_key_is_delivered_when_notified_again(
    notifier: NotificationActivities, receiver: WebhookReceiver, db_pool: asyncpg.Pool
) -> None:
    receiver.statuses = [500, 500, 500, 200]
    message = notification(receiver.url)

    assert (await notify(notifier, message)).status == "failed"
    assert (await notify(notifier, message)).status == "delivered"

    row = await outbox_row(db_pool, message.idempotency_key)
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 4, None)


async def test_log_channel_is_delivered_once(notifier: NotificationActivities, db_pool: asyncpg.Pool) -> None:
    message = notification("li.wei", channel=Channel.log)

    assert (await notify(notifier, message)).status == "delivered"
    assert (await notify(notifier, message)).status == "duplicate"
    assert (await outbox_row(db_pool, message.idempotency_key))["attempts"] == 1
