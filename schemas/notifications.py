"""Notifications leave the engine through an outbox, one row per idempotency key."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Channel(StrEnum):
    webhook = "webhook"
    log = "log"


class Notification(BaseModel):
    model_config = ConfigDict(frozen=True)

    idempotency_key: str = Field(
        description="Derived from workflow id + event sequence + recipient; a retry never sends twice."
    )
    case_id: str
    channel: Channel
    kind: str = Field(description="`task.assigned`, `task.reminder`, `task.urged`, `case.status_changed` ...")
    recipient: str = Field(description="User id or role for `log`, URL for `webhook`.")
    subject: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class DeliveryResult(BaseModel):
    idempotency_key: str
    status: str = Field(
        description="`queued` (in the outbox for the dispatcher); histories of earlier versions also hold "
        "`delivered`, `failed` and `duplicate`, when the activity delivered itself."
    )
    attempts: int = 0
    error: str | None = None


class DisclosureNotice(BaseModel):
    """Art. 18: a decision published promptly and accurately (decision, subject, conditions, legal basis)."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    case_id: str
    process: str
    title: str
    decision: str
    legal_basis: str
    conditions: list[str] = Field(default_factory=list)
    decided_at: str
    subject: dict[str, Any] = Field(default_factory=dict, description="What the decision is about.")
    publication_due_at: str | None = Field(
        None, description="Published by then: working days after the decision (None in notices of earlier cases)."
    )
    withheld: dict[str, str] | None = Field(
        None, description="Subject keys not published, each with the reason (personal data, commercial secret)."
    )
