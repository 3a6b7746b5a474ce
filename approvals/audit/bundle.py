"""Audit bundles: a case's history files, ``events.json``, ``manifest.json`` (SHA-256 of each, and the proof
that the case's last event is sealed in a signed checkpoint) and ``manifest.sig.json`` (the engine's
signature over the manifest's bytes).

Digests alone prove nothing against someone who edits a file and recomputes them; the signature ties the
manifest to the engine's key, and the checkpoint proof ties the chain's last hash to a checkpoint the
engine signed when it sealed it (:mod:`approvals.audit.checkpoint`)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.client import WorkflowHistory

from approvals.audit.attachments import referenced
from approvals.audit.checkpoint import InclusionProof, Leaf, Signature, proof_problems, sign, signature_problem
from approvals.audit.crosscheck import VerifyReport, verify
from approvals.audit.findings import Finding, FindingKind, finding
from approvals.audit.history import Histories, continued_from, history_from_json, is_running, run_id, runs_of
from schemas.events import DomainEvent

HISTORY_FILE = "history.json"
"""The history of the case's first (usually only) workflow run; run N > 1 is in ``history-run-N.json``."""
EVENTS_FILE = "events.json"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig.json"
BUNDLE_FORMAT = "approvals-audit-bundle/3"
"""/3 added the signature and ``checkpoint`` (the inclusion proof); /2 added ``runs`` (every workflow run of a
case continued as new); a /1 bundle is its ``history.json`` alone."""


def history_file(run: int) -> str:
    """Bundle file name of the ``run``-th run (1-based): ``history.json``, then ``history-run-2.json`` …"""
    return HISTORY_FILE if run == 1 else f"history-run-{run}.json"


def engine_version() -> str:
    try:
        return metadata.version("alashankou-approvals")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout without install
        return "unknown"


def bundle_dirname(case_id: str) -> str:
    """A file-system-safe directory name for a case id (``process:key`` -> ``process_key``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", case_id)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(
    out_dir: Path,
    case_id: str,
    history: Histories,
    events: Sequence[DomainEvent],
    *,
    signing_key: Ed25519PrivateKey,
    proof: InclusionProof | None,
    history_source: str = "temporal",
) -> Path:
    """Writes the runs' histories, ``events.json``, ``manifest.json`` (SHA-256 of each, and ``proof``: the last
    event sealed in a signed checkpoint) and ``manifest.sig.json`` (signed with ``signing_key``) to
    ``out_dir/<case>``.

    The first run's history is ``history.json``; a case that continued as new has its later runs in
    ``history-run-2.json``, ``history-run-3.json`` …, and the manifest lists the runs in order (``runs``:
    run number, run id, file, history events, the run it continued). Each is ``WorkflowHistory.to_json()``,
    the format ``temporal workflow show --output json`` prints, so the Temporal CLI, the Web UI and
    ``Replayer`` all read it; ``history_source`` says whether they came from Temporal or from the engine's
    archive (:mod:`approvals.audit.archive`). Child cases have their own records: ``child_case_ids`` names them, to be
    exported as cases of their own.
    """
    runs = runs_of(history)
    if not runs:
        raise ValueError(f"case {case_id}: no history to export")
    directory = out_dir / bundle_dirname(case_id)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("history-run-*.json"):  # a re-export of fewer runs leaves none behind
        stale.unlink()
    files = {history_file(run): one.to_json().encode() for run, one in enumerate(runs, start=1)}
    files[EVENTS_FILE] = json.dumps(
        [event.model_dump(mode="json") for event in events], ensure_ascii=False, indent=2
    ).encode()
    for name, data in files.items():
        (directory / name).write_bytes(data)
    manifest = {
        "format": BUNDLE_FORMAT,
        "case_id": case_id,
        "workflow_id": runs[0].workflow_id or case_id,
        "run_id": run_id(runs[0]),
        "run_ids": [run_id(run) for run in runs],
        "runs": [
            {
                "run": number,
                "run_id": run_id(run),
                "file": history_file(number),
                "history_events": len(run.events),
                "continued_from": continued_from(run),
            }
            for number, run in enumerate(runs, start=1)
        ],
        "exported_at": datetime.now(UTC).isoformat(),
        "engine_version": engine_version(),
        "temporalio_version": metadata.version("temporalio"),
        "history_events": sum(len(run.events) for run in runs),
        "history_source": history_source,
        "workflow_closed": not is_running(runs),
        "audit_events": len(events),
        "last_seq": events[-1].seq if events else None,
        "last_hash": events[-1].hash if events else None,
        "child_case_ids": list(
            dict.fromkeys(
                str(event.payload["child_case_id"])
                for event in events
                if event.type == "case.child_started" and event.payload.get("child_case_id")
            )
        ),
        "attachments": [
            {"seq": event.seq, "task_id": event.task_id, **ref.model_dump(mode="json")}
            for event in events
            for ref in referenced(event.payload)
        ],
        "files": {name: {"sha256": _sha256(data), "bytes": len(data)} for name, data in files.items()},
        "checkpoint": proof.model_dump(mode="json") if proof else None,
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
    (directory / MANIFEST_FILE).write_bytes(manifest_bytes)
    (directory / SIGNATURE_FILE).write_text(sign(signing_key, manifest_bytes).model_dump_json(indent=2))
    return directory


class Bundle(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    case_id: str
    manifest: dict[str, Any]
    runs: list[WorkflowHistory] = Field(description="The histories of the case's workflow runs, first to latest.")
    events: list[DomainEvent]
    findings: list[Finding] = Field(default_factory=list, description="Files whose digest differs.")


def is_bundle(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST_FILE).is_file() and (path / HISTORY_FILE).is_file()


_PLAIN_NAME = re.compile(r"^[A-Za-z0-9._-]+\.json$")


def bundle_run_files(manifest: dict[str, Any]) -> list[str]:
    """The history files of a bundle's runs, in order (a /1 bundle, or a one-run case: ``history.json``)."""
    runs = manifest.get("runs") or [{"file": HISTORY_FILE}]
    names = [str(run.get("file") or "") for run in runs]
    for name in names:
        if not _PLAIN_NAME.match(name) or name.startswith("."):
            raise ValueError(f"manifest names a history file outside the bundle: {name!r}")
    return names


