"""The Committee's statistics (GET /v1/reports/summary; Art. 29 reporting, Art. 18 disclosure): the figures of the
cases received in a period, grouped, and the breakdowns beside them.

Every figure is about the cases **received** in the period (local dates, UTC+8, both ends included), as they
stand when the report is made: how many of them were accepted, refused, decided, withdrawn; how long their
decisions took in working days; whether they were decided within the statutory period. Denied attempts are
counted by when they were refused, in the same period.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class GroupBy(StrEnum):
    process = "process"
    unit = "unit"
    """The deciding unit: the unit of whoever last decided a task of the case (its final stage's, once decided)."""
    stage = "stage"
    """The stage the case last entered (where it is, or where it ended)."""
    month = "month"
    """The local month the case was received in, ``YYYY-MM``."""


class ReportFormat(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"
    pdf = "pdf"


class GroupFigures(BaseModel):
    """The figures of one group of cases (or of all, ``key`` empty)."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="The group: a process, a unit, a stage id or a month `YYYY-MM`; '' for all.")
    received: int
    accepted: int = Field(description="Accepted (受理), at the officer's decision or deemed (Art. 32).")
    refused_to_accept: int = Field(description="Refused at acceptance (不予受理).")
    granted: int = Field(description="Decided approving (准予), with or without conditions.")
    refused: int = Field(description="Decided refusing (不予), refusals to accept not counted.")
    withdrawn: int
    under_supervision: int = Field(description="Decided and now under supervision (Art. 3).")
    decision_days_mean: float | None = Field(
        description="Working days from acceptance (else receipt) to the decision, on the engine's calendar."
    )
    decision_days_median: float | None
    decision_days_p90: float | None
    with_statutory_period: int = Field(description="Decided cases whose statutory period ran.")
    on_time: int = Field(description="Of those, decided by the period's due time (extensions and pauses counted).")
    on_time_rate: float | None = Field(description="on_time / with_statutory_period; none when there is none.")
    extensions: int = Field(description="Extensions of the statutory period granted (延期).")
    supplements: int = Field(description="补正 requests made.")
    excluded_periods: int = Field(description="Art. 45 periods left out of the time limit (特别程序).")


class CountBy(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    count: int


class CatalogueChanges(BaseModel):
    model_config = ConfigDict(frozen=True)

    publications: int = Field(description="Catalogues of functions published (公告) by the cases.")
    functions: int = Field(description="Functions those publications listed.")


class ReportSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    from_date: date
    to_date: date
    group_by: GroupBy
    as_of: datetime = Field(description="When the figures were taken: open tasks are overdue as of this instant.")
    groups: list[GroupFigures]
    total: GroupFigures
    overdue_open_tasks: list[CountBy] = Field(
        description="Open tasks of these cases past their due time, by the unit that last acted on each (else "
        "its candidate roles, 'role:…')."
    )
    denied_attempts: list[CountBy] = Field(description="Refused requests in the period, by reason code.")
    error_tolerance_outcomes: list[CountBy] = Field(description="Art. 25 determinations, by outcome.")
    talent_decisions: list[CountBy] = Field(description="Talent policy decisions (Art. 22), by decision.")
    catalogue_changes: CatalogueChanges
    decision_days: list[CountBy] = Field(
        description="How many decisions took each number of working days (the distribution's histogram)."
    )
