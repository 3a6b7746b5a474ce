"""A case as it stood at a point in time: a pure fold over its events, independent of the workflow code.

How each event type changes the state is declared beside its wording: by the operation that records it
(``approvals.operations``) or in the system table (``approvals.event_folding``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import takewhile

from approvals.event_folding import Fold, Folding
from schemas.case_state import CaseState, StageResultState, TaskState
from schemas.events import DomainEvent, in_force

__all__ = ["CaseState", "StageResultState", "TaskState", "state_at"]


def state_at(events: Sequence[DomainEvent], seq: int | None = None, at: datetime | None = None) -> CaseState:
    """The case's state as of event ``seq`` (inclusive) or instant ``at`` (inclusive); the latest by default.

    A pure fold over the events in sequence order, independent of the workflow code, so it also answers
    "what did the inbox show on that day" for cases recorded by older code. Events a ``case.reset`` up to that
    point superseded are left out: the reset run's events make the state again.
    """
    if at is not None and at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    from approvals.operations import event_folds  # the registry loads the kernel: only when folding

    folds = event_folds()
    folding = Folding()
    state = folding.state

    def so_far(event: DomainEvent) -> bool:
        return (seq is None or event.seq <= seq) and (at is None or event.at <= at)

    for event in in_force(takewhile(so_far, sorted(events, key=lambda e: e.seq))):
        _apply(folds, folding, event)
        state.as_of_seq, state.as_of, state.last_hash = event.seq, event.at, event.hash
    state.tasks = list(folding.tasks.values())
    state.stage_results = list(folding.results.values())
    if folding.excluded or (state.clocks and state.status == "awaiting_supplement"):
        state.clock_state = "stopped"  # during an excluded period its stopped deadlines are out of `clocks`
    else:
        state.clock_state = "running" if state.clocks else "none"
    return state


def _apply(folds: Mapping[str, Fold], folding: Folding, event: DomainEvent) -> None:
    task = folding.tasks.get(event.task_id or "")
    if task is not None and "version" in event.payload:
        task.version = int(event.payload["version"])
    fold = folds.get(event.type)
    if fold is not None:  # a type this code does not know changes nothing it can show
        fold(folding, event)
