"""The calendar years operators published (table ``calendar_years``), laid over the calendar file."""

from __future__ import annotations

import asyncpg

from schemas.calendar import PublishedYear, YearSchedule


async def publish_year(pool: asyncpg.Pool, layer: str, year: int, schedule: YearSchedule, published_by: str) -> int:
    """Stores a published year; returns its revision."""
    revision: int = await pool.fetchval(
        "INSERT INTO calendar_years (layer, year, schedule, published_by) VALUES ($1, $2, $3::jsonb, $4) "
        "RETURNING revision",
        layer,
        year,
        schedule.model_dump_json(),
        published_by,
    )
    return revision


async def published_years(pool: asyncpg.Pool) -> list[PublishedYear]:
    """Every published year, in the order they were published."""
    rows = await pool.fetch(
        "SELECT revision, layer, year, schedule::text AS schedule, published_by, published_at "
        "FROM calendar_years ORDER BY revision"
    )
    return [
        PublishedYear.model_validate({**dict(row), "schedule": YearSchedule.model_validate_json(row["schedule"])})
        for row in rows
    ]


async def running_case_ids(pool: asyncpg.Pool, final_statuses: list[str]) -> list[str]:
    """The cases whose projection is not in a final status (under supervision counts as running)."""
    sql = "SELECT case_id FROM cases WHERE status <> ALL($1::text[]) ORDER BY case_id"
    rows = await pool.fetch(sql, final_statuses)
    return [row["case_id"] for row in rows]
