"""Throughput of a 4-decision approval on the real engine: Temporal dev server (SQLite) + PostgreSQL.

Two variants, measured in the same run, each with its own servers started from scratch in a temporary
directory and stopped afterwards:

- A (baseline): the dev server's SQLite file with the default journal;
- B: ``--sqlite-pragma journal_mode=WAL`` (what ``approvals dev`` uses).

Each variant runs in a fresh child process (same imports, same sandbox warm-up, no state carried over from
the other variant) and starts: an embedded PostgreSQL (migrated), the Temporal CLI dev server with
``--db-filename`` in the temp directory and the engine's search attributes, and the engine's real worker
(``worker.build_worker``). Then ``--concurrency`` reviewer desks work through ``--cases`` cases of

    acceptance (single, pool role one_window: claim + decide)
    -> review (all: alice and bob, who decide at the same time)
    -> decision (single, director)

i.e. 4 reviewer decisions (plus one claim) per case, every one a real Workflow Update that returns only
after the recording activity has written events and projections to PostgreSQL. A desk finds the next
tasks of its case the way a reviewer's inbox does: by reading the ``tasks`` projection in PostgreSQL.

Prints figures and B/A ratios; it never asserts on timings (they depend on the machine).

    .venv/bin/python bench/approval_throughput.py [--cases 100] [--concurrency 20] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

VARIANTS: dict[str, tuple[str, list[str]]] = {
    "A": ("SQLite default journal", []),
    "B": ("SQLite journal_mode=WAL", ["--sqlite-pragma", "journal_mode=WAL"]),
}
RESULT_PREFIX = "BENCH-RESULT "
DECISIONS_PER_CASE = 4
CASE_TIMEOUT_SECONDS = 120.0


# ---------------------------------------------------------------------------------------------- figures


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


@dataclass
class VariantResult:
    variant: str
    label: str
    cases: int
    concurrency: int
    warmup: int
    wall_seconds: float
    cases_per_second: float
    decisions_per_second: float
    decide_p50_ms: float
    decide_p95_ms: float
    decide_max_ms: float
    claim_p50_ms: float
    case_p50_seconds: float
    case_p95_seconds: float
    journal_mode: str
    startup_seconds: float
    decide_samples: int = 0
    notes: list[str] = field(default_factory=list)
    server_errors: int = 0
    server_warnings: int = 0
    load_before: float = float("nan")
    load_after: float = float("nan")


# ---------------------------------------------------------------------------------------------- one variant


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sqlite_journal_mode(path: Path) -> str:
    """From the database header (bytes 18-19: 1 = rollback journal, 2 = WAL), without opening a connection."""
    try:
        header = path.read_bytes()[:20]
    except FileNotFoundError:
        return "no database file"
    if len(header) < 20:
        return "unknown"
    return {1: "rollback journal", 2: "WAL"}.get(header[18], f"unknown ({header[18]})")


async def run_variant(variant: str, cases: int, concurrency: int, warmup: int) -> VariantResult:
    import asyncpg
    import httpx
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from approvals.embedded_pg import EmbeddedPostgres
    from approvals.logging import configure_logging
    from approvals.migrate import migrate
    from approvals.settings import load_settings
    from schemas.calendar import load_calendar
    from schemas.case import CaseInput, CaseStatus, ClaimRequest, DecideRequest
    from schemas.principal import Principal
    from schemas.process import Decision, ProcessDefinition, RoutingMode, Stage
    from worker import build_worker
    from workflows.generic import ApprovalWorkflow
    from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

    label, extra_args = VARIANTS[variant]
    settings = load_settings(
        temporal_task_queue=f"bench-{uuid.uuid4().hex[:8]}", log_level="WARNING", log_format="console"
    )
    configure_logging(settings, stream=sys.stderr)

    calendar = load_calendar()
    service = Principal(id="svc-portal", name="One-window portal", unit="portal", roles=("service",))
    applicant = Principal(id="ent-001", name="Bench Metals Co.", unit="enterprise", roles=("applicant",))
    officers = [Principal(id=f"officer-{n}", unit="one-window", roles=("one_window",)) for n in range(concurrency)]
    people = {user: Principal(id=user, unit="committee", roles=("reviewer",)) for user in ("alice", "bob", "director")}
    process = ProcessDefinition(
        process="bench",
        title="Benchmark approval",
        legal_basis="Art. 4",
        steps=(
            Stage(id="acceptance", title="Acceptance", legal_basis="Art. 10", candidate_roles=("one_window",)),
            Stage(id="review", title="Review", legal_basis="Art. 10", mode=RoutingMode.all, assignees=("alice", "bob")),
            Stage(id="decision", title="Decision", legal_basis="Art. 10", assignees=("director",)),
        ),
    )

    tmp = Path(tempfile.mkdtemp(prefix=f"approvals-bench-{variant}-"))
    temporal_db = tmp / "temporal.sqlite"
    notes: list[str] = []
    started = time.perf_counter()
    with EmbeddedPostgres.start(tmp / "postgres", free_port()) as postgres:
        await migrate(postgres.url)
        env = await WorkflowEnvironment.start_local(
            data_converter=pydantic_data_converter,
            dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
            dev_server_database_filename=str(temporal_db),
            search_attributes=SEARCH_ATTRIBUTES,
            dev_server_extra_args=extra_args,
        )
        try:
            engine_pool = await asyncpg.create_pool(postgres.url, min_size=2, max_size=settings.database_pool_max)
            inbox_pool = await asyncpg.create_pool(postgres.url, min_size=2, max_size=10)
            try:
                async with (
                    httpx.AsyncClient() as http,
                    build_worker(env.client, settings, pool=engine_pool, http_client=http),
                ):
                    startup_seconds = time.perf_counter() - started
                    decide_ms: list[float] = []
                    claim_ms: list[float] = []
                    case_seconds: list[float] = []

                    async def open_tasks(case_id: str, stage_id: str, count: int) -> list[asyncpg.Record]:
                        """Polls the inbox projection until the stage's ``count`` open tasks are there."""
                        delay = 0.005
                        deadline = time.perf_counter() + CASE_TIMEOUT_SECONDS
                        while True:
                            rows = await inbox_pool.fetch(
                                "SELECT task_id, assignee_id FROM tasks "
                                "WHERE case_id = $1 AND stage_id = $2 AND status IN ('open', 'claimed') "
                                "ORDER BY task_id",
                                case_id,
                                stage_id,
                            )
                            if len(rows) >= count:
                                return list(rows)
                            if time.perf_counter() > deadline:
                                raise TimeoutError(f"{case_id}: stage {stage_id} never showed {count} open tasks")
                            await asyncio.sleep(delay)
                            delay = min(delay * 2, 0.05)

                    async def timed(samples: list[float], coroutine: Any, measured: bool) -> Any:
                        begin = time.perf_counter()
                        result = await coroutine
                        if measured:
                            samples.append((time.perf_counter() - begin) * 1000)
                        return result

                    async def one_case(desk: int, number: int, measured: bool) -> None:
                        begin = time.perf_counter()
                        key = f"B-{variant}-{number:05d}-{uuid.uuid4().hex[:6]}"
                        handle = await env.client.start_workflow(
                            ApprovalWorkflow.run,
                            CaseInput(
                                business_key=key,
                                definition=process,
                                title=f"Bench case {key}",
                                applicant=applicant,
                                started_by=service,
                                data={},
                                calendar=calendar,
                            ),
                            id=f"bench:{key}",
                            task_queue=settings.temporal_task_queue,
                            execution_timeout=timedelta(days=400),
                        )

                        async def decide(actor: Principal, task_id: str) -> None:
                            request = DecideRequest(actor=actor, task_id=task_id, decision=Decision.approve)
                            await timed(decide_ms, handle.execute_update(ApprovalWorkflow.decide, request), measured)

                        officer = officers[desk]
                        [acceptance] = await open_tasks(handle.id, "acceptance", 1)
                        claim = ClaimRequest(actor=officer, task_id=acceptance["task_id"])
                        await timed(claim_ms, handle.execute_update(ApprovalWorkflow.claim, claim), measured)
                        await decide(officer, acceptance["task_id"])
                        reviews = await open_tasks(handle.id, "review", 2)
                        await asyncio.gather(*(decide(people[row["assignee_id"]], row["task_id"]) for row in reviews))
                        [decision] = await open_tasks(handle.id, "decision", 1)
                        await decide(people[decision["assignee_id"]], decision["task_id"])
                        result = await asyncio.wait_for(handle.result(), CASE_TIMEOUT_SECONDS)
                        if result.status is not CaseStatus.approved:
                            raise RuntimeError(f"{handle.id} ended {result.status.value}, expected approved")
                        if measured:
                            case_seconds.append(time.perf_counter() - begin)

                    async def run_cases(total: int, measured: bool) -> float:
                        queue: asyncio.Queue[int] = asyncio.Queue()
                        for number in range(total):
                            queue.put_nowait(number)

                        async def desk(index: int) -> None:
                            while True:
                                try:
                                    number = queue.get_nowait()
                                except asyncio.QueueEmpty:
                                    return
                                await one_case(index, number, measured)

                        begin = time.perf_counter()
                        await asyncio.gather(*(desk(index) for index in range(min(concurrency, total))))
                        return time.perf_counter() - begin

                    if warmup:
                        await run_cases(warmup, measured=False)
                    wall = await run_cases(cases, measured=True)
            finally:
                await inbox_pool.close()
                await engine_pool.close()
            journal_mode = sqlite_journal_mode(temporal_db)
        finally:
            await env.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
    if len(decide_ms) != cases * DECISIONS_PER_CASE:
        notes.append(f"expected {cases * DECISIONS_PER_CASE} decide samples, got {len(decide_ms)}")
    return VariantResult(
        variant=variant,
        label=label,
        cases=cases,
        concurrency=concurrency,
        warmup=warmup,
        wall_seconds=wall,
        cases_per_second=cases / wall,
        decisions_per_second=cases * DECISIONS_PER_CASE / wall,
        decide_p50_ms=percentile(decide_ms, 0.50),
        decide_p95_ms=percentile(decide_ms, 0.95),
        decide_max_ms=max(decide_ms, default=float("nan")),
        claim_p50_ms=percentile(claim_ms, 0.50),
        case_p50_seconds=percentile(case_seconds, 0.50),
        case_p95_seconds=percentile(case_seconds, 0.95),
        journal_mode=journal_mode,
        startup_seconds=startup_seconds,
        decide_samples=len(decide_ms),
        notes=notes,
    )


