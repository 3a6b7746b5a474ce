"""The benchmarks run end to end (``--quick``: a handful of cases) and write their figures as JSON.

No timing is asserted: the figures depend on the machine. This only guards the benchmarks against rot:
every figure is there and positive, and the bare baseline really has the engine case's shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run_quick(script: str, out: Path) -> dict:
    run = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=BENCH.parent,
    )
    assert run.returncode == 0, f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}"
    assert "| engine" in run.stdout or "| cases |" in run.stdout  # the Markdown table is printed
    return json.loads(out.read_text())


def positive(value: object) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_quick_throughput_writes_engine_and_bare_figures(tmp_path: Path) -> None:
    report = run_quick("throughput.py", tmp_path / "throughput.json")
    [config] = report["configurations"]
    assert (config["cases"], config["workers"]) == (6, 1)
    for side in ("engine", "bare"):
        figures = config[side]
        assert positive(figures["cases_per_second"]) and positive(figures["wall_seconds"]), figures
        for name in ("p50_ms", "p95_ms", "p99_ms"):
            assert positive(figures["decide"][name]), figures["decide"]
        assert figures["decide"]["n"] == 6 * 7  # every task of every case decided once
    assert config["engine"]["errors"] == {}
    assert positive(config["throughput_ratio"])
    assert positive(config["idle"]["engine_decide"]["p50_ms"]) and positive(config["idle"]["bare_decide"]["p50_ms"])
    engine, bare = config["shape"]["engine"], config["shape"]["bare"]
    assert engine["updates"] == engine["human_steps"] == 14  # claim + decide: acceptance, 5 reviews, decision
    for count in ("updates", "activities", "local_activities"):
        assert bare[count] == engine[count], count
    assert positive(engine["server_tasks_per_update"]) and positive(engine["workflow_tasks"])
    assert config["notes"] == []


def test_quick_worker_memory_writes_engine_and_bare_rss(tmp_path: Path) -> None:
    report = run_quick("worker_memory.py", tmp_path / "memory.json")
    assert report["cases"] == 100
    for side in ("engine", "bare"):
        for name in ("idle_rss_mb", "loaded_rss_mb", "peak_rss_mb"):
            assert positive(report[side][name]), report[side]
    assert positive(report["rss_ratio"])
    assert report["max_cached_workflows"]["engine"]
