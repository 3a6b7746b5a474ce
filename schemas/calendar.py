"""Working-day calendar: statutory deadlines of Chinese administrative procedure are counted in working days.

A working day is Monday to Friday, minus the official days off, plus the make-up working days (调休上班) on
which a Saturday or Sunday is worked. The State Council publishes each year's schedule around November of
the year before, so the calendar is DATA (``approvals/calendars/cn.json``, replaceable through
``CALENDAR_PATH``) that an operator extends, never code.

This module is imported inside the Temporal workflow sandbox, where due dates are computed: it imports only
the standard library and pydantic, reads no file during a computation, uses a fixed UTC offset (China has no
daylight saving time, and ``zoneinfo`` would read the system's tz database) and never looks at the clock.

Counting rules (Administrative Licensing Law: a period is counted from the day after the start):

* Day 1 of a period is the first working day AFTER the local date of the start.
* A period ends at the end of its last working day: local midnight starting the following day, returned as
  an aware UTC datetime.
* An instant exactly at local midnight is read as 24:00 of the day that ends, not 00:00 of the day that
  begins. Thus a deadline returned here can start the next computation without losing a day: an extension
  of 10 working days is ``add_working_days(cal, due, 10)``, and
  ``add_working_days(cal, add_working_days(cal, s, a).at, b) == add_working_days(cal, s, a + b)``.

The calendar is layered: the national schedule, then regional layers (the zone lies in Xinjiang, whose
government adds 肉孜节 and 古尔邦节 in a yearly notice of its own). A day is Monday to Friday, then each layer in
order may make it a day off or a make-up working day. Each year of each layer is ``official`` (from a
published notice) or ``assumed`` (counted so until the notice is published); a layer that does not list a
year adds nothing to it. A calendar file of the earlier, single-layer shape (``years`` at the top) is read as
the national layer alone, so cases recorded with it load and replay unchanged.

A year that is not official in every layer is never counted silently: every counting function takes a
required ``beyond_known_years`` policy, and with ``weekends_only`` its result names the years it assumed
(and which layers were not official), so the workflow can record a warning event.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)

_ONE_DAY = timedelta(days=1)
_SATURDAY = 5


class CalendarError(ValueError):
    """A calendar file cannot be read or is invalid; the message names the file and the field."""


class UncoveredYearError(ValueError):
    """A computation needed a year that is not official in every layer, under ``BeyondKnownYears.error``."""

    def __init__(self, calendar: WorkingCalendar, day: date, layers: tuple[str, ...]) -> None:
        known = ", ".join(str(year) for year in calendar.official_years)
        super().__init__(
            f"{day.isoformat()} is in {day.year}, for which working calendar {calendar.name!r} has no official "
            f"schedule of layer(s) {', '.join(layers)} (years official in every layer: {known or 'none'}). "
            f"Publish the {day.year} schedule (approvals calendar publish), or count with "
            "beyond_known_years='weekends_only' and record the assumption."
        )
        self.year = day.year
        self.layers = layers


class BeyondKnownYears(StrEnum):
    """What a counting function does with a date in a year that is not official in every layer."""

    weekends_only = "weekends_only"
    """Count the year with what the layers say of it (Monday to Friday when none lists it), and name it in
    the result's ``assumptions``."""
    error = "error"
    """Raise ``UncoveredYearError``."""


class Holiday(BaseModel):
    """Consecutive days off, both ends included; weekend days inside the range are simply days off too."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="E.g. `Spring Festival 春节`.")
    first: date
    last: date

    @model_validator(mode="after")
    def _ordered(self) -> Holiday:
        if self.last < self.first:
            raise ValueError(f"holiday {self.name!r}: last {self.last} is before first {self.first}")
        return self


class ScheduleStatus(StrEnum):
    official = "official"
    """Taken from a published notice."""
    assumed = "assumed"
    """Not published yet: counted as given, and every deadline counted with it records the assumption."""


class YearSchedule(BaseModel):
    """One year of one layer: the days off and make-up working days of a notice (State Council, region)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    holidays: tuple[Holiday, ...]
    make_up_working_days: tuple[date, ...] = Field(
        description="Saturdays and Sundays that are worked (调休上班); may be empty, never omitted."
    )
    source: str = Field(min_length=1, description="The notice the dates come from, with its date.")
    status: ScheduleStatus = Field(
        ScheduleStatus.official, description="`official` (published) or `assumed`; official when omitted."
    )

    @field_validator("holidays")
    @classmethod
    def _no_overlap(cls, holidays: tuple[Holiday, ...]) -> tuple[Holiday, ...]:
        ordered = sorted(holidays, key=lambda holiday: holiday.first)
        for earlier, later in zip(ordered, ordered[1:], strict=False):
            if later.first <= earlier.last:
                raise ValueError(
                    f"holidays {earlier.name!r} ({earlier.first}..{earlier.last}) and {later.name!r} "
                    f"({later.first}..{later.last}) overlap"
                )
        return holidays

    @field_validator("make_up_working_days")
    @classmethod
    def _weekend_days_outside_holidays(cls, days: tuple[date, ...], info: ValidationInfo) -> tuple[date, ...]:
        if len(set(days)) != len(days):
            raise ValueError("a make-up working day is listed twice")
        for day in days:
            if day.weekday() < _SATURDAY:
                raise ValueError(
                    f"{day} is a {day:%A}: a make-up working day must be a Saturday or Sunday "
                    "(Monday to Friday are working days already)"
                )
            for holiday in info.data.get("holidays", ()):
                if holiday.first <= day <= holiday.last:
                    raise ValueError(f"{day} is a make-up working day inside holiday {holiday.name!r}")
        return days


