"""The inbox read through ``inbox_entries`` (migration 0005) returns exactly what the inbox's definition does.

``approvals.storage.queries.INBOX_SQL`` states the inbox straight over ``tasks`` (the query the inbox ran before
0005). On a varied dataset - every status, tasks reaching a principal two ways at once, shared due times,
tasks without a due time, overdue by flag or by clock, several processes, stages, roles - and after the
kinds of change the projection makes (claim, unclaim, transfer, delegate, complete, reschedule, reprioritise,
insert, delete), ``queries.inbox`` must return the same rows in the same order for random principals,
filters and pages, whatever plan PostgreSQL picks.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from approvals.migrate import migrate
from approvals.storage import queries
from schemas.records import TaskProjection
from tests.fixtures.postgres import CreateDatabase

USERS = [f"u{n}" for n in range(12)]
ROLES = [f"r{n}" for n in range(8)] + ["user:u1", ""]  # odd role names must not collide with user holders
PROCESSES = ["generic", "project-approval", "leave-request"]
STAGES = ["acceptance", "review", "decision"]
STATUSES = ["open", "open", "open", "claimed", "claimed", "waiting", "completed", "cancelled", "expired"]
NOW = datetime.now(UTC)

_INSERT = """
INSERT INTO tasks (task_id, case_id, process, stage_id, stage_title, legal_basis, status, assignee_id,
                   candidate_roles, claimed_by, delegate_id, priority, due_at, overdue, decision, version,
                   created_at, updated_at, last_seq)
VALUES ($1, $2, $3, $4, 'A stage', 'Art. 10', $5, $6, $7, $8, $9, $10, $11, $12, NULL, 1, $13, $13, 1)
"""

_UPSERT = """
INSERT INTO tasks (task_id, case_id, process, stage_id, stage_title, legal_basis, status, assignee_id,
                   candidate_roles, claimed_by, delegate_id, priority, due_at, overdue, decision, version,
                   created_at, updated_at, last_seq)
VALUES ($1, $2, $3, $4, 'A stage', 'Art. 10', $5, $6, $7, $8, $9, $10, $11, $12, NULL, 2, $13, $13, 2)
ON CONFLICT (task_id) DO UPDATE SET
    process = EXCLUDED.process, stage_id = EXCLUDED.stage_id, status = EXCLUDED.status,
    assignee_id = EXCLUDED.assignee_id, candidate_roles = EXCLUDED.candidate_roles,
    claimed_by = EXCLUDED.claimed_by, delegate_id = EXCLUDED.delegate_id, priority = EXCLUDED.priority,
    due_at = EXCLUDED.due_at, overdue = EXCLUDED.overdue, version = tasks.version + 1,
    last_seq = EXCLUDED.last_seq
WHERE EXCLUDED.last_seq >= tasks.last_seq
"""

_EXPECTED_ENTRIES = """
SELECT holder, task_id, due_at, process, stage_id, priority, overdue FROM (
    SELECT 'user:' || assignee_id AS holder, * FROM tasks WHERE status IN ('open', 'claimed')
    UNION SELECT 'user:' || claimed_by, * FROM tasks WHERE status IN ('open', 'claimed')
    UNION SELECT 'user:' || delegate_id, * FROM tasks WHERE status IN ('open', 'claimed')
    UNION SELECT 'role:' || role, tasks.* FROM tasks, unnest(candidate_roles) AS role WHERE status = 'open'
) AS expected
WHERE holder IS NOT NULL
ORDER BY holder, task_id
"""
"""What ``inbox_entries`` must hold, by the visibility rule of INBOX_SQL."""


def random_task(rng: random.Random, number: int) -> tuple[Any, ...]:
    status = rng.choice(STATUSES)
    assignee = rng.choice(USERS) if rng.random() < 0.3 else None
    roles = rng.sample(ROLES, rng.choice((0, 1, 1, 1, 2, 3)))
    claimed = rng.choice(USERS) if status == "claimed" or rng.random() < 0.1 else None
    delegate = rng.choice(USERS) if rng.random() < 0.15 else None
    # Few distinct due times, so ties (broken by task id) are common; some none; none within a minute of now.
    due = None if rng.random() < 0.1 else NOW + timedelta(hours=rng.choice((-72, -30, -2, 3, 26, 50, 100)))
    overdue = rng.random() < (0.6 if due is not None and due < NOW else 0.1)
    return (
        f"generic:BK-{number % 37}/stage/{number}", f"generic:BK-{number % 37}", rng.choice(PROCESSES),
        rng.choice(STAGES), status, assignee, roles, claimed, delegate, rng.random() < 0.2, due, overdue,
        NOW - timedelta(days=3),
    )  # fmt: skip


@pytest_asyncio.fixture(scope="module")
async def pool(create_database: CreateDatabase) -> AsyncIterator[asyncpg.Pool]:
    url = await create_database()
    await migrate(url)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    rng = random.Random(20260101)
    await pool.executemany(_INSERT, [random_task(rng, n) for n in range(1500)])
    await pool.execute("ANALYZE tasks")
    await pool.execute("ANALYZE inbox_entries")
    yield pool
    await pool.close()


async def reference(pool: asyncpg.Pool, user: str, roles: list[str], **options: Any) -> list[Any]:
    """INBOX_SQL, the inbox's definition."""
    rows = await pool.fetch(
        queries.INBOX_SQL,
        user,
        roles,
        options.get("process"),
        options.get("stage"),
        options.get("priority"),
        options.get("overdue"),
        options.get("limit", 50),
        options.get("offset", 0),
    )
    return [TaskProjection.model_validate(dict(row)) for row in rows]


