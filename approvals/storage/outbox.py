"""The ``outbox`` table: notifications queued with the events that caused them, and their delivery state.

Rows are claimed under a lease with ``FOR UPDATE SKIP LOCKED``, so several dispatchers never post the same
row at once, and one that died releases its rows when the lease runs out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from schemas.notifications import Channel, Notification

OUTBOX_CHANNEL = "outbox_pending"
"""PostgreSQL NOTIFY channel that wakes the dispatchers when rows are queued (they also poll)."""

_INSERT_OUTBOX = """
INSERT INTO outbox (idempotency_key, case_id, channel, kind, recipient, subject, data)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb)
ON CONFLICT (idempotency_key) DO NOTHING
"""

_CLAIM_DUE = """
UPDATE outbox SET claimed_until = now() + make_interval(secs => $2)
WHERE idempotency_key IN (
    SELECT idempotency_key FROM outbox
    WHERE status = 'pending' AND next_attempt_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY next_attempt_at, position
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING idempotency_key, case_id, channel, kind, recipient, subject, data::text AS data, attempts, position
"""

_MARK_DELIVERED = """
UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_error = NULL, delivered_at = now(),
    claimed_until = NULL
WHERE idempotency_key = $1
"""

_RETRY_LATER = """
UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + make_interval(secs => $3),
    claimed_until = NULL
WHERE idempotency_key = $1
"""

_MARK_FAILED = """
UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $2, claimed_until = NULL
WHERE idempotency_key = $1
"""


_MARK_REFUSED = """
UPDATE outbox SET status = 'failed', last_error = $2, claimed_until = NULL
WHERE idempotency_key = $1
"""


@dataclass(frozen=True)
class ClaimedNotification:
    """A due row claimed for one delivery attempt."""

    notification: Notification
    attempts: int
    """Attempts made before this one."""
    position: int
    """Queue order: a case's notifications are delivered in this order."""


async def enqueue(connection: asyncpg.Connection | asyncpg.Pool, notifications: Sequence[Notification]) -> None:
    """Queues ``notifications`` (a key already queued is left as it is) and wakes the dispatchers.

    Inside a transaction both take effect at commit: the rows with the events that caused them, or not at all.
    """
    if not notifications:
        return
    await connection.executemany(
        _INSERT_OUTBOX,
        [
            (
                n.idempotency_key,
                n.case_id,
                n.channel.value,
                n.kind,
                n.recipient,
                n.subject,
                json.dumps(n.data, ensure_ascii=False, default=str),
            )
            for n in notifications
        ],
    )
    await connection.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)


async def claim_due(pool: asyncpg.Pool, limit: int, lease_seconds: float) -> list[ClaimedNotification]:
    """Claims up to ``limit`` due rows for ``lease_seconds``, in queue order."""
    rows = await pool.fetch(_CLAIM_DUE, limit, lease_seconds)
    claimed = [
        ClaimedNotification(
            Notification(
                idempotency_key=row["idempotency_key"],
                case_id=row["case_id"],
                channel=Channel(row["channel"]),
                kind=row["kind"],
                recipient=row["recipient"],
                subject=row["subject"],
                data=json.loads(row["data"]),
            ),
            attempts=row["attempts"],
            position=row["position"],
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda row: row.position)


async def mark_delivered(pool: asyncpg.Pool, idempotency_key: str) -> None:
    await pool.execute(_MARK_DELIVERED, idempotency_key)


async def retry_later(pool: asyncpg.Pool, idempotency_key: str, error: str, delay_seconds: float) -> None:
    """Counts the failed attempt and releases the row until ``delay_seconds`` from now."""
    await pool.execute(_RETRY_LATER, idempotency_key, error, delay_seconds)


async def mark_failed(pool: asyncpg.Pool, idempotency_key: str, error: str) -> None:
    """Counts the last attempt and keeps the row as ``failed`` (never sent again)."""
    await pool.execute(_MARK_FAILED, idempotency_key, error)


async def mark_refused(pool: asyncpg.Pool, idempotency_key: str, reason: str) -> None:
    """Keeps the row as ``failed`` with ``reason``, its destination refused: nothing was sent, so no attempt
    is counted, and it is never sent again (the same destination would be refused again)."""
    await pool.execute(_MARK_REFUSED, idempotency_key, reason)
