"""The throughput benchmark runs end to end (``--quick``: a handful of cases) and prints its figures.

No timing is asserted: the figures depend on the machine. This only guards the benchmark against rot.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "approval_throughput.py"


def test_quick_benchmark_prints_figures_for_both_variants_and_the_ratio() -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH), "--quick"], capture_output=True, text=True, timeout=120, cwd=BENCH.parents[1]
    )
    assert run.returncode == 0, f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}"
    out = run.stdout
    for figure in ("cases/s", "decide p50", "decide p95"):
        assert figure in out
    assert "A  SQLite default journal" in out and "B  SQLite journal_mode=WAL" in out
    assert "ratio B/A" in out
    assert "journal of the SQLite file on disk: WAL" in out  # variant B really ran with WAL
    assert "16 decide samples" in out  # 4 cases x 4 decisions, per variant
