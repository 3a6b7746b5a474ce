"""The outbox dispatcher against a real local HTTP receiver: signed, sent once, retried with backoff, and
never failing a case; two dispatchers never post the same row. The receiver listens on 127.0.0.1, so these
dispatchers allow loopback, as `approvals dev` does (tests/test_webhook_destinations.py: what is refused)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment

from activities.destinations import LOOPBACK_NETWORKS, DestinationPolicy, parse_networks
from activities.notifications import (
    IDEMPOTENCY_KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NotificationActivities,
    OutboxDispatcher,
    WebhookRetry,
    sign_body,
    verify_signature,
)
from approvals.storage.outbox import enqueue
from schemas.notifications import Channel, Notification
from tests.fixtures.webhooks import WebhookReceiver, closed_port

SECRET = "test-webhook-secret"
RETRY = WebhookRetry(attempts=3, first_delay_seconds=0.01)
LOOPBACK_ALLOWED = DestinationPolicy(parse_networks(LOOPBACK_NETWORKS))


def dispatcher_of(db_pool: asyncpg.Pool) -> OutboxDispatcher:
    return OutboxDispatcher(
        db_pool, signing_secret=SECRET, timeout_seconds=2, destinations=LOOPBACK_ALLOWED, retry=RETRY
    )


@pytest.fixture
async def dispatcher(db_pool: asyncpg.Pool) -> AsyncIterator[OutboxDispatcher]:
    dispatcher = dispatcher_of(db_pool)
    yield dispatcher
    await dispatcher.aclose()


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


async def outbox_row(pool: asyncpg.Pool, key: str) -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM outbox WHERE idempotency_key = $1", key)
    assert row is not None
    return row


async def deliver_until_settled(dispatcher: OutboxDispatcher, pool: asyncpg.Pool, key: str) -> asyncpg.Record:
    """Runs dispatcher passes until the row is delivered or failed (retries are due after 10-40 ms)."""
    for _ in range(200):
        await dispatcher.deliver_due()
        row = await outbox_row(pool, key)
        if row["status"] != "pending":
            return row
        await asyncio.sleep(0.01)
    raise AssertionError(f"{key} is still pending: {dict(row)}")


async def test_webhook_is_posted_signed_with_the_agreed_body_and_headers(
    dispatcher: OutboxDispatcher, receiver: WebhookReceiver, db_pool: asyncpg.Pool
) -> None:
    message = notification(receiver.url)
    await enqueue(db_pool, [message])

    row = await deliver_until_settled(dispatcher, db_pool, message.idempotency_key)

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


async def test_a_key_queued_again_after_delivery_is_not_posted_again(
    dispatcher: OutboxDispatcher, receiver: WebhookReceiver, db_pool: asyncpg.Pool
) -> None:
    message = notification(receiver.url)
    await enqueue(db_pool, [message])
    await deliver_until_settled(dispatcher, db_pool, message.idempotency_key)

    await enqueue(db_pool, [message])  # e.g. a recording retried after its reply was lost
    await dispatcher.deliver_due()

    assert len(receiver.received) == 1
    assert (await outbox_row(db_pool, message.idempotency_key))["attempts"] == 1


async def test_a_transient_failure_is_tried_again_later_signed_afresh(
    dispatcher: OutboxDispatcher, receiver: WebhookReceiver, db_pool: asyncpg.Pool
) -> None:
    receiver.statuses = [503, 200]
    message = notification(receiver.url)
    await enqueue(db_pool, [message])

    await dispatcher.deliver_due()
    waiting = await outbox_row(db_pool, message.idempotency_key)
    row = await deliver_until_settled(dispatcher, db_pool, message.idempotency_key)

    assert (waiting["status"], waiting["attempts"]) == ("pending", 1)
    assert "HTTP 503" in waiting["last_error"] and waiting["next_attempt_at"] > waiting["created_at"]
    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 2, None)
    assert len(receiver.received) == 2
    for request in receiver.received:  # every attempt carries its own timestamp, signed with the body
        headers = request.headers
        assert verify_signature(
            SECRET, headers[TIMESTAMP_HEADER.lower()], request.body, headers[SIGNATURE_HEADER.lower()]
        )
    assert receiver.received[0].body == receiver.received[1].body


async def test_an_endpoint_answering_500_is_marked_failed_after_the_last_attempt(
    dispatcher: OutboxDispatcher, receiver: WebhookReceiver, db_pool: asyncpg.Pool
) -> None:
    receiver.statuses = [500]
    message = notification(receiver.url)
    await enqueue(db_pool, [message])

    row = await deliver_until_settled(dispatcher, db_pool, message.idempotency_key)

    assert (row["status"], row["attempts"]) == ("failed", RETRY.attempts)
    assert "HTTP 500" in row["last_error"]
    assert len(receiver.received) == RETRY.attempts


async def test_a_closed_port_is_marked_failed_after_the_last_attempt(
    dispatcher: OutboxDispatcher, db_pool: asyncpg.Pool
) -> None:
    message = notification(f"http://127.0.0.1:{closed_port()}/hooks")
    await enqueue(db_pool, [message])

    row = await deliver_until_settled(dispatcher, db_pool, message.idempotency_key)

    assert (row["status"], row["attempts"]) == ("failed", RETRY.attempts)
    assert "ConnectError" in row["last_error"]


async def test_a_rejected_request_is_not_tried_again(
    dispatcher: OutboxDispatcher, receiver: WebhookReceiver, db_pool: asyncpg.Pool
) -> None:
    receiver.statuses = [400]
    message = notification(receiver.url)
    await enqueue(db_pool, [message])

    row = await deliver_until_settled(dispatcher, db_pool, message.idempotency_key)

    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert len(receiver.received) == 1


async def test_log_channel_is_delivered_once(dispatcher: OutboxDispatcher, db_pool: asyncpg.Pool) -> None:
    message = notification("li.wei", channel=Channel.log)
    await enqueue(db_pool, [message, message])

    row = await deliver_until_settled(dispatcher, db_pool, message.idempotency_key)

    assert (row["status"], row["attempts"]) == ("delivered", 1)


async def test_two_dispatchers_never_post_the_same_row(receiver: WebhookReceiver, db_pool: asyncpg.Pool) -> None:
    messages = [notification(receiver.url) for _ in range(40)]
    await enqueue(db_pool, messages)
    first, second = dispatcher_of(db_pool), dispatcher_of(db_pool)

    for _ in range(20):
        await asyncio.gather(first.deliver_due(), second.deliver_due())
        if len(receiver.received) >= len(messages):
            break
    await first.aclose()
    await second.aclose()

    keys = [request.headers[IDEMPOTENCY_KEY_HEADER.lower()] for request in receiver.received]
    assert sorted(keys) == sorted(message.idempotency_key for message in messages)  # each once


async def test_a_row_claimed_by_a_dispatcher_that_died_is_taken_over_when_its_lease_ends(
    dispatcher: OutboxDispatcher, receiver: WebhookReceiver, db_pool: asyncpg.Pool
) -> None:
    held, abandoned = notification(receiver.url), notification(receiver.url)
    await enqueue(db_pool, [held, abandoned])
    await db_pool.execute(
        "UPDATE outbox SET claimed_until = now() + interval '1 hour' WHERE idempotency_key = $1", held.idempotency_key
    )
    await db_pool.execute(
        "UPDATE outbox SET claimed_until = now() - interval '1 second' WHERE idempotency_key = $1",
        abandoned.idempotency_key,
    )

    await deliver_until_settled(dispatcher, db_pool, abandoned.idempotency_key)

    assert [request.headers[IDEMPOTENCY_KEY_HEADER.lower()] for request in receiver.received] == [
        abandoned.idempotency_key
    ]
    assert (await outbox_row(db_pool, held.idempotency_key))["status"] == "pending"  # still its claimant's


async def test_a_case_started_before_the_outbox_change_queues_through_its_notify_activity(
    db_pool: asyncpg.Pool,
) -> None:
    message = notification("li.wei", channel=Channel.log)

    result = await ActivityEnvironment().run(NotificationActivities(db_pool).notify, message)

    assert result.status == "queued"
    assert (await outbox_row(db_pool, message.idempotency_key))["status"] in ("pending", "delivered")


async def test_the_running_dispatcher_is_woken_by_a_queued_row(
    receiver: WebhookReceiver, db_pool: asyncpg.Pool
) -> None:
    slow_poll = OutboxDispatcher(
        db_pool, signing_secret=SECRET, timeout_seconds=5, destinations=LOOPBACK_ALLOWED, poll_seconds=60
    )
    async with slow_poll.running():
        await asyncio.sleep(0.2)  # listening, waiting for its next poll in a minute
        await enqueue(db_pool, [notification(receiver.url)])
        await receiver.wait_for(1, timeout=10)
