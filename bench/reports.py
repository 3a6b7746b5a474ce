"""Latency of the Committee's statistics (``GET /v1/reports/summary``, migration 0014) over a year of 100,000 cases.

Target (issue 19): the summary in <= 1 s for a year of 100,000 cases.

What runs, started from scratch in a temporary directory and deleted at the end: an embedded PostgreSQL,
migrated with every migration of the engine (the report's projection and indexes are production's), and
``--cases`` cases received over 2025, written by SQL (``generate_series``, seeded) into ``case_report_facts`` as
the recording trigger leaves them: five processes, eight deciding units, stages; 5 % refused at acceptance, 70 %
granted, 10 % refused, 5 % withdrawn, the rest open; decisions 1 to 60 days after acceptance, a statutory period
of 28 days on the licensing processes, extensions, 补正 and Art. 45 pauses on some, supervision on some granted,
error-tolerance determinations, talent decisions and catalogue publications on theirs. One open task per open
case (half claimed, their claims in ``audit_events``), and 5,000 denied attempts over the year. Then
``VACUUM ANALYZE``.

What is measured, one request at a time, each grouping once per round in shuffled order with the baseline (so
background load hits all alike): ``approvals.reports.summary.summary`` (what the route runs for the JSON answer:
the working-day calendar's ordinals for the year, the grouped figures, the time-to-decision histogram, the
outcomes, the overdue open tasks and the denied attempts) on an asyncpg pool as the app role, for the whole year,
grouped by process, unit, stage and month.

Baseline: one pass over the same year's rows of the projection (``count(*)`` and a ``sum`` over the cases received
in the year): what any report of them must read at least. Prints p50 / max (ms), the baseline's, the ratio and
the verdict; ``--json PATH`` writes the figures and the machine; ``--charts DIR`` writes the PDF report's three
charts of the data as SVG (the README's chart). Nothing is asserted on timings.

    .venv/bin/python bench/reports.py [--cases 100000] [--samples 20] [--json PATH] [--charts DIR] [--explain]
    .venv/bin/python bench/reports.py --quick     # smoke run: 5,000 cases, 5 samples
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from inbox import Series, machine

TARGET_MS = 1000.0
YEAR = (date(2025, 1, 1), date(2025, 12, 31))

SEED_CASES = """
INSERT INTO case_report_facts (
    case_id, process, received_at, accepted_at, refused_to_accept, decided_at, decision, withdrawn_at,
    supervision_started_at, period_due_at, extensions, supplements, excluded_periods, error_tolerance,
    talent_decision, catalogue_publications, catalogue_functions, unit, stage_id
)
SELECT case_id, process, received_at, accepted_at, fate < 0.05, decided_at,
       CASE WHEN fate < 0.05 OR fate >= 0.75 AND fate < 0.85 THEN 'refused' WHEN fate < 0.75 THEN 'granted' END,
       CASE WHEN fate >= 0.85 AND fate < 0.90 THEN received_at + interval '3 days' END,
       CASE WHEN fate >= 0.05 AND fate < 0.75 AND extra < 0.2 THEN decided_at + interval '1 day' END,
       CASE WHEN licensing AND fate >= 0.05
            THEN accepted_at + interval '28 days' + (extra < 0.1)::int * interval '14 days' END,
       (licensing AND extra < 0.1)::int, (extra > 0.8)::int, (licensing AND extra BETWEEN 0.5 AND 0.55)::int,
       CASE WHEN process = 'error-tolerance' AND fate >= 0.05 AND fate < 0.85
            THEN (ARRAY['exemption', 'reduced_liability', 'not_applicable'])[1 + (n % 3)] END,
       CASE WHEN process = 'talent-policy' AND fate >= 0.05 AND fate < 0.85
            THEN CASE WHEN fate < 0.75 THEN 'approved' ELSE 'rejected' END END,
       (process = 'power-adjustment' AND fate >= 0.05 AND fate < 0.75)::int,
       CASE WHEN process = 'power-adjustment' AND fate >= 0.05 AND fate < 0.75 THEN 1 + n % 6 ELSE 0 END,
       (ARRAY['经济发展局', '规划建设局', '生态环境分局', '应急管理局', '自然资源局', '司法局', '党群工作部',
              '阿拉山口市人民政府'])[1 + (n % 8)],
       (ARRAY['acceptance', 'review', 'decision', 'committee_vote'])[1 + (n % 4)]