def random_request(rng: random.Random) -> tuple[str, list[str], dict[str, Any]]:
    user = rng.choice([*USERS, "nobody"])
    roles = rng.sample([*ROLES, "no-such-role"], rng.choice((0, 1, 1, 2, 3, 4)))
    if roles and rng.random() < 0.1:
        roles.append(roles[0])  # the same role twice
    options: dict[str, Any] = {}
    if rng.random() < 0.3:
        options["process"] = rng.choice([*PROCESSES, "no-such-process"])
    if rng.random() < 0.3:
        options["stage"] = rng.choice(STAGES)
    if rng.random() < 0.3:
        options["priority"] = rng.random() < 0.5
    if rng.random() < 0.3:
        options["overdue"] = rng.random() < 0.5
    if rng.random() < 0.5:
        options["limit"] = rng.choice((1, 3, 10, 50, 200))
    if rng.random() < 0.5:
        options["offset"] = rng.choice((0, 1, 5, 20, 49, 120, 1000))
    return user, roles, options


async def assert_same_as_reference(pool: asyncpg.Pool, rng: random.Random, requests: int) -> int:
    nonempty = 0
    for _ in range(requests):
        user, roles, options = random_request(rng)
        expected = await reference(pool, user, roles, **options)
        found = await queries.inbox(pool, user, roles, **options)
        assert [t.task_id for t in found] == [t.task_id for t in expected], (user, roles, options)
        assert found == expected, (user, roles, options)
        nonempty += bool(found)
    return nonempty


async def assert_entries_follow_tasks(pool: asyncpg.Pool) -> None:
    expected = [tuple(row) for row in await pool.fetch(_EXPECTED_ENTRIES)]
    stored = [
        tuple(row)
        for row in await pool.fetch(
            "SELECT holder, task_id, due_at, process, stage_id, priority, overdue FROM inbox_entries "
            "ORDER BY holder, task_id"
        )
    ]
    assert stored == expected


async def test_same_rows_in_the_same_order_as_the_definition(pool: asyncpg.Pool) -> None:
    await assert_entries_follow_tasks(pool)
    assert await assert_same_as_reference(pool, random.Random(1), 600) > 300


async def test_the_whole_inbox_of_every_principal_page_by_page(pool: asyncpg.Pool) -> None:
    for user in USERS:
        roles = ROLES[: USERS.index(user) % 4]
        whole = await reference(pool, user, roles, limit=10_000)
        assert whole, user
        pages = [await queries.inbox(pool, user, roles, limit=7, offset=offset) for offset in range(0, len(whole), 7)]
        assert [t for page in pages for t in page] == whole


@pytest.mark.parametrize("plan", ["force_generic_plan", "force_custom_plan"])
async def test_same_rows_whatever_the_plan(pool: asyncpg.Pool, plan: str) -> None:
    """asyncpg prepares every statement; after five runs PostgreSQL may keep a generic plan."""
    async with pool.acquire() as connection:
        await connection.execute(f"SET plan_cache_mode = {plan}")
        try:
            single = _SingleConnectionPool(connection)
            assert await assert_same_as_reference(single, random.Random(2), 200) > 100  # type: ignore[arg-type]
        finally:
            await connection.execute("RESET plan_cache_mode")


async def test_same_rows_after_the_projection_changes(pool: asyncpg.Pool) -> None:
    rng = random.Random(3)
    ids = [row["task_id"] for row in await pool.fetch("SELECT task_id FROM tasks ORDER BY task_id")]
    for round_ in range(4):
        async with pool.acquire() as connection, connection.transaction():
            for task_id in rng.sample(ids, 40):  # claim, unclaim, transfer, delegate, complete, reschedule ...
                row = random_task(rng, 0)
                await connection.execute(_UPSERT, task_id, *row[1:])
            for task_id in rng.sample(ids, 15):
                await connection.execute(
                    "UPDATE tasks SET status = $2, claimed_by = $3 WHERE task_id = $1",
                    task_id,
                    rng.choice(STATUSES),
                    rng.choice([None, *USERS]),
                )
            for task_id in rng.sample(ids, 15):
                await connection.execute("UPDATE tasks SET version = version + 1 WHERE task_id = $1", task_id)
            gone = rng.sample(ids, 5)
            await connection.execute("DELETE FROM tasks WHERE task_id = ANY($1)", gone)
            ids = [task_id for task_id in ids if task_id not in gone]
            new = [random_task(rng, 10_000 + round_ * 100 + n) for n in range(10)]
            await connection.executemany(_INSERT, new)
            ids += [row[0] for row in new]
        await assert_entries_follow_tasks(pool)
        assert await assert_same_as_reference(pool, rng, 150) > 50


async def test_truncating_tasks_empties_the_inbox(create_database: CreateDatabase) -> None:
    url = await create_database()
    await migrate(url)
    connection = await asyncpg.connect(url)
    try:
        await connection.executemany(_INSERT, [random_task(random.Random(4), n) for n in range(50)])
        assert await connection.fetchval("SELECT count(*) FROM inbox_entries") > 0
        await connection.execute("TRUNCATE tasks")
        assert await connection.fetchval("SELECT count(*) FROM inbox_entries") == 0
    finally:
        await connection.close()


class _SingleConnectionPool:
    """Just enough of a pool for ``queries.inbox`` and ``reference``: every query on one connection."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self.connection.fetch(query, *args)
