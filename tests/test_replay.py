"""Every saved history of a representative run (kernel and processes) replays against the current code.

A change to the workflows that would make a running case non-deterministic fails here. The histories are
recorded by ``.venv/bin/python -m tests.record_histories`` (see ``tests/histories/README.md``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from approvals.audit import history_from_json, make_replayer

CORPUS = Path(__file__).parent / "histories"
HISTORIES = sorted(CORPUS.rglob("*.json"))
"""The current recordings, and in sub-directories those of earlier workflow versions cases may still run on."""


def test_the_representative_runs_are_recorded() -> None:
    names = {path.stem for path in CORPUS.glob("*.json")}
    assert {
        "kernel-single-approve", "kernel-all-with-reject", "kernel-quorum-vote",
        "kernel-supplement-then-approve", "kernel-return-and-rereview", "project-approval-full",
        "power-adjustment-under-supervision", "error-tolerance-rectification-check", "talent-policy-under-review",
    } <= names  # fmt: skip


@pytest.mark.parametrize("path", HISTORIES, ids=[str(path.relative_to(CORPUS).with_suffix("")) for path in HISTORIES])
async def test_history_replays_without_non_determinism(path: Path) -> None:
    history = history_from_json(path.read_text(encoding="utf-8"))
    result = await make_replayer().replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
