"""An operator resets a case's workflow (``temporal workflow reset``) and the record continues, not corrupted.

The reset run seals again, with new times, events the old run already recorded. The log keeps the old run's
events, marked superseded by a ``case.reset`` that continues the chain after them; the reset run's events
follow it. Verification (chain, cross-check against the Temporal history), the state fold and the timeline
understand it, and still catch a row edited afterwards. Resets need the real Temporal server (the
time-skipping test server cannot reset), so these tests run on the dev server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from approvals.audit.bundle import verify_bundle
from approvals.audit.crosscheck import VerifyReport, decision_requests, verify
from approvals.audit.findings import FindingKind, Severity
from approvals.audit.live import export_case, fetch_case, verify_case
from approvals.audit.replay import replay_all
from approvals.audit.state import state_at
from approvals.audit.timeline import timeline
from approvals.storage.queries import case_events
from schemas.case import CaseStatus, CaseView
from schemas.events import RESET_LEGAL_BASIS, DomainEvent, seal_event, superseded_by_resets
from schemas.process import Decision
from tests.cases import (
    ALICE,
    _poll,
    decide,
    decide_until_final,
    definition,
    last_update_task,
    open_tasks,
    recorded_when,
    reset_workflow,
    stage,
    start_case,
    view_when,
)
from tests.fixtures.temporal import EngineWorker
from tests.test_audit import TRUSTED, notary
from workflows.kernel import ApprovalWorkflow

TWO_STAGES = definition(stage("review", assignees=("alice",)), stage("sign_off", assignees=("bob",)))


@dataclass(frozen=True)
class ResetCase:
    case_id: str
    old_run_id: str
    new_run_id: str
    stored_before_reset: int
    """The log's last seq when the operator reset the workflow."""
    result: CaseView
    runs: list[WorkflowHistory]
    events: list[DomainEvent]
    report: VerifyReport

    @property
    def reset(self) -> DomainEvent:
        [reset] = [event for event in self.events if event.type == "case.reset"]
        return reset


async def logged_up_to_open_task(db_pool: asyncpg.Pool, handle: WorkflowHandle[ApprovalWorkflow, CaseView]) -> int:
    """The log's last seq once the case waits on an open task and has recorded every event up to it: a reset
    before then races the old run's recording, which Temporal does not stop (the new run then records one more
    ``case.reset`` after what the old run wrote late)."""
    view = await view_when(handle, open_tasks, timeout=30)
    return await _poll(
        lambda: db_pool.fetchval("SELECT max(seq) FROM audit_events WHERE case_id = $1", handle.id),
        lambda last: last == view.last_seq,
        lambda last: f"the log of {handle.id} ends at seq {last}, not at the view's {view.last_seq}",
        timeout=15,
    )


async def run_reset_case(
    env: WorkflowEnvironment,
    engine_worker: EngineWorker,
    db_pool: asyncpg.Pool,
    *,
    point: tuple[str, ...] | None = None,
) -> ResetCase:
    """A two-stage case, its first stage decided, reset (to ``point``: the CLI's arguments, or the workflow task
    that accepted the decision), then decided to the end."""
    async with engine_worker(env) as queue:
        handle = await start_case(env.client, queue, TWO_STAGES)
        await decide(handle, ALICE, open_tasks(await view_when(handle, open_tasks, timeout=30))[0])
        stored = await logged_up_to_open_task(db_pool, handle)
        old_run_id = (await handle.describe()).run_id
        reset_workflow(env, handle.id, *(point or ("--event-id", str(await last_update_task(handle)))))
        latest = env.client.get_workflow_handle_for(ApprovalWorkflow.run, handle.id)
        await decide_until_final(latest)
        result = await latest.result()
        new_run_id = (await latest.describe()).run_id
    runs, events = await fetch_case(env.client, db_pool, handle.id)
    return ResetCase(
        case_id=handle.id,
        old_run_id=old_run_id,
        new_run_id=new_run_id,
        stored_before_reset=stored,
        result=result,
        runs=runs,
        events=events,
        report=verify(handle.id, events, runs),
    )


@pytest.fixture(scope="module")
async def first_task_reset(
    dev_server_env: WorkflowEnvironment, engine_worker: EngineWorker, db_pool: asyncpg.Pool
) -> ResetCase:
    return await run_reset_case(dev_server_env, engine_worker, db_pool, point=("--type", "FirstWorkflowTask"))


@pytest.fixture(scope="module")
async def mid_case_reset(
    dev_server_env: WorkflowEnvironment, engine_worker: EngineWorker, db_pool: asyncpg.Pool
) -> ResetCase:
    return await run_reset_case(dev_server_env, engine_worker, db_pool)


def _errors(report: VerifyReport) -> list[str]:
    return [f"{f.seq} {f.kind}: {f.message}" for f in report.findings if f.severity is Severity.error]


