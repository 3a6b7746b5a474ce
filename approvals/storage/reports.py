"""The reports' SQL (GET /v1/reports/summary): the figures of the cases received in a period, read from the
``case_report_facts`` projection (migration 0014), the ``tasks`` projection and ``denied_attempts``.

Working days are counted here with a calendar given as data: each local date's ordinal (how many working days up
to and including it), made by the service layer from the engine's calendar, so a decision's working days are the
difference of two ordinals, looked up by array subscript in one pass over the period's cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

GROUP_KEYS = {
    "process": "f.process",
    "unit": "f.unit",
    "stage": "f.stage_id",
    "month": "to_char(f.received_at AT TIME ZONE 'UTC' + $5::interval, 'YYYY-MM')",
}
"""The grouping each ``group_by`` names; only these are ever put into the SQL."""

_ORDINAL = "($4::integer[])[({at} AT TIME ZONE 'UTC' + $5::interval)::date - $3::date + 1]"
"""The working-day ordinal of an instant's local date: an array subscript, no join (``$3`` is the array's first day)."""

_FIGURES = """
SELECT key, decision_days,
       count(*) AS received,
       count(accepted_at) AS accepted,
       count(*) FILTER (WHERE refused_to_accept) AS refused_to_accept,
       count(*) FILTER (WHERE decision = 'granted') AS granted,
       count(*) FILTER (WHERE decision = 'refused' AND NOT refused_to_accept) AS refused,
       count(withdrawn_at) AS withdrawn,
       count(*) FILTER (WHERE supervised) AS under_supervision,
       count(*) FILTER (WHERE decided AND timed) AS with_statutory_period,
       count(*) FILTER (WHERE decided AND in_time) AS on_time,
       sum(extensions)::integer AS extensions,
       sum(supplements)::integer AS supplements,
       sum(excluded_periods)::integer AS excluded_periods
FROM (
    SELECT {key} AS key, f.accepted_at, f.refused_to_accept, f.decision, f.withdrawn_at, f.extensions,
           f.supplements, f.excluded_periods,
           f.supervision_started_at IS NOT NULL AND f.supervision_ended_at IS NULL AS supervised,
           f.decision IS NOT NULL AND NOT f.refused_to_accept AS decided,
           f.decided_at <= f.period_due_at AS in_time, f.period_due_at IS NOT NULL AS timed,
           CASE WHEN f.decision IS NOT NULL AND NOT f.refused_to_accept
                THEN {decided} - {started} END AS decision_days
    FROM case_report_facts f
    WHERE f.received_at >= $1 AND f.received_at < $2
) AS cohort
GROUP BY key, decision_days
"""
"""One pass over the period's cases, counted per group and working days to decision (NULL: not decided): a hash
aggregate of a few hundred rows, from which the service adds up each group and the whole and takes the mean,
median and 90th percentile of the days (exactly: the counts are the distribution). Sorting the cases for SQL's
``percentile_cont`` instead took several times as long (bench/reports.py)."""

_OUTCOMES = """
SELECT GROUPING(error_tolerance, talent_decision) AS grouping_set, error_tolerance, talent_decision,
       count(*) AS count, coalesce(sum(catalogue_publications), 0)::integer AS publications,
       coalesce(sum(catalogue_functions), 0)::integer AS functions
FROM case_report_facts
WHERE received_at >= $1 AND received_at < $2
  AND (error_tolerance IS NOT NULL OR talent_decision IS NOT NULL OR catalogue_publications > 0)
GROUP BY GROUPING SETS ((error_tolerance), (talent_decision), ())
ORDER BY grouping_set, error_tolerance, talent_decision
"""
"""The cases with an outcome of their own (a small share, read through the partial index of 0014): counted by
Art. 25 determination (grouping set 1), by talent decision (2), and the catalogue's publications of all (3)."""

BY_DETERMINATION, BY_TALENT_DECISION, ALL = 1, 2, 3

