"""Auditing a case that outlives one workflow run: supervision, a child case and continue-as-new.

The case keeps one workflow id, one event sequence and one hash chain across runs, so export, verify and
cross-check take every run's history, replay replays each run on its own, and the timeline and the state
fold know the events of supervision, child cases and continuation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from approvals.audit.archive import archived_runs
from approvals.audit.archiver import archive_case
from approvals.audit.bundle import verify_bundle
from approvals.audit.crosscheck import decision_requests, verify
from approvals.audit.findings import FindingKind, Severity
from approvals.audit.history import continued_as, continued_from, is_running, recorded_batches
from approvals.audit.live import case_timeline, export_case, fetch_case, verify_case
from approvals.audit.replay import replay_all, replay_parallel
from approvals.audit.state import state_at
from approvals.audit.timeline import timeline
from schemas.events import DomainEvent
from schemas.process import Decision, Parallel
from tests.cases import ALICE, BOB, decide, definition, finished, open_tasks, person, stage, start_case, view_when
from tests.fixtures.temporal import EngineWorker
from tests.test_audit import (
    TRUSTED,
    _cli,
    _errors,
    assert_state_agrees_with_the_recorded_projections,
    key_files,
    notary,
)
from tests.test_kernel_supervision import ADJUSTER, INSPECTOR, OFFICIAL, decide_open, supervised
from workflows.kernel import ApprovalWorkflow


@dataclass(frozen=True)
class SupervisedCase:
    case_id: str
    child_id: str
    runs: list[WorkflowHistory]
    events: list[DomainEvent]

    @property
    def carried_seq(self) -> int:
        """The last seq of run 1 (what run 2 carried in)."""
        [continued] = [event for event in self.events if event.type == "case.continued"]
        return continued.seq - 1


@pytest.fixture(scope="module")
async def supervised_case(
    time_skipping_env: WorkflowEnvironment, engine_worker: EngineWorker, db_pool: asyncpg.Pool
) -> SupervisedCase:
    """Approved, then 3 reviews (2 per run): review 2 rejects and opens an adjustment child case; review 3 is
    in the second run (continued as new); the case ends approved after the last review."""
    env = time_skipping_env
    async with engine_worker(env) as queue:
        handle = await start_case(env.client, queue, supervised())
        await decide_open(env, handle.id, OFFICIAL)
        await env.sleep(timedelta(days=31))
        await decide_open(env, handle.id, INSPECTOR)
        await env.sleep(timedelta(days=30))
        await decide_open(env, handle.id, INSPECTOR, Decision.reject, comment="capacity to take on the power fell")
        child_id = f"power-adjustment:{handle.id.split(':', 1)[1]}.adj2"
        await decide_open(env, child_id, ADJUSTER)
        await env.sleep(timedelta(days=31))
        await decide_open(env, handle.id, INSPECTOR)
        await finished(env, env.client.get_workflow_handle_for(ApprovalWorkflow.run, handle.id))
    runs, events = await fetch_case(env.client, db_pool, handle.id)
    return SupervisedCase(case_id=handle.id, child_id=child_id, runs=runs, events=events)


# ------------------------------------------------------------------ runs, verify, cross-check


async def test_every_run_is_fetched_in_order_and_the_case_verifies_across_runs(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, supervised_case: SupervisedCase
) -> None:
    first, second = supervised_case.runs  # exactly two runs
    assert continued_from(first) is None and continued_as(first) == second.run_id
    assert continued_from(second) == first.run_id and continued_as(second) is None
    assert is_running(supervised_case.runs) is False

    report = await verify_case(time_skipping_env.client, db_pool, supervised_case.case_id)
    assert report.ok and report.findings == [], report.findings
    assert report.run_ids == [first.run_id, second.run_id]
    assert report.events == report.history_events == report.last_seq == len(supervised_case.events)
    # Both runs recorded events, and an update was accepted in each.
    assert {batch.run for batch in recorded_batches(supervised_case.runs)} == {1, 2}
    assert {request.run for request in decision_requests(supervised_case.runs)} == {1, 2}

    # Against the latest run alone (what the tools read before), the record says that run 1 is missing.
    alone = verify(supervised_case.case_id, supervised_case.events, second)
    assert [f.kind for f in alone.findings] == [FindingKind.run_missing]
    assert alone.history_events == len(supervised_case.events) - supervised_case.carried_seq


async def test_the_child_case_verifies_on_its_own(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, supervised_case: SupervisedCase
) -> None:
    report = await verify_case(time_skipping_env.client, db_pool, supervised_case.child_id)
    assert report.ok and report.findings == [] and len(report.run_ids) == 1


def test_a_record_lacking_runs_says_so(supervised_case: SupervisedCase) -> None:
    first, second = supervised_case.runs
    events = supervised_case.events

    # The last run exported was not the last run: the run it continued into is missing, and its events too.
    errors = _errors(verify(supervised_case.case_id, events, [first]))
    assert (None, FindingKind.run_missing) in errors
    assert {seq for seq, kind in errors if kind is FindingKind.not_in_history} == set(
        range(supervised_case.carried_seq + 1, len(events) + 1)
    )

    # The earlier run's history is gone (retention): the rows before it rest on the hash run 2 carried in.
    report = verify(supervised_case.case_id, events, [second])
    assert report.ok, report.findings
    assert [(f.kind, f.severity) for f in report.findings] == [(FindingKind.run_missing, Severity.note)]
    edited = [
        event.model_copy(update={"hash": "0" * 64}) if event.seq == supervised_case.carried_seq else event
        for event in events
    ]
    assert (supervised_case.carried_seq, FindingKind.differs_from_history) in _errors(
        verify(supervised_case.case_id, edited, [second])
    )

    # Runs out of order do not link up.
    assert (None, FindingKind.run_missing) in _errors(verify(supervised_case.case_id, events, [second, first]))


@pytest.fixture
async def tamper(superuser_pool: asyncpg.Pool):
    async with superuser_pool.acquire() as connection:
        await connection.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        try:
            yield connection
        finally:
            await connection.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")


async def test_a_row_of_the_second_run_tampered_with_is_found_at_its_seq(
    time_skipping_env: WorkflowEnvironment,
    db_pool: asyncpg.Pool,
    tamper: asyncpg.Connection,
    supervised_case: SupervisedCase,
) -> None:
    case_id = supervised_case.case_id
    [decided] = [
        e for e in supervised_case.events if e.type == "task.decided" and e.seq > supervised_case.carried_seq
    ]  # review 3, decided in run 2
    original = await tamper.fetchval(
        "SELECT payload::text FROM audit_events WHERE case_id = $1 AND seq = $2", case_id, decided.seq
    )
    await tamper.execute(
        "UPDATE audit_events SET payload = jsonb_set(payload, '{decision}', '\"reject\"') "
        "WHERE case_id = $1 AND seq = $2",
        case_id,
        decided.seq,
    )
    try:
        report = await verify_case(time_skipping_env.client, db_pool, case_id)
    finally:
        await tamper.execute(
            "UPDATE audit_events SET payload = $3::text::jsonb WHERE case_id = $1 AND seq = $2",
            case_id,
            decided.seq,
            original,
        )
    assert _errors(report) == {(decided.seq, FindingKind.edited), (decided.seq, FindingKind.differs_from_history)}
    messages = [f.message for f in report.findings if f.kind is FindingKind.differs_from_history]
    assert any("the decide request by inspector (history event" in m and "of run 2)" in m for m in messages)
    assert (await verify_case(time_skipping_env.client, db_pool, case_id)).ok  # restored


# ------------------------------------------------------------------ export, bundles, replay


@pytest.fixture
async def bundle(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, supervised_case: SupervisedCase, tmp_path: Path
) -> Path:
    return await export_case(time_skipping_env.client, notary(db_pool), supervised_case.case_id, tmp_path / "export")


async def test_export_writes_every_run_and_the_bundle_verifies(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, supervised_case: SupervisedCase, tmp_path: Path
) -> None:
    directory = await export_case(time_skipping_env.client, notary(db_pool), supervised_case.case_id, tmp_path)
    manifest = json.loads((directory / "manifest.json").read_text())
    first, second = supervised_case.runs

    assert set(manifest["files"]) == {"history.json", "history-run-2.json", "events.json"}
    assert manifest["run_id"] == first.run_id and manifest["run_ids"] == [first.run_id, second.run_id]
    assert [(r["run"], r["file"], r["continued_from"]) for r in manifest["runs"]] == [
        (1, "history.json", None),
        (2, "history-run-2.json", first.run_id),
    ]
    assert manifest["child_case_ids"] == [supervised_case.child_id] and manifest["workflow_closed"] is True
    assert manifest["history_events"] == len(first.events) + len(second.events)
    run2 = json.loads((directory / "history-run-2.json").read_text())["events"][0]
    assert run2["workflowExecutionStartedEventAttributes"]["continuedExecutionRunId"] == first.run_id

    report = verify_bundle(directory, TRUSTED)
    assert report.ok and report.findings == [] and report.run_ids == manifest["run_ids"]


def test_cli_verifies_and_replays_every_run_of_a_bundle(bundle: Path, tmp_path: Path) -> None:
    _, public = key_files(tmp_path)
    verified = _cli("verify", str(bundle), "--public-key", str(public))
    assert verified.exit_code == 0 and "matches the Temporal history of 2 runs" in verified.output, verified.output
    replayed = _cli("replay", str(bundle.parent))
    assert replayed.exit_code == 0 and "2 of 2 replayed cleanly" in replayed.output, replayed.output


def test_a_tampered_row_of_the_second_run_in_a_bundle_is_found_at_its_seq(
    bundle: Path, supervised_case: SupervisedCase, tmp_path: Path
) -> None:
    events = json.loads((bundle / "events.json").read_text())
    [continued] = [event for event in events if event["type"] == "case.continued"]
    continued["payload"]["supervision_round"] = 7
    (bundle / "events.json").write_text(json.dumps(events))

    report = verify_bundle(bundle, TRUSTED)
    seq = continued["seq"]
    assert seq == supervised_case.carried_seq + 1
    assert _errors(report) == {
        (None, FindingKind.bundle_digest), (seq, FindingKind.edited), (seq, FindingKind.differs_from_history),
    }  # fmt: skip
    tampered = _cli("verify", str(bundle), "--json", "--public-key", str(key_files(tmp_path)[1]))
    assert tampered.exit_code == 3
    assert (seq, "edited") in {(f["seq"], f["kind"]) for f in json.loads(tampered.output)[0]["findings"]}


def test_a_bundle_missing_its_second_run_does_not_verify(bundle: Path) -> None:
    (bundle / "history-run-2.json").unlink()
    report = verify_bundle(bundle, TRUSTED)
    kinds = {kind for _, kind in _errors(report)}
    assert {FindingKind.bundle_digest, FindingKind.run_missing, FindingKind.not_in_history} <= kinds


async def test_every_run_replays_on_its_own(bundle: Path, supervised_case: SupervisedCase) -> None:
    verdicts = await replay_all([bundle])
    assert [v.ok for v in verdicts] == [True, True], [v.message for v in verdicts]
    assert [v.run_id for v in verdicts] == [run.run_id for run in supervised_case.runs]
    assert [v.source for v in verdicts] == [f"{bundle} (run 1 of 2)", f"{bundle} (run 2 of 2)"]
    assert [v.history_events for v in verdicts] == [len(run.events) for run in supervised_case.runs]

    parallel = list(replay_parallel([bundle], jobs=2))
    assert sorted((v.source, v.ok) for v in parallel) == sorted((v.source, v.ok) for v in verdicts)


@pytest.mark.usefixtures("live_settings")
def test_cli_replays_and_verifies_every_run_of_a_live_case(supervised_case: SupervisedCase) -> None:
    replayed = _cli("replay", "--case", supervised_case.case_id)
    assert replayed.exit_code == 0 and "2 of 2 replayed cleanly" in replayed.output, replayed.output
    assert "(run 2 of 2)" in replayed.output
    assert _cli("verify", supervised_case.case_id).exit_code == 0


@pytest.fixture
def live_settings(monkeypatch: pytest.MonkeyPatch, time_skipping_env: WorkflowEnvironment, database_url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TEMPORAL_ADDRESS", time_skipping_env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", time_skipping_env.client.namespace)


# ------------------------------------------------------------------ timeline and state at


def test_the_fold_agrees_with_every_projection_of_every_run(supervised_case: SupervisedCase) -> None:
    assert_state_agrees_with_the_recorded_projections(supervised_case.runs)


def test_timeline_tells_supervision_the_child_and_the_continuation(supervised_case: SupervisedCase) -> None:
    rows = timeline(supervised_case.events)
    actions = {row.type: [r.action for r in rows if r.type == row.type] for row in rows}
    first_run = supervised_case.runs[0].run_id

    assert actions["supervision.started"][0].startswith(
        "supervision started: the decision stays in force under review every 30 days, at most 3 reviews"
    )
    assert actions["timer.started"][0].startswith("timer started for review 1: fires ")
    assert actions["timer.fired"] == [f"timer fired: review {n} is due" for n in (1, 2, 3)]
    assert actions["case.child_started"] == [
        f"child case {supervised_case.child_id} started (power-adjustment) after review 2; it keeps its own record"
    ]
    assert actions["case.child_completed"] == [f"child case {supervised_case.child_id} completed: approved"]
    assert actions["case.continued"] == [
        f"case continued as new in run 2 (previous run {first_run}), state and hash chain carried over; "
        "2 review(s) so far"
    ]
    assert actions["supervision.ended"] == ["supervision ended after 3 review(s): the decision stands"]
    review = next(row for row in rows if row.type == "stage.started" and row.stage_id == "annual_review")
    assert review.stage_title == "Annual Review"  # the supervision's review stage is known by its title


async def test_timeline_of_the_child_names_its_parent(db_pool: asyncpg.Pool, supervised_case: SupervisedCase) -> None:
    rows = await case_timeline(db_pool, supervised_case.child_id)
    assert rows[0].action.endswith(f", a child case of {supervised_case.case_id}")


def test_state_at_folds_supervision_children_and_runs(supervised_case: SupervisedCase) -> None:
    events = supervised_case.events
    seq_of = {event.type: event.seq for event in events}  # the last of each type

    supervised = state_at(events, seq=seq_of["supervision.started"])
    assert (supervised.status, supervised.outcome, supervised.run) == ("under_supervision", "approved", 1)
    assert supervised.next_review_at is not None and supervised.supervision_round == 0

    adjusting = state_at(events, seq=seq_of["case.child_started"])
    assert adjusting.child_cases == {supervised_case.child_id: None} and adjusting.supervision_round == 2

    continued = state_at(events, seq=seq_of["case.continued"])
    assert (continued.status, continued.run, continued.supervision_round) == ("under_supervision", 2, 2)
    assert continued.child_cases == {supervised_case.child_id: "approved"}

    final = state_at(events)
    assert (final.status, final.outcome, final.run, final.supervision_round) == ("approved", "approved", 2, 3)
    assert final.next_review_at is None and final.open_tasks == [] and final.last_hash == events[-1].hash


# ------------------------------------------------------------------ a parallel branch abandoned


async def test_an_abandoned_branch_is_told_and_folded(
    time_skipping_env: WorkflowEnvironment, engine_worker: EngineWorker, db_pool: asyncpg.Pool
) -> None:
    dave = person("dave", "reviewer")
    process = definition(
        stage("acceptance", assignees=("alice",)),
        Parallel(
            id="opinions",
            title="Opinions",
            branches=((stage("land", assignees=("bob",)),), (stage("environment", assignees=("dave",)),)),
        ),
    )

    async def first_open(handle, stage_id: str):
        return open_tasks(await view_when(handle, lambda v: bool(open_tasks(v, stage_id))), stage_id)[0]

    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        await decide(handle, ALICE, await first_open(handle, "acceptance"), Decision.approve)
        land = await first_open(handle, "land")
        await decide(handle, BOB, land, Decision.return_, comment="missed the land title", return_to="acceptance")
        await decide(handle, ALICE, await first_open(handle, "acceptance"), Decision.approve)
        await decide(handle, BOB, await first_open(handle, "land"), Decision.approve)
        await decide(handle, dave, await first_open(handle, "environment"), Decision.approve)
        await finished(time_skipping_env, handle)

    runs, events = await fetch_case(time_skipping_env.client, db_pool, handle.id)
    assert verify(handle.id, events, runs).ok
    assert_state_agrees_with_the_recorded_projections(runs)
    [abandoned] = [row for row in timeline(events) if row.type == "stage.abandoned"]
    assert abandoned.stage_id == "environment"
    assert abandoned.action.startswith("stage “Environment” abandoned (round 1): another branch returned the case")
    state = state_at(events, seq=abandoned.seq)
    assert "environment" not in state.current_stages and not any(
        k.startswith("stage:environment") for k in state.clocks
    )
    assert state_at(events).status == "approved"


# ------------------------------------------------------------------ the archive keeps every run


async def test_every_run_of_a_continued_case_is_archived_once_and_verifies_from_the_archive(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, supervised_case: SupervisedCase
) -> None:
    case_id = supervised_case.case_id
    assert await archive_case(time_skipping_env.client, db_pool, case_id) == 2
    assert await archive_case(time_skipping_env.client, db_pool, case_id) == 0
    first, second = supervised_case.runs
    rows = await db_pool.fetch(
        "SELECT run_id, close_status, continued_from FROM archived_histories WHERE workflow_id = $1 ORDER BY closed_at",
        case_id,
    )
    assert [tuple(row) for row in rows] == [
        (first.run_id, "continued_as_new", None),
        (second.run_id, "completed", first.run_id),
    ]
    archived = await archived_runs(db_pool, case_id)
    assert {run: len(history.events) for run, history in archived.items()} == {
        first.run_id: len(first.events),
        second.run_id: len(second.events),
    }
    report = verify(case_id, supervised_case.events, list(archived.values()))
    assert report.ok and report.run_ids == [first.run_id, second.run_id], report.findings
