"""Hands the working-day calendar to workflows, so it is recorded in their history.

Read through an activity rather than inside the workflow: the file may change (an operator adds next
year's schedule), and a replay must see the calendar the case was computed with.
"""

from __future__ import annotations

from pathlib import Path

from temporalio import activity

from schemas.calendar import WorkingCalendar, load_calendar


class CalendarActivities:
    def __init__(self, calendar_path: Path | None) -> None:
        self._calendar = load_calendar(calendar_path)  # fail at worker start, not in the middle of a case

    @activity.defn(name="load_calendar")
    async def load_calendar(self) -> WorkingCalendar:
        return self._calendar