FROM (
    SELECT n, process, fate, extra, received_at, process IN ('project-approval', 'generic') AS licensing,
           process || ':B-' || lpad(n::text, 7, '0') AS case_id,
           CASE WHEN fate >= 0.05 THEN received_at + interval '1 day' END AS accepted_at,
           CASE WHEN fate < 0.05 THEN received_at + interval '2 days'
                WHEN fate < 0.85 THEN received_at + interval '1 day' + (1 + speed * speed * 59) * interval '1 day'
           END AS decided_at
    FROM (
        SELECT n, random() AS fate, random() AS extra, random() AS speed,
               $2::timestamptz + random() * ($3::timestamptz - $2::timestamptz) AS received_at,
               CASE WHEN kind < 0.5 THEN 'project-approval' WHEN kind < 0.8 THEN 'generic'
                    WHEN kind < 0.9 THEN 'talent-policy' WHEN kind < 0.97 THEN 'error-tolerance'
                    ELSE 'power-adjustment' END AS process
        FROM (SELECT n, random() AS kind FROM generate_series(1, $1::integer) AS n) AS drawn
    ) AS fates
) AS cases
"""

SEED_TASKS = """
INSERT INTO tasks (task_id, case_id, process, stage_id, stage_title, legal_basis, status, candidate_roles, claimed_by,
                   priority, due_at, overdue, version, created_at, updated_at, last_seq)
SELECT case_id || '/' || stage_id || '/1', case_id, process, stage_id, stage_id, 'Art. 10',
       CASE WHEN right(case_id, 1) < '5' THEN 'claimed' ELSE 'open' END,
       ARRAY['reviewer_' || stage_id], CASE WHEN right(case_id, 1) < '5' THEN 'reviewer-' || right(case_id, 2) END,
       false, received_at + interval '20 days', false, 1, received_at, received_at, 5
FROM case_report_facts WHERE decided_at IS NULL AND withdrawn_at IS NULL
"""

SEED_CLAIMS = """
INSERT INTO audit_events (case_id, seq, type, actor_id, actor_roles, actor_unit, at, legal_basis, stage_id, task_id,
                          prev_hash, hash)
SELECT t.case_id, 5, 'task.claimed', t.claimed_by, ARRAY['reviewer'], f.unit, t.created_at, 'Art. 10', t.stage_id,
       t.task_id, repeat('0', 64), md5(t.task_id) || md5(t.case_id)
FROM tasks t JOIN case_report_facts f USING (case_id) WHERE t.status = 'claimed'
"""

SEED_DENIED = """
INSERT INTO denied_attempts (at, actor_id, operation, reason_code)
SELECT $1::timestamptz + random() * ($2::timestamptz - $1::timestamptz), 'user-' || (n % 300), 'decide',
       (ARRAY['NOT_ASSIGNEE', 'TASK_NOT_OPEN', 'STALE_VERSION', 'COMMENT_REQUIRED', 'ROLE_REQUIRED'])[1 + n % 5]
