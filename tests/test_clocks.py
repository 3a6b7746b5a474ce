"""The kernel's working-day clocks, without Temporal: deadlines, 补正 stop/resume, reminders, escalation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from schemas.calendar import Holiday, ScheduleStatus, WorkingCalendar, YearSchedule, load_calendar
from workflows.kernel.clocks import Alarm, Clock, Clocks

CST = timezone(timedelta(hours=8))
MONDAY = datetime(2026, 3, 2, 10, tzinfo=CST)
"""An ordinary week of the 2026 schedule: no holiday, no make-up working day near it."""


def end_of(day: int, month: int = 3, year: int = 2026) -> datetime:
    """The end of a local day (the start of the next), as deadlines are counted."""
    return datetime(year, month, day, tzinfo=CST) + timedelta(days=1)


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return load_calendar()


@pytest.fixture
def assumed() -> list[tuple[int, str]]:
    return []


@pytest.fixture
def clocks(calendar: WorkingCalendar, assumed: list[tuple[int, str]]) -> Clocks:
    return Clocks(calendar, lambda assumption, purpose: assumed.append((assumption.year, purpose)))


def stage_clock(clocks: Clocks, now: datetime, days: int = 5, remind_before: int = 1) -> Clock:
    deadline = clocks.deadline(now, days)
    return Clock(
        key="stage:review:1",
        label="review",
        legal_basis="Art. 10",
        due_at=deadline.at,
        assumed_years=deadline.assumed_years,
        remind_before=remind_before,
        escalate_to_role="supervisor",
        stage_id="review",
    )


def test_a_deadline_is_the_end_of_its_last_working_day_with_a_reminder_before_it(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY)
    clocks.start(clock, working_days=5, stopped=False)

    assert clock.due_at == end_of(9)  # Tue, Wed, Thu, Fri, Mon
    assert clock.remind_at == end_of(6)  # one working day before the last one
    assert clocks.next_wake() == end_of(6)
    assert clocks.state == "running" and "stage:review:1" in clocks and clocks.due_iso(clock.key)


def test_alarms_ring_once_each_in_order(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY)
    clocks.start(clock, working_days=5, stopped=False)

    assert list(clocks.alarms(MONDAY)) == []
    assert list(clocks.alarms(end_of(6))) == [(clock, Alarm.reminder)]
    assert list(clocks.alarms(end_of(6))) == []
    assert clocks.next_wake() == end_of(9)
    assert list(clocks.alarms(end_of(9))) == [(clock, Alarm.escalation)]
    assert list(clocks.alarms(end_of(12))) == [] and clocks.next_wake() is None


def test_a_clock_found_overdue_escalates_without_a_late_reminder(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY)
    clocks.start(clock, working_days=5, stopped=False)

    assert list(clocks.alarms(end_of(10))) == [(clock, Alarm.escalation)]
    assert clock.reminded and clock.escalated


def test_supplement_stops_the_clock_and_resuming_keeps_the_working_days_left(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY)
    clocks.start(clock, working_days=5, stopped=False)
    epoch = clocks.epoch

    clocks.pause(datetime(2026, 3, 4, 10, tzinfo=CST))  # Wednesday: Thu, Fri, Mon remain
    assert (clock.running, clock.working_days_left) == (False, 3)
    assert clocks.state == "stopped" and clocks.next_wake() is None and clocks.epoch > epoch
    assert list(clocks.alarms(end_of(20))) == []

    clocks.resume(datetime(2026, 3, 16, 10, tzinfo=CST))  # a Monday: Tue, Wed, Thu
    assert clock.running and clock.due_at == end_of(19) and clock.remind_at == end_of(18)


def test_a_clock_stopped_on_its_last_day_gets_that_day_back(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY)
    clocks.start(clock, working_days=5, stopped=False)

    clocks.pause(datetime(2026, 3, 9, 10, tzinfo=CST))
    assert clock.working_days_left == 0
    clocks.resume(datetime(2026, 3, 16, 10, tzinfo=CST))
    assert clock.due_at == end_of(17)


def test_an_overdue_clock_stays_overdue_when_resumed(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY)
    clocks.start(clock, working_days=5, stopped=False)
    list(clocks.alarms(end_of(9)))

    clocks.pause(end_of(10))
    clocks.resume(end_of(20))
    assert clock.due_at == end_of(9) and clock.escalated


def test_a_period_that_begins_during_supplement_begins_stopped_and_whole(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY)
    clocks.start(clock, working_days=5, stopped=True)

    assert (clock.running, clock.working_days_left) == (False, 5)
    clocks.resume(datetime(2026, 3, 16, 10, tzinfo=CST))
    assert clock.due_at == end_of(23)


def test_extension_moves_the_due_time_and_rearms_the_alarms(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY)
    clocks.start(clock, working_days=5, stopped=False)
    list(clocks.alarms(end_of(9)))

    previous = clocks.extend(clock.key, 5)
    assert previous == end_of(9) and clock.due_at == end_of(16)
    assert not clock.reminded and not clock.escalated and clock.remind_at == end_of(13)


def test_extension_of_a_stopped_clock_adds_to_the_days_left(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY)
    clocks.start(clock, working_days=5, stopped=False)
    clocks.pause(datetime(2026, 3, 4, 10, tzinfo=CST))

    clocks.extend(clock.key, 10)
    assert clock.working_days_left == 13


def test_stopping_removes_clocks(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY)
    clocks.start(clock, working_days=5, stopped=False)
    epoch = clocks.epoch

    clocks.stop("no-such-clock")
    assert clocks.epoch == epoch
    clocks.stop(clock.key)
    assert clocks.get(clock.key) is None and clocks.state == "none" and clocks.epoch > epoch

    clocks.start(stage_clock(clocks, MONDAY), working_days=5, stopped=False)
    clocks.stop_all()
    assert list(clocks) == []


def test_no_reminder_when_none_is_asked_for(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY, remind_before=0)
    clocks.start(clock, working_days=5, stopped=False)
    assert clock.remind_at is None and clocks.next_wake() == clock.due_at


def test_a_year_without_an_official_schedule_is_counted_monday_to_friday_and_told(
    clocks: Clocks, assumed: list[tuple[int, str]]
) -> None:
    monday_2031 = datetime(2031, 3, 3, 10, tzinfo=CST)
    clock = stage_clock(clocks, monday_2031)
    clocks.start(clock, working_days=5, stopped=False)

    assert clock.due_at == end_of(10, year=2031)
    assert (2031, "deadline") in assumed and (2031, "reminder") in assumed
    assert clock.assumed_years == (2031,)  # for the reviewers who see the due date


def test_a_clock_keeps_the_years_its_due_date_assumed_until_they_are_published(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY)
    clocks.start(clock, working_days=5, stopped=False)
    assert clock.assumed_years == (2026,)  # the built-in calendar's Xinjiang 2026 schedule is assumed

    clocks.extend(clock.key, 250)  # into 2027, which no layer lists: both years now stand under the date
    assert clock.due_at.year == 2027 and clock.assumed_years == (2026, 2027)

    clocks.adopt(published(clocks.calendar, 20), MONDAY + timedelta(days=1))  # type: ignore[arg-type]
    assert clock.assumed_years == (2027,)  # counted again: 2026 is official now, 2027 still assumed


def test_without_a_calendar_nothing_is_counted() -> None:
    with pytest.raises(AssertionError):
        Clocks(None, lambda year, purpose: None).deadline(MONDAY, 1)


# ---------------------------------------------------------------- a calendar year published mid-case


def published(calendar: WorkingCalendar, *days_off: int) -> WorkingCalendar:
    """The calendar with an official Xinjiang 2026 notice giving ``days_off`` (of March 2026) off."""
    notice = YearSchedule(
        holidays=tuple(Holiday(name=f"regional {day}", first=end_of(day).date() - timedelta(days=1),
                               last=end_of(day).date() - timedelta(days=1)) for day in days_off),
        make_up_working_days=(),
        source="test notice",
        status=ScheduleStatus.official,
    )  # fmt: skip
    return calendar.with_year("xinjiang", 2026, notice, revision=calendar.revision + 1)


def test_a_published_holiday_moves_a_running_deadline_by_the_days_still_ahead(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY)  # due end of Mon 9 Mar
    clocks.start(clock, working_days=5, stopped=False)
    tuesday = MONDAY + timedelta(days=1)
    epoch = clocks.epoch

    # Thu 5 Mar becomes a day off: of the 4 working days left after Tue (4, 5, 6, 9), one is no longer worked.
    moved = clocks.adopt(published(clocks.calendar, 5), tuesday)  # type: ignore[arg-type]

    assert moved == [(clock, end_of(9))]
    assert clock.due_at == end_of(10)  # 4, 6, 9, 10
    assert clock.remind_at == end_of(9)
    assert clocks.epoch != epoch  # the timer loop looks again
    assert clocks.calendar is not None and clocks.calendar.revision == 1


def test_a_holiday_already_passed_or_outside_the_period_moves_nothing(clocks: Clocks) -> None:
    clock = stage_clock(clocks, MONDAY)
    clocks.start(clock, working_days=5, stopped=False)
    assert clocks.adopt(published(clocks.calendar, 3, 20), MONDAY + timedelta(days=1)) == []  # type: ignore[arg-type]
    assert clock.due_at == end_of(9)


def test_stopped_and_overdue_clocks_keep_their_dates(clocks: Clocks) -> None:
    stopped = stage_clock(clocks, MONDAY)
    clocks.start(stopped, working_days=5, stopped=True)  # 补正: its 5 days are counted when it resumes
    overdue = Clock(key="case", label="case", legal_basis="Art. 42", due_at=end_of(2), remind_before=0,
                    escalate_to_role=None, escalated=True)  # fmt: skip
    clocks.start(overdue, working_days=1, stopped=False)

    assert clocks.adopt(published(clocks.calendar, 4), MONDAY + timedelta(days=1)) == []  # type: ignore[arg-type]
    assert overdue.due_at == end_of(2) and stopped.working_days_left == 5
    clocks.resume(MONDAY + timedelta(days=1))
    assert stopped.due_at == end_of(11)  # (Wed 4 off) 5, 6, 9, 10, 11: counted on the published calendar
