"""The notify activity against a real local HTTP receiver: signed, sent once, and never failing the case."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
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
    timestamp, signature = request.headers[TIMESTAMP_HEADER.lower()], request.headers[SIGNATURE_HEADER.lower()]
    assert timestamp.isdigit() and abs(int(timestamp) - time.time()) < 60
    assert verify_signature(SECRET, timestamp, request.body, signature)
    assert signature == sign_body(SECRET, timestamp, request.body)
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"  # the documented scheme, computed independently
    assert not verify_signature("another-secret", timestamp, request.body, signature)
    assert request.headers[IDEMPOTENCY_KEY_HEADER.lower()] == message.idempotency_key
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


def test_the_timestamp_is_signed_so_a_captured_webhook_cannot_be_replayed() -> None:
    body = b'{"case_id":"generic:A-1","kind":"case.status_changed"}'
    sent_at = 1_767_225_600
    signature = sign_body(SECRET, sent_at, body)

    assert verify_signature(SECRET, str(sent_at), body, signature, now=sent_at + 10)
    # replayed later under a fresh timestamp: the signature no longer matches
    assert not verify_signature(SECRET, str(sent_at + 3600), body, signature, now=sent_at + 3600)
    # replayed later with its own timestamp: too old
    assert not verify_signature(SECRET, str(sent_at), body, signature, now=sent_at + 3600)
    assert verify_signature(SECRET, str(sent_at), body, signature, now=sent_at + 3600, tolerance_seconds=None)
    # the body is covered as before, and a malformed timestamp is refused
    assert not verify_signature(SECRET, str(sent_at), body + b" ", signature, now=sent_at)
    assert not verify_signature(SECRET, "-1", body, signature, tolerance_seconds=None)


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
    for request in receiver.received:  # every attempt carries its own timestamp, signed with the body
        headers = request.headers
        assert verify_signature(
            SECRET, headers[TIMESTAMP_HEADER.lower()], request.body, headers[SIGNATURE_HEADER.lower()]
        )
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
