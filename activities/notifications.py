"""Notifications leave through the ``outbox`` table, one row per idempotency key, delivered by a dispatcher.

A case's notifications are written by the recording activity in the same transaction as the events that
caused them (``approvals.storage.outbox.enqueue``), so a notification exists exactly when its event does and
costs the case no Temporal activity of its own. The :class:`OutboxDispatcher` running in every worker
process delivers due rows: it claims them under a lease with ``FOR UPDATE SKIP LOCKED`` (several workers
never post the same row at once), makes one attempt per claim and, when a receiver fails, schedules the next
attempt with backoff; after the last attempt the row is ``failed`` and kept. A notification is a courtesy,
never a step of the procedure: a receiver that is down never holds up or fails a case. A delivered key is
never sent again; a worker killed between a receiver's answer and the row's update can post one key twice,
so receivers deduplicate by ``X-Approvals-Idempotency-Key``.

A webhook goes only where the dispatcher's :class:`~activities.destinations.DestinationPolicy` allows: its
host is resolved once, every address checked, and the connection made to a checked address. A refused one
(loopback, private, link-local, … outside WEBHOOK_ALLOWED_NETWORKS) is marked ``failed`` with the reason at
once, nothing sent and never tried again: the same URL would be refused again.

Webhooks are signed with the ``WEBHOOK_SIGNING_SECRET``: ``X-Approvals-Timestamp: <Unix seconds>`` and
``X-Approvals-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." followed by the exact body bytes>``.
The timestamp is signed, so a captured webhook cannot be replayed later under a fresh one: receivers check
the signature with :func:`verify_signature` (or its equivalent) and refuse a timestamp too far from their
clock (:data:`DEFAULT_TOLERANCE_SECONDS`), and deduplicate by ``X-Approvals-Idempotency-Key``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import asyncpg
import httpx
import structlog
from temporalio import activity

from activities.destinations import DestinationPolicy, RefusedDestination, webhook_client
from approvals.storage import outbox
from schemas.notifications import Channel, DeliveryResult, Notification

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Approvals-Signature"
IDEMPOTENCY_KEY_HEADER = "X-Approvals-Idempotency-Key"
TIMESTAMP_HEADER = "X-Approvals-Timestamp"

_NOT_WORTH_RETRYING = frozenset({400, 401, 403, 404, 405, 410, 413, 415, 422})
"""The receiver rejects the request itself; sending the same request again cannot succeed."""

DEFAULT_TOLERANCE_SECONDS = 300
"""How far a webhook's timestamp may be from the receiver's clock before :func:`verify_signature` refuses it."""


def signed_content(timestamp: str | int, body: bytes) -> bytes:
    """What the signature covers: the ``X-Approvals-Timestamp`` value, a dot, then the body bytes."""
    return f"{timestamp}.".encode() + body


def sign_body(secret: str, timestamp: str | int, body: bytes) -> str:
    """The ``X-Approvals-Signature`` value for ``body`` sent with ``timestamp``: ``sha256=`` and the hex
    HMAC-SHA256 of ``f"{timestamp}."`` followed by the body."""
    return "sha256=" + hmac.new(secret.encode(), signed_content(timestamp, body), hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes,
    signature: str,
    *,
    tolerance_seconds: float | None = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` (the header value) signs ``timestamp`` and ``body``, and the timestamp is within
    ``tolerance_seconds`` of ``now`` (default: the clock; None: any age). Constant-time, for receivers."""
    timestamp = str(timestamp)
    if not timestamp.isdigit():
        return False
    if tolerance_seconds is not None:
        current = time.time() if now is None else now
        if abs(current - int(timestamp)) > tolerance_seconds:
            return False
    return hmac.compare_digest(sign_body(secret, timestamp, body), signature)


