"""Evidence that holds offline: a bundle is signed with the engine's key and proves, through a signed
checkpoint, that its chain ends where the engine sealed it. A forger who edits an event, re-hashes the
chain and recomputes the manifest (which passed before signatures) is caught; checkpoints are append-only."""

from __future__ import annotations

import base64
import hashlib
import json
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
from approvals.storage import checkpoints
from schemas.events import DomainEvent, compute_hash, event_content
from tests.fixtures.temporal import EngineWorker
from tests.test_audit import ENGINE_KEY, TRUSTED, _cli, key_files, notary, run_two_stage_case

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


async def test_checkpoints_are_append_only(db_pool: asyncpg.Pool, finished_case: str) -> None:
    await notary(db_pool).seal()
    async with db_pool.acquire() as connection:
        for statement in (
            "UPDATE audit_checkpoints SET root = repeat('0', 64)",
            "DELETE FROM audit_checkpoints",
            "UPDATE audit_checkpoint_leaves SET last_hash = repeat('0', 64)",
            "DELETE FROM audit_checkpoint_leaves",
            "TRUNCATE audit_checkpoint_leaves",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="is append-only"):
                await connection.execute(statement)


async def test_a_rewritten_chain_is_not_resealed(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, finished_case: str
) -> None:
    """Someone with table rights rewrites seq 5 and re-hashes the rest: the sealer keeps the old leaf, so the
    rewritten chain never gets a checkpoint, and no exported bundle can prove it."""
    sealer = notary(db_pool)
    _, events = await fetch_case(time_skipping_env.client, db_pool, finished_case)
    await sealer.seal()
    async with db_pool.acquire() as connection:
        await connection.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        try:
            prev = events[3].hash
            for event in events[4:]:
                content = {**event_content(event), "prev_hash": prev}
                if event.seq == 5:
                    content["payload"] = {**content["payload"], "comment": "不符合条件"}
                prev = compute_hash(content)
                await connection.execute(
                    "UPDATE audit_events SET payload = $3::text::jsonb, prev_hash = $4, hash = $5 "
                    "WHERE case_id = $1 AND seq = $2",
                    finished_case, event.seq, json.dumps(content["payload"], ensure_ascii=False),
                    content["prev_hash"], prev,
                )  # fmt: skip
        finally:
            await connection.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")

    rewritten = Leaf(finished_case, 12, prev)
    assert await sealer.proof(rewritten) is None
    assert await sealer.proof(Leaf(finished_case, 12, events[-1].hash)) is not None  # what was sealed stays
