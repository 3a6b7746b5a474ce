"""The inbox benchmark runs end to end (``--quick``: 5,000 open tasks, 200 samples) and writes its figures.

No timing is asserted: the figures depend on the machine. This only guards the benchmark against rot.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "inbox.py"


def test_quick_inbox_benchmark_writes_positive_figures_next_to_baselines(tmp_path: Path) -> None:
    out = tmp_path / "inbox.json"
    run = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=BENCH.parents[1],
    )
    assert run.returncode == 0, f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}"
    assert "p99" in run.stdout and "baseline" in run.stdout and "target inbox p99" in run.stdout

    figures = json.loads(out.read_text())
    assert figures["quick"] is True
    assert figures["data"]["open_tasks"] == 5_000 and figures["data"]["roles"] == 200
    assert figures["machine"]["cpu_count"] >= 1 and figures["machine"]["postgresql_version"]
    for part in ("query_layer", "http"):
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
