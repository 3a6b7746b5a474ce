"""What the workflow hands to the recording activity: new events plus the projections they lead to.

The activity writes all of it in one transaction. Projections carry the sequence number of the last
event they reflect, so a late or retried write never rolls a row back to an older state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.case import DUE_ASSUMED_YEARS
from schemas.events import DomainEvent
from schemas.notifications import Notification


class CaseProjection(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: str
    process: str
    business_key: str
    title: str
    status: str
    current_stages: list[str] = Field(default_factory=list)
    applicant_id: str
    priority: bool = False
    clock_state: str = Field("none", description="`running`, `stopped` (补正) or `none`.")
    due_at: datetime | None = None
    outcome: str | None = None
    started_at: datetime
    updated_at: datetime
    summary: dict[str, Any] = Field(default_factory=dict, description="Small, searchable facts of the case.")
    last_seq: int
    # Defaults: batches recorded before these fields existed (histories, activity tasks scheduled by an older
    # worker) must still decode; the recording activity then derives or keeps the stored values.
    started_by: str | None = Field(
        None, description="Principal id of who started the case (the actor of `case.started`)."
    )
    observers: list[str] | None = Field(
        None, description="Users copied on the case (抄送), each once, in the order first copied."
    )


class StoredCase(CaseProjection):
    """A case row as stored: the workflow's projection and what recording derives from its events for search
    (migration 0012)."""

    applicant_name: str = Field("", description="The applying party's name (enterprise or unit, else the applicant).")
    applicant_unit: str = Field("", description="The applicant's unit.")
    credit_code: str | None = Field(
        None, description="Unified social credit code (统一社会信用代码), if the case has one."
    )
    decided_at: datetime | None = Field(None, description="When the case was decided (its first `case.decided`).")


class TaskProjection(BaseModel):
    model_config = ConfigDict(frozen=True)

    task_id: str
    case_id: str
    process: str
    stage_id: str
    stage_title: str
    legal_basis: str
    status: str
    assignee_id: str | None = None
    candidate_roles: list[str] = Field(default_factory=list)
    claimed_by: str | None = None
    delegate_id: str | None = None
    priority: bool = False
    due_at: datetime | None = None
    overdue: bool = False
    decision: str | None = None
    version: int
    created_at: datetime
    updated_at: datetime
    last_seq: int
    due_assumed_years: list[int] = Field(default_factory=list, description=DUE_ASSUMED_YEARS)


class RecordBatch(BaseModel):
    """New events (consecutive, starting right after what was recorded before) and current projections."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    events: list[DomainEvent]
    case: CaseProjection
    tasks: list[TaskProjection] = Field(default_factory=list)
    notifications: list[Notification] = Field(
        default_factory=list, description="Queued in the outbox with the events that caused them."
    )


AUDIT_FORK = "AUDIT_FORK"
"""The recording activity's answer to a reset run (its failure type, with a :class:`ResetFork`): its batch was
not recorded, and its events are sealed again after a ``case.reset``."""


class ResetFork(BaseModel):
    """What the recording activity found when a reset run records seqs the log already holds (``AUDIT_FORK``).

    An operator's ``temporal workflow reset`` starts a new run from a point of the old run's history; the new
    run then seals events under seqs the old run already recorded. The log keeps the old run's events, so the
    new run continues the chain after them: it records a ``case.reset`` after ``stored_seq`` (the log's last
    event) and seals its own events after that.
    """

    model_config = ConfigDict(frozen=True)

    stored_seq: int = Field(description="The log's last event when the new run first recorded.")
    stored_hash: str = Field(description="That event's hash: the `prev_hash` of the `case.reset`.")
    superseded_from: int = Field(description="The first seq the new run sealed again: the reset point.")
    old_run_id: str
    new_run_id: str
    reason: str = Field(
        "", description="The reason given to `temporal workflow reset` (the CLI puts the operator's user name first)."
    )
    reset_event_id: int = Field(description="The new run's history event that records the reset.")