def dates_outside_year(year: int, schedule: YearSchedule) -> list[str]:
    """What in ``schedule`` is not within ``year``; empty when it all is."""
    problems = [
        f"holidays[{index}] {holiday.name!r} ({holiday.first}..{holiday.last}) is not within {year}; split a "
        "holiday that crosses the new year between both years"
        for index, holiday in enumerate(schedule.holidays)
        if holiday.first.year != year or holiday.last.year != year
    ]
    problems += [
        f"make_up_working_days[{index}] {day} is not in {year}"
        for index, day in enumerate(schedule.make_up_working_days)
        if day.year != year
    ]
    return problems


LAYER_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"
NATIONAL = "national"
"""The layer of the State Council's schedule; a calendar file of the single-layer shape is this layer alone."""


class CalendarLayer(BaseModel):
    """The schedules of one issuer (the State Council, a regional government), year by year."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=LAYER_NAME_PATTERN, description="E.g. `national`, `xinjiang`.")
    title: str = Field(min_length=1, description="Who issues the schedules, e.g. `新疆维吾尔自治区人民政府`.")
    years: dict[int, YearSchedule]

    @field_validator("years")
    @classmethod
    def _dates_in_their_year(cls, years: dict[int, YearSchedule]) -> dict[int, YearSchedule]:
        for year, schedule in years.items():
            problems = dates_outside_year(year, schedule)
            if problems:
                raise ValueError(f"{year}.{problems[0]}")
        return years


class WorkingCalendar(BaseModel):
    """The layered schedules of the known years, with the jurisdiction's fixed UTC offset."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="E.g. `cn-xinjiang`.")
    timezone_offset_hours: int = Field(
        ge=-12, le=14, description="Fixed offset of local time from UTC (8 for China, which has no DST)."
    )
    layers: tuple[CalendarLayer, ...] = Field(
        min_length=1, description="The national layer first, then regional ones; a later layer's days override."
    )
    revision: int = Field(
        0, ge=0, description="Raised by every year an operator publishes; a case takes a calendar only if newer."
    )

    @model_validator(mode="before")
    @classmethod
    def _single_layer_shape(cls, data: Any) -> Any:
        """The earlier shape (``years`` at the top, as recorded in older cases) is the national layer alone."""
        if isinstance(data, dict) and "years" in data and "layers" not in data:
            rest = {key: value for key, value in data.items() if key != "years"}
            national = {"name": NATIONAL, "title": "国务院办公厅 General Office of the State Council"}
            return {**rest, "layers": [{**national, "years": data["years"]}]}
        return data

    @field_validator("layers")
    @classmethod
    def _distinct_layers(cls, layers: tuple[CalendarLayer, ...]) -> tuple[CalendarLayer, ...]:
        names = [layer.name for layer in layers]
        if len(set(names)) != len(names):
            raise ValueError(f"a layer name is listed twice: {names}")
        return layers

    @property
    def tzinfo(self) -> tzinfo:
        """Local time of the calendar; ``instant.astimezone(cal.tzinfo).date()`` is an instant's local date."""
        return timezone(timedelta(hours=self.timezone_offset_hours))

    def layer(self, name: str) -> CalendarLayer:
        """The layer called ``name``; ``KeyError`` naming the layers there are when there is none."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r}; the calendar's layers are {', '.join(each.name for each in self.layers)}")

    def unofficial_layers(self, year: int) -> tuple[str, ...]:
        """The layers whose schedule of ``year`` is missing or assumed, in layer order."""
        return tuple(
            layer.name
            for layer in self.layers
            if (schedule := layer.years.get(year)) is None or schedule.status is not ScheduleStatus.official
        )

    @property
    def official_years(self) -> tuple[int, ...]:
        """The years official in every layer, ascending."""
        years = {year for layer in self.layers for year in layer.years}
        return tuple(sorted(year for year in years if not self.unofficial_layers(year)))

    def covers(self, day: date) -> bool:
        """Whether ``day``'s year is official in every layer."""
        return not self.unofficial_layers(day.year)

    def with_year(self, layer: str, year: int, schedule: YearSchedule, *, revision: int) -> WorkingCalendar:
        """This calendar with ``schedule`` as ``layer``'s ``year`` (added, or replacing the one it had)."""
        updated = self.layer(layer)
        layers = tuple(
            CalendarLayer.model_validate({**each.model_dump(), "years": {**each.years, year: schedule}})
            if each is updated
            else each
            for each in self.layers
        )
        return self.model_copy(update={"layers": layers, "revision": revision})


