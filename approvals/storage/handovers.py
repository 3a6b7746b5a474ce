"""Handovers (table ``handovers``): each request by its idempotency key, with what happened to each task."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


async def stored(pool: asyncpg.Pool, idempotency_key: str) -> dict[str, Any] | None:
    """The handover recorded under the key: its request digest and results, or None."""
    row = await pool.fetchrow(
        "SELECT request_sha256, results::text AS results FROM handovers WHERE idempotency_key = $1", idempotency_key
    )
    return None if row is None else {"request_sha256": row["request_sha256"], "results": json.loads(row["results"])}


async def record(
    pool: asyncpg.Pool, idempotency_key: str, requested_by: str, request: str, request_sha256: str, results: str
) -> bool:
    """Records a handover once (False: a concurrent one with the same key was written first and stays)."""
    status = await pool.execute(
        "INSERT INTO handovers (idempotency_key, requested_by, request, request_sha256, results) "
        "VALUES ($1, $2, $3::jsonb, $4, $5::jsonb) ON CONFLICT (idempotency_key) DO NOTHING",
        idempotency_key, requested_by, request, request_sha256, results,
    )  # fmt: skip
    return bool(status.endswith(" 1"))
