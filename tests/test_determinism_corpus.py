"""The determinism regression corpus demonstrably catches a workflow change made without ``workflow.patched``.

``tests/test_replay.py`` replays every history in ``tests/histories/`` through the current code; this module
proves that such a replay would fail on an unguarded change and pass on the same change behind
``workflow.patched``. How to re-record the corpus: ``tests/histories/README.md``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio import workflow

# The workflow variants below are defined in this module, so the replayer's sandbox imports it: pass every
# other import through, or the sandbox re-imports C extensions (asyncpg) and the interpreter crashes later.
with workflow.unsafe.imports_passed_through():
    import pytest
    from temporalio.client import WorkflowHistory
    from temporalio.testing import WorkflowEnvironment

    from approvals.audit.history import history_from_json
    from approvals.audit.replay import replay_all
    from schemas.case import CaseInput, CaseView
    from tests.fixtures.temporal import EngineWorker
    from tests.test_audit import run_two_stage_case
    from workflows.catalog import WORKFLOWS
    from workflows.kernel import KernelWorkflow

HISTORIES = Path(__file__).parent / "histories"
CORPUS = sorted(HISTORIES.rglob("*.json"))


@workflow.defn(name="ApprovalWorkflow")
class TimerBeforeFirstStage(KernelWorkflow):
    """The generic workflow as someone might change it: a pause before the case starts, unguarded."""

    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        await workflow.sleep(timedelta(seconds=1))
        return await self.run_case()


@workflow.defn(name="ApprovalWorkflow")
class PatchedTimerBeforeFirstStage(KernelWorkflow):
    """The same change done right: only executions started after it take the new path."""

    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        if workflow.patched("pause-before-first-stage"):
            await workflow.sleep(timedelta(seconds=1))
        return await self.run_case()


@pytest.fixture(scope="module")
async def recorded(time_skipping_env: WorkflowEnvironment, engine_worker: EngineWorker) -> list[WorkflowHistory]:
    """Every corpus history, and one recorded now (so the proof holds even while the corpus is empty)."""
    async with engine_worker(time_skipping_env) as queue:
        case_id = await run_two_stage_case(time_skipping_env, queue)
    fresh = await time_skipping_env.client.get_workflow_handle(case_id).fetch_history()
    return [history_from_json(path.read_text()) for path in CORPUS] + [fresh]


async def test_recorded_histories_replay_cleanly_through_the_unchanged_code(recorded: list[WorkflowHistory]) -> None:
    verdicts = await replay_all(recorded)

    assert [v.ok for v in verdicts] == [True] * len(recorded), [v.message for v in verdicts]


def with_generic_workflow(variant: type) -> list[type]:
    """The engine's workflows with the generic one (``ApprovalWorkflow``) replaced by ``variant``."""
    return [variant, *(w for w in WORKFLOWS if w.__temporal_workflow_definition.name != "ApprovalWorkflow")]  # type: ignore[attr-defined]


def generic(history: WorkflowHistory) -> bool:
    started = history.events[0].workflow_execution_started_event_attributes
    return started.workflow_type.name == "ApprovalWorkflow"


async def test_the_corpus_catches_a_change_made_without_workflow_patched(recorded: list[WorkflowHistory]) -> None:
    verdicts = await replay_all(recorded, workflows=with_generic_workflow(TimerBeforeFirstStage))

    changed = [v for v, history in zip(verdicts, recorded, strict=True) if generic(history)]
    untouched = [v for v, history in zip(verdicts, recorded, strict=True) if not generic(history)]
    assert changed and all(not v.ok for v in changed)
    assert {v.error_type for v in changed} == {"NondeterminismError"}
    assert all(v.event_id is not None for v in changed), [v.message for v in changed]
    assert all(v.ok for v in untouched), [v.message for v in untouched]


async def test_the_same_change_guarded_by_workflow_patched_replays_cleanly(recorded: list[WorkflowHistory]) -> None:
    verdicts = await replay_all(recorded, workflows=with_generic_workflow(PatchedTimerBeforeFirstStage))

    assert [v.ok for v in verdicts] == [True] * len(recorded), [v.message for v in verdicts]
