"""A case as it stood at a point in time: a pure fold over its events, independent of the workflow code.

Every :class:`~schemas.events.EventType` is either folded (:data:`FOLDS`, one small function per type) or
declared not to change the state (:data:`STATELESS`); a test holds every type to one or the other. Any event
may carry its task's new ``version``, which every fold takes first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from approvals.event_wording import parse_time
from schemas.case_state import CaseState, StageResultState, TaskState
from schemas.events import DomainEvent, EventType

__all__ = ["FOLDS", "STATELESS", "CaseState", "StageResultState", "TaskState", "state_at"]

_OUTCOME_STATUS = {
    "approved": "approved",
    "approved_with_conditions": "approved_with_conditions",
    "rejected": "rejected",
}


@dataclass
class _Folding:
    """The state being rebuilt, with its tasks and stage results by id."""

    state: CaseState = field(default_factory=CaseState)
    tasks: dict[str, TaskState] = field(default_factory=dict)
    results: dict[str, StageResultState] = field(default_factory=dict)


Fold = Callable[[_Folding, DomainEvent], None]
TaskFold = Callable[[TaskState, DomainEvent, _Folding], None]


def state_at(events: Sequence[DomainEvent], seq: int | None = None, at: datetime | None = None) -> CaseState:
    """The case's state as of event ``seq`` (inclusive) or instant ``at`` (inclusive); the latest by default.

    A pure fold over the events in sequence order, independent of the workflow code, so it also answers
    "what did the inbox show on that day" for cases recorded by older code.
    """
    if at is not None and at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    folding = _Folding()
    state = folding.state
    for event in sorted(events, key=lambda e: e.seq):
        if (seq is not None and event.seq > seq) or (at is not None and event.at > at):
            break
        _apply(folding, event)
        state.as_of_seq, state.as_of, state.last_hash = event.seq, event.at, event.hash
    state.tasks = list(folding.tasks.values())
    state.stage_results = list(folding.results.values())
    if not state.clocks:
        state.clock_state = "none"
    else:
        state.clock_state = "stopped" if state.status == "awaiting_supplement" else "running"
    return state


def _apply(folding: _Folding, event: DomainEvent) -> None:
    task = folding.tasks.get(event.task_id or "")
    if task is not None and "version" in event.payload:
        task.version = int(event.payload["version"])
    fold = FOLDS.get(event.type)
    if fold is not None:  # a stateless type, or one this code does not know
        fold(folding, event)


# ------------------------------------------------------------------------------------------ the case


def _case_started(f: _Folding, event: DomainEvent) -> None:
    p, state = event.payload, f.state
    state.case_id = event.case_id
    state.process = (p.get("definition") or {}).get("process")
    state.business_key, state.title = p.get("business_key"), p.get("title")
    state.status = "in_review"


def _stage_started(f: _Folding, event: DomainEvent) -> None:
    p, state = event.payload, f.state
    if event.stage_id and event.stage_id not in state.current_stages:
        state.current_stages.append(event.stage_id)
    if p.get("due_at"):
        state.clocks[f"stage:{event.stage_id}:{p.get('round')}"] = parse_time(p["due_at"])  # type: ignore[assignment]


def _stage_left(f: _Folding, event: DomainEvent) -> None:
    """Completed or abandoned: no longer current, its clock stops."""
    if event.stage_id in f.state.current_stages:
        f.state.current_stages.remove(event.stage_id)
    f.state.clocks.pop(f"stage:{event.stage_id}:{event.payload.get('round')}", None)


def _stage_completed(f: _Folding, event: DomainEvent) -> None:
    p = event.payload
    _stage_left(f, event)
    f.results[event.stage_id or ""] = StageResultState(
        stage_id=event.stage_id or "",
        outcome=p.get("outcome", ""),
        round=int(p.get("round") or 1),
        conditions=list(p.get("conditions") or []),
        tally=dict(p.get("tally") or {}),
        decided_at=event.at,
    )


def _case_decided(f: _Folding, event: DomainEvent) -> None:
    state = f.state
    state.outcome = event.payload.get("outcome")
    state.status = _OUTCOME_STATUS.get(state.outcome or "", state.status)
    state.clocks.clear()
    state.current_stages.clear()


def _case_ended(f: _Folding, event: DomainEvent) -> None:
    """Rejected, withdrawn (撤回) or cancelled: the type names the status."""
    state = f.state
    state.status = state.outcome = event.type.split(".", 1)[1]
    state.clocks.clear()
    state.current_stages.clear()
    state.next_review_at = None


def _supplement_requested(f: _Folding, event: DomainEvent) -> None:
    f.state.status = "awaiting_supplement"
    f.state.pending_supplement = [item.get("item", "") for item in event.payload.get("items") or []]


def _supplemented(f: _Folding, event: DomainEvent) -> None:
    f.state.status = "in_review"
    f.state.pending_supplement = []
    for key, value in (event.payload.get("due_at") or {}).items():
        f.state.clocks[key] = parse_time(value)  # type: ignore[assignment]


def _extended(f: _Folding, event: DomainEvent) -> None:
    f.state.extended = True
    if event.payload.get("due_at"):
        f.state.clocks["case"] = parse_time(event.payload["due_at"])  # type: ignore[assignment]


def _clock_started(f: _Folding, event: DomainEvent) -> None:
    p = event.payload
    if p.get("due_at"):
        f.state.clocks[p.get("clock") or "case"] = parse_time(p["due_at"])  # type: ignore[assignment]


def _clock_escalated(f: _Folding, event: DomainEvent) -> None:
    for task_id in event.payload.get("overdue_tasks") or []:
        if task_id in f.tasks:
            f.tasks[task_id].overdue = True
            f.tasks[task_id].version += 1


def _copied(f: _Folding, event: DomainEvent) -> None:
    f.state.observers += [o for o in event.payload.get("observers") or [] if o not in f.state.observers]


def _supervision_started(f: _Folding, event: DomainEvent) -> None:
    f.state.status = "under_supervision"
    f.state.next_review_at = parse_time(event.payload.get("first_review_at"))


def _timer_started(f: _Folding, event: DomainEvent) -> None:
    if f.state.status == "under_supervision":
        f.state.next_review_at = parse_time(event.payload.get("until")) or f.state.next_review_at


def _timer_fired(f: _Folding, event: DomainEvent) -> None:
    if f.state.status == "under_supervision":
        f.state.supervision_round += 1


def _supervision_ended(f: _Folding, event: DomainEvent) -> None:
    state = f.state
    state.status = _OUTCOME_STATUS.get(state.outcome or "", state.status)
    state.supervision_round = int(event.payload.get("rounds") or state.supervision_round)
    state.next_review_at = None


def _child_started(f: _Folding, event: DomainEvent) -> None:
    if event.payload.get("child_case_id"):
        f.state.child_cases[str(event.payload["child_case_id"])] = None


def _child_completed(f: _Folding, event: DomainEvent) -> None:
    if event.payload.get("child_case_id"):
        f.state.child_cases[str(event.payload["child_case_id"])] = event.payload.get("status")


def _continued(f: _Folding, event: DomainEvent) -> None:
    state = f.state
    state.run = int(event.payload.get("run") or state.run + 1)
    state.supervision_round = int(event.payload.get("supervision_round") or state.supervision_round)


# ------------------------------------------------------------------------------------------ its tasks


def _task_created(f: _Folding, event: DomainEvent) -> None:
    p = event.payload
    f.tasks[event.task_id or ""] = TaskState(
        task_id=event.task_id or "",
        stage_id=event.stage_id or "",
        round=int(p.get("round") or 1),
        status="waiting" if p.get("waiting_for") else "open",
        assignee_id=p.get("assignee_id"),
        candidate_roles=list(p.get("candidate_roles") or []),
        waiting_for=p.get("waiting_for"),
    )


def _claimed(task: TaskState, event: DomainEvent, f: _Folding) -> None:
    task.claimed_by, task.status = event.actor.id, "claimed"


def _unclaimed(task: TaskState, event: DomainEvent, f: _Folding) -> None:
    task.claimed_by = task.delegate_id = None
    task.status = "open"


def _decided(task: TaskState, event: DomainEvent, f: _Folding) -> None:
    task.status, task.decision, task.decided_by = "completed", event.payload.get("decision"), event.actor.id
    task.comment = event.payload.get("comment") or ""


def _activated(task: TaskState, event: DomainEvent, f: _Folding) -> None:
    task.status, task.waiting_for = "open", None


def _transferred(task: TaskState, event: DomainEvent, f: _Folding) -> None:
    task.assignee_id, task.candidate_roles = event.payload.get("to"), []
    task.claimed_by = task.delegate_id = None
    task.status = "open"


def _delegated(task: TaskState, event: DomainEvent, f: _Folding) -> None:
    if task.assignee_id is None:
        task.claimed_by, task.status = event.payload.get("owner"), "claimed"
    task.delegate_id = event.payload.get("delegate")


def _signer_added(task: TaskState, event: DomainEvent, f: _Folding) -> None:
    added = event.payload.get("added_task_id")
    if event.payload.get("position") == "before":
        task.waiting_for, task.status = added, "waiting"
        return
    for other in f.tasks.values():
        if other.waiting_for == task.task_id and other.task_id != added:
            other.waiting_for = added


def _task_cancelled(task: TaskState, event: DomainEvent, f: _Folding) -> None:
    task.status = "cancelled"
    task.version += 1  # the workflow touches a cancelled task; the event carries no version


def _expired(task: TaskState, event: DomainEvent, f: _Folding) -> None:
    task.status = "expired"


def _on_task(change: TaskFold) -> Fold:
    """A fold of an event about one task: nothing to do when the task is unknown (not created in the record)."""

    def fold(f: _Folding, event: DomainEvent) -> None:
        task = f.tasks.get(event.task_id or "")
        if task is not None:
            change(task, event, f)

    return fold


_TASK_FOLDS: Mapping[EventType, TaskFold] = {
    EventType.task_claimed: _claimed,
    EventType.task_unclaimed: _unclaimed,
    EventType.task_decided: _decided,
    EventType.task_activated: _activated,
    EventType.task_transferred: _transferred,
    EventType.task_delegated: _delegated,
    EventType.task_signer_added: _signer_added,
    EventType.task_cancelled: _task_cancelled,
    EventType.task_expired: _expired,
}

FOLDS: Mapping[EventType, Fold] = {
    EventType.case_started: _case_started,
    EventType.case_continued: _continued,
    EventType.case_decided: _case_decided,
    EventType.case_rejected: _case_ended,
    EventType.case_withdrawn: _case_ended,
    EventType.case_cancelled: _case_ended,
    EventType.case_cc: _copied,
    EventType.case_supplement_requested: _supplement_requested,
    EventType.case_supplemented: _supplemented,
    EventType.case_extended: _extended,
    EventType.case_child_started: _child_started,
    EventType.case_child_completed: _child_completed,
    EventType.stage_started: _stage_started,
    EventType.stage_completed: _stage_completed,
    EventType.stage_abandoned: _stage_left,
    EventType.task_created: _task_created,
    EventType.clock_started: _clock_started,
    EventType.clock_escalated: _clock_escalated,
    EventType.timer_started: _timer_started,
    EventType.timer_fired: _timer_fired,
    EventType.supervision_started: _supervision_started,
    EventType.supervision_ended: _supervision_ended,
    **{event_type: _on_task(change) for event_type, change in _TASK_FOLDS.items()},
}
"""Event type -> how it changes the case's state."""

STATELESS: frozenset[EventType] = frozenset(
    {
        EventType.case_commented,
        EventType.stage_skipped,
        EventType.task_urged,
        EventType.clock_reminder,
        EventType.case_calendar_assumption,
        EventType.case_published,
        EventType.case_notified,
        EventType.error_tolerance_determined,
        EventType.error_tolerance_effect_recorded,
    }
)
"""Event types that change nothing the state shows (beyond the task version any event may carry)."""
