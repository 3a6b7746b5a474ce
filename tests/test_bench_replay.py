"""The replay benchmark runs end to end (``--quick``: a few dozen histories) and writes positive figures.

No timing is asserted: the figures depend on the machine. This only guards the benchmark against rot.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "replay.py"


def test_quick_replay_benchmark_writes_figures_for_the_baseline_and_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "replay.json"
    run = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BENCH.parents[1],
    )
    assert run.returncode == 0, f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}"
    assert "clones of" in run.stdout and "vs baseline" in run.stdout

    result = json.loads(out.read_text())
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
