"""The case's status and its search attributes; every status change is called back to the starting service."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import CaseInput, CaseState, CaseStatus
    from schemas.notifications import Channel, Notification
    from workflows import rules
    from workflows.kernel.recorder import Recorder
    from workflows.search_attributes import CASE_STAGE, CASE_STATUS


class Status:
    def __init__(self, case: CaseInput, case_id: str, state: CaseState, recorder: Recorder) -> None:
        self._case = case
        self._case_id = case_id
        self._state = state
        self._recorder = recorder
        self.active_stages: list[str] = []

    @property
    def current(self) -> CaseStatus:
        return self._state.status

    def merged_conditions(self) -> list[str]:
        return rules.merge_conditions([result.conditions for result in self._state.results.values()])

    def set(self, status: CaseStatus) -> None:
        state = self._state
        if status is state.status:
            return
        previous, state.status = state.status, status
        workflow.upsert_search_attributes([CASE_STATUS.value_set(status.value)])
        case = self._case
        if case.callback_url:
            self._recorder.send(
                Notification(
                    idempotency_key=f"{self._case_id}/{state.last_seq}/callback",
                    case_id=self._case_id,
                    channel=Channel.webhook,
                    kind="case.status_changed",
                    recipient=str(case.callback_url),
                    subject=f"{case.title}: {previous.value} -> {status.value}",
                    data={
                        "case_id": self._case_id,
                        "business_key": case.business_key,
                        "process": case.definition.process,
                        "previous_status": previous.value,
                        "status": status.value,
                        "seq": state.last_seq,
                        "conditions": self.merged_conditions(),
                    },
                )
            )

    def stage_started(self, stage_id: str) -> None:
        if stage_id not in self.active_stages:
            self.active_stages.append(stage_id)
        self._publish_stages()

    def stage_ended(self, stage_id: str) -> None:
        self.active_stages.remove(stage_id)
        self._publish_stages()

    def _publish_stages(self) -> None:
        workflow.upsert_search_attributes([CASE_STAGE.value_set(",".join(self.active_stages) or "-")])