# ---------------------------------------------------------------------------------------------- report


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def temporal_version() -> str:
    binary = Path(sys.executable).parent / "temporal"
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.strip() or "unknown"


def print_report(results: list[VariantResult]) -> None:
    header = (
        f"{'variant':<30} {'cases/s':>8} {'decides/s':>9} {'decide p50':>11} {'decide p95':>11} "
        f"{'claim p50':>10} {'case p50':>9} {'case p95':>9} {'wall':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.variant + '  ' + r.label:<30} {r.cases_per_second:>8.2f} {r.decisions_per_second:>9.2f} "
            f"{r.decide_p50_ms:>9.1f}ms {r.decide_p95_ms:>9.1f}ms {r.claim_p50_ms:>8.1f}ms "
            f"{r.case_p50_seconds:>8.2f}s {r.case_p95_seconds:>8.2f}s {r.wall_seconds:>6.1f}s"
        )
    for r in results:
        print(
            f"  {r.variant}: journal of the SQLite file on disk: {r.journal_mode}; servers + worker up in "
            f"{r.startup_seconds:.1f}s; {r.decide_samples} decide samples, max {r.decide_max_ms:.1f}ms"
        )
        print(
            f"     Temporal server log: {r.server_errors} ERROR, {r.server_warnings} WARN lines; "
            f"1-min load average {r.load_before:.2f} before, {r.load_after:.2f} after"
        )
        for note in r.notes:
            print(f"  {r.variant}: NOTE {note}")
    by_variant = {r.variant: r for r in results}
    if {"A", "B"} <= by_variant.keys():
        a, b = by_variant["A"], by_variant["B"]
        print()
        print("ratio B/A (throughput: >1 means WAL is faster; latency: <1 means WAL is faster)")
        print(f"  cases/s       {b.cases_per_second / a.cases_per_second:.2f}x")
        print(f"  decide p50    {b.decide_p50_ms / a.decide_p50_ms:.2f}x")
        print(f"  decide p95    {b.decide_p95_ms / a.decide_p95_ms:.2f}x")
        print(f"  case p50      {b.case_p50_seconds / a.case_p50_seconds:.2f}x")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=None, help="measured cases per variant (default 100)")
    parser.add_argument("--concurrency", type=int, default=None, help="concurrent reviewer desks (default 20)")
    parser.add_argument("--warmup", type=int, default=None, help="unmeasured cases first, per variant (default 5)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 4 cases, 2 desks, 1 warm-up case (figures mean little)"
    )
    parser.add_argument("--variants", default="AB", help="which variants, in order (default AB)")
    parser.add_argument("--variant", choices=sorted(VARIANTS), help=argparse.SUPPRESS)  # internal: child process
    args = parser.parse_args(argv)
    quick = {"cases": 4, "concurrency": 2, "warmup": 1}
    full = {"cases": 100, "concurrency": 20, "warmup": 5}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.cases < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--cases and --concurrency must be at least 1, --warmup at least 0")
    unknown = set(args.variants) - VARIANTS.keys()
    if unknown or not args.variants:
        parser.error(f"--variants takes letters of {''.join(VARIANTS)}, got {args.variants!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.variant:  # child: one variant, result as one JSON line on stdout
        result = asyncio.run(run_variant(args.variant, args.cases, args.concurrency, args.warmup))
        print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)
        return 0

    print(
        f"approval throughput: {args.cases} cases x {DECISIONS_PER_CASE} decisions "
        f"(acceptance claim+decide, review all of 2, decision), {args.concurrency} concurrent reviewer desks, "
        f"{args.warmup} warm-up case(s) per variant" + ("  [--quick: smoke run]" if args.quick else "")
    )
    print(f"machine: {machine()}; {temporal_version().splitlines()[0]}; {time.strftime('%Y-%m-%d %H:%M')}")
    print()
    results: list[VariantResult] = []
    for variant in args.variants:
        print(f"running {variant} ({VARIANTS[variant][0]}) ...", flush=True)
        command = [
            sys.executable, os.path.abspath(__file__), "--variant", variant,
            "--cases", str(args.cases), "--concurrency", str(args.concurrency), "--warmup", str(args.warmup),
        ]  # fmt: skip
        load_before = os.getloadavg()[0]
        child = subprocess.run(command, capture_output=True, text=True)
        sys.stderr.write(child.stderr)  # passed on unchanged: server and engine warnings stay visible
        lines = [line for line in child.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        if child.returncode != 0 or not lines:
            print(f"variant {variant} failed (exit {child.returncode}); its output:\n{child.stdout}", file=sys.stderr)
            return 1
        result = VariantResult(**json.loads(lines[-1][len(RESULT_PREFIX) :]))
        result.server_errors = child.stderr.count("level=ERROR")
        result.server_warnings = child.stderr.count("level=WARN")
        result.load_before, result.load_after = load_before, os.getloadavg()[0]
        results.append(result)
    print()
    print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
