"""Auditing: tampering with the stored log is found at the right sequence number, the log is cross-checked
against the Temporal history, histories replay, and the events read as a timeline and a state at any point."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from approvals.audit.bundle import bundle_dirname, verify_bundle
from approvals.audit.chain import verify_chain
from approvals.audit.checkpoint import key_id, public_key_pem
from approvals.audit.crosscheck import VerifyReport, cross_check, decision_requests, verify
from approvals.audit.findings import FindingKind, Severity, plain
from approvals.audit.history import Histories, history_events, history_from_json, recorded_batches, runs_of
from approvals.audit.live import case_timeline, export_case, fetch_case, verify_case
from approvals.audit.replay import replay_all, replay_parallel
from approvals.audit.sealing import Notary
from approvals.audit.state import state_at
from approvals.audit.timeline import local, timeline
from approvals.operations import by_update_name
from schemas.case import (
    CaseStatus,
    CaseView,
    ClaimRequest,
    DecideRequest,
    MissingItem,
    RequestSupplementRequest,
    SupplementRequest,
)
from schemas.events import EventType, compute_hash, event_content, superseded_by_resets
from schemas.principal import Principal
from schemas.process import Deadline, Decision
from tests.cases import APPLICANT, definition, finished, open_tasks, person, stage, start_case, view_when, wind_up
from tests.fixtures.temporal import EngineWorker
from workflows.kernel import ApprovalWorkflow

OFFICER = person("officer-1", "one_window")
DIRECTOR = person("director-1", "director")

ENGINE_KEY = Ed25519PrivateKey.generate()
"""The engine's key in every test: exports and checkpoints of the test database are signed with it."""
TRUSTED = [ENGINE_KEY.public_key()]


def key_files(directory: Path) -> tuple[Path, Path]:
    """ENGINE_KEY as the PEM files the settings name: (private key, public key)."""
    private, public = directory / "engine-key.pem", directory / "engine-key.pub.pem"
    private.write_bytes(
        ENGINE_KEY.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(public_key_pem(ENGINE_KEY.public_key()))
    return private, public


def notary(pool: asyncpg.Pool) -> Notary:
    return Notary(pool, ENGINE_KEY)


async def _approve(handle: WorkflowHandle[ApprovalWorkflow, CaseView], stage_id: str, actor: Principal) -> None:
    [task] = open_tasks(await view_when(handle, lambda v: bool(open_tasks(v, stage_id))), stage_id)
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=actor, task_id=task.task_id))
    await handle.execute_update(
        ApprovalWorkflow.decide,
        DecideRequest(actor=actor, task_id=task.task_id, decision=Decision.approve, comment="材料齐全，符合条件"),
    )


async def run_two_stage_case(env: WorkflowEnvironment, queue: str) -> str:
    """acceptance (one_window) -> approval (director); 12 events, both stages approved."""
    handle = await start_case(
        env.client,
        queue,
        definition(
            stage("acceptance", candidate_roles=("one_window",)),
            stage("approval", candidate_roles=("director",), legal_basis="Art. 12"),
        ),
    )
    await _approve(handle, "acceptance", OFFICER)
    await _approve(handle, "approval", DIRECTOR)
    await finished(env, handle)
    return handle.id


@pytest.fixture
async def finished_case(time_skipping_env: WorkflowEnvironment, engine_worker: EngineWorker) -> str:
    async with engine_worker(time_skipping_env) as queue:
        return await run_two_stage_case(time_skipping_env, queue)


