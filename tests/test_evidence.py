"""Evidence that holds offline: a bundle is signed with the engine's key and proves, through a signed
checkpoint, that its chain ends where the engine sealed it. A forger who edits an event, re-hashes the
chain and recomputes the manifest (which passed before signatures) is caught; checkpoints are append-only."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.testing import WorkflowEnvironment

from approvals.audit.bundle import BundleReport, verify_bundle
from approvals.audit.checkpoint import Leaf, key_id, proof_problems, sign
from approvals.audit.findings import FindingKind, Severity
from approvals.audit.live import export_case, fetch_case
from approvals.migrate import migrate
from approvals.settings import load_settings
from approvals.storage import checkpoints
from schemas.events import DomainEvent, compute_hash, event_content
from tests.fixtures.postgres import CreateDatabase
from tests.fixtures.temporal import EngineWorker
from tests.test_audit import (
    ENGINE_KEY,
    TRUSTED,
    _cli,
    key_files,
    live_settings,  # noqa: F401 - a fixture the CLI test uses
    notary,
    run_two_stage_case,
)
from worker import build_worker

RECORD_ACTIVITY_SCHEDULED = "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
FORGED = {"candidate_roles": ["anyone"]}
"""Seq 3 (task.created) answers no reviewer's request, so no Workflow Update in the history contradicts it."""


def _errors(report: BundleReport) -> set[tuple[int | None, FindingKind]]:
    return {(f.seq, f.kind) for f in report.findings if f.severity is Severity.error}


