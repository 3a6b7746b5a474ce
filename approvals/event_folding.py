"""How each event changes a case's state, for the point-in-time fold (``approvals.audit.state``).

An operation's events are folded by functions its registry entry names (``approvals.operations``, field
``folds``); the events the workflows record on their own are folded in :data:`SYSTEM_FOLDS`. Together they
fold every :class:`~schemas.events.EventType` once (``unchanged`` for one that changes nothing the state
shows); a test holds them to it. Any event may carry its task's new ``version``, which the fold takes first.

This module imports only ``schemas`` and the wording's time parser: the audit reads it without loading any
workflow code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from approvals.event_wording import parse_time
from schemas.case_state import CaseState, StageResultState, TaskState
from schemas.events import DomainEvent, EventType

OUTCOME_STATUS = {
    "approved": "approved",
    "approved_with_conditions": "approved_with_conditions",
    "rejected": "rejected",
}


@dataclass
class Folding:
    """The state being rebuilt, with its tasks and stage results by id."""

    state: CaseState = field(default_factory=CaseState)
    tasks: dict[str, TaskState] = field(default_factory=dict)
    results: dict[str, StageResultState] = field(default_factory=dict)
    excluded: bool = False
    """An excluded period (Art. 45) runs: every deadline stands still, the case's status unchanged."""


Fold = Callable[[Folding, DomainEvent], None]
TaskFold = Callable[[TaskState, DomainEvent, Folding], None]


def unchanged(f: Folding, event: DomainEvent) -> None:
    """The fold of an event that changes nothing the state shows (beyond its task's version)."""


# ------------------------------------------------------------------------------------------ the case


def _case_started(f: Folding, event: DomainEvent) -> None:
    p, state = event.payload, f.state
    state.case_id = event.case_id
    state.process = (p.get("definition") or {}).get("process")
    state.business_key, state.title = p.get("business_key"), p.get("title")
    state.status = "in_review"


def _stage_started(f: Folding, event: DomainEvent) -> None:
    p, state = event.payload, f.state
    if event.stage_id and event.stage_id not in state.current_stages:
        state.current_stages.append(event.stage_id)
    if p.get("due_at"):
        state.clocks[f"stage:{event.stage_id}:{p.get('round')}"] = parse_time(p["due_at"])  # type: ignore[assignment]


def _stage_left(f: Folding, event: DomainEvent) -> None:
    """Completed or abandoned: no longer current, its clock stops."""
    if event.stage_id in f.state.current_stages:
        f.state.current_stages.remove(event.stage_id)
    f.state.clocks.pop(f"stage:{event.stage_id}:{event.payload.get('round')}", None)


def _stage_completed(f: Folding, event: DomainEvent) -> None:
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


def _closed(f: Folding) -> None:
    """No stage is current and no deadline runs or stands still (an excluded period ends with the case)."""
    f.state.clocks.clear()
    f.state.current_stages.clear()
    f.excluded = False


def _case_decided(f: Folding, event: DomainEvent) -> None:
    state = f.state
    state.outcome = event.payload.get("outcome")
    state.status = OUTCOME_STATUS.get(state.outcome or "", state.status)
    _closed(f)


def case_ended(f: Folding, event: DomainEvent) -> None:
    """Rejected, withdrawn (撤回) or cancelled: the type names the status."""
    state = f.state
    state.status = state.outcome = event.type.split(".", 1)[1]
    _closed(f)
    state.next_review_at = None


def supplement_requested(f: Folding, event: DomainEvent) -> None:
    f.state.status = "awaiting_supplement"
    f.state.pending_supplement = [item.get("item", "") for item in event.payload.get("items") or []]


def supplemented(f: Folding, event: DomainEvent) -> None:
    f.state.status = "in_review"
    f.state.pending_supplement = []
    _clocks_resumed(f, event)


def _clocks_resumed(f: Folding, event: DomainEvent) -> None:
    """The deadlines run again with the due times the event names (after 补正 or excluded time)."""
    f.excluded = False
    for key, value in (event.payload.get("due_at") or {}).items():
        f.state.clocks[key] = parse_time(value)  # type: ignore[assignment]


def period_excluded(f: Folding, event: DomainEvent) -> None:
    """Art. 45: the deadlines stand still; their due times are named again when they resume."""
    f.excluded = True
    for key in event.payload.get("working_days_left") or {}:
        f.state.clocks.pop(key, None)


def extended(f: Folding, event: DomainEvent) -> None:
    f.state.extended = True
    if event.payload.get("due_at"):
        f.state.clocks["case"] = parse_time(event.payload["due_at"])  # type: ignore[assignment]


def _clock_started(f: Folding, event: DomainEvent) -> None:
    p = event.payload
    if p.get("due_at"):
        f.state.clocks[p.get("clock") or "case"] = parse_time(p["due_at"])  # type: ignore[assignment]


def _deadlines_recomputed(f: Folding, event: DomainEvent) -> None:
    for move in event.payload.get("moved") or []:
        f.state.clocks[move["clock"]] = parse_time(move["due_at"])  # type: ignore[assignment]


def _clock_escalated(f: Folding, event: DomainEvent) -> None:
    for task_id in event.payload.get("overdue_tasks") or []:
        if task_id in f.tasks:
            f.tasks[task_id].overdue = True
            f.tasks[task_id].version += 1


def copied(f: Folding, event: DomainEvent) -> None:
    f.state.observers += [o for o in event.payload.get("observers") or [] if o not in f.state.observers]


def _supervision_started(f: Folding, event: DomainEvent) -> None:
    f.state.status = "under_supervision"
    f.state.next_review_at = parse_time(event.payload.get("first_review_at"))


def _timer_started(f: Folding, event: DomainEvent) -> None:
    if f.state.status == "under_supervision":
        f.state.next_review_at = parse_time(event.payload.get("until")) or f.state.next_review_at


