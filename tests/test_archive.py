"""Records that outlive Temporal, and the operator's tools, on the real stack (dev server, PostgreSQL, live API).

- Every closed run's history is archived in PostgreSQL with its SHA-256; once Temporal has deleted the
  workflow (`temporal workflow delete`, as its retention would), verification over the API and
  `approvals audit verify` / `replay` still pass, from the archive, and say so.
- The archive is append-only for the app role, and a damaged archived history is a finding, not a verdict.
- `approvals audit rebuild` re-records the events and projections a restore from an older backup lost,
  from the histories, through the recording code; twice changes nothing, and verify confirms the result.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from activities.destinations import LOOPBACK_NETWORKS
from approvals.audit.archiver import HistoryArchiver
from approvals.audit.bundle import verify_bundle
from approvals.audit.live import export_case, verify_case
from approvals.audit.rebuild import rebuild_case
from approvals.audit.replay import replay_all
from approvals.audit.sealing import Notary
from approvals.settings import load_settings
from tests.api_server import LiveApi, live_api_fixture
from tests.cases import decide, definition, json_of, open_tasks, person, stage, start_case, view_when
from tests.fixtures.temporal import BIN
from worker import build_worker

api = live_api_fixture("archive-api")

OFFICER = person("officer-1", "one_window")
DIRECTOR = person("director-1", "director")


@pytest_asyncio.fixture
async def http(api: LiveApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        yield client


async def closed_case(env: WorkflowEnvironment, task_queue: str) -> str:
    """A two-stage case, decided and closed: 10 or so events."""
    process = definition(
        stage("acceptance", candidate_roles=("one_window",)),
        stage("approval", candidate_roles=("director",), legal_basis="Art. 12"),
    )
    handle = await start_case(env.client, task_queue, process, title="存档")
    for actor, stage_id in ((OFFICER, "acceptance"), (DIRECTOR, "approval")):
        [task] = open_tasks(await view_when(handle, lambda v, s=stage_id: bool(open_tasks(v, s))), stage_id)
        await decide(handle, actor, task)
    await handle.result()
    return handle.id


async def archived(archiver: HistoryArchiver, case_id: str) -> None:
    """Runs passes until the case's run is archived (visibility records a close a moment after it)."""
    for _ in range(100):
        await archiver.archive_pass()
        if await archiver.pool.fetchval("SELECT count(*) FROM archived_histories WHERE workflow_id = $1", case_id):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{case_id} was never archived")


