"""Every saved history of a representative run (kernel and processes) replays against the current code.

A change to the workflows that would make a running case non-deterministic fails here. The histories are
recorded by ``.venv/bin/python -m tests.record_histories`` (see ``tests/histories/README.md``).
"""

from __future__ import annotations

import base64
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from approvals.audit.history import history_from_json
from approvals.audit.replay import (
    ReplayVerdict,
    history_paths,
    make_replayer,
    replay_all,
    replay_jobs,
    replay_parallel,
)

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


# ------------------------------------------------------------------ audit replay without the sandbox
# ``approvals audit replay`` leaves the sandbox out unless --sandbox (approvals.audit.replay.SANDBOX_FOR_AUDIT): the
# comparison of commands with the history that detects non-determinism must give the same verdicts.

_CURRENT = Path(__file__).parent / "histories"
"""The current recordings (sub-directories hold those of earlier workflow versions)."""


def _verdict_facts(verdicts: list[ReplayVerdict]) -> list[tuple[str, bool, str | None, int | None]]:
    return [(Path(v.source).name, v.ok, v.error_type, v.event_id) for v in verdicts]


@pytest.mark.parametrize("sandbox", [True, False], ids=["sandboxed", "unsandboxed"])
async def test_an_unguarded_change_fails_replay_with_or_without_the_sandbox(sandbox: bool) -> None:
    from tests.test_determinism_corpus import (
        PatchedTimerBeforeFirstStage,
        TimerBeforeFirstStage,
        generic,
        with_generic_workflow,
    )

    paths = sorted(_CURRENT.glob("*.json"))
    histories = [history_from_json(path.read_text(encoding="utf-8")) for path in paths]

    changed = await replay_all(histories, workflows=with_generic_workflow(TimerBeforeFirstStage), sandbox=sandbox)
    guarded = await replay_all(
        histories, workflows=with_generic_workflow(PatchedTimerBeforeFirstStage), sandbox=sandbox
    )

    failed = [v for v, history in zip(changed, histories, strict=True) if generic(history)]
    untouched = [v for v, history in zip(changed, histories, strict=True) if not generic(history)]
    assert failed and {v.error_type for v in failed} == {"NondeterminismError"}
    assert all(v.event_id is not None for v in failed), [v.message for v in failed]
    assert all(v.ok for v in untouched), [v.message for v in untouched]
    assert all(v.ok for v in guarded), [v.message for v in guarded]
    if not sandbox:  # the same verdicts, at the same history events, as in the sandbox
        in_sandbox = await replay_all(histories, workflows=with_generic_workflow(TimerBeforeFirstStage))
        assert [(v.ok, v.error_type, v.event_id) for v in changed] == [
            (v.ok, v.error_type, v.event_id) for v in in_sandbox
        ]


@pytest.fixture
def edited_corpus(tmp_path: Path) -> Path:
    """The corpus plus a history edited so that it no longer matches the code (its first stage renamed)."""
    for path in _CURRENT.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    data = json.loads((_CURRENT / "kernel-single-approve.json").read_text(encoding="utf-8"))
    payload = data["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    case_input = json.loads(base64.b64decode(payload["data"]))
    case_input["definition"]["steps"][0]["id"] = "intake"
    payload["data"] = base64.b64encode(json.dumps(case_input).encode()).decode()
    (tmp_path / "edited.json").write_text(json.dumps(data), encoding="utf-8")
    return tmp_path


def test_parallel_replay_gives_the_same_verdicts_with_or_without_the_sandbox(edited_corpus: Path) -> None:
    files = history_paths([edited_corpus])
    sandboxed = sorted(replay_parallel(files, jobs=2, sandbox=True), key=lambda v: v.source)
    unsandboxed = sorted(replay_parallel(files, jobs=2, sandbox=False), key=lambda v: v.source)

    assert _verdict_facts(unsandboxed) == _verdict_facts(sandboxed)
    [edited] = [v for v in unsandboxed if not v.ok]
    assert Path(edited.source).name == "edited.json"
    assert edited.error_type == "NondeterminismError" and edited.event_id is not None, edited.message


@pytest.mark.parametrize(
    "flags", [[], ["--jobs", "2"], ["--sandbox", "--jobs", "2"]], ids=["default", "two-processes", "sandbox"]
)
def test_cli_replay_finds_the_edited_history(edited_corpus: Path, flags: list[str]) -> None:
    from typer.testing import CliRunner, Result

    from approvals.cli import app

    def invoke() -> Result:
        return CliRunner(env={"COLUMNS": "250"}).invoke(
            app, ["audit", "replay", str(edited_corpus), "--quiet", *flags], catch_exceptions=False
        )

    # In a thread of its own: the command's asyncio.run() would leave the main thread without an event loop,
    # which fixtures of other modules (asyncio.get_event_loop()) still expect.
    with ThreadPoolExecutor(1) as thread:
        result = thread.submit(invoke).result()

    total = len(list(edited_corpus.glob("*.json")))
    assert result.exit_code == 3, result.output
    assert f"{total - 1} of {total} replayed cleanly" in result.output, result.output
    assert "edited.json at history event" in result.output and "NondeterminismError" in result.output
    assert ("in the sandbox" if "--sandbox" in flags else "without the sandbox") in result.output


def test_replay_jobs_one_process_per_cpu_for_enough_files() -> None:
    assert replay_jobs(1) == 1
    assert replay_jobs(5, 8) == 5
    assert replay_jobs(100, 3) == 3
    assert 1 <= replay_jobs(10_000) <= (os.cpu_count() or 1)