_OVERDUE_TASKS = """
SELECT coalesce(claimer.actor_unit,
                CASE WHEN cardinality(t.candidate_roles) > 0 THEN 'role:' || array_to_string(t.candidate_roles, ',')
                     ELSE 'user:' || coalesce(t.assignee_id, '') END) AS key,
       count(*) AS count
FROM tasks t
JOIN case_report_facts f ON f.case_id = t.case_id
LEFT JOIN LATERAL (
    SELECT e.actor_unit FROM audit_events e
    WHERE e.task_id = t.task_id AND e.type = 'task.claimed' AND t.status = 'claimed'
    ORDER BY e.seq DESC LIMIT 1
) claimer ON true
WHERE t.status IN ('open', 'claimed') AND t.due_at < $3 AND f.received_at >= $1 AND f.received_at < $2
GROUP BY 1
ORDER BY count DESC, key
"""
"""A claimed task is its claimer's unit's; an unclaimed one waits in its candidate roles' pool."""

_DENIED = """
SELECT reason_code AS key, count(*) AS count FROM denied_attempts WHERE at >= $1 AND at < $2
GROUP BY reason_code ORDER BY count DESC, key
"""


@dataclass(frozen=True)
class WorkingDayOrdinals:
    """How many working days there are from ``first_day`` up to each day of a span (inclusive), day by day."""

    first_day: date
    ordinals: list[int]


@dataclass(frozen=True)
class SummaryRows:
    figures: list[dict[str, Any]]
    """Counts per ``key`` (the group) and ``decision_days`` (working days to the decision; None: undecided)."""
    error_tolerance: list[dict[str, Any]]
    talent: list[dict[str, Any]]
    catalogue: dict[str, int]
    """``publications`` and ``functions``."""
    overdue_tasks: list[dict[str, Any]]
    denied: list[dict[str, Any]]


def figures_sql(group_by: str) -> str:
    """The grouped figures' statement for ``group_by`` (one of :data:`GROUP_KEYS`)."""
    started = _ORDINAL.format(at="coalesce(f.accepted_at, f.received_at)")
    return _FIGURES.format(key=GROUP_KEYS[group_by], started=started, decided=_ORDINAL.format(at="f.decided_at"))


def summary_statements(
    group_by: str,
    start: datetime,
    end: datetime,
    calendar: WorkingDayOrdinals,
    zone_offset: timedelta,
    as_of: datetime,
) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """Each statement of a summary with its arguments, by the part of the summary it reads."""
    cohort = (start, end, calendar.first_day, calendar.ordinals, zone_offset)
    return {
        "figures": (figures_sql(group_by), cohort),
        "outcomes": (_OUTCOMES, (start, end)),
        "overdue_tasks": (_OVERDUE_TASKS, (start, end, as_of)),
        "denied": (_DENIED, (start, end)),
    }


async def summary_rows(
    pool: asyncpg.Pool,
    start: datetime,
    end: datetime,
    group_by: str,
    calendar: WorkingDayOrdinals,
    zone_offset: timedelta,
    as_of: datetime,
) -> SummaryRows:
    """The rows of the cases received in ``[start, end)``, grouped by ``group_by``; open tasks overdue at ``as_of``.
    One snapshot for all of them, so the parts agree with each other."""
    statements = summary_statements(group_by, start, end, calendar, zone_offset, as_of)
    rows: dict[str, list[dict[str, Any]]] = {}
    async with pool.acquire() as connection, connection.transaction(isolation="repeatable_read", readonly=True):
        for name, (sql, arguments) in statements.items():
            rows[name] = [dict(row) for row in await connection.fetch(sql, *arguments)]
    outcomes = rows["outcomes"]
    totals = next((row for row in outcomes if row["grouping_set"] == ALL), {"publications": 0, "functions": 0})
    return SummaryRows(
        figures=rows["figures"],
        error_tolerance=[
            {"key": row["error_tolerance"], "count": row["count"]}
            for row in outcomes
            if row["grouping_set"] == BY_DETERMINATION and row["error_tolerance"] is not None
        ],
        talent=[
            {"key": row["talent_decision"], "count": row["count"]}
            for row in outcomes
            if row["grouping_set"] == BY_TALENT_DECISION and row["talent_decision"] is not None
        ],
        catalogue={"publications": totals["publications"], "functions": totals["functions"]},
        overdue_tasks=rows["overdue_tasks"],
        denied=rows["denied"],
    )
