"""How an operator's reset (``temporal workflow reset``) shows in a run's history.

The reset ends the old run and starts a new one from a point of its history: the new run's history is the old
one's up to that point (its start event too, which names the old run), then a ``WorkflowTaskFailed`` event with
cause ``RESET_WORKFLOW`` naming the old run (``baseRunId``), the new run (``newRunId``) and the reason. The
recording activity reads it to tell a reset run from a faulty one; the audit, to name the run.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory


def last_reset(history: WorkflowHistory) -> HistoryEvent | None:
    """The event of the reset that made this run (the last one in its history: earlier resets came with the
    part of the history it kept); None for a run no reset made."""
    for event in reversed(history.events):
        if (
            event.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            and event.workflow_task_failed_event_attributes.cause
            == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
        ):
            return event
    return None
