"""What metrics cost: project-approval throughput through the HTTP API with the engine's metrics on and off,
measured in the same run on the same servers (issue 17: under 2 %).

One ``approvals.devstack.stack.Stack`` (embedded PostgreSQL, Temporal dev server); per round a fresh
``approvals worker`` and ``approvals api`` process pair, either

- **off**: API_REQUEST_METRICS=false, no WORKER_METRICS_ADDRESS (the worker's SDK metrics and
  ``approvals_*`` recording metrics are not recorded at all), nothing scraping; or
- **on**: request metrics in the API, the worker serving the SDK's and the engine's metrics on
  WORKER_METRICS_ADDRESS, and a scraper reading both ``/metrics`` every ``--scrape-seconds`` (default 1 s, 15
  times more often than the compose file's Prometheus), so the scrape-time SQL is in the cost too.

Rounds alternate off, on, off, on … (``--rounds`` pairs) so drift of a noisy machine falls on both sides; each
round is ``bench/throughput.py``'s engine load (N cases started while reviewer desks claim and decide every
task). Figures: cases/s of each round, the mean of each side, and the overhead ``1 - on/off``. Tracing is not
part of it: it is off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

    .venv/bin/python bench/metrics_overhead.py [--cases 200] [--rounds 3] [--json out.json] [--quick]

Prints a table; never asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput  # noqa: E402 - the engine load and its context, from the sibling benchmark

TARGET_OVERHEAD = 0.02


async def scrape_until(stop: asyncio.Event, urls: list[str], every: float, counts: dict[str, int]) -> None:
    """Reads every endpoint each ``every`` seconds, as Prometheus would, until ``stop``."""
    import httpx

    async with httpx.AsyncClient(timeout=10) as http:
        while not stop.is_set():
            for url in urls:
                response = await http.get(url)
                response.raise_for_status()
                counts[url] = counts.get(url, 0) + 1
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                pass


async def one_round(stack: Any, http: Any, metrics: bool, args: argparse.Namespace, number: int) -> dict[str, Any]:
    from approvals.devstack.stack import free_port

    os.environ["API_REQUEST_METRICS"] = "true" if metrics else "false"
    address = f"127.0.0.1:{free_port()}"
    if metrics:
        os.environ["WORKER_METRICS_ADDRESS"] = address
    else:
        os.environ.pop("WORKER_METRICS_ADDRESS", None)
    worker = await stack.start_worker(f"worker-{number}-{'on' if metrics else 'off'}")
    api = await stack.start_api()
    try:
        path = throughput.waves()
        ctx = throughput.Context(
            stack, http, None, "", path, args.desks_per_role, args.start_concurrency, args.timeout
        )  # fmt: skip
        ctx.run = f"{ctx.run}{number}"
        await throughput.engine_sequential(ctx, f"BT-{ctx.run}-W-000000", None)  # warm-up
        stop, scrapes = asyncio.Event(), {}
        scraper = None
        if metrics:
            urls = [f"{stack.api_url}/metrics", f"http://{address}/metrics"]
            scraper = asyncio.create_task(scrape_until(stop, urls, args.scrape_seconds, scrapes))
        load = await throughput.engine_load(ctx, args.cases)
        stop.set()
        if scraper is not None:
            await scraper
    finally:
        await stack.stop_worker(worker)
        api.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(api.process.wait, 30)
    return {
        "metrics": metrics,
        "cases_per_second": load.cases_per_second,
        "decide_p99_ms": load.decide["p99_ms"],
        "errors": load.errors,
        "scrapes": sum(scrapes.values()),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from approvals.devstack.stack import Stack

    root = Path(tempfile.mkdtemp(prefix="approvals-metrics-overhead-"))
    principals = throughput.bench_principals(throughput.waves(), args.desks_per_role)
    rounds: list[dict[str, Any]] = []
    async with Stack.open(root, principals=principals) as stack:
        limits = httpx.Limits(max_connections=args.desks_per_role * 8 + args.start_concurrency + 10)
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=60, limits=limits) as http:
            for number in range(args.rounds * 2):
                figures = await one_round(stack, http, number % 2 == 1, args, number)
                print(
                    f"  round {number + 1}: metrics {'on ' if figures['metrics'] else 'off'} "
                    f"{figures['cases_per_second']:.2f} cases/s, decide p99 {figures['decide_p99_ms']:.0f} ms",
                    flush=True,
                )
                rounds.append(figures)
    off = statistics.mean(r["cases_per_second"] for r in rounds if not r["metrics"])
    on = statistics.mean(r["cases_per_second"] for r in rounds if r["metrics"])
    return {
        "benchmark": "metrics_overhead",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": throughput.machine(),
        "quick": args.quick,
        "cases": args.cases,
        "scrape_seconds": args.scrape_seconds,
        "rounds": rounds,
        "off_cases_per_second": off,
        "on_cases_per_second": on,
        "overhead": 1 - on / off,
        "target_overhead_max": TARGET_OVERHEAD,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200, help="cases per round")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of rounds (off, on)")
    parser.add_argument("--scrape-seconds", type=float, default=1.0)
    parser.add_argument("--desks-per-role", type=int, default=4)
    parser.add_argument("--start-concurrency", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--quick", action="store_true", help="smoke size: 6 cases, one pair of rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.cases, args.rounds, args.desks_per_role, args.start_concurrency = 6, 1, 1, 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from approvals.logging import configure_logging
    from approvals.settings import load_settings

    configure_logging(load_settings(log_level="WARNING", log_format="console"), stream=sys.stderr)
    print(f"metrics overhead: {args.cases} project-approval cases per round, {args.rounds} off/on pairs")
    report = asyncio.run(run(args))
    verdict = "ok" if report["overhead"] < TARGET_OVERHEAD else "over target"
    print(
        f"\n| metrics | cases/s |\n|---|---|\n| off | {report['off_cases_per_second']:.2f} |\n"
        f"| on (scraped every {args.scrape_seconds:g} s) | {report['on_cases_per_second']:.2f} |\n\n"
        f"overhead {report['overhead']:+.1%} (target < {TARGET_OVERHEAD:.0%}: {verdict})"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
