"""The migration runner: applies each file once, refuses edited history, and is safe to run concurrently."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest

from approvals.migrate import Migration, MigrationError, load_migrations, migrate
from approvals.storage.queries import INBOX_QUERIES, INBOX_SQL, inbox_holders
from tests.fixtures.postgres import CreateDatabase


async def recorded_versions(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        return [row["version"] for row in await connection.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
    finally:
        await connection.close()


def test_package_ships_ordered_migrations() -> None:
    migrations = load_migrations()
    assert migrations, "no approvals/migrations/*.sql found as package data"
    assert migrations[0].filename.startswith("0001_")
    assert [m.filename for m in migrations] == sorted(m.filename for m in migrations)


async def test_applies_every_migration_once_and_rerun_is_a_no_op(create_database: CreateDatabase) -> None:
    url = await create_database()
    every_version = [migration.version for migration in load_migrations()]

    assert await migrate(url) == every_version
    assert await migrate(url) == []
    assert await recorded_versions(url) == every_version

    connection = await asyncpg.connect(url)
    try:
        tables = {
            row["table_name"]
            for row in await connection.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    finally:
        await connection.close()
    assert {"audit_events", "cases", "tasks", "outbox", "denied_attempts", "schema_migrations"} <= tables


async def test_an_edited_applied_migration_is_refused_naming_the_file(create_database: CreateDatabase) -> None:
    url = await create_database()
    await migrate(url)
    first, *rest = load_migrations()
    edited = Migration(filename=first.filename, sql=first.sql + b"\n-- edited after release\n")

    with pytest.raises(MigrationError, match=first.filename):
        await migrate(url, migrations=[edited, *rest])


async def test_a_new_migration_is_applied_after_the_existing_ones(create_database: CreateDatabase) -> None:
    url = await create_database()
    await migrate(url)
    later = Migration(filename="9999_test_extra.sql", sql=b"CREATE TABLE test_extra (id int PRIMARY KEY);")

    assert await migrate(url, migrations=[*load_migrations(), later]) == ["9999_test_extra"]
    assert (await recorded_versions(url))[-1] == "9999_test_extra"


async def test_a_failing_migration_leaves_nothing_behind(create_database: CreateDatabase) -> None:
    url = await create_database()
    broken = Migration(filename="0001_broken.sql", sql=b"CREATE TABLE half_done (id int); SELECT no_such_column;")

    with pytest.raises(asyncpg.PostgresError):
        await migrate(url, migrations=[broken])

    connection = await asyncpg.connect(url)
    try:
        assert await connection.fetchval("SELECT to_regclass('half_done')") is None
        assert await connection.fetchval("SELECT count(*) FROM schema_migrations") == 0
    finally:
        await connection.close()


async def test_concurrent_runners_apply_each_migration_exactly_once(create_database: CreateDatabase) -> None:
    url = await create_database()
    # Non-idempotent statements: a second application would fail with "already exists".
    migrations = [
        *load_migrations(),
        Migration(filename="9001_slow.sql", sql=b"SELECT pg_sleep(0.2); CREATE TABLE slow_one (id int);"),
        Migration(filename="9002_after.sql", sql=b"CREATE TABLE after_slow (id int);"),
    ]

    results = await asyncio.gather(*(migrate(url, migrations=migrations) for _ in range(5)))

    applied = [version for result in results for version in result]
    assert sorted(applied) == sorted(migration.version for migration in migrations)
    assert await recorded_versions(url) == sorted(migration.version for migration in migrations)


# --- 0002: cases.started_by and cases.observers ------------------------------------------------------------

_OLD_EVENT = """
INSERT INTO audit_events (case_id, seq, type, actor_id, at, legal_basis, payload, prev_hash, hash)
VALUES ($1, $2, $3, $4, '2026-03-02T09:00:00Z', 'Art. 10', $5::text::jsonb, 'prev', 'hash')
"""
_OLD_CASE = """
INSERT INTO cases (case_id, process, business_key, title, status, applicant_id, started_at, updated_at, last_seq)
VALUES ($1, 'generic', $1, 'A case', 'in_review', 'ent-1', now(), now(), $2)
"""


V0002 = "0002_case_started_by_and_observers"
V0003 = "0003_partial_inbox_indexes"


def migrations_up_to(version: str) -> list[Migration]:
    return [migration for migration in load_migrations() if migration.version <= version]


async def database_at_0001(create_database: CreateDatabase) -> str:
    url = await create_database()
    assert await migrate(url, migrations=migrations_up_to("0001_initial")) == ["0001_initial"]
    return url


async def test_0002_backfills_starter_and_observers_of_existing_cases(create_database: CreateDatabase) -> None:
    url = await database_at_0001(create_database)
    connection = await asyncpg.connect(url)
    try:
        # Rows as the recording activity wrote them before 0002: the facts only in the audit log.
        copied = ("C-1", [("case.started", "svc-portal", {"title": "A"}),
                          ("task.claimed", "officer-1", {}),
                          ("case.cc", "officer-1", {"observers": ["head-1", "clerk-2"], "comment": "fyi"}),
                          ("case.cc", "head-1", {"observers": ["clerk-2", "auditor-3", "auditor-3"]}),
                          ("case.cc", "head-1", {"comment": "no observers key"})])  # fmt: skip
        plain = ("C-2", [("case.started", "officer-9", {})])
        for case_id, case_events in (copied, plain):
            for seq, (kind, actor, payload) in enumerate(case_events, start=1):
                await connection.execute(_OLD_EVENT, case_id, seq, kind, actor, json.dumps(payload))
            await connection.execute(_OLD_CASE, case_id, len(case_events))

        assert await migrate(url, migrations=migrations_up_to(V0002)) == [V0002]

        rows = {
            row["case_id"]: (row["started_by"], row["observers"])
            for row in await connection.fetch("SELECT case_id, started_by, observers FROM cases")
        }
        assert rows == {"C-1": ("svc-portal", ["head-1", "clerk-2", "auditor-3"]), "C-2": ("officer-9", [])}
        assert await column_is_not_null(connection, "started_by")
        assert await column_is_not_null(connection, "observers")
        indexes = {row["indexname"] for row in await connection.fetch("SELECT indexname FROM pg_indexes")}
        assert {"cases_started_by_idx", "cases_observers_idx"} <= indexes
        assert "gin" in await connection.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = $1",
                                                  "cases_observers_idx")  # fmt: skip
    finally:
        await connection.close()


async def test_0002_on_an_empty_database_makes_started_by_required(create_database: CreateDatabase) -> None:
    url = await create_database()
    await migrate(url)
    connection = await asyncpg.connect(url)
    try:
        assert await column_is_not_null(connection, "started_by")
        with pytest.raises(asyncpg.NotNullViolationError):
            await connection.execute(_OLD_CASE, "C-NEW", 1)
    finally:
        await connection.close()


async def test_0002_leaves_started_by_nullable_when_a_case_has_no_start_event(
    create_database: CreateDatabase,
) -> None:
    """A case row without its case.started event (never written so by the engine) must not fail the upgrade."""
    url = await database_at_0001(create_database)
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(_OLD_CASE, "C-ORPHAN", 1)

        assert await migrate(url, migrations=migrations_up_to(V0002)) == [V0002]

        assert await connection.fetchrow("SELECT started_by, observers FROM cases") == (None, [])
        assert not await column_is_not_null(connection, "started_by")
    finally:
        await connection.close()


async def column_is_not_null(connection: asyncpg.Connection, column: str) -> bool:
    return bool(
        await connection.fetchval(
            "SELECT is_nullable = 'NO' FROM information_schema.columns WHERE table_name = 'cases' AND column_name = $1",
            column,
        )
    )


# --- 0003: partial indexes of the live inbox --------------------------------------------------------------

_TASKS = """
INSERT INTO tasks (task_id, case_id, process, stage_id, stage_title, legal_basis, status, assignee_id,
                   candidate_roles, claimed_by, delegate_id, due_at, version, created_at, updated_at, last_seq)
