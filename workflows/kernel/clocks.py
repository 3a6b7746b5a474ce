"""Working-day clocks: deadlines of the whole case (the statutory period) and of each stage round.

Pure: no Temporal. Every method that needs the time takes ``now``; the calendar is given at construction or,
when it is loaded later, set as ``calendar`` before the first deadline is counted.
A deadline counted in a year that is not official in every layer of the calendar is counted with what the
calendar has (Monday-Friday when no layer lists the year), and ``on_assumed_year(assumption, purpose)`` is
called at once, so the kernel records the assumption right where the deadline was counted (the order of
recorded events is part of the hash chain); the clock keeps those years (``assumed_years``) for the reviewers
who see its due date. ``adopt`` counts the open deadlines again on a newly published
calendar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from schemas.calendar import (
    BeyondKnownYears,
    CalendarResult,
    Deadline,
    WorkingCalendar,
    YearAssumption,
    add_working_days,
    subtract_working_days,
    working_days_between,
)

AssumedYear = Callable[[YearAssumption, str], None]
"""Told each year a deadline was counted without an official schedule in every layer, with what was counted."""


@dataclass
class Clock:
    """A working-day deadline: of the whole case (statutory period) or of one stage round."""

    key: str
    label: str
    legal_basis: str
    due_at: datetime
    remind_before: int
    escalate_to_role: str | None
    stage_id: str | None = None
    remind_at: datetime | None = None
    reminded: bool = False
    escalated: bool = False
    running: bool = True
    working_days_left: int = 0
    working_days: int = 0
    """Its whole length, for a period that starts again whole when 补正 material arrives."""
    on_due: Callable[[], None] | None = None
    """What the law makes happen at the due time instead of an escalation (the application counts as accepted,
    an excluded period ends): such a clock is a timer of the law, never paused by 补正 or excluded time."""
    assumed_years: tuple[int, ...] = ()
    """The years its due date was counted in without an official holiday schedule in every layer (on an assumed
    one, or Monday to Friday): the due date may move when such a year is published."""

    @property
    def pausable(self) -> bool:
        return self.on_due is None


class Alarm(StrEnum):
    reminder = "reminder"
    escalation = "escalation"


class Clocks:
    """The running clocks of one workflow run, with the bookkeeping of 补正 (stop/resume), reminders,
    escalation and extension. ``epoch`` changes whenever a wake-up time may have changed."""

    def __init__(self, calendar: WorkingCalendar | None, on_assumed_year: AssumedYear) -> None:
        self.calendar = calendar
        self._on_assumed_year = on_assumed_year
        self._clocks: dict[str, Clock] = {}
        self.epoch = 0

    # ------------------------------------------------------------------ counting working days

    def _known_calendar(self) -> WorkingCalendar:
        assert self.calendar is not None, "the calendar is loaded before any deadline is counted"
        return self.calendar

    def _counted(self, result: CalendarResult, purpose: str) -> None:
        for assumption in result.assumptions:
            self._on_assumed_year(assumption, purpose)

    def deadline(self, start: datetime, days: int) -> Deadline:
        """``days`` working days from ``start``: the due time (``at``) and the years it assumed."""
        result = add_working_days(
            self._known_calendar(), start, days, beyond_known_years=BeyondKnownYears.weekends_only
        )
        self._counted(result, "deadline")
        return result

    def counted(self, start: datetime, working_days: int, **fields: Any) -> Clock:
        """A clock due ``working_days`` working days after ``start``, noting the years it counted on an assumed
        schedule; ``fields``: the rest of the clock (key, label, legal basis, reminder …)."""
        deadline = self.deadline(start, working_days)
        return Clock(due_at=deadline.at, assumed_years=deadline.assumed_years, **fields)

    def _working_days_left(self, now: datetime, due: datetime) -> int:
        result = working_days_between(
            self._known_calendar(), now, due, beyond_known_years=BeyondKnownYears.weekends_only
        )
        self._counted(result, "clock stopped")
        return result.days

    def _reminder_time(self, clock: Clock) -> datetime | None:
        if clock.remind_before < 1:
            return None
        result = subtract_working_days(
            self._known_calendar(), clock.due_at, clock.remind_before, beyond_known_years=BeyondKnownYears.weekends_only
        )
        self._counted(result, "reminder")
        return result.at

    # ------------------------------------------------------------------ the set of clocks

    def get(self, key: str | None) -> Clock | None:
        return self._clocks.get(key) if key else None

    def __contains__(self, key: str) -> bool:
        return key in self._clocks

    def __iter__(self) -> Iterator[Clock]:
        return iter(self._clocks.values())

    def due_iso(self, key: str | None) -> str | None:
        clock = self.get(key)
        return clock.due_at.isoformat() if clock else None

    @property
    def state(self) -> str:
        """``none``, ``running``, or ``stopped`` when any deadline is stopped (补正, excluded time)."""
        deadlines = [clock for clock in self._clocks.values() if clock.pausable]
        if not deadlines:
            return "none"
        return "running" if all(clock.running for clock in deadlines) else "stopped"

    def wake(self) -> None:
        """Whoever waits on ``epoch`` looks again (e.g. the case ended)."""
        self.epoch += 1

    def start(self, clock: Clock, *, working_days: int, stopped: bool) -> None:
        """Adds a clock; one that begins while 补正 stops the clocks (``stopped``) begins stopped, whole."""
        clock.working_days = working_days
        if stopped and clock.pausable:
            clock.running = False
            clock.working_days_left = working_days
        clock.remind_at = self._reminder_time(clock)
        self._clocks[clock.key] = clock
        self.wake()

    def stop(self, key: str) -> None:
        if self._clocks.pop(key, None) is not None:
            self.wake()

    def stop_all(self) -> None:
        self._clocks.clear()
        self.wake()

    def _deadlines(self) -> list[Clock]:
        return [clock for clock in self._clocks.values() if clock.pausable]

    def pause(self, now: datetime) -> None:
        """补正 or excluded time (Art. 45): every deadline stops, keeping the working days it had left."""
        for clock in self._deadlines():
            clock.running = False
            clock.working_days_left = self._working_days_left(now, clock.due_at)
        self.wake()

    def resume(self, now: datetime, *, whole: bool = False) -> None:
        """The deadlines run again. After excluded time (and 补正 in cases started before 补正 came strictly
        before acceptance) each goes on with the working days it had left; ``whole``: each starts again with its
        whole length, as the stages before acceptance do when the 补正 material arrives (Art. 32).

        A clock already overdue stays overdue; one stopped on its last day gets that day back.
        """
        for clock in self._deadlines():
            clock.running = True
            if not clock.escalated:
                days = clock.working_days if whole else max(1, clock.working_days_left)
                deadline = self.deadline(now, days)
                clock.due_at, clock.assumed_years = deadline.at, deadline.assumed_years
                clock.remind_at = self._reminder_time(clock)
                clock.reminded = False
        self.wake()

    def extend(self, key: str, working_days: int) -> datetime:
        """Moves a clock's due time by ``working_days``; returns the previous due time. A stopped clock keeps
        the extra days for when it resumes."""
        clock = self._clocks[key]
        previous = clock.due_at
        if not clock.running:
            clock.working_days_left += working_days
        deadline = self.deadline(previous, working_days)
        clock.due_at = deadline.at
        clock.assumed_years = tuple(sorted({*clock.assumed_years, *deadline.assumed_years}))
        clock.remind_at = self._reminder_time(clock)
        clock.reminded = clock.escalated = False
        self.wake()
        return previous

    def adopt(self, calendar: WorkingCalendar, now: datetime) -> list[tuple[Clock, datetime]]:
        """Counts the open deadlines again on ``calendar`` (a newly published year); returns the clocks whose
        due time moved, each with its previous due time. A clock counted again keeps only the years still
        assumed on the new calendar, moved or not.

        A running clock keeps the working days it has left after today (counted on the calendar it was set
        with), now counted on the new one: the days already used stay used, only the days still ahead are
        counted again. A stopped clock (补正) keeps its working days left for when it resumes, counted then on
        the new calendar; an overdue clock, or one ending today, stays as it is.
        """
        previous = self._known_calendar()  # its assumptions were recorded when the deadlines were counted
        left = {
            clock.key: working_days_between(
                previous, now, clock.due_at, beyond_known_years=BeyondKnownYears.weekends_only
            ).days
            for clock in self._clocks.values()
            if clock.running and not clock.escalated
        }
        self.calendar = calendar
        moved: list[tuple[Clock, datetime]] = []
        for key, days in left.items():
            clock = self._clocks[key]
            if not days:
                continue
            deadline = self.deadline(now, days)
            clock.assumed_years = deadline.assumed_years
            if deadline.at != clock.due_at:
                moved.append((clock, clock.due_at))
                clock.due_at = deadline.at
                clock.remind_at = self._reminder_time(clock)
                clock.reminded = clock.reminded and (clock.remind_at is None or clock.remind_at <= now)
        self.wake()
        return moved

    # ------------------------------------------------------------------ reminders and escalation

    def next_wake(self) -> datetime | None:
        """The earliest pending reminder or due time of a running clock."""
        moments = [
            moment
            for clock in self._clocks.values()
            if clock.running
            for moment in (
                clock.remind_at if not clock.reminded else None,
                clock.due_at if not clock.escalated else None,
            )
            if moment is not None
        ]
        return min(moments) if moments else None

    def alarms(self, now: datetime) -> Iterator[tuple[Clock, Alarm]]:
        """The reminders and escalations due at ``now``, each marked as given as it is yielded (lazily, so
        what the caller does about one alarm is done before the next is looked at)."""
        for clock in list(self._clocks.values()):
            if not clock.running:
                continue
            if clock.remind_at and not clock.reminded and clock.remind_at <= now < clock.due_at:
                clock.reminded = True
                yield clock, Alarm.reminder
            if not clock.escalated and now >= clock.due_at:
                clock.escalated = clock.reminded = True
                yield clock, Alarm.escalation
