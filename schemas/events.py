"""Domain events: the tamper-evident record of every transition of a case.

Each event is hashed over a canonical JSON encoding of its content together with the previous event's
hash, so editing, deleting, inserting or reordering a stored event breaks the chain from that point on.
The hash is computed inside the workflow (deterministic, pure) and stored by the recording activity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.principal import Principal

GENESIS_HASH = "0" * 64
"""The previous hash of a case's first event."""


class EventType(StrEnum):
    """Every kind of event a case records. The operation registry (``approvals.operations``) says which
    operation leaves which of them and words each one for the timeline; a test fails when one has no wording.
    The values are stored in the audit log and in histories: never rename one, add a new one instead."""

    case_started = "case.started"
    case_continued = "case.continued"
    case_decided = "case.decided"
    case_rejected = "case.rejected"
    case_withdrawn = "case.withdrawn"
    case_cancelled = "case.cancelled"
    case_commented = "case.commented"
    case_cc = "case.cc"
    case_supplement_requested = "case.supplement_requested"
    case_supplemented = "case.supplemented"
    case_extended = "case.extended"
    case_accepted = "case.accepted"
    case_calendar_assumption = "case.calendar_assumption"
    case_deadlines_recomputed = "case.deadlines_recomputed"
    case_published = "case.published"
    case_notified = "case.notified"
    case_remedies_notified = "case.remedies_notified"
    case_child_started = "case.child_started"
    case_child_completed = "case.child_completed"
    case_reset = "case.reset"
    stage_started = "stage.started"
    stage_skipped = "stage.skipped"
    stage_completed = "stage.completed"
    stage_abandoned = "stage.abandoned"
    task_created = "task.created"
    task_claimed = "task.claimed"
    task_unclaimed = "task.unclaimed"
    task_recalled = "task.recalled"
    task_conflict_declared = "task.conflict_declared"
    task_decided = "task.decided"
    task_activated = "task.activated"
    task_transferred = "task.transferred"
    task_delegated = "task.delegated"
    task_signer_added = "task.signer_added"
    task_urged = "task.urged"
    task_cancelled = "task.cancelled"
    task_expired = "task.expired"
    clock_started = "clock.started"
    clock_reminder = "clock.reminder"
    clock_escalated = "clock.escalated"
    clock_paused = "clock.paused"
    clock_resumed = "clock.resumed"
    timer_started = "timer.started"
    timer_fired = "timer.fired"
    supervision_started = "supervision.started"
    supervision_ended = "supervision.ended"
    error_tolerance_determined = "error_tolerance.determined"
    error_tolerance_effect_recorded = "error_tolerance.effect_recorded"
    document_issued = "document.issued"


class DomainEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: str
    seq: int = Field(ge=1, description="1, 2, 3 ... per case, without gaps.")
    type: str = Field(description="What happened, e.g. `task.decided`, `case.supplement_requested`.")
    actor: Principal
    at: datetime = Field(description="workflow.now() when it happened (UTC).")
    legal_basis: str = Field(description="Article the step rests on, e.g. `Art. 10`.")
    stage_id: str | None = None
    task_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str
    hash: str


RESET_LEGAL_BASIS = "Archives Law Art. 37"
"""电子档案应当来源可靠、程序规范、要素合规: the organ keeps its electronic record whole, so when an operator
resets a case's workflow (``temporal workflow reset``) the events the old run recorded stay, marked superseded."""


def superseded_by_resets(events: Iterable[DomainEvent]) -> dict[int, int]:
    """The seq of every event a later ``case.reset`` superseded, mapped to that reset's seq.

    A ``case.reset`` names the range its new run replaced (``superseded_from``..``superseded_to``: the events
    the old run recorded from the reset point on). A range may hold an earlier reset and what it superseded:
    the latest reset that covers an event is the one it is marked with.
    """
    superseded: dict[int, int] = {}
    for event in sorted(events, key=lambda e: e.seq):
        if event.type == EventType.case_reset:
            first, last = event.payload.get("superseded_from"), event.payload.get("superseded_to")
            if isinstance(first, int) and isinstance(last, int):
                superseded.update(dict.fromkeys(range(first, min(last, event.seq - 1) + 1), event.seq))
    return superseded


def in_force(events: Iterable[DomainEvent]) -> list[DomainEvent]:
    """The events no ``case.reset`` superseded, in sequence order: what the case's state is made of."""
    ordered = sorted(events, key=lambda e: e.seq)
    superseded = superseded_by_resets(ordered)
    return [event for event in ordered if event.seq not in superseded]


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no whitespace, UTF-8 (Chinese text kept as is)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def event_content(event: DomainEvent | dict[str, Any]) -> dict[str, Any]:
    """The hashed part of an event: everything but the hash itself, in JSON-ready form."""
    data = event.model_dump(mode="json") if isinstance(event, DomainEvent) else dict(event)
    data.pop("hash", None)
    return data


def compute_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(content)).hexdigest()


def seal_event(**fields: Any) -> DomainEvent:
    """Builds an event and fills in its hash from its content and ``prev_hash``."""
    unsealed = DomainEvent.model_validate({**fields, "hash": ""})
    return unsealed.model_copy(update={"hash": compute_hash(event_content(unsealed))})
