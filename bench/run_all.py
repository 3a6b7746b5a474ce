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
BENCHMARKS = ("throughput", "inbox", "replay", "worker_memory")


def _throughput(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for config in figures["configurations"]:
        engine, bare = config["engine"], config["bare"]
        ratio = engine["cases_per_second"] / bare["cases_per_second"]
        where = f"{config['cases']} cases, {config['workers']} worker(s)"
        rows.append(
            (
                f"throughput, {where}",
                f"{engine['cases_per_second']:.2f} cases/s vs bare {bare['cases_per_second']:.2f}: {ratio:.2f}x",
                _verdict(ratio >= figures["targets"]["throughput_ratio_min"], ">= 0.8x bare"),
            )
        )
        decide = engine["decide"]
        rows.append(
            (
                f"decide under load, {where}",
                f"p50 {decide['p50_ms']:.0f} / p95 {decide['p95_ms']:.0f} / p99 {decide['p99_ms']:.0f} ms "
                f"(bare update p50 {bare['decide']['p50_ms']:.0f} ms)",
                "reported",
            )
        )
        idle = config["idle"]
        rows.append(
            (
                f"decide with no other load, {where}",
                f"p50 {idle['engine_decide']['p50_ms']:.0f} ms (bare {idle['bare_decide']['p50_ms']:.0f} ms)",
                _verdict(
                    idle["engine_decide"]["p50_ms"] <= figures["targets"]["idle_decide_p50_ms_max"], "p50 <= 80 ms"
                ),
            )
        )
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


def _replay(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    by_name = {figure["name"]: figure for figure in figures["figures"]}
    cli, baseline = by_name["cli"], by_name["baseline"]
    ratio = cli["histories_per_second"] / baseline["histories_per_second"]
    return [
        (
            f"replay, {cli['histories']:,} histories",
            f"{cli['histories_per_second']:.1f} histories/s, {cli['events_per_second']:,.0f} events/s vs "
            f"sandboxed Replayer {baseline['histories_per_second']:.1f}/s: {ratio:.2f}x",
            _verdict(ratio >= 2, ">= 2x"),
        )
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


SUMMARIES: dict[str, Callable[[dict[str, Any]], list[tuple[str, str, str]]]] = {
    "throughput": _throughput,
    "inbox": _inbox,
    "replay": _replay,
    "worker_memory": _worker_memory,
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
