"""Every benchmark runs end to end at its smoke size (``--quick``) and writes its figures as JSON.

No timing is asserted: the figures depend on the machine. This only guards the benchmarks against rot:
every figure is there and positive, next to its baseline, and the bare baseline has the engine case's shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run_quick(script: str, out: Path) -> tuple[str, dict[str, Any]]:
    """``bench/<script> --quick --json out``: its printout and its figures."""
    run = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=BENCH.parent,
    )
    assert run.returncode == 0, f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}"
    return run.stdout, json.loads(out.read_text())


def positive(value: object) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_quick_throughput_writes_engine_and_both_baselines_figures(tmp_path: Path) -> None:
    printout, report = run_quick("throughput.py", tmp_path / "throughput.json")
    assert "| cases |" in printout  # the Markdown table is printed
    [config] = report["configurations"]
    assert (config["cases"], config["workers"]) == (6, 1)
    for side in ("engine", "durable", "bare"):
        figures = config[side]
        assert positive(figures["cases_per_second"]) and positive(figures["wall_seconds"]), figures
        for name in ("p50_ms", "p95_ms", "p99_ms"):
            assert positive(figures["decide"][name]), figures["decide"]
        assert figures["decide"]["n"] == 6 * 7  # every task of every case decided once
        assert positive(config["idle"][f"{side}_decide"]["p50_ms"])
        cpu = config["cpu_seconds_per_case"][side]
        assert positive(cpu["worker"]) and positive(cpu["temporal"]) and positive(cpu["total"]), cpu
    assert config["engine"]["errors"] == {}
    assert positive(config["throughput_ratio"]) and positive(config["throughput_ratio_durable"])
    assert positive(config["cpu_seconds_per_case"]["engine"]["api"])
    assert positive(config["cpu_seconds_per_case"]["durable"]["api"])
    assert config["cpu_seconds_per_case"]["bare"]["api"] is None  # the bare has no HTTP hop
    engine, durable, bare = (config["shape"][side] for side in ("engine", "durable", "bare"))
    assert engine["updates"] == engine["human_steps"] == durable["updates"] == 14  # claim + decide per task
    for count in ("updates", "activities", "local_activities"):
        assert bare[count] == engine[count], count
    # the durable bare's update completes in the task that accepts it: no activity, one task per step
    assert durable["activities"] == 0 and durable["critical_path_workflow_tasks_per_step"] == 1
    assert positive(engine["server_tasks_per_update"]) and positive(engine["workflow_tasks"])
    assert engine["critical_path_workflow_tasks_per_step"] >= 1
    assert [v["target"].split(" ")[0] for v in config["verdicts"]] == [
        "throughput", "throughput", "workflow", "decide", "decide",
    ]  # fmt: skip
    assert all(isinstance(v["met"], bool) for v in config["verdicts"])
    assert printout.count("TARGET ") == 7  # five judged here, the replay and memory ones named
    assert config["notes"] == []


def test_quick_worker_memory_writes_engine_and_bare_rss(tmp_path: Path) -> None:
    printout, report = run_quick("worker_memory.py", tmp_path / "memory.json")
    assert "| engine" in printout
    assert report["cases"] == 100
    for side in ("engine", "bare"):
        for name in ("idle_rss_mb", "loaded_rss_mb", "peak_rss_mb"):
            assert positive(report[side][name]), report[side]
    assert positive(report["rss_ratio"])
    assert report["max_cached_workflows"]["engine"]


def test_quick_inbox_benchmark_writes_positive_figures_next_to_baselines(tmp_path: Path) -> None:
    printout, figures = run_quick("inbox.py", tmp_path / "inbox.json")
    assert "p99" in printout and "baseline" in printout and "target inbox p99" in printout

    assert figures["quick"] is True
    assert figures["data"]["open_tasks"] == 5_000 and figures["data"]["roles"] == 200
    assert figures["machine"]["cpu_count"] >= 1 and figures["machine"]["postgresql_version"]
    for part in ("query_layer", "http", "console"):
        baseline = figures[part]["baseline"]
        assert baseline["samples"] == 200 and 0 < baseline["p50_ms"] <= baseline["p99_ms"]
        assert len(figures[part]["scenarios"]) >= 3
        for name, one in figures[part]["scenarios"].items():
            assert one["samples"] == 200, name
            assert 0 < one["p50_ms"] <= one["p95_ms"] <= one["p99_ms"] <= one["max_ms"], name
            assert one["ratio_p99_to_baseline"] > 0, name
            assert one["mean_rows"] > 0, name  # the pages were not empty
            assert isinstance(one["meets_target"], bool), name
    assert figures["target"]["p99_ms"] == 20.0 and isinstance(figures["target"]["met"], bool)
    assert figures["target"]["worst_console_page_p99_ms"] > 0 and isinstance(figures["target"]["console_met"], bool)


def test_quick_search_benchmark_writes_positive_figures_next_to_the_baseline(tmp_path: Path) -> None:
    printout, figures = run_quick("search.py", tmp_path / "search.json")
    assert "p99" in printout and "baseline" in printout and "target search p99" in printout

    assert figures["quick"] is True and figures["data"]["cases"] == 5_000
    baseline = figures["query_layer"]["baseline"]
    assert baseline["samples"] == 100 and 0 < baseline["p50_ms"] <= baseline["p99_ms"]
    assert len(figures["query_layer"]["scenarios"]) == 10
    for name, one in figures["query_layer"]["scenarios"].items():
        assert one["samples"] == 100, name
        assert 0 < one["p50_ms"] <= one["p95_ms"] <= one["p99_ms"] <= one["max_ms"], name
        assert one["mean_rows"] > 0, name  # every search found cases
    assert figures["target"]["p99_ms"] == 50.0 and isinstance(figures["target"]["met"], bool)


def test_quick_replay_benchmark_writes_figures_for_the_baseline_and_the_cli(tmp_path: Path) -> None:
    printout, result = run_quick("replay.py", tmp_path / "replay.json")
    assert "clones of" in printout and "vs baseline" in printout

    assert result["machine"]["cpu_count"] >= 1 and result["machine"]["temporalio"]
    corpus = result["corpus"]
    assert corpus["histories"] > 0 and corpus["events"] > 0 and corpus["recorded"]
    figures = {figure["name"]: figure for figure in result["figures"]}
    assert set(figures) == {"baseline", "cli"}
    for figure in figures.values():
        assert figure["histories"] == corpus["histories"] and figure["events"] == corpus["events"]
        assert figure["failed"] == 0
        assert figure["seconds"] > 0 and figure["histories_per_second"] > 0 and figure["events_per_second"] > 0
        assert figure["ratio_to_baseline"] > 0
    miss = result["cache_miss"]
    assert miss["history"] == "project-approval-full.json" and miss["events"] > 0
    for runner in ("worker_runner", "sandboxed"):
        assert 0 < miss[runner]["cpu_ms_min"] <= miss[runner]["cpu_ms_median"], miss
    assert isinstance(miss["meets_target"], bool) and "cache-miss replay" in printout


def test_quick_metrics_overhead_measures_both_sides_in_one_run(tmp_path: Path) -> None:
    printout, report = run_quick("metrics_overhead.py", tmp_path / "metrics.json")
    assert "overhead" in printout
    assert [r["metrics"] for r in report["rounds"]] == [False, True]  # off, then on, on the same servers
    assert all(positive(r["cases_per_second"]) and r["errors"] == {} for r in report["rounds"])
    assert report["rounds"][1]["scrapes"] > 0 and report["rounds"][0]["scrapes"] == 0
    assert positive(report["off_cases_per_second"]) and positive(report["on_cases_per_second"])


def test_quick_reports_benchmark_writes_every_grouping_next_to_the_baseline(tmp_path: Path) -> None:
    printout, figures = run_quick("reports.py", tmp_path / "reports.json")
    assert "baseline" in printout and "target summary" in printout

    assert figures["quick"] is True and figures["data"]["cases"] == 5_000
    assert figures["data"]["received_in_the_year"] == 5_000 and figures["data"]["open_tasks"] > 0
    baseline = figures["query_layer"]["baseline"]
    assert baseline["samples"] == 5 and 0 < baseline["p50_ms"] <= baseline["max_ms"]
    scenarios = figures["query_layer"]["scenarios"]
    assert sorted(scenarios) == [f"summary grouped by {g}" for g in ("month", "process", "stage", "unit")]
    for name, one in scenarios.items():
        assert one["samples"] == 5 and 0 < one["p50_ms"] <= one["max_ms"], name
        assert one["mean_rows"] > 0 and one["ratio_p50_to_baseline"] > 0, name  # every grouping found groups
    assert figures["target"]["max_ms"] == 1000.0 and isinstance(figures["target"]["met"], bool)
