"""What one workflow run holds besides the carried ``schemas.case.CaseState``: its tasks and stage rounds.

They are never carried into the next run: a case continues as new only between reviews, with no task open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from schemas.case import TaskStatus
from schemas.process import Decision, Stage

OPEN_STATUSES = (TaskStatus.open, TaskStatus.claimed, TaskStatus.waiting)
"""A task in any of these is cancelled when its stage or case is decided."""


@dataclass
class Task:
    id: str
    stage_id: str
    round: int
    status: TaskStatus
    assignee_id: str | None
    candidate_roles: tuple[str, ...]
    created_at: datetime
    clock_key: str | None
    version: int = 1
    claimed_by: str | None = None
    delegate_id: str | None = None
    waiting_for: str | None = None
    added_by: str | None = None
    overdue: bool = False
    decision: Decision | None = None
    decided_by: str | None = None
    comment: str = ""
    conditions: list[str] = field(default_factory=list)

    @property
    def holder(self) -> str | None:
        """Who may act on the task now (None: any holder of a candidate role)."""
        return self.delegate_id or self.claimed_by or self.assignee_id

    def touch(self) -> None:
        self.version += 1


@dataclass
class StageRun:
    stage: Stage
    round: int
    task_ids: list[str] = field(default_factory=list)
    outcome: str | None = None
    return_to: str | None = None
    tally: dict[str, int] = field(default_factory=dict)
