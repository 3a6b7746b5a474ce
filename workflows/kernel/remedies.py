"""Art. 38: an adverse decision states its reasons and tells the applicant of the remedies.

When a case ends rejected (a veto stage rejected it, a refusal to accept at the acceptance stage, or the case was
decided ``rejected``) the kernel records ``case.remedies_notified`` right after the decision and sends the same
notice to the applicant through the outbox: the decision it concerns, the reasons, and each remedy with its period
and organ, as the process definition's ``remedies`` declares them.

The reasons are the rejecting decisions' comments, which nobody can leave out (COMMENT_REQUIRED at every reject).
A committee vote has no one who closes it (it closes when every member has voted, or at its deadline), so its
reasons are the rejecting members' comments and the tally, which alone states why a vote lost that nobody voted
against (abstentions and absences).

Cases recorded before this rule replay without it (``REMEDIES_PATCH``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import CaseInput
    from schemas.events import DomainEvent, EventType
    from schemas.principal import SYSTEM
    from schemas.process import Decision
    from workflows.kernel.recorder import Recorder
    from workflows.kernel.state import StageRun, Task

REMEDIES_PATCH = "art-38-reasons-and-remedies"

REFUSAL_TO_ACCEPT = "refusal_to_accept"
"""不予受理: the acceptance stage refused the application."""
REFUSAL = "refusal"
"""不予行政许可: the application was refused on its merits."""


class RemedyNotices:
    def __init__(self, case: CaseInput, recorder: Recorder, tasks: Mapping[str, Task]) -> None:
        self._case = case
        self._recorder = recorder
        self._tasks = tasks

    def refused(self, decision: DomainEvent, runs: Sequence[StageRun]) -> None:
        """``decision`` ended the case rejected, decided by ``runs``: recorded and told with reasons and remedies."""
        if not workflow.patched(REMEDIES_PATCH):
            return
        definition = self._case.definition
        acceptance = definition.deadline.starts_after_stage if definition.deadline else None
        kind = REFUSAL_TO_ACCEPT if any(run.stage.id == acceptance for run in runs) else REFUSAL
        remedies = definition.remedies
        payload: dict[str, Any] = {
            "concerns": {
                "event": decision.type,
                "seq": decision.seq,
                "kind": kind,
                "stage_ids": [run.stage.id for run in runs],
            },
            "reasons": [
                {"stage_id": run.stage.id, "task_id": task.id, "decided_by": task.decided_by, "comment": task.comment}
                for run in runs
                for task in (self._tasks[task_id] for task_id in run.task_ids)
                if task.decision is Decision.reject
            ],
            "votes": {run.stage.id: run.tally for run in runs if run.tally},
            "remedies": [remedy.model_dump(mode="json") for remedy in remedies.options],
        }
        event = self._recorder.emit(
            EventType.case_remedies_notified, actor=SYSTEM, legal_basis=remedies.legal_basis, payload=payload
        )
        wording = "不予受理决定" if kind == REFUSAL_TO_ACCEPT else "不予行政许可决定"
        subject = f"{wording}（理由及救济途径）: {self._case.title}"
        self._recorder.notify(event, self._case.applicant.id, "case.remedies_notified", subject, payload)
