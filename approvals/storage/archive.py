"""The ``archived_histories`` table: every closed workflow run's Temporal history, append-only (migration 0010).

A run's history never changes once it closed, so archiving is an insert that a second archiver (or a
second pass) finds already done; the rows are never updated or deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

_COLUMNS = "workflow_id, run_id, task_queue, close_status, closed_at, continued_from, history_events, history, sha256"

_INSERT = f"""
INSERT INTO archived_histories ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (workflow_id, run_id) DO NOTHING
"""

_ARCHIVED_AMONG = """
SELECT workflow_id, run_id FROM archived_histories
WHERE (workflow_id, run_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""

_OF_WORKFLOW = f"SELECT {_COLUMNS} FROM archived_histories WHERE workflow_id = $1 ORDER BY closed_at, run_id"


@dataclass(frozen=True)
class ArchivedHistory:
    workflow_id: str
    run_id: str
    task_queue: str
    close_status: str
    closed_at: datetime
    continued_from: str | None
    history_events: int
    history: bytes
    sha256: str


async def insert_history(pool: asyncpg.Pool, archived: ArchivedHistory) -> bool:
    """Stores a closed run's history; False when that run was archived already (the stored row is kept)."""
    status = await pool.execute(
        _INSERT,
        archived.workflow_id, archived.run_id, archived.task_queue, archived.close_status, archived.closed_at,
        archived.continued_from, archived.history_events, archived.history, archived.sha256,
    )  # fmt: skip
    return status == "INSERT 0 1"


async def archived_among(pool: asyncpg.Pool, runs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of the ``(workflow id, run id)`` pairs are archived."""
    rows = await pool.fetch(_ARCHIVED_AMONG, [run[0] for run in runs], [run[1] for run in runs])
    return {(row["workflow_id"], row["run_id"]) for row in rows}


async def last_closed_at(pool: asyncpg.Pool, task_queue: str) -> datetime | None:
    """When the latest run of ``task_queue`` that is archived closed (None: none is)."""
    return await pool.fetchval("SELECT max(closed_at) FROM archived_histories WHERE task_queue = $1", task_queue)


async def archived_histories(pool: asyncpg.Pool, workflow_id: str) -> list[ArchivedHistory]:
    """Every archived run of a workflow, in the order they closed (a continued run closes after its predecessor)."""
    return [ArchivedHistory(**dict(row)) for row in await pool.fetch(_OF_WORKFLOW, workflow_id)]
