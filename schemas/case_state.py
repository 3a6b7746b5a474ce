"""A case as it stood after one of its events: the result of folding its audit events (``approvals.audit.state``).

Here, below the audit and the operation registry, so that both (and the API, the CLI, the console) can use it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from schemas.events import GENESIS_HASH


class TaskState(BaseModel):
    task_id: str
    stage_id: str
    round: int = 1
    status: str
    assignee_id: str | None = None
    candidate_roles: list[str] = Field(default_factory=list)
    claimed_by: str | None = None
    delegate_id: str | None = None
    waiting_for: str | None = None
    overdue: bool = False
    decision: str | None = None
    decided_by: str | None = None
    comment: str = ""
    version: int = 1


class StageResultState(BaseModel):
    stage_id: str
    outcome: str
    round: int
    conditions: list[str] = Field(default_factory=list)
    tally: dict[str, int] = Field(default_factory=dict)
    decided_at: datetime


class CaseState(BaseModel):
    """A case as it stood right after one event, rebuilt by folding the events up to it."""

    case_id: str | None = None
    process: str | None = None
    business_key: str | None = None
    title: str | None = None
    as_of_seq: int = 0
    as_of: datetime | None = None
    status: str = "not_started"
    outcome: str | None = None
    current_stages: list[str] = Field(default_factory=list)
    tasks: list[TaskState] = Field(default_factory=list)
    stage_results: list[StageResultState] = Field(default_factory=list)
    clocks: dict[str, datetime] = Field(default_factory=dict, description="Running deadlines: key -> due time.")
    clock_state: Literal["running", "stopped", "none"] = "none"
    pending_supplement: list[str] = Field(default_factory=list)
    extended: bool = False
    observers: list[str] = Field(default_factory=list)
    run: int = Field(1, description="Workflow run of the case (continue-as-new starts the next).")
    supervision_round: int = Field(0, description="Periodic reviews started while under supervision.")
    next_review_at: datetime | None = Field(None, description="When the next periodic review is due.")
    child_cases: dict[str, str | None] = Field(
        default_factory=dict, description="Child case id -> its final status (None while it runs)."
    )
    last_hash: str = GENESIS_HASH

    @property
    def open_tasks(self) -> list[TaskState]:
        return [task for task in self.tasks if task.status in ("open", "claimed")]