# ------------------------------------------------------------------ reset to the first workflow task


async def test_a_case_reset_to_its_first_workflow_task_goes_on_to_its_decision(first_task_reset: ResetCase) -> None:
    case = first_task_reset

    assert case.result.status is CaseStatus.approved
    assert case.new_run_id != case.old_run_id


async def test_the_reset_is_recorded_after_every_event_the_old_run_recorded(first_task_reset: ResetCase) -> None:
    case, reset = first_task_reset, first_task_reset.reset

    assert reset.seq == case.stored_before_reset + 1
    assert reset.prev_hash == case.events[case.stored_before_reset - 1].hash
    assert reset.payload["superseded_from"] == 1
    assert reset.payload["superseded_to"] == case.stored_before_reset
    assert (reset.payload["old_run_id"], reset.payload["new_run_id"]) == (case.old_run_id, case.new_run_id)
    assert reset.payload["reason"].endswith("operator ops-1: stuck task")  # the CLI puts the OS user first
    assert (reset.actor.id, reset.legal_basis) == ("system", RESET_LEGAL_BASIS)
    # The old run's events stay, superseded; the new run starts the case again after the reset.
    assert [event.seq for event in case.events] == list(range(1, len(case.events) + 1))
    assert set(superseded_by_resets(case.events)) == set(range(1, reset.seq))
    assert case.events[reset.seq].type == "case.started"


async def test_a_case_reset_to_its_first_workflow_task_verifies(first_task_reset: ResetCase) -> None:
    report = first_task_reset.report

    assert report.ok, _errors(report)
    assert report.findings == []
    assert report.run_ids == [first_task_reset.new_run_id]  # not the old run its start event names


async def test_the_state_and_the_projections_come_from_the_reset_run(
    first_task_reset: ResetCase, db_pool: asyncpg.Pool
) -> None:
    case = first_task_reset
    state = state_at(case.events)

    assert state.status == "approved"
    assert {task.task_id for task in state.tasks} == {task.task_id for task in case.result.tasks}
    row = await db_pool.fetchrow("SELECT status, last_seq FROM cases WHERE case_id = $1", case.case_id)
    assert (row["status"], row["last_seq"]) == ("approved", case.events[-1].seq)
    waiting = await db_pool.fetchval(
        "SELECT count(*) FROM tasks WHERE case_id = $1 AND status IN ('open', 'claimed')", case.case_id
    )
    assert waiting == 0  # the old run's open task left every inbox
    # As the case stood before the reset, the old run's state still folds.
    assert state_at(case.events, seq=case.stored_before_reset).current_stages == ["sign_off"]


async def test_the_timeline_shows_the_reset_and_what_it_superseded(first_task_reset: ResetCase) -> None:
    case = first_task_reset
    rows = {row.seq: row for row in timeline(case.events)}
    reset = rows[case.reset.seq]

    assert "reset" in reset.action and case.old_run_id in reset.action
    assert "重置" in reset.action_zh and "第1至" in reset.action_zh
    assert reset.comment.endswith("operator ops-1: stuck task")
    assert all(rows[seq].superseded_by == case.reset.seq for seq in range(1, case.reset.seq))
    assert "superseded by the reset" in rows[1].action and "重置取代" in rows[1].action_zh
    assert all(row.superseded_by is None for seq, row in rows.items() if seq >= case.reset.seq)


async def test_the_live_verification_finds_the_superseded_rows_in_the_run_the_reset_replaced(
    dev_server_env: WorkflowEnvironment, db_pool: asyncpg.Pool, first_task_reset: ResetCase
) -> None:
    report = await verify_case(dev_server_env.client, db_pool, first_task_reset.case_id)

    assert report.ok and report.findings == [], _errors(report)


