"""The two database roles of the engine, on a server where we are superuser (the embedded PostgreSQL).

Production creates them in its deployment (``deploy/postgres-init/create-approvals-db.sh``); ``approvals dev``
and the test suite create them here, so that they run the way production does: the migrations as the owner
of the database and its tables, the worker and the API as an app role that owns nothing and holds only
what migration 0008 grants it (docs/deploy.md, "Database roles").
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import structlog

from approvals import db

__all__ = ["DEV_ROLES", "DatabaseRoles", "ProvisionedDatabase", "provision_database"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DatabaseRoles:
    owner: str
    app: str


DEV_ROLES = DatabaseRoles(owner="approvals_owner", app="approvals_app")
"""The roles of `approvals dev`'s embedded server (trust authentication, so they have no password)."""


@dataclass(frozen=True)
class ProvisionedDatabase:
    owner_url: str
    """MIGRATION_DATABASE_URL: the owner of the database and of every table in it."""
    app_url: str
    """DATABASE_URL: the app role."""


def _url(server_url: str, database: str, role: str | None = None, password: str | None = None) -> str:
    """The server of ``server_url``, another database and, when ``role`` is given, another user."""
    parts = urlsplit(server_url)._replace(path=f"/{database}")
    if role is None:
        return urlunsplit(parts)
    credentials = quote(role, safe="") + (f":{quote(password, safe='')}" if password else "")
    return urlunsplit(parts._replace(netloc=f"{credentials}@{parts.netloc.rpartition('@')[2]}"))


# Tables and functions made before the database had its owner role (a dev data directory from an
# earlier version, all owned by the superuser) are handed over, so the owner can migrate and grant.
_ADOPT = """
DO $$
DECLARE
    owner text := current_setting('approvals.owner_role');
    item record;
BEGIN
    FOR item IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND pg_get_userbyid(c.relowner) <> owner
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO %I', item.name, owner);
    END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> owner
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO %I', item.name, owner);
    END LOOP;
END
$$
"""


async def provision_database(
    server_url: str, database: str, roles: DatabaseRoles = DEV_ROLES, *, password: str | None = None
) -> ProvisionedDatabase:
    """Creates what is missing of the two roles (LOGIN, neither superuser) and of ``database``, owned by the
    owner role; idempotent. ``server_url`` connects as a superuser. ``password``, when given, is set for
    both roles and written into the URLs (a server that asks for passwords)."""
    admin = await db.connect(server_url)
    try:
        for role in (roles.owner, roles.app):
            if not await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await admin.execute(f"CREATE ROLE {_identifier(role)} LOGIN")
                log.info("postgres.role_created", role=role)
            if password is not None:
                await admin.execute(f"ALTER ROLE {_identifier(role)} PASSWORD {_literal(password)}")
        owner = await admin.fetchval("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", database)
        if owner is None:
            await admin.execute(f"CREATE DATABASE {_identifier(database)} OWNER {_identifier(roles.owner)}")
            log.info("postgres.database_created", database=database, owner=roles.owner)
        elif owner != roles.owner:
            await admin.execute(f"ALTER DATABASE {_identifier(database)} OWNER TO {_identifier(roles.owner)}")
            await _adopt(_url(server_url, database), roles.owner)
    finally:
        await admin.close()
    return ProvisionedDatabase(
        owner_url=_url(server_url, database, roles.owner, password),
        app_url=_url(server_url, database, roles.app, password),
    )


async def _adopt(superuser_url: str, owner: str) -> None:
    connection = await asyncpg.connect(superuser_url)
    try:
        async with connection.transaction():
            await connection.execute("SELECT set_config('approvals.owner_role', $1, true)", owner)
            await connection.execute(_ADOPT)
        log.info("postgres.tables_adopted", owner=owner)
    finally:
        await connection.close()


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
