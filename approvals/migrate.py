"""Applies the plain-SQL migrations in ``approvals/migrations`` to a PostgreSQL database.

Every worker and API process runs this at start-up, so it must be safe when several start together:
a session advisory lock serialises the runners, each migration runs in its own transaction together
with its ``schema_migrations`` row, and a runner that got the lock late finds the work done. Applied
migrations are immutable; their SHA-256 is recorded and an edited file is refused, because the database
would otherwise silently differ from what the file says.

Migrations run as the role that owns the schema (MIGRATION_DATABASE_URL); the worker and the API connect
as an app role (DATABASE_URL) that may change no schema object and holds only the privileges migration
0008 grants it. Each migration can read that role's name as the transaction-local setting
``approvals.app_role``. The app role may run :func:`migrate` too: with nothing pending it only reads
``schema_migrations``, so a worker starting with ``--migrate`` checks that the schema is current.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files

import asyncpg
import structlog

from approvals import db
from approvals.settings import Settings

log = structlog.get_logger(__name__)

ADVISORY_LOCK_KEY = 0x61707072_6D696772  # "apprmigr": any constant shared by all runners of this schema.

APP_ROLE_SETTING = "approvals.app_role"
"""The PostgreSQL setting that names the app role to the migrations (read with ``current_setting``)."""

_CREATE_SCHEMA_MIGRATIONS = """
CREATE TABLE schema_migrations (
    version     text        PRIMARY KEY,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """The database and the migration files disagree; the message names the file."""


@dataclass(frozen=True)
class Migration:
    """One SQL file; ``version`` is its name without ``.sql`` and orders the migrations."""

    filename: str
    sql: bytes

    @property
    def version(self) -> str:
        return self.filename.removesuffix(".sql")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql).hexdigest()


def load_migrations() -> list[Migration]:
    """The migrations shipped in the package, ordered by file name."""
    directory = files("approvals") / "migrations"
    found = [
        Migration(filename=entry.name, sql=entry.read_bytes())
        for entry in directory.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found, key=lambda migration: migration.filename)


@asynccontextmanager
async def _connection(target: asyncpg.Connection | asyncpg.Pool | str) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(target, str):
        connection = await asyncpg.connect(target)
        try:
            yield connection
        finally:
            await connection.close()
    elif isinstance(target, asyncpg.Pool):
        async with target.acquire() as connection:
            yield connection
    else:
        yield target


async def migrate(
    target: asyncpg.Connection | asyncpg.Pool | str,
    *,
    migrations: Sequence[Migration] | None = None,
    app_role: str | None = None,
) -> list[str]:
    """Applies every migration not yet recorded in ``schema_migrations``, in file-name order.

    Args:
        target: A connection, a pool or a ``postgresql://`` URL, of the role that owns the schema.
        migrations: The migrations to apply; the package's own when omitted.
        app_role: The role the worker and the API connect as, which the migrations grant their privileges
            to; ``None`` when they connect as the owner itself.

    Returns:
        The versions this call applied (empty when the database was up to date).

    Raises:
        MigrationError: an applied migration's file has changed since (checked for all of them before
            anything is applied), or the connected role may not apply a pending one.
    """
    wanted = load_migrations() if migrations is None else sorted(migrations, key=lambda m: m.filename)
    async with _connection(target) as connection:
        await connection.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            return await _migrate_locked(connection, wanted, app_role)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)


async def _migrate_locked(
    connection: asyncpg.Connection, wanted: Sequence[Migration], app_role: str | None
) -> list[str]:
    # Created only when missing: CREATE TABLE IF NOT EXISTS would need the CREATE privilege the app role lacks.
    if await connection.fetchval("SELECT to_regclass('schema_migrations')") is None:
        await connection.execute(_CREATE_SCHEMA_MIGRATIONS)
    recorded: dict[str, str] = {
        row["version"]: row["checksum"]
        for row in await connection.fetch("SELECT version, checksum FROM schema_migrations")
    }
    for migration in wanted:
        stored = recorded.get(migration.version)
        if stored is not None and stored != migration.checksum:
            raise MigrationError(
                f"migration {migration.filename} was changed after it was applied to this database "
                f"(recorded sha256 {stored}, file now {migration.checksum}); applied migrations are "
                "immutable: restore the file and add a new migration for the change"
            )
    unknown = sorted(set(recorded) - {migration.version for migration in wanted})
    if unknown:
        log.warning("migrate.database_ahead_of_code", unknown_versions=unknown)

    applied: list[str] = []
    for migration in wanted:
        if migration.version in recorded:
            continue
        try:
            async with connection.transaction():
                await connection.execute("SELECT set_config($1, $2, true)", APP_ROLE_SETTING, app_role or "")
                await connection.execute(migration.sql.decode())
                await connection.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    migration.version,
                    migration.checksum,
                )
        except asyncpg.InsufficientPrivilegeError as error:
            role = await connection.fetchval("SELECT current_user")
            raise MigrationError(
                f"migration {migration.filename} is pending and role {role!r} may not apply it ({error}): "
                "migrations run as the schema's owner, `approvals migrate` with MIGRATION_DATABASE_URL"
            ) from None
        log.info("migrate.applied", version=migration.version)
        applied.append(migration.version)
    return applied


async def migrate_database(settings: Settings) -> list[str]:
    """``approvals migrate``: applies the migrations as MIGRATION_DATABASE_URL's role (else DATABASE_URL's)
    and grants the app's privileges to DATABASE_URL's user.

    Raises:
        SettingsError, DatabaseUnreachableError: naming the setting; MigrationError: as :func:`migrate`.
    """
    app_role = db.app_role(settings)
    connection = await db.connect(settings, owner=True)
    try:
        return await migrate(connection, app_role=app_role)
    finally:
        await connection.close()


async def pending_migrations(pool: asyncpg.Pool) -> list[str]:
    """The versions of the package's migrations not yet applied to the database (``GET /ready``)."""
    applied = {row["version"] for row in await pool.fetch("SELECT version FROM schema_migrations")}
    return [migration.version for migration in load_migrations() if migration.version not in applied]