async def test_a_row_forged_onto_the_log_before_a_reset_is_not_laundered_by_it(
    dev_server_env: WorkflowEnvironment, engine_worker: EngineWorker, db_pool: asyncpg.Pool
) -> None:
    """Sealed onto the end of the chain, the forged row is tied to the ``case.reset`` like the old run's own rows;
    the old run's history, which never recorded it, gives it away."""
    env = dev_server_env
    async with engine_worker(env) as queue:
        handle = await start_case(env.client, queue, TWO_STAGES)
        last_seq = await logged_up_to_open_task(db_pool, handle)
        [last] = [event for event in await case_events(db_pool, handle.id) if event.seq == last_seq]
        forged = seal_event(
            **last.model_dump(exclude={"seq", "prev_hash", "hash", "type", "payload"}),
            seq=last.seq + 1,
            prev_hash=last.hash,
            type="task.decided",
            payload={"decision": "approve", "comment": "looks fine"},
        )
        await db_pool.execute(
            "INSERT INTO audit_events (case_id, seq, type, actor_id, actor_name, actor_roles, actor_unit, at, "
            "legal_basis, stage_id, task_id, payload, prev_hash, hash) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text::jsonb, $13, $14)",
            forged.case_id, forged.seq, forged.type, forged.actor.id, forged.actor.name, list(forged.actor.roles),
            forged.actor.unit, forged.at, forged.legal_basis, forged.stage_id, forged.task_id,
            json.dumps(forged.payload), forged.prev_hash, forged.hash,
        )  # fmt: skip
        reset_workflow(env, handle.id, "--type", "FirstWorkflowTask")
        latest = env.client.get_workflow_handle_for(ApprovalWorkflow.run, handle.id)
        await decide_until_final(latest)
        await latest.result()
    runs, events = await fetch_case(env.client, db_pool, handle.id)
    [reset] = [event for event in events if event.type == "case.reset"]
    assert reset.prev_hash == forged.hash  # the reset continued after the forged row

    assert verify(handle.id, events, runs).findings == []  # the chain and the new run's history alone: tied
    report = await verify_case(env.client, db_pool, handle.id)
    assert {(f.seq, f.kind) for f in report.findings} == {(forged.seq, FindingKind.not_in_history)}


async def test_a_superseded_row_edited_after_the_reset_is_still_caught(
    dev_server_env: WorkflowEnvironment,
    db_pool: asyncpg.Pool,
    superuser_pool: asyncpg.Pool,
    first_task_reset: ResetCase,
) -> None:
    case = first_task_reset
    async with superuser_pool.acquire() as connection:  # the schema's owner may switch the trigger off; the app may not
        await connection.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        try:
            original = await connection.fetchval(
                "SELECT actor_id FROM audit_events WHERE case_id = $1 AND seq = 2", case.case_id
            )
            await connection.execute(
                "UPDATE audit_events SET actor_id = 'mallory' WHERE case_id = $1 AND seq = 2", case.case_id
            )
            report = await verify_case(dev_server_env.client, db_pool, case.case_id)
            await connection.execute(
                "UPDATE audit_events SET actor_id = $2 WHERE case_id = $1 AND seq = 2", case.case_id, original
            )
        finally:
            await connection.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")

    assert not report.ok
    assert (2, FindingKind.edited) in {(f.seq, f.kind) for f in report.findings}


def test_a_case_reset_forged_into_the_log_supersedes_nothing(first_task_reset: ResetCase) -> None:
    """Someone who appends a correctly sealed ``case.reset`` to pass off rows as superseded is caught: only a
    reset the Temporal history holds vouches for rows the history lacks."""
    case, last = first_task_reset, first_task_reset.events[-1]
    forged = seal_event(
        **case.reset.model_dump(exclude={"seq", "prev_hash", "hash", "payload"}),
        seq=last.seq + 1,
        prev_hash=last.hash,
        payload={**case.reset.payload, "superseded_from": 1, "superseded_to": last.seq},
    )

    report = verify(case.case_id, [*case.events, forged], case.runs)

    assert not report.ok
    assert (forged.seq, FindingKind.not_in_history) in {(f.seq, f.kind) for f in report.findings}


async def test_the_exported_bundle_of_a_reset_case_verifies_offline_and_replays(
    dev_server_env: WorkflowEnvironment, db_pool: asyncpg.Pool, first_task_reset: ResetCase, tmp_path: Path
) -> None:
    bundle = await export_case(dev_server_env.client, notary(db_pool), first_task_reset.case_id, tmp_path)

    report = verify_bundle(bundle, TRUSTED)
    assert report.ok and report.findings == [], _errors(report)
    assert report.run_ids == [first_task_reset.new_run_id]  # the old run's events are vouched for by the chain
    [verdict] = await replay_all([bundle])
    assert verdict.ok, verdict.message


# ------------------------------------------------------------------ reset to a mid-case point


async def test_the_reviewer_is_told_of_the_new_runs_task_too(mid_case_reset: ResetCase, db_pool: asyncpg.Pool) -> None:
    """The new run may seal bob's task, and key its notice, under a seq the old run used for its own: the outbox
    must not take the new notice for the old one (a notice queued when the reset is found gets the new run's key)."""
    rows = await db_pool.fetch(
        "SELECT idempotency_key, recipient FROM outbox WHERE case_id = $1", mid_case_reset.case_id
    )

    assert len([row for row in rows if row["recipient"] == "bob"]) == 2, [dict(row) for row in rows]