FROM generate_series(1, 5000) AS n
"""

BASELINE_SQL = "SELECT count(*), sum(extensions) FROM case_report_facts WHERE received_at >= $1 AND received_at < $2"


async def seed(owner_url: str, cases: int) -> None:
    from approvals import db
    from approvals.reports.summary import local_start

    start, end = local_start(YEAR[0]), local_start(date(YEAR[1].year + 1, 1, 1))
    pool = await db.create_pool(owner_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as connection:
            await connection.execute("SELECT setseed(0.19)")
            await connection.execute(SEED_CASES, cases, start, end)
            await connection.execute(SEED_TASKS)
            await connection.execute(SEED_CLAIMS)
            await connection.execute(SEED_DENIED, start, end)
            await connection.execute("VACUUM (ANALYZE) case_report_facts, tasks, audit_events, denied_attempts")
    finally:
        await pool.close()


async def measure(pool: Any, calendar: Any, samples: int, warmup: int, rng: random.Random) -> Any:
    from approvals.reports.summary import ReportRequest, local_start, summary
    from schemas.reports import GroupBy

    series = {grouping: Series(f"summary grouped by {grouping.value}") for grouping in GroupBy}
    baseline = Series("one pass over the year's rows (count, sum)")
    start, end = local_start(YEAR[0]), local_start(date(YEAR[1].year + 1, 1, 1))
    as_of = datetime(2026, 6, 30, tzinfo=UTC)
    order: list[GroupBy | None] = [*GroupBy, None]
    answers: dict[GroupBy, Any] = {}
    for round_ in range(warmup + samples):
        rng.shuffle(order)
        for grouping in order:
            begin = time.perf_counter()
            if grouping is None:
                await pool.fetchrow(BASELINE_SQL, start, end)
                rows = 1
            else:
                answers[grouping] = await summary(pool, calendar, ReportRequest(*YEAR, grouping), as_of=as_of)
                rows = len(answers[grouping].groups)
            elapsed = (time.perf_counter() - begin) * 1000
            if round_ >= warmup:
                one = baseline if grouping is None else series[grouping]
                one.samples_ms.append(elapsed)
                one.rows.append(rows)
    return series, baseline, answers


def report(series: dict[Any, Series], baseline: Series) -> tuple[list[str], dict[str, Any]]:
    base = baseline.figures()
    lines = [
        "approvals.reports.summary.summary on an asyncpg pool (app role), a year of cases, ms",
        f"  {'':44} {'p50':>8} {'max':>8}  p50/base  groups  <= {TARGET_MS:g} ms?",
        f"  {'baseline: ' + baseline.name:<44} {base['p50_ms']:8.2f} {base['max_ms']:8.2f}",
    ]
    figures: dict[str, Any] = {"baseline": {"name": baseline.name, **base}, "scenarios": {}}
    for one in series.values():
        f = one.figures()
        ratio = f["p50_ms"] / base["p50_ms"] if base["p50_ms"] else float("nan")
        f.update(ratio_p50_to_baseline=round(ratio, 2), meets_target=f["max_ms"] <= TARGET_MS)
        figures["scenarios"][one.name] = f
        lines.append(
            f"  {one.name:<44} {f['p50_ms']:8.2f} {f['max_ms']:8.2f}  {ratio:7.1f}x  {f['mean_rows']:6.1f}  "
            f"{'meets' if f['meets_target'] else 'MISSES'}"
        )
    return lines, figures


def write_charts(answers: dict[Any, Any], directory: Path) -> list[Path]:
    from approvals.reports import charts
    from schemas.reports import GroupBy

    directory.mkdir(parents=True, exist_ok=True)
    drawn = {
        "report-cases-per-month.svg": charts.cases_per_month(answers[GroupBy.month]),
        "report-decision-days.svg": charts.decision_days(answers[GroupBy.process]),
        "report-on-time-per-unit.svg": charts.on_time_per_unit(answers[GroupBy.unit]),
    }
    for name, svg in drawn.items():
        (directory / name).write_text(svg)
    return [directory / name for name in drawn]


async def explain(pool: Any, calendar: Any) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each of the summary's statements, grouped by unit."""
    from approvals.event_wording import CHINA_TIME
    from approvals.reports.summary import local_start, working_day_ordinals
    from approvals.storage import reports

    start, end = local_start(YEAR[0]), local_start(date(YEAR[1].year + 1, 1, 1))
    ordinals = working_day_ordinals(calendar, YEAR[0] - timedelta(days=1), date(2026, 7, 1))
    statements = reports.summary_statements(
        "unit", start, end, ordinals, CHINA_TIME.utcoffset(None), datetime(2026, 6, 30, tzinfo=UTC)
    )
    lines = []
    for name, (sql, arguments) in statements.items():
        plan = await pool.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *arguments)
        lines += ["", f"EXPLAIN ANALYZE, {name}:", *(row[0] for row in plan)]
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=20, help="measured summaries per grouping")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured rounds first")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--charts", type=Path, default=None, help="write the report's charts of the data here")
    parser.add_argument("--explain", action="store_true", help="print the plans of the summary's statements")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 cases, 5 samples")
    args = parser.parse_args(argv)
    if args.quick:
        args.cases, args.samples, args.warmup = 5_000, 5, 1
    if args.cases < 100 or args.samples < 1:
        parser.error("--cases must be at least 100, --samples at least 1")
    return args