def _timer_fired(f: Folding, event: DomainEvent) -> None:
    if f.state.status == "under_supervision":
        f.state.supervision_round += 1


def _supervision_ended(f: Folding, event: DomainEvent) -> None:
    state = f.state
    state.status = OUTCOME_STATUS.get(state.outcome or "", state.status)
    state.supervision_round = int(event.payload.get("rounds") or state.supervision_round)
    state.next_review_at = None


def _child_started(f: Folding, event: DomainEvent) -> None:
    if event.payload.get("child_case_id"):
        f.state.child_cases[str(event.payload["child_case_id"])] = None


def _child_completed(f: Folding, event: DomainEvent) -> None:
    if event.payload.get("child_case_id"):
        f.state.child_cases[str(event.payload["child_case_id"])] = event.payload.get("status")


def _continued(f: Folding, event: DomainEvent) -> None:
    state = f.state
    state.run = int(event.payload.get("run") or state.run + 1)
    state.supervision_round = int(event.payload.get("supervision_round") or state.supervision_round)


# ------------------------------------------------------------------------------------------ its tasks


def on_task(change: TaskFold) -> Fold:
    """A fold of an event about one task: nothing to do when the task is unknown (not created in the record)."""

    def fold(f: Folding, event: DomainEvent) -> None:
        task = f.tasks.get(event.task_id or "")
        if task is not None:
            change(task, event, f)

    return fold


def _task_created(f: Folding, event: DomainEvent) -> None:
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


@on_task
def claimed(task: TaskState, event: DomainEvent, f: Folding) -> None:
    task.claimed_by, task.status = event.actor.id, "claimed"


@on_task
def released(task: TaskState, event: DomainEvent, f: Folding) -> None:
    task.claimed_by = task.delegate_id = None
    task.status = "open"


@on_task
def conflict_declared(task: TaskState, event: DomainEvent, f: Folding) -> None:
    """The declarer recused themselves (回避): the task goes on as the event says (its vote withdrawn is the
    ``task.cancelled`` that follows)."""
    p = event.payload
    task.assignee_id, task.candidate_roles = p.get("assignee_id"), list(p.get("candidate_roles") or [])
    task.claimed_by, task.delegate_id = p.get("claimed_by"), None
    task.status = "claimed" if task.claimed_by else "open"


@on_task
def decided(task: TaskState, event: DomainEvent, f: Folding) -> None:
    task.status, task.decision, task.decided_by = "completed", event.payload.get("decision"), event.actor.id
    task.comment = event.payload.get("comment") or ""


@on_task
def _activated(task: TaskState, event: DomainEvent, f: Folding) -> None:
    task.status, task.waiting_for = "open", None


@on_task
def transferred(task: TaskState, event: DomainEvent, f: Folding) -> None:
    task.assignee_id, task.candidate_roles = event.payload.get("to"), []
    task.claimed_by = task.delegate_id = None
    task.status = "open"


@on_task
def delegated(task: TaskState, event: DomainEvent, f: Folding) -> None:
    if task.assignee_id is None:
        task.claimed_by, task.status = event.payload.get("owner"), "claimed"
    task.delegate_id = event.payload.get("delegate")


@on_task
def signer_added(task: TaskState, event: DomainEvent, f: Folding) -> None:
    added = event.payload.get("added_task_id")
    if event.payload.get("position") == "before":
        task.waiting_for, task.status = added, "waiting"
        return
    for other in f.tasks.values():
        if other.waiting_for == task.task_id and other.task_id != added:
            other.waiting_for = added


@on_task
def _task_cancelled(task: TaskState, event: DomainEvent, f: Folding) -> None:
    task.status = "cancelled"
    task.version += 1  # the workflow touches a cancelled task; the event carries no version


@on_task
def _expired(task: TaskState, event: DomainEvent, f: Folding) -> None:
    task.status = "expired"


SYSTEM_FOLDS: Mapping[EventType, Fold] = {
    EventType.case_started: _case_started,
    EventType.case_continued: _continued,
    EventType.case_reset: unchanged,
    EventType.case_decided: _case_decided,
    EventType.case_rejected: case_ended,
    EventType.case_cancelled: case_ended,
    EventType.case_child_started: _child_started,
    EventType.case_child_completed: _child_completed,
    EventType.case_calendar_assumption: unchanged,
    EventType.case_deadlines_recomputed: _deadlines_recomputed,
    EventType.case_published: unchanged,
    EventType.case_notified: unchanged,
    EventType.case_remedies_notified: unchanged,
    EventType.stage_started: _stage_started,
    EventType.stage_skipped: unchanged,
    EventType.stage_completed: _stage_completed,
    EventType.stage_abandoned: _stage_left,
    EventType.task_created: _task_created,
    EventType.task_activated: _activated,
    EventType.task_cancelled: _task_cancelled,
    EventType.task_expired: _expired,
    EventType.clock_started: _clock_started,
    EventType.clock_reminder: unchanged,
    EventType.clock_escalated: _clock_escalated,
    EventType.clock_resumed: _clocks_resumed,
    EventType.case_accepted: unchanged,
    EventType.timer_started: _timer_started,
    EventType.timer_fired: _timer_fired,
    EventType.supervision_started: _supervision_started,
    EventType.supervision_ended: _supervision_ended,
    EventType.error_tolerance_determined: unchanged,
    EventType.error_tolerance_effect_recorded: unchanged,
    EventType.document_issued: unchanged,  # a document records what was decided; the state is the decision's
}
"""How the events no operation causes change the case's state. ``case.reset`` changes nothing itself: the events
it superseded are left out of the fold (``schemas.events.in_force``), and the new run's events that follow it
make the state again."""
