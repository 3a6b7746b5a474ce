"""Runs every benchmark, one after the other, and writes ``bench/RESULTS.md`` with the machine described.

Each benchmark starts its own servers, prints its figures next to its same-run baseline and writes them as
JSON (``bench/results/<name>.json``, its printout beside it in ``<name>.txt``). This script only runs them
in turn (so they never load the machine at the same time) and puts the verdicts against the engine's
targets into one short table; it asserts nothing.

    make bench                                    # everything at the issue's sizes (about an hour here)
    .venv/bin/python bench/run_all.py --quick     # every benchmark's smoke size, a few minutes
    .venv/bin/python bench/run_all.py --only inbox,replay
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
BENCHMARKS = ("throughput", "inbox", "search", "reports", "replay", "worker_memory", "metrics_overhead")


def _throughput(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for config in figures["configurations"]:
        where = f"{config['cases']} cases, {config['workers']} worker(s)"
        per_case = config["cpu_seconds_per_case"]
        rows.append(
            (
                f"CPU s per case (API / worker / Temporal / PostgreSQL), {where}",
                "; ".join(
                    f"{side} "
                    + " / ".join(
                        "-" if per_case[side][part] is None else f"{per_case[side][part]:.3f}"
                        for part in ("api", "worker", "temporal", "postgres")
                    )
                    for side in ("engine", "durable", "bare")
                ),  # fmt: skip
                "reported",
            )
        )
        rows += [
            (f"{one['name']}, {where}", one["figure"], _verdict(one["met"], one["target"]))
            for one in config["verdicts"]
        ]
    return rows


def _inbox(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    target = figures["target"]
    open_tasks = figures["data"]["open_tasks"]
    rows = [
        (
            f"inbox, {open_tasks:,} open tasks",
            f"worst scenario p99 {target['worst_inbox_p99_ms']:.1f} ms",
            _verdict(target["met"], f"p99 <= {target['p99_ms']:g} ms"),
        )
    ]
    if "worst_console_page_p99_ms" in target:
        rows.append(
            (
                f"console 待办 page, {open_tasks:,} open tasks",
                f"worst scenario p99 {target['worst_console_page_p99_ms']:.1f} ms",
                _verdict(target["console_met"], "p99 <= 200 ms"),
            )
        )
    return rows


def _search(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    target = figures["target"]
    return [
        (
            f"case search, {figures['data']['cases']:,} cases",
            f"worst scenario p99 {target['worst_p99_ms']:.1f} ms ({target['worst_scenario']})",
            _verdict(target["met"], f"p99 <= {target['p99_ms']:g} ms"),
        )
    ]


def _reports(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    target = figures["target"]
    return [
        (
            f"report summary, a year of {figures['data']['cases']:,} cases",
            f"slowest grouping {target['worst_max_ms']:.0f} ms ({target['worst_scenario']})",
            _verdict(target["met"], f"<= {target['max_ms']:g} ms"),
        )
    ]


def _replay(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    by_name = {figure["name"]: figure for figure in figures["figures"]}
    cli, baseline = by_name["cli"], by_name["baseline"]
    miss = figures["cache_miss"]
    ratio = cli["histories_per_second"] / baseline["histories_per_second"]
    return [
        (
            f"replay, {cli['histories']:,} histories",
            f"{cli['histories_per_second']:.1f} histories/s, {cli['events_per_second']:,.0f} events/s vs "
            f"sandboxed Replayer {baseline['histories_per_second']:.1f}/s: {ratio:.2f}x",
            _verdict(ratio >= 2, ">= 2x"),
        ),
        (
            "cache-miss replay of one project-approval case (CPU, the worker's runner)",
            f"median {miss['worker_runner']['cpu_ms_median']} ms "
            f"(in the sandbox {miss['sandboxed']['cpu_ms_median']} ms)",
            _verdict(miss["meets_target"], f"<= {miss['target_cpu_ms']:g} ms"),
        ),
    ]


def _worker_memory(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    engine, bare = figures["engine"], figures["bare"]
    loaded_mb = engine["loaded_rss_mb"] * 2**20 / 1e6  # measured in MiB, the target is in MB
    return [
        (
            f"worker RSS, {figures['cases']:,} open cases",
            f"{engine['loaded_rss_mb']:.0f} MiB = {loaded_mb:.0f} MB (idle {engine['idle_rss_mb']:.0f} MiB; "
            f"bare worker {bare['loaded_rss_mb']:.0f} MiB)",
            _verdict(loaded_mb <= figures["target_rss_mb"], f"<= {figures['target_rss_mb']:g} MB"),
        )
    ]


def _metrics_overhead(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (
            f"metrics overhead, {figures['cases']} cases x {len(figures['rounds'])} rounds",
            f"{figures['on_cases_per_second']:.2f} cases/s with metrics vs {figures['off_cases_per_second']:.2f} "
            f"without: {figures['overhead']:+.1%}",
            _verdict(figures["overhead"] < figures["target_overhead_max"], "< 2 %"),
        )
    ]


SUMMARIES: dict[str, Callable[[dict[str, Any]], list[tuple[str, str, str]]]] = {
    "throughput": _throughput,
    "inbox": _inbox,
    "search": _search,
    "reports": _reports,
    "replay": _replay,
    "worker_memory": _worker_memory,
    "metrics_overhead": _metrics_overhead,
}


def _verdict(met: bool, target: str) -> str:
    return f"{'meets' if met else '**misses**'} ({target})"


def _machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory_kb / 1024 / 1024:.0f} GiB, {platform.platform()}, "
        f"Python {platform.python_version()}"
    )


def run(name: str, quick: bool) -> tuple[int, float]:
    command = [sys.executable, str(BENCH / f"{name}.py"), "--json", str(RESULTS / f"{name}.json")]
    if quick:
        command.append("--quick")
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    began = time.monotonic()
    with (RESULTS / f"{name}.txt").open("w") as printout:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            printout.write(line)
    return process.wait(), time.monotonic() - began


def write_results(
    names: list[str], exits: dict[str, tuple[int, float]], quick: bool, load_before: float, load_after: float
) -> Path:
    lines = [
        "# Benchmark results",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `bench/run_all.py{' --quick' if quick else ''}`; "
        f"machine: {_machine()}. 1-minute load average {load_before:.2f} before, {load_after:.2f} after.",
        "Every figure is next to a baseline measured in the same run on the same servers; the benchmarks' own "
        "printouts (with their baselines, percentiles and the engine case's shape) are in `bench/results/*.txt`, "
        "the figures in `bench/results/*.json`.",
        "",
        "| benchmark | figure | against the target |",
        "|---|---|---|",
    ]
    for name in names:
        code, seconds = exits[name]
        path = RESULTS / f"{name}.json"
        if code != 0 or not path.exists():
            lines.append(f"| {name} | failed (exit {code} after {seconds:.0f} s; see results/{name}.txt) | - |")
            continue
        for benchmark, figure, verdict in SUMMARIES[name](json.loads(path.read_text())):
            lines.append(f"| {benchmark} | {figure} | {verdict} |")
    if quick:
        lines += ["", "Smoke sizes (`--quick`): not the targets' scale."]
    output = BENCH / "RESULTS.md"
    output.write_text("\n".join(lines) + "\n")
    return output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every benchmark at its smoke size")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    names = [name.strip() for name in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    RESULTS.mkdir(exist_ok=True)
    load_before = os.getloadavg()[0]
    exits = {name: run(name, args.quick) for name in names}
    output = write_results(names, exits, args.quick, load_before, os.getloadavg()[0])
    print(output.read_text())
    return max(code for code, _ in exits.values())


if __name__ == "__main__":
    sys.exit(main())
