"""Worker memory: RSS of one ``approvals worker`` process with N open project-approval cases, next to a bare
worker process with N open bare workflows of the same shape, on the same servers in the same run.

A fresh ``approvals.devstack.stack.Stack`` (embedded PostgreSQL, Temporal dev server, one ``approvals worker``, the
API for the one shape case) and one bare worker process (``bench/throughput.py --bare-worker``, its own
task queue). Figures (psutil RSS of the worker process and its children, if any):

- idle: each worker once it polls, before any case;
- loaded: after N cases were started (through the Temporal client, with the input the API would build) and
  the worker has processed them all: every case waits at acceptance (its open acceptance task is in
  PostgreSQL) and both task queues have no backlog; sampled for a few seconds, the highest sample counts;
- peak: the highest sample while the cases were being started.

The bare workflows have the shape counted from one engine case's history (``bench/throughput.py``), so the
bare worker holds the same number of cases, each having done the same start work, waiting for its first
update. Both workers run with the SDK's sticky cache (``max_cached_workflows``), which bounds how many
cases stay in memory; it is printed with the figures.

    .venv/bin/python bench/worker_memory.py [--cases 10000] [--json out.json] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import throughput  # type: ignore[import-not-found]  # bench/throughput.py, next to this file

TARGET_RSS_MB = 300.0
"""Issue 15's target at 10,000 open cases with a cache of 500, in MB (10^6 bytes); RSS is measured in MiB
(2^20 bytes), so the target is 286.1 MiB."""
TARGET_RSS_MIB = TARGET_RSS_MB * 1e6 / 2**20
SAMPLE_SECONDS = 0.25
SETTLE_SAMPLES = 4


def rss_mb(pid: int) -> float:
    """Resident set size of the process and its children, in MiB."""
    import psutil

    total = 0
    process = psutil.Process(pid)
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return round(total / 2**20, 1)


def max_cached_workflows() -> dict[str, Any]:
    """The sticky-cache size of both workers: WORKER_MAX_CACHED_WORKFLOWS, which the bare worker uses too."""
    from approvals.settings import load_settings

    size = load_settings().worker_max_cached_workflows
    return {"engine": size, "bare": size}


async def backlog(stack: Any, task_queue: str) -> int:
    """Approximate tasks waiting on ``task_queue`` (workflow and activity tasks)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    total = 0
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        described = await stack.client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=stack.settings.temporal_namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=kind,
                report_stats=True,
            )
        )
        total += described.stats.approximate_backlog_count
    return total


async def start_many(count: int, concurrency: int, start: Callable[[int], Awaitable[Any]]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(number: int) -> None:
        async with gate:
            await start(number)

    await asyncio.gather(*(one(number) for number in range(count)))


async def sample_while(pid: int, work: Awaitable[Any]) -> tuple[Any, float]:
    """Runs ``work`` while sampling the RSS of ``pid``; returns its result and the highest sample."""
    peak = rss_mb(pid)
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait([task], timeout=SAMPLE_SECONDS)
        peak = max(peak, rss_mb(pid))
    return task.result(), peak


async def until(
    ready: Callable[[], Awaitable[tuple[bool, int]]], timeout: float, what: str, stall_seconds: float = 120.0
) -> str | None:
    """Polls ``ready`` (done?, a progress count) until done: None, or a note when the progress stalled for
    ``stall_seconds`` (e.g. a few cases stuck: the memory is still worth measuring); fails on the timeout."""
    deadline = time.monotonic() + timeout
    seen, seen_at = -1, time.monotonic()
    while True:
        done, progress = await ready()
        if done:
            return None
        now = time.monotonic()
        if progress != seen:
            seen, seen_at = progress, now
        if now > deadline:
            raise throughput.BenchError(f"{what} not reached in {timeout:g}s ({progress} so far)")
        if now - seen_at > stall_seconds:
            return f"{what} not reached: {progress} after no progress for {stall_seconds:g}s; measured anyway"
        await asyncio.sleep(0.5)


async def settled_rss(pid: int) -> float:
    samples = []
    for _ in range(SETTLE_SAMPLES):
        samples.append(rss_mb(pid))
        await asyncio.sleep(SAMPLE_SECONDS)
    return max(samples)


async def measure(cases: int, concurrency: int, timeout: float) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="approvals-worker-memory-"))
    try:
        figures = await measure_in(root, cases, concurrency, timeout)
    except BaseException:
        print(f"the run failed; the servers' and workers' logs are kept in {root}", file=sys.stderr)
        raise
    shutil.rmtree(root, ignore_errors=True)
    return figures


