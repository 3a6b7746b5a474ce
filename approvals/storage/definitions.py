"""Registered process definitions (tables ``process_definitions`` and ``process_definition_retirements``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, Field


class DefinitionVersion(BaseModel):
    name: str
    version: int
    sha256: str
    registered_by: str
    registered_at: datetime
    retired_at: datetime | None = Field(None, description="Set once the version was retired: no new starts.")
    retired_by: str | None = None
    retire_reason: str | None = None
    definition: dict[str, Any]


_SELECT = (
    "SELECT d.name, d.version, d.sha256, d.definition::text AS definition, d.registered_by, d.registered_at, "
    "r.retired_at, r.retired_by, r.reason AS retire_reason "
    "FROM process_definitions d LEFT JOIN process_definition_retirements r USING (name, version) "
)


def _version(row: asyncpg.Record) -> DefinitionVersion:
    return DefinitionVersion.model_validate({**dict(row), "definition": json.loads(row["definition"])})


async def register(
    pool: asyncpg.Pool, name: str, sha256: str, definition_json: str, registered_by: str
) -> tuple[DefinitionVersion, bool]:
    """The version with this content, registering it as the name's next version when it is new (True).

    Serialized per name by a transaction-scoped advisory lock, so two registrations of one name never take the
    same number and the same content registered twice at once is one version."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext('process_definitions:' || $1))", name)
        existing = await connection.fetchrow(_SELECT + "WHERE d.name = $1 AND d.sha256 = $2", name, sha256)
        if existing is not None:
            return _version(existing), False
        await connection.execute(
            "INSERT INTO process_definitions (name, version, sha256, definition, registered_by) "
            "SELECT $1, coalesce(max(version), 0) + 1, $2, $3::jsonb, $4 FROM process_definitions WHERE name = $1",
            name, sha256, definition_json, registered_by,
        )  # fmt: skip
        row = await connection.fetchrow(_SELECT + "WHERE d.name = $1 AND d.sha256 = $2", name, sha256)
        return _version(row), True


async def versions(pool: asyncpg.Pool, name: str) -> list[DefinitionVersion]:
    """Every version of the name, oldest first."""
    return [_version(row) for row in await pool.fetch(_SELECT + "WHERE d.name = $1 ORDER BY d.version", name)]


async def all_versions(pool: asyncpg.Pool) -> list[DefinitionVersion]:
    """Every version of every name, by name and version."""
    return [_version(row) for row in await pool.fetch(_SELECT + "ORDER BY d.name, d.version")]


async def retire(pool: asyncpg.Pool, name: str, version: int, retired_by: str, reason: str) -> bool:
    """Retires a version (False: it was retired already, and stays retired as it was)."""
    status = await pool.execute(
        "INSERT INTO process_definition_retirements (name, version, retired_by, reason) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (name, version) DO NOTHING",
        name, version, retired_by, reason,
    )  # fmt: skip
    return bool(status.endswith(" 1"))
