"""What an audit finds: one problem in a case's record, pinned to the event it concerns."""

from __future__ import annotations

import json
from datetime import date
from enum import Enum, StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    error = "error"
    """The record cannot be trusted as it stands."""
    note = "note"
    """Worth knowing, not a breach (e.g. events of a running case not yet written)."""


class FindingKind(StrEnum):
    edited = "edited"
    """A row's content no longer matches its own hash."""
    reordered = "reordered"
    """A row was sealed under another sequence number than the one it is stored under."""
    deleted = "deleted"
    """A sequence number is missing."""
    inserted = "inserted"
    """A row whose content does not match its hash and whose hash no other row vouches for: forged."""
    chain_broken = "chain_broken"
    """A genuine row does not link to the row stored before it: something before it was changed."""
    foreign_case = "foreign_case"
    out_of_order = "out_of_order"
    missing_from_log = "missing_from_log"
    """An event the workflow recorded (history) is not in the audit log."""
    not_in_history = "not_in_history"
    """A row of the audit log the workflow never emitted."""
    differs_from_history = "differs_from_history"
    decision_not_logged = "decision_not_logged"
    """A reviewer's request the workflow accepted (a Workflow Update in the history) has no matching row."""
    pending = "pending"
    bundle_digest = "bundle_digest"
    history_unreadable = "history_unreadable"
    signature = "signature"
    """A bundle's manifest is unsigned, or not signed by a trusted key."""
    checkpoint = "checkpoint"
    """No checkpoint signed by a trusted key seals the record's last event as it stands."""
    run_missing = "run_missing"
    document = "document"
    """An issued official document is missing, changed since it was issued, or not signed by the organ."""
    """A workflow run of the case (continue-as-new) is not in the record, or the runs do not link up."""
    attachment = "attachment"
    """A referenced document fetched again no longer has the SHA-256 recorded (or could not be fetched: a note)."""


class Finding(BaseModel):
    """One problem found in a case's record, pinned to the sequence number it concerns."""

    model_config = ConfigDict(frozen=True)

    seq: int | None = Field(description="Sequence number of the event concerned (None: the whole record).")
    kind: FindingKind
    message: str
    severity: Severity = Severity.error


def finding(seq: int | None, kind: FindingKind, message: str, severity: Severity = Severity.error) -> Finding:
    return Finding(seq=seq, kind=kind, message=message, severity=severity)


def plain(value: Any) -> str:
    """A value as a finding's reader should see it: times in ISO 8601, enums by their value, structures as
    JSON, never a Python repr (``datetime.datetime(2026, …)``, ``{'key': …}``)."""
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, str):
        return value or '""'
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=plain)