SELECT 'generic:' || $1 || '-' || n || '/review/1', 'generic:' || $1 || '-' || n, 'generic', 'review', 'Review',
       'Art. 10', $2, {assignee}, {roles}, {claimed}, {delegate}, now() + n * interval '1 minute', 1, now(), now(), 1
FROM generate_series(1, $3) AS n
"""


async def add_tasks(connection: asyncpg.Connection, prefix: str, status: str, count: int, **columns: str) -> None:
    """``count`` tasks; each column an SQL expression of ``n`` (default NULL, roles none)."""
    fields = {"assignee": "NULL", "roles": "'{}'::text[]", "claimed": "NULL", "delegate": "NULL", **columns}
    await connection.execute(_TASKS.format(**fields), prefix, status, count)


PARTIAL_INBOX_INDEXES = (
    "tasks_inbox_assignee_idx",
    "tasks_inbox_claimed_by_idx",
    "tasks_inbox_delegate_idx",
    "tasks_inbox_candidate_roles_idx",
)


async def test_0003_the_inbox_reads_partial_indexes_of_live_tasks(create_database: CreateDatabase) -> None:
    url = await create_database()
    assert await migrate(url, migrations=migrations_up_to(V0002)) == ["0001_initial", V0002]
    connection = await asyncpg.connect(url)
    try:
        # Years of history: 20,000 finished tasks of 1,000 users and 50 roles (u-1 and r-1 among them),
        # 2,000 live tasks of other users, and the few live tasks of u-1 and r-1 the inbox must find.
        every = {"assignee": "'u-' || n % 1000", "roles": "ARRAY['r-' || n % 50]"}
        await add_tasks(connection, "DONE-A", "completed", 10000, **every)
        await add_tasks(connection, "DONE-C", "completed", 5000, **every, claimed="'u-' || n % 1000")
        await add_tasks(connection, "DONE-D", "cancelled", 5000, **every, delegate="'u-' || n % 1000")
        await add_tasks(connection, "OTHERS", "open", 2000, assignee="'v-' || n % 200")
        await add_tasks(connection, "LIVE-A", "open", 3, assignee="'u-1'")
        await add_tasks(connection, "LIVE-R", "open", 3, roles="ARRAY['r-1']")
        await add_tasks(connection, "LIVE-C", "claimed", 2, roles="ARRAY['r-1']", claimed="'u-1'")
        await add_tasks(connection, "LIVE-D", "open", 1, assignee="'v-7'", delegate="'u-1'")

        assert await migrate(url, migrations=migrations_up_to(V0003)) == [V0003]
        await connection.execute("ANALYZE tasks")

        definitions = dict(
            await connection.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tasks' AND indexname = ANY($1)",
                list(PARTIAL_INBOX_INDEXES),
            )
        )
        assert set(definitions) == set(PARTIAL_INBOX_INDEXES)
        assert all(" WHERE " in definition for definition in definitions.values())
        assert "gin" in definitions["tasks_inbox_candidate_roles_idx"]
        await migrate(url)  # today's inbox statement selects the columns later migrations added (0009)

        params = ("u-1", ["r-1"], None, None, None, None, 50, 0)
        async with connection.transaction():
            await connection.execute("SET LOCAL enable_seqscan = off")
            custom = "\n".join(row[0] for row in await connection.fetch("EXPLAIN " + INBOX_SQL, *params))
            # A prepared statement's generic plan knows no parameter values: the literal statuses still
            # prove the indexes' predicates.
            await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            await connection.execute("PREPARE inbox_generic AS " + INBOX_SQL)
            generic = "\n".join(
                row[0]
                for row in await connection.fetch(
                    "EXPLAIN EXECUTE inbox_generic('u-1', '{r-1}', NULL, NULL, NULL, NULL, 50, 0)"
                )
            )
            await connection.execute("DEALLOCATE inbox_generic")
        for plan in (custom, generic):
            for index in PARTIAL_INBOX_INDEXES:
                assert index in plan, plan
            for superseded in ("tasks_assignee_idx", "tasks_claimed_by_idx", "tasks_delegate_idx"):
                assert superseded not in plan, plan

        found = await connection.fetch(INBOX_SQL, *params)
        assert len(found) == 9 and {row["status"] for row in found} == {"open", "claimed"}
    finally:
        await connection.close()


# --- 0005: inbox_entries, who can see which live task in due order ------------------------------------------

V0005 = "0005_inbox_entries"


async def test_0005_backfills_the_live_tasks_and_the_inbox_reads_them_in_due_order(
    create_database: CreateDatabase,
) -> None:
    url = await create_database()
    before = [migration.version for migration in migrations_up_to(V0005)][:-1]
    assert await migrate(url, migrations=migrations_up_to(before[-1])) == before
    connection = await asyncpg.connect(url)
    try:
        # The tasks of test_0003, recorded before 0005: finished ones, live ones of others, u-1's and r-1's.
        every = {"assignee": "'u-' || n % 1000", "roles": "ARRAY['r-' || n % 50]"}
        await add_tasks(connection, "DONE-A", "completed", 2000, **every)
        await add_tasks(connection, "OTHERS", "open", 2000, assignee="'v-' || n % 200", roles="ARRAY['r-2']")
        await add_tasks(connection, "LIVE-A", "open", 3, assignee="'u-1'")
        await add_tasks(connection, "LIVE-R", "open", 3, roles="ARRAY['r-1', 'r-3']")
        await add_tasks(connection, "LIVE-C", "claimed", 2, roles="ARRAY['r-1']", claimed="'u-1'")
        await add_tasks(connection, "LIVE-D", "open", 1, roles="ARRAY['r-1']", delegate="'u-1'")
        await add_tasks(connection, "WAIT", "waiting", 2, assignee="'u-1'")

        assert await migrate(url, migrations=migrations_up_to(V0005)) == [V0005]
        await connection.execute("VACUUM (ANALYZE)")  # what autovacuum keeps up on a live table

        # One row per (holder, live task): LIVE-D reaches u-1 twice (delegate, role r-1) and counts once there.
        counts = dict(await connection.fetch("SELECT holder, count(*) FROM inbox_entries GROUP BY holder"))
        assert counts["user:u-1"] == 3 + 2 + 1 and counts["role:r-1"] == 3 + 1 and counts["role:r-3"] == 3
        assert counts["role:r-2"] == 2000 and sum(counts.values()) == 2000 * 2 + 3 + 6 + 2 + 2
        await migrate(url)  # today's inbox statements select the columns later migrations added (0009)
        params = ("u-1", ["r-1"], None, None, None, None, 50, 0)
        expected = [row["task_id"] for row in await connection.fetch(INBOX_SQL, *params)]
        assert len(expected) == 3 + 3 + 2 + 1
        holders = inbox_holders("u-1", ["r-1"])
        values = {"process": "generic", "stage": "review", "priority": False, "overdue": False}
        for filters, sql in INBOX_QUERIES.items():
            args = (holders, 50, 0, *(values[name] for name in filters))
            assert [row["task_id"] for row in await connection.fetch(sql, *args)] == expected, filters
            # Each combination of filters is its own statement, planned once: its generic plan must read a
            # page per holder from inbox_entries' index and only the page's tasks by primary key.
            async with connection.transaction():
                await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                statement = await connection.prepare("EXPLAIN " + sql)
                plan = "\n".join(row[0] for row in await statement.fetch(*args))
            assert "inbox_entries_holder_" in plan and "Seq Scan" not in plan, plan
            assert "Index Scan using tasks_pkey on tasks" in plan, plan
            assert "Bitmap" not in plan, plan
    finally:
        await connection.close()
