"""A case as it stood at a point in time: a pure fold over its events, independent of the workflow code."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from approvals.audit.timeline import parse_time
from schemas.events import GENESIS_HASH, DomainEvent


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


_OUTCOME_STATUS = {
    "approved": "approved",
    "approved_with_conditions": "approved_with_conditions",
    "rejected": "rejected",
}


def state_at(events: Sequence[DomainEvent], seq: int | None = None, at: datetime | None = None) -> CaseState:
    """The case's state as of event ``seq`` (inclusive) or instant ``at`` (inclusive); the latest by default.

    A pure fold over the events in sequence order, independent of the workflow code, so it also answers
    "what did the inbox show on that day" for cases recorded by older code.
    """
    if at is not None and at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    state = CaseState()
    tasks: dict[str, TaskState] = {}
    results: dict[str, StageResultState] = {}
    for event in sorted(events, key=lambda e: e.seq):
        if (seq is not None and event.seq > seq) or (at is not None and event.at > at):
            break
        _apply(state, tasks, results, event)
        state.as_of_seq, state.as_of, state.last_hash = event.seq, event.at, event.hash
    state.tasks = list(tasks.values())
    state.stage_results = list(results.values())
    if not state.clocks:
        state.clock_state = "none"
    else:
        state.clock_state = "stopped" if state.status == "awaiting_supplement" else "running"
    return state


def _apply(
    state: CaseState, tasks: dict[str, TaskState], results: dict[str, StageResultState], event: DomainEvent
) -> None:
    p = event.payload
    task = tasks.get(event.task_id or "")
    if task is not None and "version" in p:
        task.version = int(p["version"])
    match event.type:
        case "case.started":
            state.case_id = event.case_id
            state.process = (p.get("definition") or {}).get("process")
            state.business_key, state.title = p.get("business_key"), p.get("title")
            state.status = "in_review"
        case "stage.started":
            if event.stage_id and event.stage_id not in state.current_stages:
                state.current_stages.append(event.stage_id)
            if p.get("due_at"):
                state.clocks[f"stage:{event.stage_id}:{p.get('round')}"] = parse_time(p["due_at"])  # type: ignore[assignment]
        case "task.created":
            tasks[event.task_id or ""] = TaskState(
                task_id=event.task_id or "",
                stage_id=event.stage_id or "",
                round=int(p.get("round") or 1),
                status="waiting" if p.get("waiting_for") else "open",
                assignee_id=p.get("assignee_id"),
                candidate_roles=list(p.get("candidate_roles") or []),
                waiting_for=p.get("waiting_for"),
            )
        case "task.claimed" if task:
            task.claimed_by, task.status = event.actor.id, "claimed"
        case "task.unclaimed" if task:
            task.claimed_by = task.delegate_id = None
            task.status = "open"
        case "task.decided" if task:
            task.status, task.decision, task.decided_by = "completed", p.get("decision"), event.actor.id
            task.comment = p.get("comment") or ""
        case "task.activated" if task:
            task.status, task.waiting_for = "open", None
        case "task.transferred" if task:
            task.assignee_id, task.candidate_roles = p.get("to"), []
            task.claimed_by = task.delegate_id = None
            task.status = "open"
        case "task.delegated" if task:
            if task.assignee_id is None:
                task.claimed_by, task.status = p.get("owner"), "claimed"
            task.delegate_id = p.get("delegate")
        case "task.signer_added" if task:
            added = p.get("added_task_id")
            if p.get("position") == "before":
                task.waiting_for, task.status = added, "waiting"
            else:
                for other in tasks.values():
                    if other.waiting_for == task.task_id and other.task_id != added:
                        other.waiting_for = added
        case "task.cancelled" if task:
            task.status = "cancelled"
            task.version += 1  # the workflow touches a cancelled task; the event carries no version
        case "task.expired" if task:
            task.status = "expired"
        case "stage.completed":
            if event.stage_id in state.current_stages:
                state.current_stages.remove(event.stage_id)
            state.clocks.pop(f"stage:{event.stage_id}:{p.get('round')}", None)
            results[event.stage_id or ""] = StageResultState(
                stage_id=event.stage_id or "",
                outcome=p.get("outcome", ""),
                round=int(p.get("round") or 1),
                conditions=list(p.get("conditions") or []),
                tally=dict(p.get("tally") or {}),
                decided_at=event.at,
            )
        case "case.decided":
            state.outcome = p.get("outcome")
            state.status = _OUTCOME_STATUS.get(state.outcome or "", state.status)
            state.clocks.clear()
            state.current_stages.clear()
        case "case.rejected" | "case.withdrawn" | "case.cancelled":
            state.status = state.outcome = event.type.split(".", 1)[1]
            state.clocks.clear()
            state.current_stages.clear()
            state.next_review_at = None
        case "case.supplement_requested":
            state.status = "awaiting_supplement"
            state.pending_supplement = [item.get("item", "") for item in p.get("items") or []]
        case "case.supplemented":
            state.status = "in_review"
            state.pending_supplement = []
            for key, value in (p.get("due_at") or {}).items():
                state.clocks[key] = parse_time(value)  # type: ignore[assignment]
        case "case.extended":
            state.extended = True
            if p.get("due_at"):
                state.clocks["case"] = parse_time(p["due_at"])  # type: ignore[assignment]
        case "clock.started":
            if p.get("due_at"):
                state.clocks[p.get("clock") or "case"] = parse_time(p["due_at"])  # type: ignore[assignment]
        case "clock.escalated":
            for task_id in p.get("overdue_tasks") or []:
                if task_id in tasks:
                    tasks[task_id].overdue = True
                    tasks[task_id].version += 1
        case "case.cc":
            state.observers += [o for o in p.get("observers") or [] if o not in state.observers]
        case "stage.abandoned":
            if event.stage_id in state.current_stages:
                state.current_stages.remove(event.stage_id)
            state.clocks.pop(f"stage:{event.stage_id}:{p.get('round')}", None)
        case "supervision.started":
            state.status = "under_supervision"
            state.next_review_at = parse_time(p.get("first_review_at"))
        case "timer.started" if state.status == "under_supervision":
            state.next_review_at = parse_time(p.get("until")) or state.next_review_at
        case "timer.fired" if state.status == "under_supervision":
            state.supervision_round += 1
        case "supervision.ended":
            state.status = _OUTCOME_STATUS.get(state.outcome or "", state.status)
            state.supervision_round = int(p.get("rounds") or state.supervision_round)
            state.next_review_at = None
        case "case.child_started" if p.get("child_case_id"):
            state.child_cases[str(p["child_case_id"])] = None
        case "case.child_completed" if p.get("child_case_id"):
            state.child_cases[str(p["child_case_id"])] = p.get("status")
        case "case.continued":
            state.run = int(p.get("run") or state.run + 1)
            state.supervision_round = int(p.get("supervision_round") or state.supervision_round)
        case _:
            pass