async def measure_in(root: Path, cases: int, concurrency: int, timeout: float) -> dict[str, Any]:
    import httpx
    from temporalio.client import Client

    from approvals.devstack.identities import DEMO_PRINCIPALS
    from approvals.devstack.stack import Stack
    from approvals.processes import PROCESSES
    from schemas.principal import Principal

    path = throughput.waves()
    load_before = throughput.load_average()
    figures: dict[str, Any] = {"cases": cases, "max_cached_workflows": max_cached_workflows()}
    async with Stack.open(root, principals=throughput.bench_principals(path, 1)) as stack:
        engine = await stack.start_worker()
        engine_idle = await settled_rss(engine.pid)
        await stack.start_api()
        bare_queue = f"bare-{uuid.uuid4().hex[:8]}"
        bare = await throughput.start_bare_worker(stack, bare_queue, "bare-worker")
        pool = await stack.pool()
        try:
            bare_idle = await settled_rss(bare.process.pid)
            bare_client = await Client.connect(
                stack.settings.temporal_address, namespace=stack.settings.temporal_namespace
            )
            async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
                ctx = throughput.Context(stack, http, bare_client, bare_queue, path, 1, concurrency, timeout)
                case_id = await throughput.engine_sequential(ctx, f"WM-{ctx.run}-S-000000", None)
                history = await stack.client.get_workflow_handle(case_id).fetch_history()
                shape_counts, shape = throughput.history_shape(history)
                await throughput.bare_sequential(ctx, throughput.direct_driver(ctx, shape), f"{ctx.run}-S-000000", None)
            figures["shape"] = {k: shape_counts[k] for k in ("updates", "activities", "local_activities")}

            # the engine: N cases waiting at acceptance
            entry = PROCESSES[throughput.PROCESS]
            demo = next(p for p in DEMO_PRINCIPALS if p.id == throughput.SERVICE_PRINCIPAL)
            service = Principal(id=demo.id, name=demo.name, unit=demo.unit, roles=demo.roles)
            prefix = f"WM-{ctx.run}-O-"

            async def start_engine(number: int) -> None:
                body = throughput.application_body(f"{prefix}{number:06d}")
                case_input = entry.to_case_input(
                    entry.request_model.model_validate(body), service, stack.settings.committee_rosters
                )
                await stack.client.start_workflow(
                    entry.workflow.run,  # type: ignore[attr-defined]
                    case_input,
                    id=entry.workflow_id(body["business_key"]),
                    task_queue=stack.settings.temporal_task_queue,
                )

            async def engine_done() -> tuple[bool, int]:
                waiting = await pool.fetchval(
                    "SELECT count(*) FROM tasks WHERE stage_id = 'acceptance' AND status = 'open' AND case_id LIKE $1",
                    f"{throughput.PROCESS}:{prefix}%",
                )
                drained = await backlog(stack, stack.settings.temporal_task_queue) == 0
                return waiting == cases and drained, int(waiting)

            async def load_engine() -> str | None:
                await start_many(cases, concurrency, start_engine)
                return await until(engine_done, timeout, f"{cases} engine cases waiting at acceptance")

            began = time.perf_counter()
            engine_note, engine_peak = await sample_while(engine.pid, load_engine())
            engine_seconds = time.perf_counter() - began
            engine_loaded = await settled_rss(engine.pid)

            # the bare baseline: N bare workflows waiting for their first update
            bare_ids = [f"bare:{ctx.run}-O-{number:06d}" for number in range(cases)]

            async def start_bare(number: int) -> None:
                await bare_client.start_workflow(
                    throughput.BARE_WORKFLOW, shape, id=bare_ids[number], task_queue=bare_queue
                )

            async def bare_done() -> tuple[bool, int]:
                waiting = await backlog(stack, bare_queue)
                if waiting:
                    return False, -waiting
                for workflow_id in bare_ids[-5:]:  # the last ones started have done their start work
                    events = (await bare_client.get_workflow_handle(workflow_id).fetch_history()).events
                    if sum(1 for e in events if e.HasField("activity_task_completed_event_attributes")) < (
                        shape.start.ops.count("A") + shape.start.ops.count("F")
                    ):
                        return False, 0
                return True, 0

            async def load_bare() -> str | None:
                await start_many(cases, concurrency, start_bare)
                return await until(bare_done, timeout, f"{cases} bare workflows waiting")

            began = time.perf_counter()
            bare_note, bare_peak = await sample_while(bare.process.pid, load_bare())
            bare_seconds = time.perf_counter() - began
            bare_loaded = await settled_rss(bare.process.pid)
            if not engine.alive():
                raise throughput.BenchError(f"the engine worker died: {engine.log_tail()}")
        finally:
            await pool.close()
            await asyncio.to_thread(bare.stop)
    figures.update(
        engine={
            "idle_rss_mb": engine_idle,
            "loaded_rss_mb": engine_loaded,
            "peak_rss_mb": engine_peak,
            "kib_per_case": round((engine_loaded - engine_idle) * 1024 / cases, 1),
            "start_seconds": round(engine_seconds, 1),
        },
        bare={
            "idle_rss_mb": bare_idle,
            "loaded_rss_mb": bare_loaded,
            "peak_rss_mb": bare_peak,
            "kib_per_case": round((bare_loaded - bare_idle) * 1024 / cases, 1),
            "start_seconds": round(bare_seconds, 1),
        },
        rss_ratio=round(engine_loaded / bare_loaded, 2),
        target_rss_mb=TARGET_RSS_MB,
        meets_target=engine_loaded <= TARGET_RSS_MIB,
        load_before=load_before,
        load_after=throughput.load_average(),
        notes=[note for note in (engine_note, bare_note) if note],
    )
    return figures


