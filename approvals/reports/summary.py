"""``GET /v1/reports/summary``: who may read the Committee's statistics, what a request may ask, and the figures.

The figures come from the projections by SQL (``approvals.storage.reports``); working days are counted on the
engine's calendar (the built-in or configured file with every published year over it, as a case started now
gets it), whose working days this module turns into ordinals for the SQL. A year the calendar does not know
officially is counted as the engine counts it: as the layers that know it say, Monday to Friday when none does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

from approvals.admission import READ_ALL_ROLES
from approvals.errors import Forbidden, InvalidRequest
from approvals.event_wording import CHINA_TIME
from approvals.storage import reports
from schemas.calendar import (
    BeyondKnownYears,
    WorkingCalendar,
    is_working_day,
    working_days_between,
)
from schemas.principal import Principal
from schemas.reports import (
    CatalogueChanges,
    CountBy,
    GroupBy,
    GroupFigures,
    ReportFormat,
    ReportSummary,
)

READER_ROLES = (*READ_ALL_ROLES, "head")
"""Auditors, admins and the organ's head read the statistics (the head reports them, Art. 29)."""

ONE_DAY = timedelta(days=1)
MAX_SPAN_DAYS = 3660
"""About ten years: a longer period is refused, not counted day by day."""


@dataclass(frozen=True)
class ReportRequest:
    from_date: date
    to_date: date
    group_by: GroupBy
    format: ReportFormat = ReportFormat.json


class InvalidPeriod(InvalidRequest):
    """The dates are dates, but not a period: ``from`` after ``to``, or longer than the reports count."""

    code = "INVALID_PERIOD"


def report_request(
    from_date: date, to_date: date, group_by: GroupBy = GroupBy.process, format_: ReportFormat = ReportFormat.json
) -> ReportRequest:
    """The request as the route receives it (each parameter already of its type), checked as a period: 422
    naming the parameter."""
    if from_date > to_date:
        raise _invalid_period("from", f"from {from_date} is after to {to_date}")
    if (to_date - from_date).days > MAX_SPAN_DAYS:
        raise _invalid_period("to", f"the period {from_date}..{to_date} is longer than {MAX_SPAN_DAYS} days")
    return ReportRequest(from_date, to_date, group_by, format_)


def _invalid_period(parameter: str, message: str) -> InvalidPeriod:
    error = {"field": parameter, "location": "query", "message": message, "type": "invalid_period"}
    return InvalidPeriod(f"invalid report period: {parameter}: {message}", [error])


def require_reader(principal: Principal) -> None:
    """403 for anyone but auditors, admins and the head (the service records the refusal)."""
    if not principal.has_any_role(READER_ROLES):
        raise Forbidden(
            f"{principal.id} may not read the reports: they are for the roles {', '.join(READER_ROLES)}; "
            f"{principal.id} has {list(principal.roles)}",
            code="ROLE_REQUIRED",
        )


def _worked(calendar: WorkingCalendar, day: date, official: frozenset[int]) -> bool:
    """Whether ``day`` is a working day, as the engine counts it: from the schedules of a year official in every
    layer, else as the layers that know it say (Monday to Friday when none does), one whole day counted."""
    if day.year in official:
        return is_working_day(calendar, day)
    zone = calendar.tzinfo
    noon_before = datetime.combine(day - ONE_DAY, time(12), tzinfo=zone)
    end_of_day = datetime.combine(day + ONE_DAY, time(0), tzinfo=zone)
    count = working_days_between(calendar, noon_before, end_of_day, beyond_known_years=BeyondKnownYears.weekends_only)
    return count.days == 1


def working_day_ordinals(calendar: WorkingCalendar, first: date, last: date) -> reports.WorkingDayOrdinals:
    """Every date from ``first`` to ``last`` with the number of working days from ``first`` up to it."""
    ordinals: list[int] = []
    ordinal, day, official = 0, first, frozenset(calendar.official_years)
    while day <= last:
        ordinal += _worked(calendar, day, official)
        ordinals.append(ordinal)
        day += ONE_DAY
    return reports.WorkingDayOrdinals(first, ordinals)