async def run(args: argparse.Namespace, postgres_url: str, out: dict[str, Any]) -> list[str]:
    from approvals import db
    from approvals.calendar_publishing import current_calendar
    from approvals.devstack.roles import DEV_ROLES, provision_database
    from approvals.migrate import migrate

    database = await provision_database(postgres_url, "approvals")
    await migrate(database.owner_url, app_role=DEV_ROLES.app)
    began = time.perf_counter()
    await seed(database.owner_url, args.cases)
    out["load_seconds"] = round(time.perf_counter() - began, 1)
    pool = await db.create_pool(database.app_url, min_size=2, max_size=4)
    try:
        out["machine"] = machine(await pool.fetchval("SHOW server_version"))
        size = await pool.fetchval("SELECT pg_total_relation_size('case_report_facts')")
        out["data"]["facts_table_mb"] = round(size / 2**20, 1)
        out["data"]["open_tasks"] = await pool.fetchval("SELECT count(*) FROM tasks")
        calendar = await current_calendar(pool, None)
        began = time.perf_counter()
        series, baseline, answers = await measure(pool, calendar, args.samples, args.warmup, random.Random(args.seed))
        out["query_seconds"] = round(time.perf_counter() - began, 1)
        lines, out["query_layer"] = report(series, baseline)
        out["data"]["received_in_the_year"] = next(iter(answers.values())).total.received
        if args.explain:
            lines += await explain(pool, calendar)
        if args.charts:
            lines += ["", *(f"chart written to {path}" for path in write_charts(answers, args.charts))]
        return lines
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from approvals.devstack.embedded_pg import EmbeddedPostgres
    from approvals.devstack.stack import free_port
    from approvals.logging import configure_logging
    from approvals.settings import load_settings

    configure_logging(load_settings(log_level="WARNING", log_format="console"), stream=sys.stderr)
    out: dict[str, Any] = {
        "benchmark": "reports",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": {"max_ms": TARGET_MS, "cases": 100_000},
        "quick": args.quick,
        "data": {"cases": args.cases},
        "settings": {"samples": args.samples, "warmup": args.warmup},
    }
    print(
        f"report summary latency: {args.cases:,} cases received over {YEAR[0].year}; {args.samples} samples per "
        f"grouping after {args.warmup} warm-up rounds"
        + ("  [--quick: smoke run, not the target's scale]" if args.quick else ""),
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="approvals-reports-bench-"))
    try:
        with EmbeddedPostgres.start(tmp / "postgres", free_port()) as postgres:
            lines = asyncio.run(run(args, postgres.url, out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    scenarios = out["query_layer"]["scenarios"]
    worst_name, worst = max(((n, f["max_ms"]) for n, f in scenarios.items()), key=lambda x: x[1])
    out["target"].update(worst_max_ms=worst, worst_scenario=worst_name, met=worst <= TARGET_MS)
    m = out["machine"]
    print(
        f"machine: {m['cpu_count']} CPUs ({m['processor']}), PostgreSQL {m['postgresql_version']}; 1-min load "
        f"average {m['load_average_1min']:.2f} before, {os.getloadavg()[0]:.2f} after; report facts "
        f"{out['data']['facts_table_mb']} MB, {out['data']['open_tasks']:,} open tasks, loaded in "
        f"{out['load_seconds']} s"
    )
    print()
    print("\n".join(lines))
    print()
    print(
        f"target summary <= {TARGET_MS:g} ms for a year of 100,000 cases: "
        f"{'MET' if out['target']['met'] else 'MISSED'} (slowest {worst:.2f} ms, '{worst_name}', "
        f"at {args.cases:,} cases)"
    )
    out["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
