"""The migration runner: applies each file once, refuses edited history, and is safe to run concurrently."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from approvals.migrate import Migration, MigrationError, load_migrations, migrate
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