def forge(bundle: Path, seq: int, payload: dict[str, Any]) -> None:
    """What a careful forger does: edit event ``seq`` in events.json and in the record_events input of
    history.json, re-hash the chain from there, and recompute the manifest's digests and last hash."""
    events = [DomainEvent.model_validate(item) for item in json.loads((bundle / "events.json").read_text())]
    forged: list[DomainEvent] = []
    for event in events:
        content = event_content(event)
        if forged and event.seq > seq:
            content["prev_hash"] = forged[-1].hash
        if event.seq == seq:
            content["payload"] = {**content["payload"], **payload}
        forged.append(DomainEvent.model_validate({**content, "hash": compute_hash(content)}))
    by_seq = {event.seq: event.model_dump(mode="json") for event in forged}
    (bundle / "events.json").write_text(json.dumps(list(by_seq.values()), ensure_ascii=False, indent=2))

    history = json.loads((bundle / "history.json").read_text())
    for event in history["events"]:
        if event["eventType"] != RECORD_ACTIVITY_SCHEDULED:
            continue
        payload = event["activityTaskScheduledEventAttributes"]["input"]["payloads"][0]
        batch: dict[str, Any] = json.loads(base64.b64decode(payload["data"]))
        batch["events"] = [by_seq[item["seq"]] for item in batch["events"]]
        payload["data"] = base64.b64encode(json.dumps(batch, ensure_ascii=False).encode()).decode()
    (bundle / "history.json").write_text(json.dumps(history))

    manifest = json.loads((bundle / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        data = (bundle / name).read_bytes()
        entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    manifest["last_hash"] = forged[-1].hash
    (bundle / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2))


@pytest.fixture
async def finished_case(time_skipping_env: WorkflowEnvironment, engine_worker: EngineWorker) -> str:
    async with engine_worker(time_skipping_env) as queue:
        return await run_two_stage_case(time_skipping_env, queue)


@pytest.fixture
async def bundle(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, finished_case: str, tmp_path: Path
) -> Path:
    return await export_case(time_skipping_env.client, notary(db_pool), finished_case, tmp_path / "export")


def test_a_genuine_bundle_verifies_and_names_the_key_that_signed_it(bundle: Path, tmp_path: Path) -> None:
    report = verify_bundle(bundle, TRUSTED)
    assert report.ok and report.findings == []
    assert report.signed_by == key_id(ENGINE_KEY.public_key())

    _, public = key_files(tmp_path)
    verified = _cli("verify", str(bundle), "--public-key", str(public))
    assert verified.exit_code == 0, verified.output
    assert f"signed by key {key_id(ENGINE_KEY.public_key())}; last event sealed in checkpoint" in verified.output


def test_an_edited_and_rehashed_bundle_fails_on_the_signature_and_the_checkpoint(
    bundle: Path, finished_case: str, tmp_path: Path
) -> None:
    forge(bundle, 3, FORGED)

    report = verify_bundle(bundle, TRUSTED)
    # The chain and the cross-check are satisfied, as the forger intended; the evidence is not.
    assert _errors(report) == {(None, FindingKind.signature), (12, FindingKind.checkpoint)}
    [signature] = [f.message for f in report.findings if f.kind is FindingKind.signature]
    assert (
        signature.startswith("manifest.json: the signature by key") and "does not match the signed content" in signature
    )
    sealed, path = [f.message for f in report.findings if f.kind is FindingKind.checkpoint]
    assert f"sealed {finished_case} at seq 12 with hash" in sealed and "but the record ends at seq 12" in sealed
    assert path.startswith("the Merkle path does not lead from the record's last hash to checkpoint")

    _, public = key_files(tmp_path)
    verified = _cli("verify", str(bundle), "--public-key", str(public), "--json")
    assert verified.exit_code == 3
    assert {(f["seq"], f["kind"]) for f in json.loads(verified.output)[0]["findings"]} == {
        (None, "signature"), (12, "checkpoint"),
    }  # fmt: skip
    assert _cli("replay", str(bundle.parent)).exit_code == 0  # replay checks determinism, not authenticity


def test_a_bundle_resigned_with_the_forgers_key_still_fails(bundle: Path) -> None:
    forge(bundle, 3, FORGED)
    forger = Ed25519PrivateKey.generate()
    (bundle / "manifest.sig.json").write_text(sign(forger, (bundle / "manifest.json").read_bytes()).model_dump_json())

    report = verify_bundle(bundle, TRUSTED)
    assert _errors(report) == {(None, FindingKind.signature), (12, FindingKind.checkpoint)}
    [signature] = [f.message for f in report.findings if f.kind is FindingKind.signature]
    assert f"signed by key {key_id(forger.public_key())}, which is not a trusted key" in signature
    assert report.signed_by is None


def test_an_unsigned_bundle_or_one_without_a_checkpoint_fails(bundle: Path) -> None:
    (bundle / "manifest.sig.json").unlink()
    report = verify_bundle(bundle, TRUSTED)
    assert _errors(report) == {(None, FindingKind.signature)}
    assert "the bundle is unsigned" in report.findings[0].message

    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["checkpoint"] = None
    (bundle / "manifest.json").write_bytes(data := json.dumps(manifest).encode())
    (bundle / "manifest.sig.json").write_text(sign(ENGINE_KEY, data).model_dump_json())
    assert _errors(verify_bundle(bundle, TRUSTED)) == {(12, FindingKind.checkpoint)}


async def test_the_latest_checkpoint_proves_the_case_and_a_changed_leaf_does_not(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, finished_case: str
) -> None:
    _, events = await fetch_case(time_skipping_env.client, db_pool, finished_case)
    sealed = Leaf(finished_case, events[-1].seq, events[-1].hash)
    proof = await notary(db_pool).proof(sealed)
    assert proof is not None and proof.leaf == sealed

    assert proof_problems(proof, sealed, TRUSTED) == []
    assert proof_problems(proof, sealed._replace(last_seq=11), TRUSTED) != []
    assert proof_problems(proof, sealed._replace(last_hash="0" * 64), TRUSTED) != []
    async with db_pool.acquire() as connection:
        latest = await checkpoints.latest_checkpoint(connection)
    assert latest is not None and proof.signed.checkpoint.seq == latest.seq  # nothing changed since


async def test_sealing_writes_nothing_when_no_case_changed_and_links_each_checkpoint_to_the_last(
    db_pool: asyncpg.Pool, finished_case: str
) -> None:
    sealer = notary(db_pool)
    first = await sealer.seal()  # the finished case is new to the checkpoints (or a test before sealed it)
    async with db_pool.acquire() as connection:
        latest = await checkpoints.latest_checkpoint(connection)
        assert latest is not None
        if first is not None:
            assert latest.hash == first.checkpoint.hash
        assert await sealer.seal() is None
        assert (await checkpoints.latest_checkpoint(connection)) == latest
        if latest.seq > 1:
            previous = await checkpoints.get_checkpoint(connection, latest.seq - 1)
            assert previous is not None and latest.prev_hash == previous.hash


async def test_checkpoints_are_append_only(
    db_pool: asyncpg.Pool, superuser_pool: asyncpg.Pool, finished_case: str
) -> None:
    """By their trigger, even for a role with every table right (the app role has only SELECT and INSERT)."""
    await notary(db_pool).seal()
    async with superuser_pool.acquire() as connection:
        for statement in (
            "UPDATE audit_checkpoints SET root = repeat('0', 64)",
            "DELETE FROM audit_checkpoints",
            "UPDATE audit_checkpoint_leaves SET last_hash = repeat('0', 64)",
            "DELETE FROM audit_checkpoint_leaves",
            "TRUNCATE audit_checkpoint_leaves",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="is append-only"):
                await connection.execute(statement)


async def test_a_rewritten_chain_is_not_resealed(create_database: CreateDatabase) -> None:
    """Someone with table rights rewrites a sealed case's rows: the sealer keeps the case's old leaf and says
    why, so the rewritten chain never gets a checkpoint and no exported bundle can prove it. (A database of its
    own: the sealer reads only case id, seq and hash, and the shared one must not keep a diverged case.)"""
    url = await create_database()
    await migrate(url)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:

        async def record(case_id: str, seq: int, hash_: str) -> None:
            await pool.execute(
                "INSERT INTO audit_events (case_id, seq, type, actor_id, at, legal_basis, prev_hash, hash) "
                "VALUES ($1, $2, 'case.commented', 'officer-1', now(), 'Art. 4', '', $3)",
                case_id, seq, hash_,
            )  # fmt: skip

        for seq in (1, 2, 3):
            await record("generic:a", seq, f"{seq:064x}")
        sealer = notary(pool)
        first = await sealer.seal()
        assert first is not None and first.checkpoint.seq == 1 and sealer.diverged == {}

        async with pool.acquire() as connection:
            await connection.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
            await connection.execute("UPDATE audit_events SET hash = repeat('e', 64) WHERE case_id = 'generic:a'")
            await connection.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        await record("generic:a", 4, "f" * 64)
        assert await sealer.seal() is None  # the only change is the rewrite: nothing sealed
        assert "sealed at seq 3 with hash" in sealer.diverged["generic:a"]
        assert f"the log now holds {'e' * 64} there and ends at seq 4" in sealer.diverged["generic:a"]

        await record("generic:b", 1, "b" * 64)
        second = await sealer.seal()
        assert second is not None and second.checkpoint.prev_hash == first.checkpoint.hash
        assert await sealer.proof(Leaf("generic:a", 4, "f" * 64)) is None
        kept = await sealer.proof(Leaf("generic:a", 3, f"{3:064x}"))
        assert kept is not None and kept.signed.checkpoint.seq == 2  # what was sealed stays sealed
    finally:
        await pool.close()


async def test_a_worker_with_the_key_seals_a_closed_case_by_itself(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The periodic sealer in the worker process is what seals a case when it closes."""
    private, _ = key_files(tmp_path)
    settings = load_settings(
        temporal_task_queue=f"test-{uuid.uuid4().hex[:8]}",
        audit_signing_key_path=private,
        audit_checkpoint_interval_seconds=1,
    )
    async with build_worker(time_skipping_env.client, settings, pool=db_pool, sandboxed=True):
        case_id = await run_two_stage_case(time_skipping_env, settings.temporal_task_queue)
        _, events = await fetch_case(time_skipping_env.client, db_pool, case_id)
        closed = (case_id, events[-1].seq, events[-1].hash)
        for _ in range(50):
            async with db_pool.acquire() as connection:
                if (sealed_in := await checkpoints.covering_checkpoint(connection, closed)) is not None:
                    break
            await asyncio.sleep(0.1)
    assert events[-1].seq == 12  # the case is closed
    assert sealed_in is not None, "the worker's sealer did not seal the closed case within 5 s"


@pytest.mark.usefixtures("live_settings")
def test_cli_seals_a_checkpoint_on_demand_and_only_when_a_case_changed(finished_case: str) -> None:
    sealed = _cli("checkpoint", "--json")
    assert sealed.exit_code == 0, sealed.output
    checkpoint = json.loads(sealed.output)
    assert checkpoint["key_id"] == key_id(ENGINE_KEY.public_key()) and checkpoint["tree_size"] >= 1
    again = _cli("checkpoint")
    assert again.exit_code == 0 and "no case changed since the last checkpoint" in again.output