def local_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=CHINA_TIME)


COUNTED = (
    "received", "accepted", "refused_to_accept", "granted", "refused", "withdrawn", "under_supervision",
    "with_statutory_period", "on_time", "extensions", "supplements", "excluded_periods",
)  # fmt: skip
"""The figures that add up across groups and working days."""


def percentile(distribution: dict[int, int], fraction: float) -> float | None:
    """The ``fraction`` percentile of values given as {value: how many}, interpolated linearly between the two
    closest ranks (as PostgreSQL's ``percentile_cont``)."""
    total = sum(distribution.values())
    if not total:
        return None
    position = fraction * (total - 1)
    below, above = math.floor(position), math.ceil(position)
    low = high = None
    seen = 0
    for value in sorted(distribution):
        seen += distribution[value]
        if low is None and seen > below:
            low = value
        if seen > above:
            high = value
            break
    assert low is not None and high is not None
    return low + (high - low) * (position - below)


def _distribution(rows: list[dict[str, Any]]) -> dict[int, int]:
    """How many decisions took each number of working days."""
    days: dict[int, int] = {}
    for row in rows:
        if row["decision_days"] is not None:
            days[row["decision_days"]] = days.get(row["decision_days"], 0) + row["received"]
    return days


def _figures(key: str, rows: list[dict[str, Any]]) -> GroupFigures:
    counted = {name: sum(row[name] or 0 for row in rows) for name in COUNTED}
    days = _distribution(rows)
    decided = sum(days.values())
    period = counted["with_statutory_period"]
    return GroupFigures(
        key=key,
        **counted,
        decision_days_mean=sum(value * count for value, count in days.items()) / decided if decided else None,
        decision_days_median=percentile(days, 0.5),
        decision_days_p90=percentile(days, 0.9),
        on_time_rate=counted["on_time"] / period if period else None,
    )


def _histogram(rows: list[dict[str, Any]]) -> list[CountBy]:
    days = _distribution(rows)
    return [CountBy(key=str(value), count=days[value]) for value in sorted(days)]


def _counts(rows: list[dict[str, Any]]) -> list[CountBy]:
    return [CountBy(key=row["key"], count=row["count"]) for row in rows]


async def summary(
    pool: asyncpg.Pool, calendar: WorkingCalendar, request: ReportRequest, *, as_of: datetime | None = None
) -> ReportSummary:
    """The figures of the cases received from ``request.from_date`` to ``request.to_date`` (local dates)."""
    as_of = as_of or datetime.now(UTC)
    today = as_of.astimezone(CHINA_TIME).date()
    # Decisions come after receipt, up to now: the calendar spans the period and everything since.
    ordinals = working_day_ordinals(calendar, request.from_date - ONE_DAY, max(request.to_date, today) + ONE_DAY)
    rows = await reports.summary_rows(
        pool,
        local_start(request.from_date),
        local_start(request.to_date + ONE_DAY),
        request.group_by.value,
        ordinals,
        CHINA_TIME.utcoffset(None) or timedelta(0),
        as_of,
    )
    keys = sorted({row["key"] for row in rows.figures})
    return ReportSummary(
        from_date=request.from_date,
        to_date=request.to_date,
        group_by=request.group_by,
        as_of=as_of,
        groups=[_figures(key, [row for row in rows.figures if row["key"] == key]) for key in keys],
        total=_figures("", rows.figures),
        overdue_open_tasks=_counts(rows.overdue_tasks),
        denied_attempts=_counts(rows.denied),
        error_tolerance_outcomes=_counts(rows.error_tolerance),
        talent_decisions=_counts(rows.talent),
        catalogue_changes=CatalogueChanges(**rows.catalogue),
        decision_days=_histogram(rows.figures),
    )