class YearAssumption(BaseModel):
    """A year a count needed that is not official in every layer."""

    model_config = ConfigDict(frozen=True)

    year: int
    layers: tuple[str, ...] = Field(description="The layers whose schedule of the year is missing or assumed.")
    weekends_only: bool = Field(description="No layer lists the year: its days were counted Monday to Friday.")


class PublishedYear(BaseModel):
    """One layer's year as an operator published it over the calendar file."""

    model_config = ConfigDict(frozen=True)

    revision: int = Field(ge=1, description="The calendar's revision once this year is laid over it.")
    layer: str
    year: int
    schedule: YearSchedule
    published_by: str
    published_at: datetime


def with_published(calendar: WorkingCalendar, published: Sequence[PublishedYear]) -> WorkingCalendar:
    """``calendar`` with every published year laid over it in the order published (a later one replaces an
    earlier one of the same layer and year)."""
    for entry in sorted(published, key=lambda entry: entry.revision):
        try:
            calendar = calendar.with_year(entry.layer, entry.year, entry.schedule, revision=entry.revision)
        except KeyError as error:
            raise CalendarError(f"published calendar year, revision {entry.revision}: {error.args[0]}") from None
    return calendar


class CalendarResult(BaseModel):
    """What every counting function returns besides its value: the assumptions it had to make."""

    model_config = ConfigDict(frozen=True)

    assumptions: tuple[YearAssumption, ...] = Field(
        default=(), description="The years counted without an official schedule in every layer, ascending."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def assumed_years(self) -> tuple[int, ...]:
        return tuple(assumption.year for assumption in self.assumptions)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def assumed_weekends_only(self) -> bool:
        """True when the value rests on an assumption the workflow must record as a warning event."""
        return bool(self.assumptions)


class Deadline(CalendarResult):
    at: datetime = Field(description="End of a working day: local midnight starting the next day, in UTC.")


class WorkingDayCount(CalendarResult):
    days: int = Field(ge=0)


def is_working_day(cal: WorkingCalendar, day: date) -> bool:
    """Whether a local date is worked; raises ``UncoveredYearError`` outside the known years.

    A bare bool cannot carry an assumption, so there is no weekends-only fallback here: check
    ``cal.covers(day)`` first if the year may be unknown.
    """
    if isinstance(day, datetime):
        raise TypeError("is_working_day takes a local date, not a datetime: pass instant.astimezone(cal.tzinfo).date()")
    return _is_working(cal, day, BeyondKnownYears.error, {})


def add_working_days(
    cal: WorkingCalendar, start: datetime, n: int, *, beyond_known_years: BeyondKnownYears
) -> Deadline:
    """The end of the n-th working day after the start's local date (day 1 is the first working day after it)."""
    _require_aware("start", start)
    _require_positive(n)
    policy = BeyondKnownYears(beyond_known_years)
    assumed: dict[int, YearAssumption] = {}
    day = _start_day(cal, start)
    remaining = n
    while remaining:
        day += _ONE_DAY
        if _is_working(cal, day, policy, assumed):
            remaining -= 1
    return Deadline(at=_end_of(cal, day), assumptions=_in_order(assumed))


def working_days_between(
    cal: WorkingCalendar, start: datetime, end: datetime, *, beyond_known_years: BeyondKnownYears
) -> WorkingDayCount:
    """Whole working days after the start's local date that end by ``end``; 0 when none (never negative).

    ``working_days_between(cal, s, add_working_days(cal, s, n).at).days == n``. Whether a deadline has
    passed is a comparison of datetimes, not a count.
    """
    _require_aware("start", start)
    _require_aware("end", end)
    policy = BeyondKnownYears(beyond_known_years)
    assumed: dict[int, YearAssumption] = {}
    last_whole_day = end.astimezone(cal.tzinfo).date() - _ONE_DAY
    day = _start_day(cal, start) + _ONE_DAY
    count = 0
    while day <= last_whole_day:
        if _is_working(cal, day, policy, assumed):
            count += 1
        day += _ONE_DAY
    return WorkingDayCount(days=count, assumptions=_in_order(assumed))


def subtract_working_days(
    cal: WorkingCalendar, due: datetime, n: int, *, beyond_known_years: BeyondKnownYears
) -> Deadline:
    """The deadline n working days before ``due``, e.g. when a reminder or an escalation falls due.

    The period's last working day is the latest one that ends by ``due``; the result is the end of the
    n-th working day before it, so ``subtract_working_days(cal, add_working_days(cal, s, m).at, n)`` equals
    ``add_working_days(cal, s, m - n)`` for ``n < m``, and exactly n working days remain after the result.
    """
    _require_aware("due", due)
    _require_positive(n)
    policy = BeyondKnownYears(beyond_known_years)
    assumed: dict[int, YearAssumption] = {}
    day = due.astimezone(cal.tzinfo).date() - _ONE_DAY
    while not _is_working(cal, day, policy, assumed):
        day -= _ONE_DAY
    remaining = n
    while remaining:
        day -= _ONE_DAY
        if _is_working(cal, day, policy, assumed):
            remaining -= 1
    return Deadline(at=_end_of(cal, day), assumptions=_in_order(assumed))


def load_calendar(path: Path | None = None) -> WorkingCalendar:
    """Reads the built-in calendar (package ``approvals.calendars``, ``cn.json``) or the operator's file.

    Call it outside the workflow sandbox (worker start-up, an activity) and hand the calendar to the
    workflow as data: the computation itself must not read files.
    """
    if path is None:
        origin = "approvals.calendars/cn.json (built-in)"
        resource = importlib.resources.files("approvals.calendars").joinpath("cn.json")
    else:
        origin = str(path)
        resource = path
    try:
        text = resource.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CalendarError(f"calendar {origin}: cannot read: {error}") from None
    try:
        return WorkingCalendar.model_validate_json(text)
    except ValidationError as error:
        lines = [f"{'.'.join(str(part) for part in item['loc']) or '(root)'}: {item['msg']}" for item in error.errors()]
        raise CalendarError(f"calendar {origin} is invalid:\n  " + "\n  ".join(lines)) from None


def _is_working(cal: WorkingCalendar, day: date, policy: BeyondKnownYears, assumed: dict[int, YearAssumption]) -> bool:
    """One day's status under ``policy``, layer over layer; notes the year in ``assumed`` when it was guessed."""
    working = day.weekday() < _SATURDAY
    listed = False
    for layer in cal.layers:
        schedule = layer.years.get(day.year)
        if schedule is None:
            continue
        listed = True
        if day in schedule.make_up_working_days:
            working = True
        elif any(holiday.first <= day <= holiday.last for holiday in schedule.holidays):
            working = False
    if day.year not in assumed:
        unofficial = cal.unofficial_layers(day.year)
        if unofficial:
            if policy != BeyondKnownYears.weekends_only:
                raise UncoveredYearError(cal, day, unofficial)
            assumed[day.year] = YearAssumption(year=day.year, layers=unofficial, weekends_only=not listed)
    return working


def _in_order(assumed: dict[int, YearAssumption]) -> tuple[YearAssumption, ...]:
    return tuple(assumed[year] for year in sorted(assumed))


def _start_day(cal: WorkingCalendar, start: datetime) -> date:
    """The local date a period starts from; local midnight exactly is 24:00 of the day that ends."""
    local = start.astimezone(cal.tzinfo)
    return local.date() - _ONE_DAY if local.time() == time(0) else local.date()


def _end_of(cal: WorkingCalendar, day: date) -> datetime:
    return datetime.combine(day + _ONE_DAY, time(0), tzinfo=cal.tzinfo).astimezone(UTC)


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} is a naive datetime ({value.isoformat()}); give an aware one, e.g. in UTC")


def _require_positive(n: int) -> None:
    if n < 1:
        raise ValueError(f"n must be at least 1 working day, got {n}")