@pytest.fixture
async def tamper(superuser_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection on which the append-only trigger is off, as an operator with table rights could do."""
    async with superuser_pool.acquire() as connection:
        await connection.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        try:
            yield connection
        finally:
            await connection.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")


async def _report(time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, case_id: str) -> VerifyReport:
    history, events = await fetch_case(time_skipping_env.client, db_pool, case_id)
    return verify(case_id, events, history)


def _errors(report: VerifyReport) -> set[tuple[int | None, FindingKind]]:
    return {(f.seq, f.kind) for f in report.findings if f.severity is Severity.error}


# ------------------------------------------------------------------ verify: chain and cross-check


async def test_a_clean_case_verifies(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, finished_case: str
) -> None:
    report = await verify_case(time_skipping_env.client, db_pool, finished_case)

    assert report.ok, report.findings
    assert report.findings == []
    assert report.events == report.history_events == report.last_seq == 12


async def test_a_running_case_verifies(
    time_skipping_env: WorkflowEnvironment, engine_worker: EngineWorker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(
            time_skipping_env.client, queue, definition(stage("acceptance", candidate_roles=("one_window",)))
        )
        [task] = open_tasks(await view_when(handle, open_tasks))
        await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id))
        report = await verify_case(time_skipping_env.client, db_pool, handle.id)
        await wind_up(time_skipping_env, handle)

    assert report.ok and report.findings == [] and report.last_seq == 4


async def test_an_edited_payload_is_found_at_its_seq(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, tamper: asyncpg.Connection, finished_case: str
) -> None:
    await tamper.execute(
        "UPDATE audit_events SET payload = jsonb_set(payload, '{comment}', '\"不符合条件\"') "
        "WHERE case_id = $1 AND seq = 5",
        finished_case,
    )
    report = await _report(time_skipping_env, db_pool, finished_case)

    assert not report.ok
    assert _errors(report) == {(5, FindingKind.edited), (5, FindingKind.differs_from_history)}
    messages = [f.message for f in report.findings if f.kind is FindingKind.differs_from_history]
    assert any(message.endswith("differs from the history in payload") for message in messages)
    assert any("does not say what the decide request by officer-1" in message for message in messages)


async def test_a_deleted_row_is_found_at_its_seq(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, tamper: asyncpg.Connection, finished_case: str
) -> None:
    await tamper.execute("DELETE FROM audit_events WHERE case_id = $1 AND seq = 4", finished_case)
    report = await _report(time_skipping_env, db_pool, finished_case)

    assert _errors(report) == {
        (4, FindingKind.deleted),
        (4, FindingKind.missing_from_log),
        (4, FindingKind.decision_not_logged),  # the claim request in the history has no row any more
    }


async def test_deleting_the_last_row_leaves_the_chain_intact_but_not_the_cross_check(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, tamper: asyncpg.Connection, finished_case: str
) -> None:
    await tamper.execute("DELETE FROM audit_events WHERE case_id = $1 AND seq = 12", finished_case)
    history, events = await fetch_case(time_skipping_env.client, db_pool, finished_case)

    assert verify_chain(events) == []
    assert _errors(verify(finished_case, events, history)) == {(12, FindingKind.missing_from_log)}
    report = await verify_case(time_skipping_env.client, db_pool, finished_case)
    assert [f.message for f in report.findings if f.kind is FindingKind.missing_from_log][0].startswith(
        "the case projection reflects seq 12 but the audit log ends at seq 11"
    )


async def test_two_swapped_rows_are_found_at_their_seqs(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, tamper: asyncpg.Connection, finished_case: str
) -> None:
    for old, new in ((3, 1000), (6, 3), (1000, 6)):
        await tamper.execute(
            "UPDATE audit_events SET seq = $3 WHERE case_id = $1 AND seq = $2", finished_case, old, new
        )
    report = await _report(time_skipping_env, db_pool, finished_case)

    reordered = {f.seq: f.message for f in report.findings if f.kind is FindingKind.reordered}
    assert set(reordered) == {3, 6}
    assert "sealed as seq 6" in reordered[3] and "sealed as seq 3" in reordered[6]
    assert {(3, FindingKind.differs_from_history), (6, FindingKind.differs_from_history)} <= _errors(report)
    assert {f.seq for f in report.findings} <= {3, 4, 6, 7}


async def test_a_forged_row_is_found_at_its_seq(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, tamper: asyncpg.Connection, finished_case: str
) -> None:
    """A careless forgery breaks the chain; a careful one (correctly sealed at the end) only the cross-check finds."""
    events = await fetch_case(time_skipping_env.client, db_pool, finished_case)
    last = events[1][-1]
    careful = {
        **event_content(last),
        "seq": 13,
        "type": "case.commented",
        "payload": {"text": "补充说明"},
        "prev_hash": last.hash,
    }
    await tamper.execute(
        """INSERT INTO audit_events (case_id, seq, type, actor_id, actor_name, actor_roles, actor_unit, at,
               legal_basis, payload, prev_hash, hash)
           VALUES ($1, 13, 'case.commented', $2, $3, $4, $5, $6, 'Art. 4', $7::text::jsonb, $8, $9)""",
        finished_case, last.actor.id, last.actor.name, list(last.actor.roles), last.actor.unit, last.at,
        json.dumps({"text": "补充说明"}, ensure_ascii=False), last.hash,
        compute_hash({**careful, "legal_basis": "Art. 4"}),
    )  # fmt: skip
    history, events_now = await fetch_case(time_skipping_env.client, db_pool, finished_case)
    assert verify_chain(events_now) == []
    assert _errors(verify(finished_case, events_now, history)) == {(13, FindingKind.not_in_history)}

    await tamper.execute(
        "INSERT INTO audit_events (case_id, seq, type, actor_id, at, legal_basis, prev_hash, hash) "
        "VALUES ($1, 14, 'task.decided', 'intruder', now(), 'Art. 10', $2, $3)",
        finished_case, "f" * 64, "e" * 64,
    )  # fmt: skip
    report = await _report(time_skipping_env, db_pool, finished_case)
    assert _errors(report) == {
        (13, FindingKind.not_in_history),
        (14, FindingKind.inserted),
        (14, FindingKind.not_in_history),
    }


async def test_a_row_inserted_mid_chain_and_renumbered_is_found(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, tamper: asyncpg.Connection, finished_case: str
) -> None:
    for seq in range(12, 7, -1):
        await tamper.execute(
            "UPDATE audit_events SET seq = seq + 1 WHERE case_id = $1 AND seq = $2", finished_case, seq
        )
    await tamper.execute(
        "INSERT INTO audit_events (case_id, seq, type, actor_id, at, legal_basis, prev_hash, hash) "
        "SELECT case_id, 8, 'case.commented', 'intruder', at, legal_basis, hash, hash FROM audit_events "
        "WHERE case_id = $1 AND seq = 7",
        finished_case,
    )
    report = await _report(time_skipping_env, db_pool, finished_case)

    assert (8, FindingKind.inserted) in _errors(report)
    assert {f.seq for f in report.findings if f.kind is FindingKind.reordered} == {9, 10, 11, 12, 13}


async def test_cross_check_catches_a_log_row_whose_actor_differs_from_the_history(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, finished_case: str
) -> None:
    history, events = await fetch_case(time_skipping_env.client, db_pool, finished_case)
    # Rewritten and re-sealed all the way down: the chain alone cannot see it, the history can.
    forged, prev = [], events[0].prev_hash
    for event in events:
        content = {**event_content(event), "prev_hash": prev}
        if event.seq == 5:
            content["actor"] = {**content["actor"], "id": "officer-2", "name": "Officer-2"}
        forged.append(event.model_validate({**content, "hash": compute_hash(content)}))
        prev = forged[-1].hash

    assert verify_chain(forged) == []
    findings = cross_check(forged, history)
    assert {(f.seq, f.kind) for f in findings} == {(seq, FindingKind.differs_from_history) for seq in range(5, 13)}
    messages = [finding.message for finding in findings if finding.seq == 5]
    assert any("actor (log: officer-2, history: officer-1)" in message for message in messages)
    assert any("does not say what the decide request by officer-1" in m and "actor" in m for m in messages)


async def test_a_moved_time_is_reported_in_iso_8601_not_as_a_python_value(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, tamper: asyncpg.Connection, finished_case: str
) -> None:
    """Findings are read by auditors (the verification endpoint, ``approvals audit verify``): the times they
    compare are written as ISO 8601, never as ``datetime.datetime(2026, …)``."""
    _, events = await fetch_case(time_skipping_env.client, db_pool, finished_case)
    recorded = events[4].at
    await tamper.execute(
        "UPDATE audit_events SET at = at + interval '1 hour' WHERE case_id = $1 AND seq = 5", finished_case
    )
    report = await _report(time_skipping_env, db_pool, finished_case)

    assert _errors(report) == {(5, FindingKind.edited), (5, FindingKind.differs_from_history)}
    [moved] = [f.message for f in report.findings if f.kind is FindingKind.differs_from_history]
    moved_to = (recorded + timedelta(hours=1)).isoformat()
    assert f"at (log: {moved_to}, history: {recorded.isoformat()})" in moved, moved
    messages = " ".join(f.message for f in report.findings)
    assert "datetime" not in messages and "{'" not in messages and "'" not in messages, messages


def test_finding_values_are_plain() -> None:
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert plain(at) == "2026-03-02T09:30:00+00:00"
    assert plain({"due": at, "stage": "review"}) == '{"due": "2026-03-02T09:30:00+00:00", "stage": "review"}'
    assert plain(["审查", None, True]) == '["审查", null, true]'
    assert plain(EventType.task_claimed) == "task.claimed"
    assert plain("officer-1") == "officer-1" and plain("") == '""'


# ------------------------------------------------------------------ export and bundles


async def test_export_writes_a_bundle_that_verifies_offline(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, finished_case: str, tmp_path: Path
) -> None:
    directory = await export_case(time_skipping_env.client, notary(db_pool), finished_case, tmp_path)

    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["case_id"] == finished_case and manifest["audit_events"] == 12
    assert set(manifest["files"]) == {"history.json", "events.json"}
    assert manifest["checkpoint"]["leaf"] == [finished_case, 12, manifest["last_hash"]]
    history_json = (directory / "history.json").read_text()
    assert json.loads(history_json)["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert WorkflowHistory.from_json(finished_case, history_json).run_id == manifest["run_id"]
    genuine = verify_bundle(directory, TRUSTED)
    assert genuine.ok and genuine.findings == [], genuine.findings
    assert genuine.signed_by == key_id(ENGINE_KEY.public_key()) and genuine.sealed_in is not None

    events = json.loads((directory / "events.json").read_text())
    events[2]["payload"]["candidate_roles"] = ["anyone"]
    (directory / "events.json").write_text(json.dumps(events))
    report = verify_bundle(directory, TRUSTED)
    assert {(f.seq, f.kind) for f in report.findings} == {
        (None, FindingKind.bundle_digest), (3, FindingKind.edited), (3, FindingKind.differs_from_history),
    }  # fmt: skip


# ------------------------------------------------------------------ replay


async def test_replay_of_a_good_and_a_broken_history(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, finished_case: str, tmp_path: Path
) -> None:
    [history], _ = await fetch_case(time_skipping_env.client, db_pool, finished_case)  # one run
    good = tmp_path / "good.json"
    good.write_text(history.to_json())
    # The recorded history says the first stage was "acceptance"; the code now reads "intake".
    broken_data = json.loads(history.to_json())
    started = broken_data["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
    case_input = json.loads(base64.b64decode(started["data"]))
    case_input["definition"]["steps"][0]["id"] = "intake"
    started["data"] = base64.b64encode(json.dumps(case_input).encode()).decode()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(broken_data))
    unreadable = tmp_path / "unreadable.json"
    unreadable.write_text("{not json")

    again = tmp_path / "again.json"
    again.write_text(history.to_json())

    in_order = await replay_all([good, broken, unreadable, again])
    verdicts = {Path(v.source).name: v for v in in_order}

    assert sorted(verdicts) == ["again.json", "broken.json", "good.json", "unreadable.json"]
    assert [verdicts[name].ok for name in ("good.json", "broken.json", "again.json")] == [True, False, True]
    assert verdicts["good.json"].ok, verdicts["good.json"].message
    assert verdicts["good.json"].workflow_id == finished_case
    assert not verdicts["broken.json"].ok
    assert verdicts["broken.json"].error_type == "NondeterminismError"
    assert verdicts["broken.json"].event_id is not None, verdicts["broken.json"].message
    assert not verdicts["unreadable.json"].ok

    in_parallel = {Path(v.source).name: v for v in replay_parallel([good, broken, unreadable, again], jobs=2)}
    assert {name: v.ok for name, v in in_parallel.items()} == {name: v.ok for name, v in verdicts.items()}


# ------------------------------------------------------------------ timeline and state at


async def test_timeline_tells_who_did_what_and_where_the_clock_stopped(
    time_skipping_env: WorkflowEnvironment, engine_worker: EngineWorker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(
            time_skipping_env.client,
            queue,
            definition(
                stage(
                    "acceptance",
                    candidate_roles=("one_window",),
                    may_request_supplement=True,
                    deadline=Deadline(working_days=5, remind_before_working_days=0),
                    legal_basis="Art. 8",
                )
            ),
        )
        [task] = open_tasks(await view_when(handle, open_tasks))
        await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id))
        await handle.execute_update(
            ApprovalWorkflow.request_supplement,
            RequestSupplementRequest(actor=OFFICER, items=[MissingItem(item="营业执照副本")], comment="缺少营业执照"),
        )
        await time_skipping_env.sleep(timedelta(days=3))
        await handle.execute_update(ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="已补正"))
        await handle.execute_update(
            ApprovalWorkflow.decide,
            DecideRequest(actor=OFFICER, task_id=task.task_id, decision=Decision.approve, comment="同意受理"),
        )
        await finished(time_skipping_env, handle)
    history, events = await fetch_case(time_skipping_env.client, db_pool, handle.id)
    assert_state_agrees_with_the_recorded_projections(history)

    rows = timeline(events)
    by_type = {row.type: row for row in rows}
    stopped, resumed = by_type["case.supplement_requested"], by_type["case.supplemented"]
    assert stopped.clock == "stopped" and resumed.clock == "resumed"
    assert stopped.actor_id == OFFICER.id and stopped.roles == ["one_window"] and stopped.comment == "缺少营业执照"
    assert "营业执照副本" in stopped.action and "clock stops" in stopped.action
    assert stopped.data == events[stopped.seq - 1].payload and stopped.data["items"][0]["item"] == "营业执照副本"
    assert "stopped 3d" in resumed.action
    decided = by_type["task.decided"]
    assert decided.comment == "同意受理" and decided.legal_basis == "Art. 8" and "approve" in decided.action
    assert decided.local_time == local(decided.at)
    completed = by_type["stage.completed"]
    assert completed.working_days_allowed == 5 and completed.on_time is True
    assert completed.duration is not None and completed.duration.startswith("3d")
    assert completed.stage_time == f"{completed.duration}; {completed.working_days_used} of 5 working days, on time"
    assert completed.action.endswith(f" after {completed.stage_time}")
    assert completed.due_at is not None and completed.due_at > by_type["stage.started"].due_at  # moved by 补正


async def test_timeline_shows_a_stage_that_overran_its_working_day_deadline(
    time_skipping_env: WorkflowEnvironment, engine_worker: EngineWorker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(
            time_skipping_env.client,
            queue,
            definition(
                stage(
                    "acceptance",
                    candidate_roles=("one_window",),
                    deadline=Deadline(working_days=1, remind_before_working_days=0, escalate_to_role="director"),
                )
            ),
        )
        [task] = open_tasks(await view_when(handle, open_tasks))
        await time_skipping_env.sleep(timedelta(days=8))
        await view_when(handle, lambda view: any(t.overdue for t in view.tasks))
        await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id))
        await handle.execute_update(
            ApprovalWorkflow.decide,
            DecideRequest(actor=OFFICER, task_id=task.task_id, decision=Decision.approve),
        )
        await finished(time_skipping_env, handle)

    rows = {row.type: row for row in await case_timeline(db_pool, handle.id)}
    assert_state_agrees_with_the_recorded_projections(await handle.fetch_history())

    assert rows["clock.escalated"].action.startswith(
        "deadline of stage “Acceptance” passed, escalated to role director"
    )
    completed = rows["stage.completed"]
    assert completed.on_time is False and "LATE by" in completed.action
    assert completed.working_days_allowed == 1 and completed.working_days_used is not None
    assert completed.working_days_used >= 4


async def test_state_at_any_seq_or_time(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, finished_case: str
) -> None:
    _, events = await fetch_case(time_skipping_env.client, db_pool, finished_case)
    types = [event.type for event in events]

    after_claim = state_at(events, seq=types.index("task.claimed") + 1)
    assert after_claim.status == "in_review" and after_claim.current_stages == ["acceptance"]
    [task] = after_claim.open_tasks
    assert task.status == "claimed" and task.claimed_by == OFFICER.id and task.version == 2

    second_stage = state_at(events, seq=9)
    assert [r.stage_id for r in second_stage.stage_results] == ["acceptance"]
    assert [t.stage_id for t in second_stage.open_tasks] == ["approval"]

    final = state_at(events)
    assert final.status == "approved" and final.outcome == "approved" and final.open_tasks == []
    assert final.last_hash == events[-1].hash and final.as_of_seq == 12

    assert state_at(events, at=events[0].at - timedelta(seconds=1)).status == "not_started"
    assert state_at(events, at=events[-1].at).as_of_seq == 12


# ------------------------------------------------------------------ the `approvals audit` command


@pytest.fixture
def exported(time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, finished_case: str, tmp_path: Path) -> Path:
    import asyncio

    return asyncio.get_event_loop().run_until_complete(
        export_case(time_skipping_env.client, notary(db_pool), finished_case, tmp_path / "export")
    )


@pytest.fixture
def live_settings(
    monkeypatch: pytest.MonkeyPatch, time_skipping_env: WorkflowEnvironment, database_url: str, tmp_path: Path
) -> None:
    private, public = key_files(tmp_path)
    monkeypatch.setenv("AUDIT_SIGNING_KEY_PATH", str(private))
    monkeypatch.setenv("AUDIT_PUBLIC_KEY_PATH", str(public))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TEMPORAL_ADDRESS", time_skipping_env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", time_skipping_env.client.namespace)


def _cli(*args: str) -> Result:
    from approvals.cli import app

    return CliRunner(env={"COLUMNS": "250"}).invoke(app, ["audit", *args], catch_exceptions=False)


def test_cli_on_a_bundle_offline(exported: Path, finished_case: str, tmp_path: Path) -> None:
    _, public = key_files(tmp_path)
    verified = _cli("verify", str(exported), "--public-key", str(public))
    assert verified.exit_code == 0, verified.output
    assert "chain intact" in verified.output
    assert f"signed by key {key_id(ENGINE_KEY.public_key())}" in verified.output
    unkeyed = _cli("verify", str(exported))
    assert unkeyed.exit_code == 2 and "--public-key" in unkeyed.output

    rows = json.loads(_cli("timeline", str(exported), "--json").output)
    assert [row["seq"] for row in rows] == list(range(1, 13))
    assert rows[0]["data"]["definition"]["process"] == "generic" and rows[0]["type"] == "case.started"
    table = _cli("timeline", str(exported)).output  # Chinese first
    assert "Officer-1 (one_window)" in table and "材料齐全，符合条件" in table and "签收了任务" in table
    assert "times in UTC+8" in table and "用时" in table and '"definition"' not in table  # no raw payloads
    english = _cli("timeline", str(exported), "--lang", "en").output
    assert "claimed the task" in english and "took " in english and "签收了任务" not in english
    assert all(row["action_zh"] for row in rows)

    state = json.loads(_cli("state", str(exported), "--seq", "4", "--json").output)
    assert state["as_of_seq"] == 4 and state["tasks"][0]["status"] == "claimed"

    replayed = _cli("replay", str(exported.parent))
    assert replayed.exit_code == 0, replayed.output
    assert "1 of 1 replayed cleanly" in replayed.output

    events = json.loads((exported / "events.json").read_text())
    events[6]["actor"]["id"] = "someone-else"
    (exported / "events.json").write_text(json.dumps(events))
    tampered = _cli("verify", str(exported), "--json", "--public-key", str(public))
    assert tampered.exit_code == 3
    assert json.loads(tampered.output)[0]["ok"] is False
    assert {(f["seq"], f["kind"]) for f in json.loads(tampered.output)[0]["findings"]} >= {(7, "edited")}


@pytest.fixture
async def cases_of_one_process(time_skipping_env: WorkflowEnvironment, engine_worker: EngineWorker) -> list[str]:
    """Three approved cases of a process no other test uses, so `export --process` selects exactly them."""
    process = definition(stage("acceptance", candidate_roles=("one_window",)), process=f"audit-{uuid.uuid4().hex[:8]}")
    case_ids = []
    async with engine_worker(time_skipping_env) as queue:
        for _ in range(3):
            handle = await start_case(time_skipping_env.client, queue, process)
            await _approve(handle, "acceptance", OFFICER)
            await finished(time_skipping_env, handle)
            case_ids.append(handle.id)
    return case_ids


@pytest.mark.usefixtures("live_settings")
def test_cli_exports_a_selection_with_a_progress_bar(cases_of_one_process: list[str], tmp_path: Path) -> None:
    process = cases_of_one_process[0].split(":")[0]
    out = tmp_path / "export"
    exported = _cli("export", "--process", process, "--status", "approved", "--out", str(out))

    assert exported.exit_code == 0, exported.output
    assert "exported 3 case(s)" in exported.output
    assert sorted(path.name for path in out.iterdir()) == sorted(map(bundle_dirname, cases_of_one_process))
    verified = _cli("verify", str(out))
    assert verified.exit_code == 0 and "3 of 3 cases intact" in verified.output, verified.output
    assert "3 of 3 replayed cleanly" in _cli("replay", str(out), "--quiet").output


@pytest.mark.usefixtures("live_settings")
def test_cli_on_live_cases(finished_case: str, tmp_path: Path) -> None:
    exported = _cli("export", finished_case, "--out", str(tmp_path / "export"))
    assert exported.exit_code == 0, exported.output
    [bundle] = (tmp_path / "export").iterdir()
    assert verify_bundle(bundle, TRUSTED).ok

    assert _cli("verify", finished_case).exit_code == 0
    assert _cli("replay", "--case", finished_case).exit_code == 0
    assert "approved" in _cli("state", finished_case).output
    assert _cli("replay", str(tmp_path / "nothing-here")).exit_code == 2


CORPUS = sorted((Path(__file__).parent / "histories").glob("*.json"))
CORPUS_CASES: dict[str, list[Path]] = {}
"""The corpus by case: a case that continued as new is saved run by run (``<name>-run<N>.json``)."""
for _path in CORPUS:
    CORPUS_CASES.setdefault(re.sub(r"-run\d+$", "", _path.stem), []).append(_path)
for _runs in CORPUS_CASES.values():
    _runs.sort(key=lambda path: int(m.group(1)) if (m := re.search(r"-run(\d+)$", path.stem)) else 0)

ENGINE_UPDATES = {"adopt_calendar"}
"""Workflow Updates the engine sends itself (a calendar year published), not a person's operation: the
cross-check compares what people asked for with what was recorded."""


def assert_state_agrees_with_the_recorded_projections(history: Histories) -> None:
    """Each record_events batch carries the workflow's own projections as of its last event: the fold of
    the events up to that event must arrive at the same case status, stages, clock and task states.
    ``history`` may be every run of a case that continued as new: one fold runs through all of them. The events
    a reset run superseded are in the old run's history, not in this one: only they may be missing."""
    runs = runs_of(history)
    events = history_events(runs)
    superseded = superseded_by_resets(events)
    assert [f for f in verify_chain(events) if not (f.kind is FindingKind.deleted and f.seq in superseded)] == []
    assert cross_check(events, runs) == []  # every accepted request left its row, as asked
    assert {d.name for d in decision_requests(runs)} <= set(by_update_name()) | ENGINE_UPDATES
    for recorded in recorded_batches(runs):
        case = recorded.batch.case
        state = state_at(events, seq=case.last_seq)
        at = f"{runs[0].workflow_id} run {recorded.run} seq {case.last_seq}"
        assert (state.status, state.outcome) == (case.status, case.outcome), at
        # The workflow drops a decided (or abandoned) stage from its projection only at its next record; the
        # fold drops it at `stage.completed` (`stage.abandoned`), which is when it stopped being current.
        decided = {result.stage_id for result in state.stage_results} | {
            event.stage_id for event in events if event.type == "stage.abandoned" and event.seq <= case.last_seq
        }
        if state.status in (CaseStatus.withdrawn.value, CaseStatus.cancelled.value):
            # The fold ends every stage with the withdrawal (or an operator's cancellation, closed the same way);
            # the workflow's projection keeps the stages that were open at it as the case's last stages (the
            # inbox shows where the applicant withdrew).
            decided |= set(case.current_stages)
        assert set(state.current_stages) <= set(case.current_stages), at
        assert set(case.current_stages) - set(state.current_stages) <= decided, at
        assert state.clock_state == case.clock_state, at
        tasks = {task.task_id: task for task in state.tasks}
        for task in recorded.batch.tasks:
            folded = tasks[task.task_id]
            assert (folded.status, folded.claimed_by, folded.delegate_id) == (
                task.status, task.claimed_by, task.delegate_id
            ), f"{at} {task.task_id}"  # fmt: skip
            assert (folded.assignee_id, folded.decision, folded.version) == (
                task.assignee_id, task.decision, task.version
            ), f"{at} {task.task_id}"  # fmt: skip
            assert folded.overdue == task.overdue, f"{at} {task.task_id}"


@pytest.mark.skipif(not CORPUS, reason="tests/histories/ is empty")
@pytest.mark.parametrize("name", CORPUS_CASES)
def test_state_at_agrees_with_every_projection_recorded_in_the_corpus(name: str) -> None:
    assert_state_agrees_with_the_recorded_projections(
        [history_from_json(path.read_text()) for path in CORPUS_CASES[name]]
    )
