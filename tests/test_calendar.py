"""Specification of working-day counting against the official 2026 schedule (and 2025, for cases started then).

The expected dates below are computed by hand from the State Council notices, never by the code under test.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.calendar import (
    NATIONAL,
    BeyondKnownYears,
    CalendarError,
    ScheduleStatus,
    UncoveredYearError,
    WorkingCalendar,
    YearAssumption,
    add_working_days,
    is_working_day,
    load_calendar,
    subtract_working_days,
    working_days_between,
)

UTC = UTC
CST = timezone(timedelta(hours=8))
STRICT = BeyondKnownYears.error
LENIENT = BeyondKnownYears.weekends_only

# The table of /work/shared/working-days-2026.md, kept apart from cn.json so the file is checked against it.
HOLIDAYS_2026 = [
    (date(2026, 1, 1), date(2026, 1, 3)),
    (date(2026, 2, 15), date(2026, 2, 23)),
    (date(2026, 4, 4), date(2026, 4, 6)),
    (date(2026, 5, 1), date(2026, 5, 5)),
    (date(2026, 6, 19), date(2026, 6, 21)),
    (date(2026, 9, 25), date(2026, 9, 27)),
    (date(2026, 10, 1), date(2026, 10, 7)),
]
MAKE_UP_DAYS_2026 = [
    date(2026, 1, 4),
    date(2026, 2, 14),
    date(2026, 2, 28),
    date(2026, 5, 9),
    date(2026, 9, 20),
    date(2026, 10, 10),
]


@pytest.fixture(scope="module")
def zone() -> WorkingCalendar:
    """The built-in calendar: the national schedule with the Xinjiang layer over it."""
    return load_calendar()


@pytest.fixture(scope="module")
def cal(zone: WorkingCalendar) -> WorkingCalendar:
    """The national layer alone: the State Council's schedules, checked day by day below."""
    return WorkingCalendar(name="cn-national", timezone_offset_hours=8, layers=(zone.layer(NATIONAL),))


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An instant given in China local time."""
    return datetime(year, month, day, hour, minute, tzinfo=CST)


def end_of(year: int, month: int, day: int) -> datetime:
    """24:00 local of a date, as the functions return it: the next local midnight, in UTC."""
    return (local(year, month, day) + timedelta(days=1)).astimezone(UTC)


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def write_calendar(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def valid_data() -> dict[str, Any]:
    return {
        "name": "test",
        "timezone_offset_hours": 8,
        "years": {
            "2026": {
                "source": "test",
                "holidays": [
                    {"name": "New Year", "first": "2026-01-01", "last": "2026-01-03"},
                    {"name": "Spring Festival", "first": "2026-02-15", "last": "2026-02-23"},
                ],
                "make_up_working_days": ["2026-01-04", "2026-02-14"],
            }
        },
    }


# --- the built-in data -------------------------------------------------------------------------------------


def test_builtin_calendar_is_china_2025_and_2026_with_xinjiang_over_it(zone: WorkingCalendar) -> None:
    assert zone.name == "cn"
    assert zone.timezone_offset_hours == 8
    assert [layer.name for layer in zone.layers] == [NATIONAL, "xinjiang"]
    national, xinjiang = zone.layers
    assert sorted(national.years) == [2025, 2026]
    assert "2025-11-04" in national.years[2026].source
    assert {year: schedule.status for year, schedule in national.years.items()} == {
        2025: ScheduleStatus.official,
        2026: ScheduleStatus.official,
    }
    # The 2025 regional notice is official; the 2026 one could not be confirmed, so the year is assumed
    # (without regional days off: the earlier, safe deadline) and every count through it says so.
    assert xinjiang.years[2025].status is ScheduleStatus.official
    assert xinjiang.years[2026].status is ScheduleStatus.assumed
    assert zone.official_years == (2025,)
    assert zone.unofficial_layers(2026) == ("xinjiang",)
    assert zone.unofficial_layers(2027) == (NATIONAL, "xinjiang")


# --- Xinjiang's regional holidays (the 2025 regional notice) ---------------------------------------------------

EID_AL_FITR_2025 = days(date(2025, 3, 29), date(2025, 3, 31))  # 肉孜节, Sat..Mon
EID_AL_ADHA_2025 = days(date(2025, 6, 6), date(2025, 6, 10))  # 古尔邦节, Fri..Tue


@pytest.mark.parametrize("day", EID_AL_FITR_2025 + EID_AL_ADHA_2025, ids=str)
def test_the_2025_xinjiang_holidays_are_not_working_days(zone: WorkingCalendar, day: date) -> None:
    assert not is_working_day(zone, day)


def test_the_national_layer_alone_works_the_weekdays_of_the_xinjiang_holidays(cal: WorkingCalendar) -> None:
    # What cn.json counted before the regional layer: Mon 31 Mar, Fri 6 Jun, Mon 9 and Tue 10 Jun worked.
    assert [is_working_day(cal, day) for day in (date(2025, 3, 31), date(2025, 6, 6), date(2025, 6, 9))] == [
        True,
        True,
        True,
    ]
    assert is_working_day(cal, date(2025, 6, 10))


def test_twenty_working_days_across_rouzi_jie(zone: WorkingCalendar) -> None:
    # Accepted Wed 19 Mar 2025. Working days: 20, 21 (2), 24-28 (7), 31 Mar is 肉孜节 (off), 1-3 Apr (10),
    # 4 Apr Qingming (off), 7-11 (15), 14-18 (20) -> Fri 18 Apr; on the national layer alone, Thu 17 Apr.
    due = add_working_days(zone, local(2025, 3, 19, 10), 20, beyond_known_years=STRICT)
    assert due.at == end_of(2025, 4, 18)
    assert due.assumptions == ()


def test_twenty_working_days_across_gurbang_jie(zone: WorkingCalendar) -> None:
    # Accepted Mon 26 May 2025. 27-30 May (4), 31 May-2 Jun Dragon Boat (off), 3-5 Jun (7), 6-10 Jun 古尔邦节
    # (off), 11-13 (10), 16-20 (15), 23-27 Jun (20) -> Fri 27 Jun; three days later than nationally (Tue 24).
    due = add_working_days(zone, local(2025, 5, 26, 10), 20, beyond_known_years=STRICT)
    assert due.at == end_of(2025, 6, 27)
    national_only = WorkingCalendar(name="n", timezone_offset_hours=8, layers=(zone.layer(NATIONAL),))
    assert add_working_days(national_only, local(2025, 5, 26, 10), 20, beyond_known_years=STRICT).at == end_of(
        2025, 6, 24
    )


def test_a_year_assumed_in_one_layer_is_counted_and_named(zone: WorkingCalendar) -> None:
    # 2026: national official, Xinjiang assumed (no regional days off): counted, and the assumption named.
    due = add_working_days(zone, local(2026, 3, 2, 9), 20, beyond_known_years=LENIENT)
    assert (
        due.at
        == add_working_days(
            WorkingCalendar(name="n", timezone_offset_hours=8, layers=(zone.layer(NATIONAL),)),
            local(2026, 3, 2, 9),
            20,
            beyond_known_years=STRICT,
        ).at
    )
    assert due.assumptions == (YearAssumption(year=2026, layers=("xinjiang",), weekends_only=False),)
    with pytest.raises(UncoveredYearError, match=r"2026.*layer\(s\) xinjiang") as raised:
        add_working_days(zone, local(2026, 3, 2, 9), 20, beyond_known_years=STRICT)
    assert raised.value.layers == ("xinjiang",)


def test_a_later_layer_overrides_an_earlier_one() -> None:
    region = {
        "name": "region",
        "title": "a regional government",
        "years": {
            "2026": {
                "source": "test",
                "holidays": [{"name": "Regional day", "first": "2026-03-09", "last": "2026-03-09"}],
                "make_up_working_days": ["2026-01-03"],  # a Saturday the national layer gives off
            }
        },
    }
    data = {**valid_data(), "layers": [{"name": NATIONAL, "title": "t", "years": valid_data()["years"]}, region]}
    del data["years"]
    layered = WorkingCalendar.model_validate(data)
    assert not is_working_day(layered, date(2026, 3, 9))  # a Monday, off in the region
    assert is_working_day(layered, date(2026, 1, 3))  # New Year's Saturday, worked in the region


# --- the earlier single-layer shape (recorded in older cases) -----------------------------------------------


def test_the_single_layer_shape_is_the_national_layer_alone(tmp_path: Path) -> None:
    old = valid_data()
    loaded = load_calendar(write_calendar(tmp_path, old))
    assert [layer.name for layer in loaded.layers] == [NATIONAL]
    assert loaded.layer(NATIONAL).years[2026].status is ScheduleStatus.official
    assert loaded.revision == 0
    assert WorkingCalendar(name="test", timezone_offset_hours=8, years=old["years"]) == loaded  # type: ignore[call-arg]
    # It counts as before: its days, no other layer. (The test data lacks the 28 Feb make-up day, so the 20th
    # working day after Mon 9 Feb is Mon 16 Mar, not the official Fri 13 Mar.)
    due = add_working_days(loaded, local(2026, 2, 9, 11), 20, beyond_known_years=STRICT)
    assert due.at == end_of(2026, 3, 16)
    assert loaded.model_dump(mode="json")["layers"][0]["years"]["2026"]["holidays"][0]["name"] == "New Year"


def test_the_calendar_recorded_in_a_history_loads(tmp_path: Path) -> None:
    history = json.loads(
        (
            Path(__file__).parent / "histories" / "v3-applicant-named-committee" / "talent-policy-under-review.json"
        ).read_text()
    )
    recorded = next(
        json.loads(base64.b64decode(payload["data"]))
        for event in history["events"]
        if event.get("activityTaskCompletedEventAttributes")
        for payload in event["activityTaskCompletedEventAttributes"]["result"]["payloads"]
        if b"timezone_offset_hours" in base64.b64decode(payload["data"])
    )
    assert "years" in recorded and "layers" not in recorded  # the premise: the old shape
    calendar = WorkingCalendar.model_validate(recorded)
    assert [layer.name for layer in calendar.layers] == [NATIONAL]
    assert sorted(calendar.layer(NATIONAL).years) == sorted(int(year) for year in recorded["years"])


@pytest.mark.parametrize("first,last", HOLIDAYS_2026)
def test_every_2026_holiday_day_is_off(cal: WorkingCalendar, first: date, last: date) -> None:
    assert [day for day in days(first, last) if is_working_day(cal, day)] == []


@pytest.mark.parametrize("day", MAKE_UP_DAYS_2026, ids=str)
def test_every_2026_make_up_day_is_worked(cal: WorkingCalendar, day: date) -> None:
    assert day.weekday() >= 5
    assert is_working_day(cal, day)


def test_ordinary_days_follow_the_week(cal: WorkingCalendar) -> None:
    assert is_working_day(cal, date(2026, 3, 9))  # Monday
    assert not is_working_day(cal, date(2026, 3, 7))  # Saturday
    assert not is_working_day(cal, date(2026, 3, 8))  # Sunday


def test_2026_has_248_working_days(cal: WorkingCalendar) -> None:
    # 2026 starts on a Thursday: 52 weeks + 1 Thursday = 261 weekdays. Weekdays off: New Year 2 (Thu, Fri),
    # Spring Festival 6 (16-20 Feb, 23 Feb), Qingming 1 (6 Apr), Labour Day 3 (1, 4, 5 May), Dragon Boat 1
    # (19 Jun), Mid-Autumn 1 (25 Sep), National Day 5 (1, 2, 5, 6, 7 Oct) = 19. Make-up days: 6.
    # 261 - 19 + 6 = 248.
    counted = working_days_between(cal, end_of(2025, 12, 31), end_of(2026, 12, 31), beyond_known_years=STRICT)
    assert counted.days == 248
    assert sum(is_working_day(cal, day) for day in days(date(2026, 1, 1), date(2026, 12, 31))) == 248


def test_2025_schedule(cal: WorkingCalendar) -> None:
    assert not is_working_day(cal, date(2025, 1, 28))  # Spring Festival
    assert not is_working_day(cal, date(2025, 10, 8))  # last day of National Day + Mid-Autumn
    for make_up in (date(2025, 1, 26), date(2025, 2, 8), date(2025, 4, 27), date(2025, 9, 28), date(2025, 10, 11)):
        assert is_working_day(cal, make_up)


# --- counting ----------------------------------------------------------------------------------------------


def test_twenty_working_days_across_the_spring_festival(cal: WorkingCalendar) -> None:
    # Accepted Monday 2026-02-02 at 11:00 local; day 1 is the next working day.
    #  1-4  Tue 3 .. Fri 6 Feb             (7, 8 weekend)
    #  5-9  Mon 9 .. Fri 13 Feb
    #  10   Sat 14 Feb (make-up day)        (15 .. 23 Feb Spring Festival)
    #  11-14 Tue 24 .. Fri 27 Feb
    #  15   Sat 28 Feb (make-up day)        (1 Mar Sunday)
    #  16-20 Mon 2 .. Fri 6 Mar
    # Due at the end of Friday 2026-03-06: 2026-03-07 00:00 local = 2026-03-06 16:00 UTC.
    due = add_working_days(cal, local(2026, 2, 2, 11), 20, beyond_known_years=STRICT)
    assert due.at == datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    assert due.at.tzinfo == UTC
    assert not due.assumed_weekends_only
    assert due.assumed_years == ()


def test_case_started_late_2025_runs_into_2026(cal: WorkingCalendar) -> None:
    # Accepted Monday 2025-12-15: 16-19 Dec (4), 22-26 Dec (9), 29-31 Dec (12), 1-3 Jan New Year,
    # Sun 4 Jan make-up (13), 5-9 Jan (18), Mon 12 (19), Tue 13 Jan (20).
    due = add_working_days(cal, local(2025, 12, 15, 9), 20, beyond_known_years=STRICT)
    assert due.at == end_of(2026, 1, 13)


def test_supplement_notice_window_across_labour_day(cal: WorkingCalendar) -> None:
    # 补正 must be requested within 5 working days. Application received Thursday 2026-04-30 at 10:00:
    # 1-5 May Labour Day, Wed 6 (1), Thu 7 (2), Fri 8 (3), Sat 9 make-up (4), Sun 10, Mon 11 May (5).
    received = local(2026, 4, 30, 10)
    assert add_working_days(cal, received, 5, beyond_known_years=STRICT).at == end_of(2026, 5, 11)
    # During Monday 11 May only four whole working days have passed; the fifth is under way.
    assert working_days_between(cal, received, local(2026, 5, 11, 15), beyond_known_years=STRICT).days == 4
    assert working_days_between(cal, received, end_of(2026, 5, 11), beyond_known_years=STRICT).days == 5


def test_between_across_a_weekend_and_a_holiday(cal: WorkingCalendar) -> None:
    # Friday 2026-04-03 -> Sat 4, Sun 5 (Qingming from Saturday), Mon 6 Qingming, Tue 7 (1), Wed 8 (2).
    start = local(2026, 4, 3, 9)
    assert working_days_between(cal, start, end_of(2026, 4, 6), beyond_known_years=STRICT).days == 0
    assert working_days_between(cal, start, end_of(2026, 4, 8), beyond_known_years=STRICT).days == 2


def test_between_is_never_negative(cal: WorkingCalendar) -> None:
    late = working_days_between(cal, local(2026, 3, 10, 9), local(2026, 3, 2, 9), beyond_known_years=STRICT)
    assert late.days == 0


def test_start_on_a_holiday(cal: WorkingCalendar) -> None:
    # Saturday 2026-10-03, inside National Day (1-7 Oct): Thu 8 (1), Fri 9 (2), Sat 10 make-up (3).
    start = local(2026, 10, 3, 10)
    assert add_working_days(cal, start, 1, beyond_known_years=STRICT).at == end_of(2026, 10, 8)
    assert add_working_days(cal, start, 3, beyond_known_years=STRICT).at == end_of(2026, 10, 10)


def test_the_local_date_decides_not_the_utc_date(cal: WorkingCalendar) -> None:
    # 2026-02-13 20:00 UTC is Saturday 2026-02-14 04:00 local (a make-up day): day 1 is after the Spring
    # Festival, Tuesday 24 Feb.
    assert add_working_days(cal, datetime(2026, 2, 13, 20, tzinfo=UTC), 1, beyond_known_years=STRICT).at == end_of(
        2026, 2, 24
    )
    # One hour earlier in local time it is still Friday 13 Feb: day 1 is the make-up Saturday 14 Feb.
    assert add_working_days(cal, datetime(2026, 2, 13, 15, tzinfo=UTC), 1, beyond_known_years=STRICT).at == end_of(
        2026, 2, 14
    )


def test_local_midnight_is_the_end_of_the_day_before(cal: WorkingCalendar) -> None:
    # 2026-02-13 16:00 UTC is 24:00 of Friday 13 Feb local, so counting starts on Saturday 14 Feb.
    midnight = datetime(2026, 2, 13, 16, tzinfo=UTC)
    assert add_working_days(cal, midnight, 1, beyond_known_years=STRICT).at == end_of(2026, 2, 14)


def test_an_extension_chains_onto_the_due_date(cal: WorkingCalendar) -> None:
    # Art. 42: 20 working days, extended by 10; the extension starts right after the first due date.
    start = local(2026, 2, 2, 11)
    due = add_working_days(cal, start, 20, beyond_known_years=STRICT).at
    extended = add_working_days(cal, due, 10, beyond_known_years=STRICT).at
    assert extended == add_working_days(cal, start, 30, beyond_known_years=STRICT).at
    # Mon 9 .. Fri 13 Mar (5), Mon 16 .. Fri 20 Mar (10).
    assert extended == end_of(2026, 3, 20)


def test_reminder_before_the_due_date(cal: WorkingCalendar) -> None:
    # Due at the end of Friday 2026-03-06; 3 working days before: Thu 5 (1), Wed 4 (2), Tue 3 (3) -> end of
    # Tuesday 3 Mar, after which Wed 4, Thu 5 and Fri 6 remain.
    due = end_of(2026, 3, 6)
    reminder = subtract_working_days(cal, due, 3, beyond_known_years=STRICT)
    assert reminder.at == end_of(2026, 3, 3)
    assert working_days_between(cal, reminder.at, due, beyond_known_years=STRICT).days == 3
    # Across the Spring Festival: 2 working days before Tue 24 Feb are Sat 14 (1), Fri 13 (2) -> end of
    # Friday 13 Feb, after which Sat 14 (make-up day) and Tue 24 remain.
    assert subtract_working_days(cal, end_of(2026, 2, 24), 2, beyond_known_years=STRICT).at == end_of(2026, 2, 13)


def test_reminder_from_a_due_date_that_is_not_the_end_of_a_working_day(cal: WorkingCalendar) -> None:
    # Sunday 2026-03-08 noon: the last working day ended by then is Fri 6 Mar; 1 working day before it: Thu 5.
    assert subtract_working_days(cal, local(2026, 3, 8, 12), 1, beyond_known_years=STRICT).at == end_of(2026, 3, 5)


@pytest.mark.parametrize("hour", [0, 12, 23])
def test_round_trip_over_every_day_of_2026(cal: WorkingCalendar, hour: int) -> None:
    # Late 2026 starts run into 2027, which is not known: counted as weekends only, and flagged.
    failures = []
    for day in days(date(2026, 1, 1), date(2026, 12, 31)):
        start = local(day.year, day.month, day.day, hour)
        for n in range(1, 31):
            due = add_working_days(cal, start, n, beyond_known_years=LENIENT)
            between = working_days_between(cal, start, due.at, beyond_known_years=LENIENT)
            back = subtract_working_days(cal, due.at, n, beyond_known_years=LENIENT)
            if between.days != n or working_days_between(cal, back.at, due.at, beyond_known_years=LENIENT).days != n:
                failures.append((start, n))
            if due.assumed_weekends_only != ((due.at.astimezone(CST) - timedelta(days=1)).year > 2026):
                failures.append((start, n, "flag"))
    assert failures == []


def test_chaining_and_subtracting_compose(cal: WorkingCalendar) -> None:
    start = local(2026, 9, 14, 10)
    for total in range(2, 31):
        whole = add_working_days(cal, start, total, beyond_known_years=STRICT).at
        for part in range(1, total):
            first = add_working_days(cal, start, part, beyond_known_years=STRICT).at
            assert add_working_days(cal, first, total - part, beyond_known_years=STRICT).at == whole
            assert subtract_working_days(cal, whole, total - part, beyond_known_years=STRICT).at == first


def test_other_offsets_of_the_same_instant_give_the_same_answer(cal: WorkingCalendar) -> None:
    instant = local(2026, 9, 18, 23, 30)
    as_utc = add_working_days(cal, instant.astimezone(UTC), 5, beyond_known_years=STRICT)
    as_cst = add_working_days(cal, instant, 5, beyond_known_years=STRICT)
    assert as_utc == as_cst


# --- years beyond the calendar -----------------------------------------------------------------------------


def test_unknown_year_with_error_policy_names_the_year(cal: WorkingCalendar) -> None:
    with pytest.raises(UncoveredYearError, match="2027") as raised:
        add_working_days(cal, local(2026, 12, 20, 9), 20, beyond_known_years=STRICT)
    assert raised.value.year == 2027
    with pytest.raises(UncoveredYearError, match="2027"):
        working_days_between(cal, local(2026, 12, 20, 9), end_of(2027, 1, 15), beyond_known_years=STRICT)
    with pytest.raises(UncoveredYearError, match="2024"):
        subtract_working_days(cal, end_of(2025, 1, 10), 10, beyond_known_years=STRICT)
    with pytest.raises(UncoveredYearError, match="2027"):
        is_working_day(cal, date(2027, 1, 4))


def test_unknown_year_with_weekends_only_is_flagged(cal: WorkingCalendar) -> None:
    # Friday 2026-12-18: Mon 21 .. Thu 31 Dec (9, New Year 2027 not known yet), then 2027 weekdays only:
    # Fri 1 Jan (10), Mon 4 .. Fri 8 (15), Mon 11 .. Fri 15 (20).
    due = add_working_days(cal, local(2026, 12, 18, 9), 20, beyond_known_years=LENIENT)
    assert due.at == end_of(2027, 1, 15)
    assert due.assumed_weekends_only
    assert due.assumed_years == (2027,)
    assert due.model_dump(mode="json")["assumed_weekends_only"] is True
    counted = working_days_between(cal, local(2026, 12, 18, 9), due.at, beyond_known_years=LENIENT)
    assert (counted.days, counted.assumed_years) == (20, (2027,))
    assert not cal.covers(date(2027, 1, 1))
    assert cal.covers(date(2026, 12, 31))


def test_known_years_carry_no_assumption_even_with_weekends_only(cal: WorkingCalendar) -> None:
    due = add_working_days(cal, local(2026, 3, 2, 9), 20, beyond_known_years=LENIENT)
    assert due.assumed_years == ()
    assert not due.assumed_weekends_only


def test_policy_given_as_text_is_checked(cal: WorkingCalendar) -> None:
    assert add_working_days(cal, local(2026, 12, 30, 9), 5, beyond_known_years="weekends_only").assumed_years == (  # type: ignore[arg-type]
        2027,
    )
    with pytest.raises(ValueError, match="weekend_only"):
        add_working_days(cal, local(2026, 3, 2, 9), 5, beyond_known_years="weekend_only")  # type: ignore[arg-type]


# --- bad input ---------------------------------------------------------------------------------------------


def test_naive_datetimes_are_rejected(cal: WorkingCalendar) -> None:
    naive = datetime(2026, 3, 2, 9)
    with pytest.raises(ValueError, match="start is a naive datetime"):
        add_working_days(cal, naive, 1, beyond_known_years=STRICT)
    with pytest.raises(ValueError, match="end is a naive datetime"):
        working_days_between(cal, local(2026, 3, 2), naive, beyond_known_years=STRICT)
    with pytest.raises(ValueError, match="due is a naive datetime"):
        subtract_working_days(cal, naive, 1, beyond_known_years=STRICT)


def test_is_working_day_takes_a_date_not_an_instant(cal: WorkingCalendar) -> None:
    with pytest.raises(TypeError, match="local date"):
        is_working_day(cal, local(2026, 3, 2, 9))


@pytest.mark.parametrize("n", [0, -3])
def test_count_must_be_positive(cal: WorkingCalendar, n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        add_working_days(cal, local(2026, 3, 2), n, beyond_known_years=STRICT)
    with pytest.raises(ValueError, match="at least 1"):
        subtract_working_days(cal, local(2026, 3, 2), n, beyond_known_years=STRICT)


def test_calendar_is_frozen(cal: WorkingCalendar) -> None:
    with pytest.raises(ValidationError):
        cal.name = "other"  # type: ignore[misc]


# --- calendar files ----------------------------------------------------------------------------------------


def test_operator_file_extends_the_calendar(tmp_path: Path) -> None:
    data = valid_data()
    data["years"]["2027"] = {"source": "operator", "holidays": [], "make_up_working_days": []}
    loaded = load_calendar(write_calendar(tmp_path, data))
    assert loaded.covers(date(2027, 6, 1))
    due = add_working_days(loaded, local(2026, 12, 18, 9), 20, beyond_known_years=STRICT)
    assert due.assumed_years == ()


def test_make_up_day_on_a_weekday_names_the_field(tmp_path: Path) -> None:
    data = valid_data()
    data["years"]["2026"]["make_up_working_days"] = ["2026-01-06"]  # a Tuesday
    path = write_calendar(tmp_path, data)
    with pytest.raises(CalendarError) as raised:
        load_calendar(path)
    message = str(raised.value)
    assert str(path) in message
    assert "years.2026.make_up_working_days" in message
    assert "Tuesday" in message


def test_overlapping_holidays_name_the_field(tmp_path: Path) -> None:
    data = valid_data()
    data["years"]["2026"]["holidays"].append({"name": "Lantern", "first": "2026-02-23", "last": "2026-02-24"})
    with pytest.raises(CalendarError, match=r"years\.2026\.holidays: .*'Spring Festival'.*'Lantern'.*overlap"):
        load_calendar(write_calendar(tmp_path, data))


def test_holiday_ending_before_it_starts(tmp_path: Path) -> None:
    data = valid_data()
    data["years"]["2026"]["holidays"][0] = {"name": "New Year", "first": "2026-01-03", "last": "2026-01-01"}
    with pytest.raises(CalendarError, match=r"years\.2026\.holidays\.0: .*last 2026-01-01 is before first"):
        load_calendar(write_calendar(tmp_path, data))


def test_holiday_outside_its_year(tmp_path: Path) -> None:
    data = valid_data()
    data["years"]["2026"]["holidays"][0] = {"name": "New Year", "first": "2025-12-31", "last": "2026-01-01"}
    with pytest.raises(CalendarError, match=r"years: .*2026\.holidays\[0\] 'New Year'.*not within 2026"):
        load_calendar(write_calendar(tmp_path, data))


def test_make_up_day_inside_a_holiday(tmp_path: Path) -> None:
    data = valid_data()
    data["years"]["2026"]["make_up_working_days"] = ["2026-02-21"]  # a Saturday of the Spring Festival
    with pytest.raises(CalendarError, match=r"make_up_working_days: .*inside holiday 'Spring Festival'"):
        load_calendar(write_calendar(tmp_path, data))


def test_misspelt_field_is_not_ignored(tmp_path: Path) -> None:
    data = valid_data()
    data["years"]["2026"]["make_up_days"] = data["years"]["2026"].pop("make_up_working_days")
    with pytest.raises(CalendarError) as raised:
        load_calendar(write_calendar(tmp_path, data))
    assert "years.2026.make_up_working_days: Field required" in str(raised.value)
    assert "years.2026.make_up_days: Extra inputs are not permitted" in str(raised.value)


def test_unreadable_and_malformed_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(CalendarError, match="missing.json: cannot read"):
        load_calendar(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "cn",', encoding="utf-8")
    with pytest.raises(CalendarError, match="broken.json is invalid"):
        load_calendar(broken)
