"""Hands the working-day calendar to workflows, so it is recorded in their history.

Read through an activity rather than inside the workflow: the calendar changes (an operator publishes next
year's schedule), and a replay must see the calendar the case was computed with. A case started after a
publication gets the published years at once; running cases are sent the new calendar when it is published
(``approvals.calendar_publishing``).
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
from temporalio import activity

from approvals.storage import calendars
from schemas.calendar import WorkingCalendar, load_calendar, with_published


class CalendarActivities:
    def __init__(self, pool: asyncpg.Pool, calendar_path: Path | None) -> None:
        self._pool = pool
        self._file = load_calendar(calendar_path)  # fail at worker start, not in the middle of a case

    @activity.defn(name="load_calendar")
    async def load_calendar(self) -> WorkingCalendar:
        """The calendar file with every year published over it."""
        return with_published(self._file, await calendars.published_years(self._pool))
