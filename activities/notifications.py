"""Notification activity: every notification goes through the ``outbox`` table, keyed by its idempotency key.

A notification is a courtesy, never a step of the procedure: a receiver that is down must not hold up
or fail a case. So a webhook is retried a few times within the activity and, if it still fails, the
outbox row is marked ``failed`` (kept for redelivery) and the activity returns normally. A delivered
key is never sent again, however often Temporal retries the activity.

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
from dataclasses import dataclass

import asyncpg
import httpx
import structlog
from temporalio import activity

from approvals.settings import Settings
from schemas.notifications import Channel, DeliveryResult, Notification

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Approvals-Signature"
IDEMPOTENCY_KEY_HEADER = "X-Approvals-Idempotency-Key"
TIMESTAMP_HEADER = "X-Approvals-Timestamp"

_NOT_WORTH_RETRYING = frozenset({400, 401, 403, 404, 405, 410, 413, 415, 422})
"""The receiver rejects the request itself; sending the same request again cannot succeed."""

_INSERT_OUTBOX = """
INSERT INTO outbox (idempotency_key, case_id, channel, kind, recipient, subject, data)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb)
ON CONFLICT (idempotency_key) DO NOTHING
"""

_MARK_DELIVERED = """
UPDATE outbox SET status = 'delivered', attempts = attempts + $2, last_error = NULL, delivered_at = now()
WHERE idempotency_key = $1
"""

_MARK_FAILED = """
UPDATE outbox SET status = 'failed', attempts = attempts + $2, last_error = $3
WHERE idempotency_key = $1
"""


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
    """In-activity retries of one webhook: ``attempts`` in all, waiting ``first_delay_seconds``, then doubling."""

    attempts: int = 3
    first_delay_seconds: float = 0.5

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2, 3, ...)."""
        return self.first_delay_seconds * float(2 ** (attempt - 2))


class NotificationActivities:
    """Sends notifications; one instance per worker, sharing its pool and HTTP client."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        http: httpx.AsyncClient,
        settings: Settings,
        *,
        retry: WebhookRetry = WebhookRetry(),
    ) -> None:
        self._pool = pool
        self._http = http
        self._settings = settings
        self._retry = retry

    @activity.defn(name="notify")
    async def notify(self, notification: Notification) -> DeliveryResult:
        """Delivers ``notification`` once; returns ``duplicate`` when its key was delivered before.

        Never raises for a failing receiver: the result is ``failed`` and the outbox row keeps the error.
        """
        key = notification.idempotency_key
        await self._pool.execute(
            _INSERT_OUTBOX,
            key,
            notification.case_id,
            notification.channel.value,
            notification.kind,
            notification.recipient,
            notification.subject,
            json.dumps(notification.data, ensure_ascii=False, default=str),
        )
        status = await self._pool.fetchval("SELECT status FROM outbox WHERE idempotency_key = $1", key)
        if status == "delivered":
            log.info("notification.duplicate", idempotency_key=key, case_id=notification.case_id)
            return DeliveryResult(idempotency_key=key, status="duplicate")

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
            await self._pool.execute(_MARK_DELIVERED, key, 1)
            return DeliveryResult(idempotency_key=key, status="delivered", attempts=1)

        attempts, error = await self._post_webhook(notification)
        if error is None:
            await self._pool.execute(_MARK_DELIVERED, key, attempts)
            log.info(
                "notification.webhook_delivered", idempotency_key=key, case_id=notification.case_id, attempts=attempts
            )
            return DeliveryResult(idempotency_key=key, status="delivered", attempts=attempts)
        await self._pool.execute(_MARK_FAILED, key, attempts, error)
        log.warning(
            "notification.webhook_failed",
            idempotency_key=key,
            case_id=notification.case_id,
            url=notification.recipient,
            attempts=attempts,
            error=error,
        )
        return DeliveryResult(idempotency_key=key, status="failed", attempts=attempts, error=error)

    async def _post_webhook(self, notification: Notification) -> tuple[int, str | None]:
        """POSTs with retries; returns the number of attempts made and the last error (None on success)."""
        body = webhook_body(notification)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            IDEMPOTENCY_KEY_HEADER: notification.idempotency_key,
        }
        error: str | None = None
        for attempt in range(1, self._retry.attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self._retry.delay_before(attempt))
            timestamp = str(int(time.time()))  # signed with the body: each attempt is signed afresh
            signature = sign_body(self._settings.webhook_signing_secret, timestamp, body)
            try:
                response = await self._http.post(
                    notification.recipient,
                    content=body,
                    headers={**headers, TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature},
                    timeout=self._settings.webhook_timeout_seconds,
                )
            except (httpx.HTTPError, httpx.InvalidURL) as failure:
                error = f"{type(failure).__name__} posting to {notification.recipient}: {failure}"
            else:
                if response.is_success:
                    return attempt, None
                error = f"HTTP {response.status_code} from {notification.recipient}"
                if response.status_code in _NOT_WORTH_RETRYING:
                    return attempt, error
            log.info(
                "notification.webhook_attempt_failed",
                idempotency_key=notification.idempotency_key,
                attempt=attempt,
                error=error,
            )
        return self._retry.attempts, error
