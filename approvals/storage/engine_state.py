"""The engine's state in numbers, for the metrics the API computes when Prometheus scrapes it.

One statement, aggregated in PostgreSQL: cases by process and status, open tasks by process, stage, unit
and whether they are overdue, notifications by channel and status. The result has one row per label
combination (bounded by the processes, stages and channels that exist, and capped at ``MAX_ROWS``), so a
scrape costs one round trip whatever the number of cases; it never runs per request.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

__all__ = ["MAX_ROWS", "StateRow", "engine_state"]

MAX_ROWS = 10_000
"""More label combinations than any dashboard can show; a runaway label is cut here, not in Prometheus."""

_ENGINE_STATE = """
SELECT 'cases' AS family, process, status AS a, '' AS b, false AS overdue, count(*) AS n
FROM cases GROUP BY process, status
UNION ALL
SELECT 'tasks', process, stage_id, COALESCE(NULLIF(array_to_string(candidate_roles, ','), ''), 'named'),
       overdue OR COALESCE(due_at < now(), false), count(*)
FROM tasks WHERE status IN ('open', 'claimed') GROUP BY 2, 3, 4, 5
UNION ALL
SELECT 'outbox', '', channel, status, false, count(*) FROM outbox GROUP BY channel, status
LIMIT $1
"""


@dataclass(frozen=True)
class StateRow:
    """One count. ``family`` says what ``a`` and ``b`` are: ``cases`` (a: status), ``tasks`` (a: stage, b: the
    unit it is routed to, its candidate roles, or ``named`` for tasks named to people; ``overdue``),
    ``outbox`` (a: channel, b: status)."""

    family: str
    process: str
    a: str
    b: str
    overdue: bool
    count: int


async def engine_state(pool: asyncpg.Pool) -> list[StateRow]:
    rows = await pool.fetch(_ENGINE_STATE, MAX_ROWS)
    return [StateRow(row["family"], row["process"], row["a"], row["b"], row["overdue"], row["n"]) for row in rows]