async def deleted_from_temporal(env: WorkflowEnvironment, case_id: str) -> None:
    """`temporal workflow delete`, as the namespace's retention does it, and wait until the history is gone (the
    server deletes asynchronously: about half a minute on the dev server)."""
    deleting = subprocess.run(
        [str(BIN / "temporal"), "workflow", "delete", "--yes", "--workflow-id", case_id,
         "--address", env.client.service_client.config.target_host, "--namespace", env.client.namespace],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert deleting.returncode == 0, deleting.stderr
    for _ in range(240):
        try:
            await env.client.get_workflow_handle(case_id).fetch_history()
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                return
            raise
        await asyncio.sleep(0.5)
    raise AssertionError(f"Temporal still has {case_id}")


@pytest_asyncio.fixture(scope="module")
async def gone_from_temporal(dev_server_env: WorkflowEnvironment, api: LiveApi, db_pool: asyncpg.Pool) -> str:
    """A closed case, archived by the archiver of the API's worker queue, then deleted from Temporal."""
    case_id = await closed_case(dev_server_env, api.task_queue)
    archiver = HistoryArchiver(dev_server_env.client, db_pool, api.task_queue)
    await archived(archiver, case_id)
    await deleted_from_temporal(dev_server_env, case_id)
    return case_id


@pytest.fixture
def cli_settings(
    monkeypatch: pytest.MonkeyPatch, dev_server_env: WorkflowEnvironment, database_url: str, api: LiveApi
) -> None:
    """`approvals audit` against the test stack, connected as the app role, as an operator's would be."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server_env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", dev_server_env.client.namespace)
    monkeypatch.setenv("TEMPORAL_TASK_QUEUE", api.task_queue)


async def audit_cli(*args: str) -> Result:
    from approvals.cli import app

    runner = CliRunner(env={"COLUMNS": "250"})
    return await asyncio.to_thread(runner.invoke, app, ["audit", *args], catch_exceptions=False)


async def test_a_closed_run_is_archived_once_with_its_digest(
    dev_server_env: WorkflowEnvironment, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    case_id = await closed_case(dev_server_env, api.task_queue)
    archiver = HistoryArchiver(dev_server_env.client, db_pool, api.task_queue)
    await archived(archiver, case_id)

    [row] = await db_pool.fetch("SELECT * FROM archived_histories WHERE workflow_id = $1", case_id)
    assert (row["close_status"], row["task_queue"], row["continued_from"]) == ("completed", api.task_queue, None)
    assert hashlib.sha256(row["history"]).hexdigest() == row["sha256"]
    history = json.loads(row["history"])
    assert history["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert len(history["events"]) == row["history_events"]
    for again in (await archiver.archive_pass(), await archiver.archive_pass(everything=True)):
        # since the last archived close (an hour back), and every closed run: found, and not stored twice
        assert again.archived == 0 and again.already == again.listed >= 1, again
    assert await db_pool.fetchval("SELECT count(*) FROM archived_histories WHERE workflow_id = $1", case_id) == 1


async def test_a_case_deleted_from_temporal_verifies_over_the_api_from_the_archive(
    gone_from_temporal: str, http: httpx.AsyncClient, api: LiveApi
) -> None:
    verdict = await http.get(f"/v1/cases/{gone_from_temporal}/verification", headers=api.headers("auditor"))
    assert verdict.status_code == 200, verdict.text
    body = verdict.json()
    assert body["ok"] is True, body
    assert body["report"]["history_source"] == "archive"
    assert body["report"]["history_events"] == body["report"]["events"] >= 8

    history = await http.get(f"/v1/cases/{gone_from_temporal}/history", headers=api.headers("auditor"))
    assert history.status_code == 200 and history.headers["Approvals-History-Source"] == "archive"
    assert history.json()["events"][-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"

    unknown = await http.get("/v1/cases/generic:NEVER-STARTED/verification", headers=api.headers("auditor"))
    assert unknown.status_code == 404


@pytest.mark.usefixtures("cli_settings")
async def test_audit_verify_and_replay_pass_from_the_archive_and_say_so(gone_from_temporal: str) -> None:
    verified = await audit_cli("verify", gone_from_temporal)
    assert verified.exit_code == 0, verified.output
    assert "chain intact, matches the archived history (Temporal no longer has it)" in verified.output
    replayed = await audit_cli("replay", "--case", gone_from_temporal)
    assert replayed.exit_code == 0, replayed.output
    assert f"case {gone_from_temporal}, archived history" in replayed.output


async def test_a_case_deleted_from_temporal_exports_from_the_archive(
    gone_from_temporal: str, dev_server_env: WorkflowEnvironment, db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    bundle = await export_case(dev_server_env.client, Notary(db_pool, key), gone_from_temporal, tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["history_source"] == "archive" and manifest["workflow_closed"] is True
    report = verify_bundle(bundle, [key.public_key()])
    assert report.ok and report.history_source == "archive", report.findings
    [verdict] = await replay_all([bundle])
    assert verdict.ok, verdict.message


async def test_the_app_role_cannot_change_an_archived_history(gone_from_temporal: str, database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        for statement in (
            "UPDATE archived_histories SET history = '\\x7b7d' WHERE workflow_id = $1",
            "DELETE FROM archived_histories WHERE workflow_id = $1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(statement, gone_from_temporal)
    finally:
        await connection.close()


async def test_a_damaged_archived_history_is_a_finding(
    gone_from_temporal: str, dev_server_env: WorkflowEnvironment, db_pool: asyncpg.Pool, superuser_pool: asyncpg.Pool
) -> None:
    original = await db_pool.fetchval(
        "SELECT history FROM archived_histories WHERE workflow_id = $1", gone_from_temporal
    )
    # Bit rot, or an owner going around the trigger: the bytes no longer have their digest.
    await overwrite_archived(superuser_pool, gone_from_temporal, original + b" ")
    try:
        report = await verify_case(dev_server_env.client, db_pool, gone_from_temporal)
    finally:
        await overwrite_archived(superuser_pool, gone_from_temporal, original)
    assert not report.ok
    [damaged] = [f for f in report.findings if f.kind.value == "history_unreadable"]
    assert "SHA-256" in damaged.message and "altered or damaged" in damaged.message
    assert (await verify_case(dev_server_env.client, db_pool, gone_from_temporal)).ok


async def overwrite_archived(db_pool: asyncpg.Pool, case_id: str, history: bytes) -> None:
    """As the schema's owner may: the append-only trigger switched off for one update."""
    async with db_pool.acquire() as connection, connection.transaction():
        await connection.execute("ALTER TABLE archived_histories DISABLE TRIGGER archived_histories_append_only")
        await connection.execute("UPDATE archived_histories SET history = $2 WHERE workflow_id = $1", case_id, history)
        await connection.execute("ALTER TABLE archived_histories ENABLE TRIGGER archived_histories_append_only")


# ------------------------------------------------------------------ rebuild after a restore from an older backup

CASE_RECORD = {
    "audit_events": "SELECT seq, type, actor_id, at, payload::text, prev_hash, hash FROM audit_events "
    "WHERE case_id = $1 ORDER BY seq",
    "cases": "SELECT to_jsonb(c)::text FROM cases c WHERE case_id = $1",
    "tasks": "SELECT to_jsonb(t)::text FROM tasks t WHERE case_id = $1 ORDER BY task_id",
    "inbox_entries": "SELECT to_jsonb(i)::text FROM inbox_entries i JOIN tasks USING (task_id) "
    "WHERE tasks.case_id = $1 ORDER BY 1",
    "outbox": "SELECT idempotency_key, kind, recipient, data::text FROM outbox WHERE case_id = $1 ORDER BY 1",
}
"""What recording wrote for a case: the log, its projections, its notifications (not their delivery state)."""


async def case_record(db_pool: asyncpg.Pool, case_id: str) -> dict[str, list[tuple[object, ...]]]:
    return {table: [tuple(row) for row in await db_pool.fetch(sql, case_id)] for table, sql in CASE_RECORD.items()}


async def restore_an_older_backup(db_pool: asyncpg.Pool, case_id: str, *, keep_upto: int) -> None:
    """The case as a backup taken after event ``keep_upto`` holds it (as the owner: the app role cannot)."""
    async with db_pool.acquire() as connection, connection.transaction():
        await connection.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        await connection.execute("DELETE FROM audit_events WHERE case_id = $1 AND seq > $2", case_id, keep_upto)
        await connection.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        await connection.execute(
            "UPDATE cases SET status = 'running', outcome = NULL, last_seq = $2 WHERE case_id = $1", case_id, keep_upto
        )
        await connection.execute("DELETE FROM tasks WHERE case_id = $1 AND last_seq > $2", case_id, keep_upto)
        await connection.execute("DELETE FROM outbox WHERE case_id = $1", case_id)


@pytest.mark.usefixtures("cli_settings")
async def test_a_rebuild_restores_what_a_restore_lost_from_the_archive_and_twice_changes_nothing(
    gone_from_temporal: str, db_pool: asyncpg.Pool, superuser_pool: asyncpg.Pool
) -> None:
    recorded = await case_record(db_pool, gone_from_temporal)
    last_seq = len(recorded["audit_events"])
    await restore_an_older_backup(superuser_pool, gone_from_temporal, keep_upto=4)
    broken = await audit_cli("verify", gone_from_temporal)
    assert broken.exit_code == 3 and "missing_from_log" in broken.output, broken.output

    rebuilt = await audit_cli("rebuild", gone_from_temporal, "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    [report] = json_of(rebuilt.output)
    assert report["restored"] == list(range(5, last_seq + 1)) and report["last_seq"] == last_seq
    assert report["history_source"] == "archive" and report["conflict"] is None
    assert await case_record(db_pool, gone_from_temporal) == recorded
    verified = await audit_cli("verify", gone_from_temporal)
    assert verified.exit_code == 0, verified.output

    again = await audit_cli("rebuild", gone_from_temporal)
    assert again.exit_code == 0 and "nothing missing" in again.output, again.output
    assert await case_record(db_pool, gone_from_temporal) == recorded


async def test_a_rebuild_leaves_a_log_that_holds_other_events_alone(
    gone_from_temporal: str, dev_server_env: WorkflowEnvironment, db_pool: asyncpg.Pool, superuser_pool: asyncpg.Pool
) -> None:
    original = await db_pool.fetchval(
        "SELECT hash FROM audit_events WHERE case_id = $1 AND seq = 2", gone_from_temporal
    )
    await rewrite_hash(superuser_pool, gone_from_temporal, "0" * 64)
    try:
        report = await rebuild_case(dev_server_env.client, db_pool, gone_from_temporal)
    finally:
        await rewrite_hash(superuser_pool, gone_from_temporal, original)
    assert report.restored == [] and report.conflict is not None
    assert "event seq 2 is stored with hash 0000" in report.conflict and "the stored event is kept" in report.conflict


async def rewrite_hash(db_pool: asyncpg.Pool, case_id: str, hash_: str) -> None:
    async with db_pool.acquire() as connection, connection.transaction():
        await connection.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        await connection.execute("UPDATE audit_events SET hash = $2 WHERE case_id = $1 AND seq = 2", case_id, hash_)
        await connection.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")


@pytest.mark.usefixtures("cli_settings")
async def test_a_rebuild_since_the_backup_finds_the_cases_that_changed_in_temporal(
    dev_server_env: WorkflowEnvironment, api: LiveApi, db_pool: asyncpg.Pool, superuser_pool: asyncpg.Pool
) -> None:
    backup_taken = datetime.now(UTC)
    case_id = await closed_case(dev_server_env, api.task_queue)
    recorded = await case_record(db_pool, case_id)
    await restore_an_older_backup(superuser_pool, case_id, keep_upto=3)

    rebuilt = await audit_cli("rebuild", "--since", backup_taken.isoformat(), "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    reports = {report["case_id"]: report for report in json_of(rebuilt.output)}
    assert reports[case_id]["restored"] == list(range(4, len(recorded["audit_events"]) + 1))
    assert reports[case_id]["history_source"] == "temporal"
    assert await case_record(db_pool, case_id) == recorded
    assert (await audit_cli("verify", case_id)).exit_code == 0


async def test_the_worker_archives_the_runs_of_its_task_queue_as_they_close(
    dev_server_env: WorkflowEnvironment, db_pool: asyncpg.Pool
) -> None:
    settings = load_settings(
        temporal_task_queue=f"archive-{uuid.uuid4().hex[:8]}",
        history_archive_interval_seconds=1,
        webhook_allowed_networks=LOOPBACK_NETWORKS,
    )
    async with build_worker(dev_server_env.client, settings, pool=db_pool):
        case_id = await closed_case(dev_server_env, settings.temporal_task_queue)
        for _ in range(100):  # no pass is asked for: the worker's own loop runs every second
            status = await db_pool.fetchval(
                "SELECT close_status FROM archived_histories WHERE workflow_id = $1", case_id
            )
            if status is not None:
                break
            await asyncio.sleep(0.2)
    assert status == "completed"
