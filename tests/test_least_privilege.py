"""Least privilege in PostgreSQL: the worker and the API connect as an app role that can append to the audit
log and read it, and do exactly what the engine does to its other tables, but cannot change, delete or
truncate a recorded event, switch the append-only trigger off, or turn triggers off for its session.

The test run's database is set up as production's is (tests/fixtures/postgres.py): migrated by the owner
role, which granted the app role its privileges (approvals/migrations/0008_app_role_grants.sql).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio
import yaml
from temporalio.testing import WorkflowEnvironment

from approvals.devstack.roles import DatabaseRoles, provision_database
from approvals.migrate import Migration, MigrationError, load_migrations, migrate, migrate_database
from approvals.operations import Scope, operations
from approvals.service import ApprovalsService, Forbidden
from approvals.settings import load_settings
from schemas.events import GENESIS_HASH, compute_hash, event_content
from schemas.principal import Principal
from schemas.process import Decision
from tests.cases import decide, definition, finished, open_tasks, outbox_when, person, stage, start_case, view_when
from tests.fixtures.postgres import TEST_ROLES, CreateDatabase
from worker import build_worker

ROOT = Path(__file__).parent.parent
OFFICER = person("officer-1", "one_window")
DIRECTOR = person("director-1", "director")
AUDITOR = Principal(id="auditor-1", roles=("auditor",))

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
APP_PRIVILEGES = {
    "audit_events": {"SELECT", "INSERT"},
    "cases": {"SELECT", "INSERT", "UPDATE"},
    "tasks": {"SELECT", "INSERT", "UPDATE"},
    "inbox_entries": {"SELECT", "INSERT", "DELETE"},
    "case_report_facts": {"SELECT", "INSERT", "UPDATE", "DELETE"},  # kept by the trigger on audit_events (0014)
    "outbox": {"SELECT", "INSERT", "UPDATE"},
    "denied_attempts": {"SELECT", "INSERT"},
    "schema_migrations": {"SELECT"},
    "calendar_years": {"SELECT", "INSERT"},
    "audit_checkpoints": {"SELECT", "INSERT"},
    "audit_checkpoint_leaves": {"SELECT", "INSERT"},
    "archived_histories": {"SELECT", "INSERT"},
    "document_counters": {"SELECT", "INSERT", "UPDATE"},
    "documents": {"SELECT", "INSERT"},
    "document_files": {"SELECT", "INSERT"},
    "process_definitions": {"SELECT", "INSERT"},
    "process_definition_retirements": {"SELECT", "INSERT"},
    "handovers": {"SELECT", "INSERT"},
}
"""Every table of the schema and what the app role may do to it; a new table needs its line (and its grant)."""

TAMPERING = {
    "update": 'UPDATE audit_events SET payload = \'{"decision": "reject"}\' WHERE case_id = $1',
    "delete": "DELETE FROM audit_events WHERE case_id = $1",
    "truncate": "TRUNCATE audit_events",
    "disable the trigger": "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
    "disable all triggers": "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "drop the trigger": "DROP TRIGGER audit_events_append_only ON audit_events",
    "replace the trigger function": (
        "CREATE OR REPLACE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN OLD; END $$"
    ),
    "turn triggers off for the session": "SET session_replication_role = replica",
    "become the owner": f"SET ROLE {TEST_ROLES.owner}",
}


@pytest_asyncio.fixture(scope="module")
async def recorded_case(time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool) -> str:
    """A two-stage case driven to its decision by a worker connected as the app role only."""
    settings = load_settings(temporal_task_queue=f"app-role-{uuid.uuid4().hex[:8]}", webhook_timeout_seconds=2)
    process = definition(
        stage("acceptance", candidate_roles=("one_window",)),
        stage("approval", candidate_roles=("director",), legal_basis="Art. 12"),
    )
    async with build_worker(time_skipping_env.client, settings, pool=db_pool):
        handle = await start_case(time_skipping_env.client, settings.temporal_task_queue, process, title="最小权限")
        for actor, stage_id in ((OFFICER, "acceptance"), (DIRECTOR, "approval")):
            [task] = open_tasks(await view_when(handle, lambda v, s=stage_id: bool(open_tasks(v, s))), stage_id)
            await decide(handle, actor, task, Decision.approve)
        await finished(time_skipping_env, handle)
        # The dispatcher, also the app role's, marks the case's notifications delivered (log channel).
        await outbox_when(db_pool, handle.id, lambda rows: bool(rows) and all(r["status"] == "delivered" for r in rows))
    return handle.id


async def test_a_case_is_recorded_end_to_end_as_the_app_role(recorded_case: str, db_pool: asyncpg.Pool) -> None:
    from approvals.storage.queries import case_events, case_tasks, get_case

    stored = await case_events(db_pool, recorded_case)
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1)) and stored[0].prev_hash == GENESIS_HASH
    for earlier, later in zip(stored, stored[1:], strict=False):
        assert later.prev_hash == earlier.hash
    assert all(compute_hash(event_content(event)) == event.hash for event in stored)
    case = await get_case(db_pool, recorded_case)
    assert case is not None and (case.status, case.last_seq) == ("approved", stored[-1].seq)
    assert {task.status for task in await case_tasks(db_pool, recorded_case)} == {"completed"}


async def test_the_api_records_and_lists_a_refused_action_as_the_app_role(
    recorded_case: str, db_pool: asyncpg.Pool
) -> None:
    service = ApprovalsService(client=None, pool=db_pool, settings=load_settings())  # type: ignore[arg-type]
    with pytest.raises(Forbidden):  # refused before Temporal is asked: the auditor only reads
        await service.act(AUDITOR, operations(Scope.case)["comment"], Scope.case, recorded_case, {"text": "x"})
    [denied] = await service.denied_attempts(AUDITOR, recorded_case)
    assert (denied.actor_id, denied.reason_code) == (AUDITOR.id, "READ_ONLY")


@pytest.mark.parametrize("statement", TAMPERING.values(), ids=TAMPERING.keys())
async def test_the_app_role_cannot_change_the_audit_log_or_switch_its_trigger_off(
    statement: str, recorded_case: str, database_url: str, db_pool: asyncpg.Pool
) -> None:
    before = await db_pool.fetch("SELECT seq, hash, payload::text FROM audit_events WHERE case_id = $1", recorded_case)
    connection = await asyncpg.connect(database_url)
    try:
        arguments = (recorded_case,) if "$1" in statement else ()
        with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
            await connection.execute(statement, *arguments)
        # Refused by the privilege system itself, not by the trigger it could otherwise switch off.
        assert "append-only" not in str(refused.value), refused.value
        assert await connection.fetchval("SHOW session_replication_role") == "origin"
    finally:
        await connection.close()
    trigger = await db_pool.fetchval(
        "SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'audit_events_append_only' AND NOT tgisinternal"
    )
    assert trigger == "O"  # enabled, in the default ("origin") replication mode
    assert (
        await db_pool.fetch("SELECT seq, hash, payload::text FROM audit_events WHERE case_id = $1", recorded_case)
        == before
    )


async def test_the_app_role_holds_exactly_what_the_engine_needs_and_owns_nothing(db_pool: asyncpg.Pool) -> None:
    app = TEST_ROLES.app
    tables = [
        row["name"]
        for row in await db_pool.fetch("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'")
    ]
    held = {
        table: {
            p for p in PRIVILEGES if await db_pool.fetchval("SELECT has_table_privilege($1, $2, $3)", app, table, p)
        }
        for table in tables
    }
    assert held == APP_PRIVILEGES
    role = await db_pool.fetchrow(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = $1", app
    )
    assert dict(role) == {"rolsuper": False, "rolcreaterole": False, "rolcreatedb": False, "rolbypassrls": False}
    owned = await db_pool.fetch(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = $1",
        app,
    )
    assert owned == []
    assert not await db_pool.fetchval("SELECT has_schema_privilege($1, 'public', 'CREATE')", app)
    assert not await db_pool.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", app, TEST_ROLES.owner)


async def test_a_worker_starting_as_the_app_role_checks_the_schema_but_cannot_migrate_it(database_url: str) -> None:
    assert await migrate(database_url) == []  # up to date: `approvals worker --migrate` starts
    pending = Migration("9999_pending.sql", b"CREATE TABLE pending_probe (id integer);")
    with pytest.raises(MigrationError, match="9999_pending.sql is pending .* MIGRATION_DATABASE_URL"):
        await migrate(database_url, migrations=[*load_migrations(), pending])


async def fresh_roles_and_database(server_url: str, create_database: CreateDatabase) -> tuple[DatabaseRoles, Any]:
    unique = uuid.uuid4().hex[:8]
    roles = DatabaseRoles(owner=f"approvals_test_owner_{unique}", app=f"approvals_test_app_{unique}")
    name = urlsplit(await create_database()).path.lstrip("/")
    return roles, await provision_database(server_url, name, roles)


async def test_approvals_migrate_grants_the_app_role_of_database_url(
    postgres_server_url: str, create_database: CreateDatabase
) -> None:
    _, provisioned = await fresh_roles_and_database(postgres_server_url, create_database)
    settings = load_settings(database_url=provisioned.app_url, migration_database_url=provisioned.owner_url)
    assert await migrate_database(settings) == [migration.version for migration in load_migrations()]
    connection = await asyncpg.connect(provisioned.app_url)
    try:
        assert await connection.fetchval("SELECT has_table_privilege('audit_events', 'INSERT')")
        assert not await connection.fetchval("SELECT has_table_privilege('audit_events', 'UPDATE')")
    finally:
        await connection.close()


@pytest.mark.parametrize("kind", ["superuser", "member of the owner role"])
async def test_migrating_refuses_an_app_role_that_could_switch_the_trigger_off(
    kind: str, postgres_server_url: str, create_database: CreateDatabase
) -> None:
    roles, provisioned = await fresh_roles_and_database(postgres_server_url, create_database)
    app = urlsplit(postgres_server_url).username or ""
    if kind != "superuser":
        app = roles.app
        admin = await asyncpg.connect(postgres_server_url)
        try:
            await admin.execute(f"GRANT {roles.owner} TO {roles.app}")
        finally:
            await admin.close()
    with pytest.raises(asyncpg.RaiseError, match=kind.split()[0]):
        await migrate(provisioned.owner_url, app_role=app)


def test_compose_gives_the_owner_credentials_to_the_migrate_step_only() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    assert "MIGRATION_DATABASE_URL" in services["migrate"]["environment"]
    for name in ("worker", "api"):
        environment: dict[str, Any] = services[name]["environment"]
        assert "MIGRATION_DATABASE_URL" not in environment
        assert "APPROVALS_DB_PASSWORD" not in str(environment), name
        assert environment["DATABASE_URL"].startswith("postgresql://${APPROVALS_APP_DB_USER:-approvals_app}:"), name
