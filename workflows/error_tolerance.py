"""Error-tolerance review (容错, Art. 25): exemption from or reduction of liability after a reform fails.

The discipline inspector accepts the application (or asks for everything missing at once, 补正), then
investigates and finds on each of Art. 25's five conditions with evidence; approving there is refused while
a finding says a condition does not hold. The committee seated from the organ's roster (COMMITTEE_ROSTERS,
without the persons concerned and the applicant: 回避) deliberates and votes (2/3 of the members present,
abstentions recorded, a deadline), and the roster's chair decides: approve is
exemption (免责), approve with conditions is reduced liability (减轻责任), reject is "not applicable". The
chair cannot approve while the investigation or the vote stands rejected.

Art. 25 as the stages enforce it (patch ART_25_PATCH for the workflow's part): the investigation finds on
each of the five conditions, all required (``schemas.error_tolerance.CONDITIONS`` says why), each finding with
evidence references; an exemption or a reduction states its reasons; and since "prompt" (及时) rectification
cannot be whatever date the applicant chose, the chair's approving decision sets the deadline (整改期限,
``due_date``) by which rectification counts as prompt.

After an exemption or reduction the case stays open under follow-up: a recorded timer runs to the end of the
committee's deadline (for cases decided before the patch, the plan's promised completion date), then the
discipline inspector checks whether it was rectified in time. The outcome is recorded as the effect of Art. 25's
second sentence, in its words: not affected in 绩效考核、评先评优、提拔晋升和表彰奖励等 when rectified promptly,
else that protection does not apply.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import CaseInput, CaseStatus, CaseView, ConcernedPerson, DecideRequest, Relationship
    from schemas.committee import SEAT_KEY, CommitteeRoster, CommitteeSeat, recorded_application, seat_committee
    from schemas.error_tolerance import (
        CONDITION_IDS,
        EFFECT_TEXT,
        EFFECT_TEXT_BEFORE_ART_25_WORDING,
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
        DecisionDate,
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
COMMITTEE = "error-tolerance"
"""The roster in COMMITTEE_ROSTERS that seats this process's committee (容错认定委员会)."""
HR_ROLE = "hr_officer"

ART_25_PATCH = "art-25-decision-rules"
"""Cases decided under it follow up at the committee's deadline and word the effect as the law does."""

FINDING_DECISIONS = (Decision.approve, Decision.reject, Decision.return_)
DETERMINING = (Decision.approve, Decision.approve_with_conditions)  # exemption, reduced liability
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
    evidence_required=True,
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


def decision(chair: str) -> Stage:
    return Stage(
        id="decision",
        title="容错认定决定 Decision: exemption, reduced liability or not applicable",
        legal_basis=LEGAL_BASIS,
        assignees=(chair,),
        allowed_decisions=(*DETERMINING, Decision.reject, Decision.return_),
        approval_blocked_by=("investigation", "deliberation"),
        reasons_required=DETERMINING,
        sets_date=DecisionDate(title="整改期限 rectification deadline", legal_basis=LEGAL_BASIS),
        deadline=Deadline(working_days=5, **ESCALATION),
    )


def error_tolerance_definition(seat: CommitteeSeat) -> ProcessDefinition:
    """The process for one application: the seated committee votes, its chair decides; the follow-up stage is
    the one supervision round."""
    return ProcessDefinition(
        process=PROCESS,
        title="容错免责认定 Error tolerance: exemption or reduced liability",
        legal_basis=LEGAL_BASIS,
        steps=(ACCEPTANCE, INVESTIGATION, deliberation(seat.members), decision(seat.chair)),
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
    rosters: dict[str, CommitteeRoster],
    **fields: Any,
) -> CaseInput:
    """The case of one application: its data is the application and the seat of its committee.

    The committee is the roster's, without the persons concerned and the applicant (回避): nobody votes on
    their own liability or application. Refuses (RosterError) when the roster cannot seat one.
    """
    fields.setdefault(
        "title", f"容错申请 {application.measure.title} ({application.liability_proceeding.reference})"[:300]
    )
    applicant = fields.get("applicant")
    concerned = [*application.person_ids, *([applicant.id] if applicant is not None else [])]
    seat = seat_committee(COMMITTEE, rosters, concerned)
    return CaseInput(
        business_key=business_key,
        definition=error_tolerance_definition(seat),
        data={**application.model_dump(mode="json", exclude={"committee"}), SEAT_KEY: seat.model_dump(mode="json")},
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
        self._committee_deadline: date | None = None
        self._law_wording = False  # patch ART_25_PATCH, taken when the case is decided

    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        self._application = application_or_wait(
            lambda data: recorded_application(ErrorToleranceApplication, data), case.data, "error-tolerance application"
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

    def on_decided(self, stage: Stage, request: DecideRequest) -> None:
        """The chair's determination sets the committee's rectification deadline (its latest decision counts)."""
        if stage.id == "decision":
            self._committee_deadline = request.due_date

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
        self._law_wording = workflow.patched(ART_25_PATCH)
        rectification = None
        if determination in (Determination.exemption, Determination.reduced_liability):
            rectification = RectificationOutcome(
                promised_completion_date=application.rectification_plan.promised_completion_date,
                committee_deadline=self._committee_deadline if self._law_wording else None,
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
        # Before the patch the notice had no committee deadline: leave the key out so those cases re-seal.
        notice = self._notice.model_dump(
            mode="json", exclude=None if self._law_wording else {"rectification": {"committee_deadline"}}
        )
        event = self.emit(event_type, actor=SYSTEM, legal_basis=LEGAL_BASIS, payload=notice)
        recipients = [self.case.applicant.id, *self._application.person_ids, f"role:{HR_ROLE}"]
        for recipient in dict.fromkeys(recipients):
            self.notify(event, recipient, event_type, subject, {"notice": notice})

    async def _follow_up_rectification(self) -> None:
        """Timer to the end of the committee's deadline (before the patch: of the promised completion date), then
        the rectification check; records the effect.

        The check is the kernel's ``follow_up``: the case's one supervision round, which the kernel then ends.
        """
        supervision = self.definition.supervision
        assert supervision is not None and self._notice is not None
        promised = self._application.rectification_plan.promised_completion_date
        deadline = self._committee_deadline if self._law_wording and self._committee_deadline else promised
        due = datetime.combine(deadline + timedelta(days=1), time(0), tzinfo=self.calendar.tzinfo)
        run = await self.follow_up(
            supervision.review,
            due=due,
            label="rectification due",
            legal_basis=LEGAL_BASIS,
            details={
                "purpose": "rectification follow-up (Art. 25)",
                "promised_completion_date": promised.isoformat(),
                **({"committee_deadline": deadline.isoformat()} if deadline != promised else {}),
            },
        )
        if run is None or run.outcome not in (StageOutcome.approved, StageOutcome.rejected):
            return
        in_time = run.outcome == StageOutcome.approved
        effect = RectificationEffect.no_effect if in_time else RectificationEffect.protection_not_applicable
        text = (EFFECT_TEXT if self._law_wording else EFFECT_TEXT_BEFORE_ART_25_WORDING)[effect]
        rectification = self._notice.rectification.model_copy(  # type: ignore[union-attr]
            update={"rectified_in_time": in_time, "effect": effect, "effect_text": text}
        )
        self._notice = self._notice.model_copy(update={"rectification": rectification})
        self._announce(EventType.error_tolerance_effect_recorded, f"整改核查 {self.case.title}: {text}")
        await self.record()
