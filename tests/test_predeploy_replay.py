"""Replay before deploy: ``approvals audit replay --from-temporal`` replays a sample of live runs (running and
recently closed) through the code at hand, in the sandbox as CI does, and names the case and history event a
build cannot replay (issue 20; the procedure: docs/releases.md)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from approvals.audit.live import running_or_recently_closed, sampled_runs
from approvals.cli import app
from tests.cases import ALICE, decide, definition, open_tasks, stage, start_case, view_when
from tests.fixtures.temporal import EngineWorker
from tests.test_determinism_corpus import TimerBeforeFirstStage, with_generic_workflow


@pytest.fixture(scope="module")
async def live_cases(dev_server_env: WorkflowEnvironment, engine_worker: EngineWorker) -> list[str]:
    """Two cases on the dev server: one decided (closed), one waiting for its second stage (running)."""
    env = dev_server_env
    async with engine_worker(env) as queue:
        closed = await start_case(env.client, queue, definition(stage("review", assignees=("alice",))))
        await decide(closed, ALICE, open_tasks(await view_when(closed, open_tasks))[0])
        await closed.result()
        running = await start_case(
            env.client, queue, definition(stage("review", assignees=("alice",)), stage("sign_off", assignees=("bob",)))
        )
        await decide(running, ALICE, open_tasks(await view_when(running, open_tasks))[0])
        await view_when(running, lambda v: bool(open_tasks(v, "sign_off")))
    ids = [closed.id, running.id]
    for _ in range(100):  # visibility is eventually consistent
        listed = [name async for name, _ in sampled_runs(env.client, 100, _only(ids))]
        if len(listed) == 2:
            break
        await asyncio.sleep(0.1)
    return ids


def _only(case_ids: list[str]) -> str:
    return " OR ".join(f'WorkflowId = "{case_id}"' for case_id in case_ids)


def _replay_live(env: WorkflowEnvironment, *flags: str) -> Result:
    def invoke() -> Result:
        address = env.client.service_client.config.target_host
        runner = CliRunner(env={"COLUMNS": "250", "TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "default"})
        return runner.invoke(app, ["audit", "replay", "--from-temporal", *flags], catch_exceptions=False)

    with ThreadPoolExecutor(1) as thread:  # the command's asyncio.run() needs a thread without a running loop
        return thread.submit(invoke).result()


async def test_the_default_sample_holds_running_and_recently_closed_runs(
    dev_server_env: WorkflowEnvironment, live_cases: list[str]
) -> None:
    listed = [name async for name, _ in sampled_runs(dev_server_env.client, 1000)]

    [closed, running] = live_cases
    assert any(name.startswith(f"case {closed} ") and name.endswith("completed)") for name in listed), listed
    assert any(name.startswith(f"case {running} ") and name.endswith("running)") for name in listed), listed


def test_the_default_query_is_running_or_closed_within_a_week() -> None:
    now = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
    assert running_or_recently_closed(now=now) == 'ExecutionStatus = "Running" OR CloseTime > "2026-12-01T10:00:00Z"'


def test_the_live_sample_replays_cleanly_through_the_code_at_hand(
    dev_server_env: WorkflowEnvironment, live_cases: list[str]
) -> None:
    result = _replay_live(dev_server_env, "--sample", "10", "--query", _only(live_cases))

    assert result.exit_code == 0, result.output
    assert "2 of 2 replayed cleanly" in result.output and "in the sandbox" in result.output
    assert all(case_id in result.output for case_id in live_cases)


def test_a_broken_build_is_found_and_the_case_and_event_are_named(
    dev_server_env: WorkflowEnvironment, live_cases: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The build at hand: the generic workflow with a timer added before its first stage, without a patch.
    monkeypatch.setattr("approvals.audit.replay.WORKFLOWS", with_generic_workflow(TimerBeforeFirstStage))

    result = _replay_live(dev_server_env, "--sample", "10", "--query", _only(live_cases))

    assert result.exit_code == 3, result.output
    assert "0 of 2 replayed cleanly" in result.output
    for case_id in live_cases:
        assert f"✘ case {case_id} (run " in result.output
    assert "at history event" in result.output and "NondeterminismError" in result.output


def test_query_without_from_temporal_is_refused() -> None:
    result = CliRunner().invoke(app, ["audit", "replay", "--query", 'WorkflowType = "X"'])
    assert result.exit_code == 2 and "--from-temporal" in result.output