def webhook_body(notification: Notification) -> bytes:
    """The JSON a webhook receives; UTF-8 with Chinese text as is, so signed bytes are what is sent."""
    return json.dumps(
        {
            "idempotency_key": notification.idempotency_key,
            "case_id": notification.case_id,
            "kind": notification.kind,
            "subject": notification.subject,
            "data": notification.data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    ).encode()


@dataclass(frozen=True)
class WebhookRetry:
    """Delivery attempts of one webhook: ``attempts`` in all, the first retry after ``first_delay_seconds``,
    then doubling up to ``max_delay_seconds`` (the defaults keep trying for about twenty minutes)."""

    attempts: int = 10
    first_delay_seconds: float = 2.0
    max_delay_seconds: float = 300.0

    def delay_after(self, attempt: int) -> float:
        """Seconds between attempt number ``attempt`` (1, 2, ...) and the next one."""
        return min(self.max_delay_seconds, self.first_delay_seconds * float(2 ** (attempt - 1)))


class NotificationActivities:
    """The ``notify`` activity of cases started before notifications went through the record: it only
    queues (the dispatcher delivers), so those cases and new ones share one delivery path."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="notify")
    async def notify(self, notification: Notification) -> DeliveryResult:
        await outbox.enqueue(self._pool, [notification])
        return DeliveryResult(idempotency_key=notification.idempotency_key, status="queued")


class OutboxDispatcher:
    """Delivers due outbox rows until stopped; one per worker process, sharing its pool.

    Webhooks are signed with ``signing_secret`` (WEBHOOK_SIGNING_SECRET), each POST may take
    ``timeout_seconds`` (WEBHOOK_TIMEOUT_SECONDS) and reaches only what ``destinations`` allows
    (WEBHOOK_ALLOWED_NETWORKS). Its HTTP client is its own, closed when :meth:`running` ends (or by
    :meth:`aclose`), so no webhook can leave through a client without the check.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        signing_secret: str,
        timeout_seconds: float,
        destinations: DestinationPolicy,
        retry: WebhookRetry = WebhookRetry(),
        batch_size: int = 50,
        poll_seconds: float = 1.0,
    ) -> None:
        self._pool = pool
        self._http = webhook_client(destinations)
        self._signing_secret = signing_secret
        self._timeout_seconds = timeout_seconds
        self._retry = retry
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None

    @property
    def lease_seconds(self) -> float:
        """How long a claimed row is left to its claimant: longer than any one attempt can take, so a live
        dispatcher never has its row taken over, while one that died releases it within this time."""
        return 2 * self._timeout_seconds + 30

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Delivers in the background while the block runs; stops (finishing the rows in hand) on exit."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop), name="outbox-dispatcher")
        try:
            yield
        finally:
            stop.set()
            self._wake.set()
            try:
                await task
            finally:
                await self.aclose()

    async def aclose(self) -> None:
        """Closes the HTTP client (its open connections)."""
        await self._http.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        """Delivers due rows, woken by NOTIFY or every ``poll_seconds``; survives PostgreSQL going away."""
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self._listen()
                    delivered = await self.deliver_due()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("outbox.unavailable", error=f"{type(error).__name__}: {error}")
                    await self._drop_listener()
                    delivered = 0
                if delivered < self._batch_size:  # a full batch: more may be due at once
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
        finally:
            await self._drop_listener()

    async def deliver_due(self) -> int:
        """One pass: claims up to ``batch_size`` due rows and makes one delivery attempt of each.

        Cases are served concurrently, each case's rows one after the other in the order they were queued,
        so a service sees a case's status changes in the order they happened (``data.seq`` orders them
        anyway, should a retried one arrive late).
        """
        claimed = await outbox.claim_due(self._pool, self._batch_size, self.lease_seconds)
        by_case: dict[str, list[outbox.ClaimedNotification]] = {}
        for row in claimed:  # in queue order
            by_case.setdefault(row.notification.case_id, []).append(row)
        await asyncio.gather(*(self._deliver_in_order(case_rows) for case_rows in by_case.values()))
        return len(claimed)

    async def _deliver_in_order(self, rows: list[outbox.ClaimedNotification]) -> None:
        for row in rows:
            await self._deliver(row)

    async def _listen(self) -> None:
        """Holds one pooled connection LISTENing on :data:`outbox.OUTBOX_CHANNEL` (taken again after it broke)."""
        if self._listener is not None and not self._listener.is_closed():
            return
        await self._drop_listener()
        listener = await self._pool.acquire()
        self._listener = listener
        await listener.add_listener(outbox.OUTBOX_CHANNEL, self._on_queued)

    def _on_queued(self, *_: object) -> None:
        self._wake.set()

    async def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(Exception):
                await listener.remove_listener(outbox.OUTBOX_CHANNEL, self._on_queued)
            await self._pool.release(listener)

    async def _deliver(self, row: outbox.ClaimedNotification) -> None:
        notification = row.notification
        key, attempt = notification.idempotency_key, row.attempts + 1
        if notification.channel is Channel.log:
            log.info(
                "notification",
                idempotency_key=key,
                case_id=notification.case_id,
                kind=notification.kind,
                recipient=notification.recipient,
                subject=notification.subject,
                data=notification.data,
            )
            await outbox.mark_delivered(self._pool, key)
            return
        try:
            error, worth_retrying = await self._post_webhook(notification)
        except RefusedDestination as refusal:
            reason = f"refused, nothing sent to {notification.recipient}: {refusal}"
            await outbox.mark_refused(self._pool, key, reason)
            log.warning("notification.webhook_refused", idempotency_key=key, case_id=notification.case_id, error=reason)
            return
        if error is None:
            await outbox.mark_delivered(self._pool, key)
            log.info(
                "notification.webhook_delivered", idempotency_key=key, case_id=notification.case_id, attempt=attempt
            )
        elif worth_retrying and attempt < self._retry.attempts:
            delay = self._retry.delay_after(attempt)
            await outbox.retry_later(self._pool, key, error, delay)
            log.info(
                "notification.webhook_attempt_failed", idempotency_key=key, attempt=attempt, error=error, retry_in=delay
            )
        else:
            await outbox.mark_failed(self._pool, key, error)
            log.warning(
                "notification.webhook_failed",
                idempotency_key=key,
                case_id=notification.case_id,
                url=notification.recipient,
                attempts=attempt,
                error=error,
            )

    async def _post_webhook(self, notification: Notification) -> tuple[str | None, bool]:
        """One signed POST; the error (None on success) and whether another attempt could succeed.
        RefusedDestination when the policy refuses the address (no connection was made)."""
        body = webhook_body(notification)
        timestamp = str(int(time.time()))  # signed with the body: each attempt is signed afresh
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            IDEMPOTENCY_KEY_HEADER: notification.idempotency_key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign_body(self._signing_secret, timestamp, body),
        }
        try:
            response = await self._http.post(
                notification.recipient, content=body, headers=headers, timeout=self._timeout_seconds
            )
        except (httpx.HTTPError, httpx.InvalidURL) as failure:
            return f"{type(failure).__name__} posting to {notification.recipient}: {failure}", True
        if response.is_success:
            return None, True
        return f"HTTP {response.status_code} from {notification.recipient}", (
            response.status_code not in _NOT_WORTH_RETRYING
        )