async def test_a_case_reset_mid_case_continues_after_the_log_and_verifies(mid_case_reset: ResetCase) -> None:
    case, reset = mid_case_reset, mid_case_reset.reset

    assert case.result.status is CaseStatus.approved
    assert reset.seq == case.stored_before_reset + 1
    first = reset.payload["superseded_from"]
    assert 1 < first <= case.stored_before_reset  # the events before the reset point are the new run's too
    assert set(superseded_by_resets(case.events)) == set(range(first, reset.seq))
    assert case.report.ok, _errors(case.report)
    assert case.report.findings == []
    # Temporal re-applied the reset-away decision to the new run: the cross-check holds it to its new row too.
    assert [(d.name, d.request["task_id"]) for d in decision_requests(case.runs)] == [
        ("decide", task.task_id) for task in case.result.tasks
    ]
    state = state_at(case.events)
    assert state.status == "approved"
    assert [result.stage_id for result in state.stage_results] == ["review", "sign_off"]


async def test_a_refusal_sealed_again_after_a_reset_is_told_with_its_new_seq(
    dev_server_env: WorkflowEnvironment, engine_worker: EngineWorker, db_pool: asyncpg.Pool
) -> None:
    """The Art. 38 notice names the decision it concerns by seq: sealed again after the reset, it names the
    decision's new seq, not the superseded one."""
    env = dev_server_env
    async with engine_worker(env) as queue:
        handle = await start_case(env.client, queue, definition(stage("review", assignees=("alice",))))
        task = open_tasks(await view_when(handle, open_tasks, timeout=30))[0]
        await decide(handle, ALICE, task, Decision.reject, comment="outside the catalogue")
        await handle.result()
        reset_workflow(env, handle.id, "--event-id", str(await last_update_task(handle)))
        latest = env.client.get_workflow_handle_for(ApprovalWorkflow.run, handle.id)
        result = await latest.result()
    runs, events = await fetch_case(env.client, db_pool, handle.id)

    assert result.status is CaseStatus.rejected
    [reset] = [event for event in events if event.type == "case.reset"]
    in_force = {event.seq: event for event in events if event.seq not in superseded_by_resets(events)}
    [notice] = [event for seq, event in in_force.items() if event.type == "case.remedies_notified"]
    concerns = notice.payload["concerns"]
    assert reset.seq < concerns["seq"] < notice.seq
    assert in_force[concerns["seq"]].type == concerns["event"]
    assert verify(handle.id, events, runs).findings == []


async def test_a_decision_the_reset_did_not_reapply_is_made_again_and_the_old_one_stays_superseded(
    dev_server_env: WorkflowEnvironment, engine_worker: EngineWorker, db_pool: asyncpg.Pool
) -> None:
    """``--reapply-exclude Update``: the new run has the first stage open again; its reviewer decides again."""
    env = dev_server_env
    async with engine_worker(env) as queue:
        handle = await start_case(env.client, queue, TWO_STAGES)
        review = open_tasks(await view_when(handle, open_tasks, timeout=30))[0]
        await decide(handle, ALICE, review)
        await logged_up_to_open_task(db_pool, handle)
        point = str(await last_update_task(handle))
        reset_workflow(env, handle.id, "--event-id", point, "--reapply-exclude", "Update")
        latest = env.client.get_workflow_handle_for(ApprovalWorkflow.run, handle.id)
        assert [task.stage_id for task in open_tasks(await view_when(latest, open_tasks))] == ["review"]
        await decide_until_final(latest)
        result = await latest.result()
    runs, events = await fetch_case(env.client, db_pool, handle.id)

    assert result.status is CaseStatus.approved
    superseded = superseded_by_resets(events)
    decisions = [(event.seq in superseded, event.actor.id) for event in events if event.type == "task.decided"]
    assert decisions == [(True, "alice"), (False, "alice"), (False, "bob")]
    assert verify(handle.id, events, runs).findings == []


async def test_a_case_reset_twice_supersedes_the_first_reset_and_verifies(
    dev_server_env: WorkflowEnvironment, engine_worker: EngineWorker, db_pool: asyncpg.Pool
) -> None:
    env = dev_server_env
    async with engine_worker(env) as queue:
        handle = await start_case(env.client, queue, TWO_STAGES)
        await logged_up_to_open_task(db_pool, handle)
        reset_workflow(env, handle.id, "--type", "FirstWorkflowTask")
        await recorded_when(db_pool, handle.id, "case.reset")
        latest = env.client.get_workflow_handle_for(ApprovalWorkflow.run, handle.id)
        await logged_up_to_open_task(db_pool, latest)
        reset_workflow(env, handle.id, "--type", "FirstWorkflowTask")
        await decide_until_final(latest)
        result = await latest.result()
    runs, events = await fetch_case(env.client, db_pool, handle.id)

    assert result.status is CaseStatus.approved
    first, second = [event for event in events if event.type == "case.reset"]
    assert second.payload["old_run_id"] == first.payload["new_run_id"]
    assert (second.payload["superseded_from"], second.payload["superseded_to"]) == (1, second.seq - 1)
    assert set(superseded_by_resets(events)) == set(range(1, second.seq))
    assert verify(handle.id, events, runs).findings == []
    assert state_at(events).status == "approved"
