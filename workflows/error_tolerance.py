"""Error-tolerance review (容错, Art. 25): exemption from or reduction of liability after a reform fails.

The discipline inspector accepts the application (or asks for everything missing at once, 补正), then
investigates and finds on each of Art. 25's five conditions with evidence; approving there is refused while
a finding says a condition does not hold. The committee named in the application deliberates and votes
(2/3 of the members present, abstentions recorded, a deadline), and the committee chair decides: approve is
exemption (免责), approve with conditions is reduced liability (减轻责任), reject is "not applicable". The
chair cannot approve while the investigation or the vote stands rejected.

After an exemption or reduction the case stays open under follow-up: a recorded timer runs to the promised
completion date of the rectification plan, then the discipline inspector checks whether it was rectified
in time. The outcome is recorded as the effect of Art. 25's second sentence: no effect on performance
assessment, awards, promotion or commendation when rectified promptly, else that protection does not apply.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import CaseInput, CaseStatus, CaseView, ConcernedPerson, Relationship
    from schemas.error_tolerance import (
        CONDITION_IDS,
        EFFECT_TEXT,
        RECTIFICATION_CRITERIA,
        Determination,
        ErrorToleranceApplication,
        ErrorToleranceNotice,
        RectificationEffect,
        RectificationOutcome,
    )
    from schemas.events import EventType
    from schemas.principal import SYSTEM
    from schemas.process import (
        Deadline,
        Decision,
        OnReject,
        ProcessDefinition,
        QuorumRule,
        RoutingMode,
        Stage,
        Supervision,
    )
    from schemas.records import CaseProjection
    from workflows.compatibility import application_or_wait
    from workflows.kernel import KernelWorkflow
    from workflows.rules import StageOutcome

PROCESS = "error-tolerance"
LEGAL_BASIS = "Art. 25"
INSPECTOR_ROLE = "discipline_inspector"
CHAIR_ROLE = "committee_chair"
HR_ROLE = "hr_officer"

FINDING_DECISIONS = (Decision.approve, Decision.reject, Decision.return_)
ESCALATION = {"remind_before_working_days": 2, "escalate_to_role": "supervisor"}

ACCEPTANCE = Stage(
    id="acceptance",
    title="受理 Acceptance (discipline inspection)",
    legal_basis=LEGAL_BASIS,
    candidate_roles=(INSPECTOR_ROLE,),
    allowed_decisions=(Decision.approve, Decision.reject),
    may_request_supplement=True,
    deadline=Deadline(working_days=5, remind_before_working_days=1, escalate_to_role="supervisor"),
)
INVESTIGATION = Stage(
    id="investigation",
    title="调查核实 Investigation of the five conditions",
    legal_basis=LEGAL_BASIS,
    candidate_roles=(INSPECTOR_ROLE,),
    allowed_decisions=FINDING_DECISIONS,
    may_request_supplement=True,
    criteria=CONDITION_IDS,
    on_reject=OnReject.continue_,  # the committee and the chair see it; the chair then cannot approve
    deadline=Deadline(working_days=20, **ESCALATION),
)
RECTIFICATION_CHECK = Stage(
    id="rectification_check",
    title="整改核查 Rectification check (was it rectified promptly?)",
    legal_basis=LEGAL_BASIS,
    candidate_roles=(INSPECTOR_ROLE,),
    allowed_decisions=(Decision.approve, Decision.reject),
    criteria=RECTIFICATION_CRITERIA,
    on_reject=OnReject.continue_,  # not rectified in time: the determination stands, the protection does not
    deadline=Deadline(working_days=10, **ESCALATION),
)
FOLLOW_UP_PLACEHOLDER_DAYS = 1
"""``Supervision.every_days`` is required, but the one follow-up round here waits for the promised completion
date of the rectification plan (``wait_until`` from ``on_final``), never for a period after the decision."""


def deliberation(committee: list[str]) -> Stage:
    return Stage(
        id="deliberation",
        title="容错认定委员会审议 Committee deliberation and vote",
        legal_basis=LEGAL_BASIS,
        mode=RoutingMode.quorum,
        assignees=tuple(committee),
        quorum=QuorumRule(threshold_numerator=2, threshold_denominator=3),
        allowed_decisions=(Decision.approve, Decision.reject, Decision.abstain),
        on_reject=OnReject.continue_,  # the chair decides on the record, and cannot approve against the vote
        deadline=Deadline(working_days=10, **ESCALATION),
    )


DECISION = Stage(
    id="decision",
    title="容错认定决定 Decision: exemption, reduced liability or not applicable",
    legal_basis=LEGAL_BASIS,
    candidate_roles=(CHAIR_ROLE,),
    allowed_decisions=(Decision.approve, Decision.approve_with_conditions, Decision.reject, Decision.return_),
    approval_blocked_by=("investigation", "deliberation"),
    deadline=Deadline(working_days=5, **ESCALATION),
)


def error_tolerance_definition(application: ErrorToleranceApplication) -> ProcessDefinition:
    """The process for one application: its committee votes; the follow-up stage is the one supervision round."""
    return ProcessDefinition(
        process=PROCESS,
        title="容错免责认定 Error tolerance: exemption or reduced liability",
        legal_basis=LEGAL_BASIS,
        steps=(ACCEPTANCE, INVESTIGATION, deliberation(application.committee), DECISION),
        supervision=Supervision(
            every_days=FOLLOW_UP_PLACEHOLDER_DAYS,
            review=RECTIFICATION_CHECK,
            max_rounds=1,
            legal_basis=LEGAL_BASIS,
        ),
    )


def error_tolerance_case_input(
    *,
    business_key: str,
    application: ErrorToleranceApplication,
    **fields: Any,
) -> CaseInput:
    """The case of one application: its data is the application; the committee comes from it.

    Refuses (ValueError) an applicant who sits on the committee: nobody votes on their own application.
    """
    fields.setdefault(
        "title", f"容错申请 {application.measure.title} ({application.liability_proceeding.reference})"[:300]
    )
    applicant = fields.get("applicant")
    if applicant is not None and applicant.id in application.committee:
        raise ValueError(f"the applicant {applicant.id} sits on the committee and must recuse themselves (回避)")
    return CaseInput(
        business_key=business_key,
        definition=error_tolerance_definition(application),
        data=application.model_dump(mode="json"),
        **fields,
    )


DETERMINATIONS = {
    StageOutcome.approved: Determination.exemption,
    StageOutcome.approved_with_conditions: Determination.reduced_liability,
}


@workflow.defn(name="ErrorToleranceWorkflow")
class ErrorToleranceWorkflow(KernelWorkflow):
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        super().__init__(case)
        self._notice: ErrorToleranceNotice | None = None

    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        self._application = application_or_wait(
            ErrorToleranceApplication.model_validate, case.data, "error-tolerance application"
        )
        self.concern(
            ConcernedPerson(
                user_id=person.id,
                relationship=Relationship.person_concerned,
                reason=f"{person.name}（{person.post}）: a person concerned whose liability the case decides (Art. 25)",
            )
            for person in self._application.persons_concerned
        )  # read from the application, so cases started before recusal was enforced are held to it too
        return await self.run_case()

    @workflow.query
    def error_tolerance(self) -> ErrorToleranceNotice | None:
        """The determination and, after the follow-up, the effect of prompt rectification (None before)."""
        return self._notice

    def case_projection(self) -> CaseProjection:
        """The cases row carries the determination and the rectification effect in its summary."""
        projection = super().case_projection()
        if self._notice is None:
            return projection
        rectification = self._notice.rectification
        summary = {
            **projection.summary,
            "determination": self._notice.determination.value,
            "rectified_in_time": rectification.rectified_in_time if rectification else None,
            "effect": rectification.effect.value if rectification and rectification.effect else None,
        }
        return projection.model_copy(update={"summary": summary})

    async def on_final(self) -> None:
        """Records the determination; after exemption or reduction follows the rectification up."""
        if self.status is CaseStatus.withdrawn:
            return
        determination = self._determination()
        application = self._application
        rectification = None
        if determination in (Determination.exemption, Determination.reduced_liability):
            rectification = RectificationOutcome(
                promised_completion_date=application.rectification_plan.promised_completion_date
            )
        self._notice = ErrorToleranceNotice(
            case_id=self.case_id,
            title=self.case.title,
            determination=determination,
            conditions=self.merged_conditions() if determination is Determination.reduced_liability else [],
            applying_unit=application.applying_unit.name,
            persons_concerned=application.persons_concerned,
            liability_proceeding=application.liability_proceeding.reference,
            decided_at=workflow.now().isoformat(),
            rectification=rectification,
        )
        self._announce(EventType.error_tolerance_determined, f"容错认定 {self.case.title}: {determination.value}")
        await self.record()
        if rectification is not None:
            await self._follow_up_rectification()

    def _determination(self) -> Determination:
        if self.outcome in DETERMINATIONS:
            return DETERMINATIONS[self.outcome]
        if "decision" in self.results or "investigation" in self.results:
            return Determination.not_applicable
        return Determination.not_accepted

    def _announce(self, event_type: EventType, subject: str) -> None:
        """One event with the notice, and the notice to the applicant, each person concerned and HR."""
        assert self._notice is not None
        notice = self._notice.model_dump(mode="json")
        event = self.emit(event_type, actor=SYSTEM, legal_basis=LEGAL_BASIS, payload=notice)
        recipients = [self.case.applicant.id, *self._application.person_ids, f"role:{HR_ROLE}"]
        for recipient in dict.fromkeys(recipients):
            self.notify(event, recipient, event_type, subject, {"notice": notice})

    async def _follow_up_rectification(self) -> None:
        """Timer to the end of the promised completion date, then the rectification check; records the effect.

        The check is the kernel's ``follow_up``: the case's one supervision round, which the kernel then ends.
        """
        supervision = self.definition.supervision
        assert supervision is not None and self._notice is not None
        promised = self._application.rectification_plan.promised_completion_date
        due = datetime.combine(promised + timedelta(days=1), time(0), tzinfo=self.calendar.tzinfo)
        run = await self.follow_up(
            supervision.review,
            due=due,
            label="rectification due",
            legal_basis=LEGAL_BASIS,
            details={
                "purpose": "rectification follow-up (Art. 25)",
                "promised_completion_date": promised.isoformat(),
            },
        )
        if run is None or run.outcome not in (StageOutcome.approved, StageOutcome.rejected):
            return
        in_time = run.outcome == StageOutcome.approved
        effect = RectificationEffect.no_effect if in_time else RectificationEffect.protection_not_applicable
        rectification = RectificationOutcome(
            promised_completion_date=promised, rectified_in_time=in_time, effect=effect, effect_text=EFFECT_TEXT[effect]
        )
        self._notice = self._notice.model_copy(update={"rectification": rectification})
        self._announce(EventType.error_tolerance_effect_recorded, f"整改核查 {self.case.title}: {EFFECT_TEXT[effect]}")
        await self.record()
