"""Latency of case search (``GET /v1/cases`` filters, migration 0012) with 100,000 cases in PostgreSQL.

Target (issue 16): search p99 <= 50 ms at 100,000 cases.

What runs, started from scratch in a temporary directory and deleted at the end: an embedded PostgreSQL,
migrated with every migration of the engine (the search indexes are production's), and ``--cases`` case rows
written in bulk (COPY) with the columns recording writes, the search columns included: applicants named as
enterprises in the zone are (a place, a two-character brand from a pool of 60 characters, an industry, a
company form: ``新疆瑞通物流有限公司``), or as persons (2-3 characters) in talent-policy cases; an 18-character credit
code on most; titles in Chinese and English; received dates over two years, decided dates on the decided
ones; statuses, stages and units as the processes have them. Then ``VACUUM ANALYZE``.

What is measured, one request at a time, each scenario once per round in shuffled order with the baseline
(so background load hits all alike): ``approvals.storage.queries.list_cases`` (what ``ApprovalsService.list_cases``
runs for the route) on an asyncpg pool as the app role, as a reader who may read every case (auditor, admin),
first page of 50 sorted as the route sorts by default unless said:

- applicant name by two Chinese characters (a brand), by four (brand and industry), by a common pair (物流:
  about one case in nine, the worst the index can be asked), and its page at offset 200;
- a person's name of two characters; credit code; title by three characters; business key prefix;
- received in one month and one process; decided in one month, sorted by decision date.

Baseline: a primary-key lookup of one case (the same columns): one round trip. Prints p50 / p95 / p99 / max
(ms), the baseline's, the ratio and the verdict; ``--json PATH`` writes the figures and the machine;
``--explain`` prints EXPLAIN (ANALYZE, BUFFERS) of the common-pair search. Nothing is asserted on timings.

    .venv/bin/python bench/search.py [--cases 100000] [--samples 500] [--json PATH] [--explain]
    .venv/bin/python bench/search.py --quick     # smoke run: 5,000 cases, 100 samples
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
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from inbox import Series, machine

TARGET_P99_MS = 50.0
PAGE = 50
LATER_OFFSET = 200

PLACES = ("新疆", "博州", "阿拉山口", "精河", "博乐", "伊犁", "霍尔果斯", "乌鲁木齐", "温泉", "昌吉")
BRAND_CHARACTERS = (
    "瑞通达丰泰华信恒盛宏源鑫昌隆安顺德兴发利民和嘉誉祥福春明天宇志远新凯正金银海川博峰豪腾飞翔骏驰汇聚鼎众"
)
INDUSTRIES = ("物流", "商贸", "能源", "化工", "农业", "科技", "建材", "进出口", "供应链")
FORMS = ("有限公司", "股份有限公司", "有限责任公司")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
PROCESSES = {  # process -> (weight, stages, title words)
    "project-approval": (0.5, ("acceptance", "department_reviews", "decision"), "建设项目审批 Project approval"),
    "generic": (0.3, ("acceptance", "review"), "户外广告许可 Outdoor advertising permit"),
    "talent-policy": (0.1, ("hr_review", "committee_vote"), "人才政策 Talent policy"),
    "error-tolerance": (0.07, ("findings", "committee_vote"), "容错免责 Error tolerance"),
    "power-adjustment": (0.03, ("legal_review", "executive_meeting"), "职能目录 Function catalogue"),
}
UNITS = ("招商局", "经济发展局", "自然资源局", "应急管理局", "党群工作部", "财政局", "生态环境局", "市场监管局")
CREDIT_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
START = datetime(2025, 1, 1, tzinfo=UTC)
COLUMNS = (
    "case_id", "process", "business_key", "title", "status", "current_stages", "applicant_id", "priority",
    "clock_state", "due_at", "outcome", "started_at", "updated_at", "summary", "last_seq", "started_by",
    "observers", "applicant_name", "applicant_unit", "credit_code", "decided_at",
)  # fmt: skip


def company(rng: random.Random) -> tuple[str, str]:
    brand = "".join(rng.sample(BRAND_CHARACTERS, 2))
    return f"{rng.choice(PLACES)}{brand}{rng.choice(INDUSTRIES)}{rng.choice(FORMS)}", brand


def build_cases(count: int, rng: random.Random) -> tuple[list[tuple[Any, ...]], dict[str, list[str]]]:
    """The rows, and what the scenarios draw from: brands, person names, credit codes, keys, title words."""
    rows: list[tuple[Any, ...]] = []
    drawn: dict[str, list[str]] = {"brand": [], "brand_industry": [], "person": [], "code": [], "key": [], "id": []}
    names, weights = list(PROCESSES), [weight for weight, _, _ in PROCESSES.values()]
    for n in range(count):
        process = rng.choices(names, weights)[0]
        _, stages, title = PROCESSES[process]
        if process == "talent-policy":
            name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
            drawn["person"].append(name[:2])
        else:
            name, brand = company(rng)
            drawn["brand"].append(brand)
            drawn["brand_industry"].append(next(brand + i for i in INDUSTRIES if brand + i in name))
        code = None
        if process != "talent-policy" and rng.random() < 0.9:
            code = "9165" + "".join(rng.choices(CREDIT_CHARACTERS, k=14))
            drawn["code"].append(code)
        key = f"{process[:2].upper()}-{2025 + n % 2}-{n:07d}"
        drawn["key"].append(key)
        drawn["id"].append(f"{process}:{key}")
        started = START + timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))
        decided = started + timedelta(days=rng.randrange(5, 60)) if rng.random() < 0.7 else None
        status = rng.choice(("approved", "rejected", "approved_with_conditions")) if decided else "in_review"
        rows.append(
            (
                f"{process}:{key}", process, key, f"{title}: {name}", status,
                [] if decided else [rng.choice(stages)], f"ent-{n % 20000}", rng.random() < 0.05, "none", None,
                status if decided else None, started, decided or started + timedelta(days=rng.randrange(1, 5)),
                "{}", 10, "svc-portal", [], name, rng.choice(UNITS), code, decided,
            )
        )  # fmt: skip
    return rows, drawn


def scenarios(drawn: dict[str, list[str]], rng: random.Random) -> dict[str, Callable[[], dict[str, Any]]]:
    def month() -> tuple[date, date]:
        first = (START + timedelta(days=rng.randrange(700))).date().replace(day=1)
        return first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)

    def received_in_a_month() -> dict[str, Any]:
        first, last = month()
        return {"received_from": first, "received_to": last, "process": "project-approval"}

    def decided_in_a_month() -> dict[str, Any]:
        first, last = month()
        return {"decided_from": first, "decided_to": last, "sort": "-decided_at"}

    return {
        "applicant name, 2 characters (a brand)": lambda: {"applicant_name": rng.choice(drawn["brand"])},
        "applicant name, 4 characters (brand + industry)": lambda: {
            "applicant_name": rng.choice(drawn["brand_industry"])
        },
        "applicant name, common pair 物流 (1 in 9 cases)": lambda: {"applicant_name": "物流"},
        f"the same, page at offset {LATER_OFFSET}": lambda: {"applicant_name": "物流", "offset": LATER_OFFSET},
        "person's name, 2 characters": lambda: {"applicant_name": rng.choice(drawn["person"])},
        "credit code": lambda: {"credit_code": rng.choice(drawn["code"])},
        "title, 3 characters": lambda: {"title": rng.choice(("广告许", "项目审", "人才政", "职能目"))},
        "business key prefix": lambda: {"business_key_prefix": rng.choice(drawn["key"])[:-2]},
        "received in one month, one process": received_in_a_month,
        "decided in one month, by decision date": decided_in_a_month,
    }


async def measure(pool: Any, drawn: dict[str, list[str]], samples: int, warmup: int, rng: random.Random) -> Any:
    from approvals.event_wording import CHINA_TIME
    from approvals.storage import queries
    from schemas.search import CaseSearch

    draws = scenarios(drawn, rng)
    series = {name: Series(name) for name in draws}
    baseline = Series("primary-key lookup of one case (1 round trip)")
    case_ids = drawn["id"]
    pk_sql = "SELECT * FROM cases WHERE case_id = $1"
    order: list[str | None] = [*draws, None]
    for round_ in range(warmup + samples):
        rng.shuffle(order)
        for name in order:
            begin = time.perf_counter()
            if name is None:
                rows = [await pool.fetchrow(pk_sql, rng.choice(case_ids))]
            else:
                rows = await queries.list_cases(pool, CaseSearch(**draws[name](), limit=PAGE), zone=CHINA_TIME)
            elapsed = (time.perf_counter() - begin) * 1000
            if round_ >= warmup:
                one = baseline if name is None else series[name]
                one.samples_ms.append(elapsed)
                one.rows.append(len(rows))
    return series, baseline


async def explain(pool: Any) -> str:
    from approvals.event_wording import CHINA_TIME
    from approvals.storage.queries import case_search_sql
    from schemas.search import CaseSearch

    sql, parameters = case_search_sql(CaseSearch(applicant_name="物流", limit=PAGE), CHINA_TIME, None)
    plan = await pool.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *parameters)
    return "EXPLAIN ANALYZE, applicant name 物流:\n" + "\n".join(row[0] for row in plan)


def report(series: dict[str, Series], baseline: Series) -> tuple[list[str], dict[str, Any]]:
    base = baseline.figures()
    lines = [
        "approvals.storage.queries.list_cases on an asyncpg pool (app role, a reader of every case), ms",
        f"  {'':50} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}  p99/base   rows  p99 <= {TARGET_P99_MS:g} ms?",
        f"  {'baseline: ' + baseline.name:<50} {base['p50_ms']:7.2f} {base['p95_ms']:7.2f} {base['p99_ms']:7.2f} "
        f"{base['max_ms']:7.2f}",
    ]
    figures: dict[str, Any] = {"baseline": {"name": baseline.name, **base}, "scenarios": {}}
    for name, one in series.items():
        f = one.figures()
        ratio = f["p99_ms"] / base["p99_ms"] if base["p99_ms"] else float("nan")
        f.update(ratio_p99_to_baseline=round(ratio, 2), meets_target=f["p99_ms"] <= TARGET_P99_MS)
        figures["scenarios"][name] = f
        lines.append(
            f"  {name:<50} {f['p50_ms']:7.2f} {f['p95_ms']:7.2f} {f['p99_ms']:7.2f} {f['max_ms']:7.2f}  "
            f"{ratio:7.1f}x  {f['mean_rows']:5.1f}  {'meets' if f['meets_target'] else 'MISSES'}"
        )
    return lines, figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=500, help="measured requests per scenario")
    parser.add_argument("--warmup", type=int, default=None, help="unmeasured rounds first (default: samples/10)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 cases, 100 samples")
    args = parser.parse_args(argv)
    if args.quick:
        args.cases, args.samples = 5_000, 100
    if args.warmup is None:
        args.warmup = max(10, args.samples // 10)
    if args.cases < 100 or args.samples < 1:
        parser.error("--cases must be at least 100, --samples at least 1")
    return args


async def run(args: argparse.Namespace, postgres_url: str, out: dict[str, Any]) -> list[str]:
    from approvals import db
    from approvals.devstack.roles import DEV_ROLES, provision_database
    from approvals.migrate import migrate

    rng = random.Random(args.seed)
    database = await provision_database(postgres_url, "approvals")
    await migrate(database.owner_url, app_role=DEV_ROLES.app)
    began = time.perf_counter()
    rows, drawn = build_cases(args.cases, rng)
    owner = await db.create_pool(database.owner_url, min_size=1, max_size=1)
    try:
        async with owner.acquire() as connection:
            await connection.copy_records_to_table("cases", records=rows, columns=list(COLUMNS))
            await connection.execute("VACUUM (ANALYZE) cases")
    finally:
        await owner.close()
    out["load_seconds"] = round(time.perf_counter() - began, 1)
    pool = await db.create_pool(database.app_url, min_size=2, max_size=4)
    try:
        out["machine"] = machine(await pool.fetchval("SHOW server_version"))
        out["data"]["cases_table_mb"] = round(await pool.fetchval("SELECT pg_total_relation_size('cases')") / 2**20, 1)
        began = time.perf_counter()
        series, baseline = await measure(pool, drawn, args.samples, args.warmup, rng)
        out["query_seconds"] = round(time.perf_counter() - began, 1)
        lines, out["query_layer"] = report(series, baseline)
        if args.explain:
            lines += ["", await explain(pool)]
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
        "benchmark": "search",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": {"p99_ms": TARGET_P99_MS, "cases": 100_000},
        "quick": args.quick,
        "data": {"cases": args.cases},
        "settings": {"samples": args.samples, "warmup": args.warmup, "page": PAGE},
    }
    print(
        f"case search latency: {args.cases:,} cases; {args.samples} samples per figure after {args.warmup} "
        "warm-up rounds" + ("  [--quick: smoke run, not the target's scale]" if args.quick else ""),
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="approvals-search-bench-"))
    try:
        with EmbeddedPostgres.start(tmp / "postgres", free_port()) as postgres:
            lines = asyncio.run(run(args, postgres.url, out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    worst_name, worst = max(((n, f["p99_ms"]) for n, f in out["query_layer"]["scenarios"].items()), key=lambda x: x[1])
    out["target"].update(worst_p99_ms=worst, worst_scenario=worst_name, met=worst <= TARGET_P99_MS)
    m = out["machine"]
    print(
        f"machine: {m['cpu_count']} CPUs ({m['processor']}), PostgreSQL {m['postgresql_version']}; 1-min load "
        f"average {m['load_average_1min']:.2f} before, {os.getloadavg()[0]:.2f} after; cases table "
        f"{out['data']['cases_table_mb']} MB, loaded in {out['load_seconds']} s"
    )
    print()
    print("\n".join(lines))
    print()
    print(
        f"target search p99 <= {TARGET_P99_MS:g} ms at 100,000 cases: {'MET' if out['target']['met'] else 'MISSED'} "
        f"(worst p99 {worst:.2f} ms, '{worst_name}', at {args.cases:,} cases)"
    )
    out["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