def markdown(f: dict[str, Any]) -> str:
    e, b = f["engine"], f["bare"]
    return "\n".join(
        [
            "| worker | open cases | idle RSS | RSS with the cases open | peak while starting | per case | "
            "max_cached_workflows |",
            "|---|---:|---:|---:|---:|---:|---:|",
            f"| engine (`approvals worker`) | {f['cases']} | {e['idle_rss_mb']} MiB | {e['loaded_rss_mb']} MiB "
            f"({'meets' if f['meets_target'] else 'MISSES'} <= {TARGET_RSS_MB:g} MB = {TARGET_RSS_MIB:.1f} MiB) | "
            f"{e['peak_rss_mb']} MiB | "
            f"{e['kib_per_case']} KiB | {f['max_cached_workflows']['engine']} |",
            f"| bare Temporal worker | {f['cases']} | {b['idle_rss_mb']} MiB | {b['loaded_rss_mb']} MiB | "
            f"{b['peak_rss_mb']} MiB | {b['kib_per_case']} KiB | {f['max_cached_workflows']['bare']} |",
            "",
            f"engine/bare RSS with the cases open: {f['rss_ratio']}x; load average {f['load_before']} before, "
            f"{f['load_after']} after.",
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=None, help="open cases (default 10000)")
    parser.add_argument("--start-concurrency", type=int, default=50, help="starts in flight (default 50)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds a phase may take (default 3600)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown table here")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 cases")
    args = parser.parse_args(argv)
    if args.cases is None:
        args.cases = 100 if args.quick else 10_000
    if args.cases < 1 or args.start_concurrency < 1:
        parser.error("--cases and --start-concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from approvals.logging import configure_logging
    from approvals.settings import load_settings

    configure_logging(load_settings(log_level="WARNING", log_format="console"), stream=sys.stderr)
    print(f"worker memory: one worker process with {args.cases} open cases vs a bare worker with as many bare cases")
    print(f"machine: {throughput.machine()}; {throughput.temporal_version()}; {time.strftime('%Y-%m-%d %H:%M')}")
    figures = asyncio.run(measure(args.cases, args.start_concurrency, args.timeout))
    report = {
        "benchmark": "worker_memory",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": throughput.machine(),
        "temporal": throughput.temporal_version(),
        "quick": args.quick,
        **figures,
    }
    table = markdown(figures)
    print(f"shape of a case: {figures['shape']}; max_cached_workflows: {figures['max_cached_workflows']}")
    print(f"starting and processing the cases took {figures['engine']['start_seconds']}s (engine), "
          f"{figures['bare']['start_seconds']}s (bare)")  # fmt: skip
    for note in figures["notes"]:
        print(f"NOTE {note}")
    print("\n" + table)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
