"""The working-day countdown a reviewer sees next to each task: days left and its colour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path

from schemas.calendar import BeyondKnownYears, WorkingCalendar, load_calendar, working_days_between

DUE_SOON_WORKING_DAYS = 2
"""A task with this many working days left or fewer is shown as due soon."""


class ClockStatus(StrEnum):
    on_time = "on-time"
    due_soon = "due-soon"
    overdue = "overdue"
    paused = "paused"
    none = "none"


@dataclass(frozen=True)
class Countdown:
    status: ClockStatus
    working_days_left: int | None


@cache
def calendar(path: Path | None) -> WorkingCalendar:
    return load_calendar(path)


def countdown(
    cal: WorkingCalendar, due_at: datetime | None, *, overdue: bool, paused: bool = False, now: datetime | None = None
) -> Countdown:
    """Working days left until ``due_at``; paused (no count) while the case's clock is stopped (补正, Art. 45
    periods), since the due date moves when it runs again."""
    if paused:
        return Countdown(ClockStatus.paused, None)
    if due_at is None:
        return Countdown(ClockStatus.none, None)
    now = now or datetime.now(UTC)
    if overdue or due_at <= now:
        return Countdown(ClockStatus.overdue, 0)
    left = working_days_between(cal, now, due_at, beyond_known_years=BeyondKnownYears.weekends_only).days
    return Countdown(ClockStatus.due_soon if left <= DUE_SOON_WORKING_DAYS else ClockStatus.on_time, left)