def load_bundle(path: Path) -> Bundle:
    """Reads a bundle; every file whose SHA-256 differs from the manifest becomes a finding."""
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    findings = []
    listed = manifest.get("files", {})
    for name, expected in listed.items():
        actual = _sha256((path / name).read_bytes()) if (path / name).is_file() else None
        if actual != expected["sha256"]:
            findings.append(
                finding(
                    None,
                    FindingKind.bundle_digest,
                    f"{name} {'is missing' if actual is None else 'differs from its SHA-256 in the manifest'}",
                )
            )
    case_id = manifest["case_id"]
    workflow_id = manifest.get("workflow_id") or case_id
    runs = []
    for name in bundle_run_files(manifest):
        if name not in listed:
            findings.append(finding(None, FindingKind.bundle_digest, f"{name} has no SHA-256 in the manifest"))
        if not (path / name).is_file():
            if name in listed:
                continue  # reported as missing above
            findings.append(finding(None, FindingKind.bundle_digest, f"{name} is missing"))
            continue
        runs.append(history_from_json((path / name).read_text(), workflow_id=workflow_id))
    events = [DomainEvent.model_validate(item) for item in json.loads((path / EVENTS_FILE).read_text())]
    return Bundle(path=path, case_id=case_id, manifest=manifest, runs=runs, events=events, findings=findings)


class BundleReport(VerifyReport):
    """A bundle's verdict: the record's, plus who signed the bundle and which checkpoint seals its last event."""

    signed_by: str | None = Field(description="Fingerprint of the trusted key whose signature the manifest bears.")
    sealed_in: int | None = Field(description="The signed checkpoint whose Merkle root holds the last event.")


def verify_bundle(path: Path, trusted: Sequence[Ed25519PublicKey]) -> BundleReport:
    """The record's checks (:func:`~approvals.audit.crosscheck.verify`), the files' digests, the manifest's
    signature by one of the ``trusted`` keys, and the proof that the last event is sealed in a checkpoint
    signed by one of them."""
    bundle = load_bundle(path)
    signed_by, signature_findings = _signature_findings(path, trusted)
    sealed_in, checkpoint_findings = _checkpoint_findings(bundle, trusted)
    report = verify(
        bundle.case_id,
        bundle.events,
        bundle.runs,
        extra_findings=[*bundle.findings, *signature_findings, *checkpoint_findings],
        history_source=str(bundle.manifest.get("history_source") or "temporal"),  # where the exporter read it
    )
    return BundleReport(**dict(report), signed_by=signed_by, sealed_in=sealed_in)


def _signature_findings(path: Path, trusted: Sequence[Ed25519PublicKey]) -> tuple[str | None, list[Finding]]:
    if not (path / SIGNATURE_FILE).is_file():
        return None, [finding(None, FindingKind.signature, f"the bundle is unsigned: {SIGNATURE_FILE} is missing")]
    try:
        signature = Signature.model_validate_json((path / SIGNATURE_FILE).read_bytes())
    except ValidationError as error:
        return None, [finding(None, FindingKind.signature, f"{SIGNATURE_FILE} is not a signature: {error}")]
    problem = signature_problem(signature, (path / MANIFEST_FILE).read_bytes(), trusted)
    if problem is not None:
        return None, [finding(None, FindingKind.signature, f"{MANIFEST_FILE}: {problem}")]
    return signature.key_id, []


def _checkpoint_findings(bundle: Bundle, trusted: Sequence[Ed25519PublicKey]) -> tuple[int | None, list[Finding]]:
    if not bundle.events:
        return None, []
    last = bundle.events[-1]
    if not bundle.manifest.get("checkpoint"):
        return None, [
            finding(
                last.seq, FindingKind.checkpoint, "no signed checkpoint seals the last event (none in the manifest)"
            )
        ]
    try:
        proof = InclusionProof.model_validate(bundle.manifest["checkpoint"])
    except ValidationError as error:
        return None, [finding(last.seq, FindingKind.checkpoint, f"the manifest's checkpoint is unreadable: {error}")]
    problems = proof_problems(proof, Leaf(bundle.case_id, last.seq, last.hash), trusted)
    if problems:
        return None, [finding(last.seq, FindingKind.checkpoint, problem) for problem in problems]
    return proof.signed.checkpoint.seq, []
