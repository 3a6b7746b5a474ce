"""Delegated powers and the Committee's catalogue of functions (Art. 3, Art. 4 last paragraph).

The Management Committee proposes, by actual need and its capacity to take on powers (承接能力), a catalogue
of the management and service functions it will exercise (Art. 4); each rests on an economic-management
power the prefecture or Alashankou city government authorizes or entrusts (授权 / 委托) to the zone (Art. 3).
The legal-affairs office reviews its legality on three statutory criteria (a veto); the capacity to take
on the powers and the catalogue's effect on fair competition are reviewed in parallel; the granting
government's executive meeting then votes (two thirds of the members present, a majority present, or it
reconvenes). An approved catalogue is published (Art. 4, Art. 18) and stays under the granting
government's supervision (Art. 3): an annual review, and an adjustment case when a review finds the powers
need adjusting, until the catalogue is withdrawn.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import CaseInput, CaseStatus, CaseView
    from schemas.disclosure import DisclosureRules
    from schemas.events import DomainEvent
    from schemas.notifications import Channel, Notification
    from schemas.power import PowerCatalogueProposal
    from schemas.process import (
        Deadline,
        Decision,
        OnReject,
        Parallel,
        ProcessDefinition,
        QuorumRule,
        RoutingMode,
        Stage,
        Supervision,
    )
    from workflows.compatibility import application_or_wait
    from workflows.kernel import KernelWorkflow

PROCESS = "power-adjustment"
ADJUSTMENT_PROCESS = "power-catalogue-adjustment"
PUBLICATION_LEGAL_BASIS = "Art. 4; Art. 18"
"""Art. 4: the catalogue is published once approved; Art. 18: published promptly and accurately."""
ADJUSTMENT_PUBLICATION_LEGAL_BASIS = "Art. 3; Art. 18"
"""Art. 3: the powers granted are adjusted dynamically; Art. 18: the adjusted catalogue is published again."""

PUBLICATION_RULES_PATCH = "publication-deadline-local-date-and-republication"
"""Cases started since: publication within 7 working days on a recorded clock, the effective date taken in the
zone's local time (UTC+8), and an adjusted catalogue published again (Art. 3)."""

DISCLOSURE_RULES = DisclosureRules(refusal_title="职能目录 不予批准 Function catalogue not approved")
"""A catalogue is public law (the Committee's powers): nothing in it is personal data or a commercial secret,
and the capacity assessment is left out by ``FunctionItem.published``. Refusals are not published (Art. 4)."""

LEGAL_CRITERIA = ("legal_source_valid", "within_granting_authority", "capacity_sufficient")
"""The legality review's findings: every power has a valid legal source, lies within what the granting
government may itself authorize or entrust (Art. 3), and the Committee can take it on (Art. 4)."""

REVIEW_EVERY_DAYS = 365
REVIEWS_PER_RUN = 5

REVIEW_DEADLINE = Deadline(working_days=10, remind_before_working_days=2, escalate_to_role="supervisor")
REVIEW_DECISIONS = (Decision.approve, Decision.approve_with_conditions, Decision.reject, Decision.return_)

LEGAL_REVIEW = Stage(
    id="legal_review",
    title="合法性审查 Legality review",
    legal_basis="Art. 3",
    candidate_roles=("reviewer_legal",),
    allowed_decisions=(Decision.approve, Decision.approve_with_conditions, Decision.reject),
    criteria=LEGAL_CRITERIA,
    may_request_supplement=True,
    deadline=REVIEW_DEADLINE,
)
CAPACITY_REVIEW = Stage(
    id="capacity_review",
    title="承接能力评估 Capacity to take on the powers",
    legal_basis="Art. 4",
    candidate_roles=("hr_officer",),
    allowed_decisions=REVIEW_DECISIONS,
    on_reject=OnReject.continue_,
    may_request_supplement=True,
    deadline=REVIEW_DEADLINE,
)
FAIR_COMPETITION_REVIEW = Stage(
    id="fair_competition_review",
    title="公平竞争审查 Fair-competition review",
    legal_basis="Fair Competition Review Regulations Art. 2",
    candidate_roles=("reviewer_industrial_policy",),
    allowed_decisions=REVIEW_DECISIONS,
    on_reject=OnReject.continue_,
    deadline=REVIEW_DEADLINE,
)
VOTE_DEADLINE = Deadline(working_days=10, remind_before_working_days=2, escalate_to_role="supervisor")
VOTE_RULE = QuorumRule(threshold_numerator=2, threshold_denominator=3, min_attendance=None)
"""Two thirds of the members present approve; a majority of the members must be present, or it reconvenes."""

ANNUAL_REVIEW = Stage(
    id="annual_supervision",
    title="年度监督评估 Annual supervision of the powers granted",
    legal_basis="Art. 3",
    candidate_roles=("supervisor",),
    allowed_decisions=(Decision.approve, Decision.reject),
    on_reject=OnReject.continue_,
    deadline=Deadline(working_days=20, remind_before_working_days=3, escalate_to_role="head"),
)
"""Approve: the powers stay as they are. Reject (with reasons): they need adjusting, which opens a child case."""

ADJUSTMENT = ProcessDefinition(
    process=ADJUSTMENT_PROCESS,
    title="权限动态调整 Dynamic adjustment of delegated powers",
    legal_basis="Art. 3",
    steps=(
        Stage(
            id="adjust_powers",
            title="权限调整决定 Adjustment decision (granting government)",
            legal_basis="Art. 3",
            candidate_roles=("approving_official",),
            allowed_decisions=(Decision.approve, Decision.approve_with_conditions, Decision.reject),
            deadline=Deadline(working_days=20, remind_before_working_days=3, escalate_to_role="supervisor"),
        ),
    ),
)
"""Started by the kernel as a child case (its own id and record) when an annual review finds adjustment needed."""

SUPERVISION = Supervision(
    every_days=REVIEW_EVERY_DAYS,
    review=ANNUAL_REVIEW,
    adjustment=ADJUSTMENT,
    max_rounds=None,
    rounds_per_run=REVIEWS_PER_RUN,
    legal_basis="Art. 3",
)


def executive_meeting(committee: list[str]) -> Stage:
    """The granting government's executive meeting (政府常务会议) votes: approval by statutory procedure."""
    return Stage(
        id="executive_meeting",
        title="政府常务会议审议 Executive meeting vote (granting government)",
        legal_basis="Art. 4",
        mode=RoutingMode.quorum,
        assignees=tuple(committee),
        quorum=VOTE_RULE,
        allowed_decisions=(Decision.approve, Decision.reject, Decision.abstain),
        approval_blocked_by=(LEGAL_REVIEW.id, CAPACITY_REVIEW.id, FAIR_COMPETITION_REVIEW.id),
        deadline=VOTE_DEADLINE,
    )


def power_definition(proposal: PowerCatalogueProposal) -> ProcessDefinition:
    """The process of one proposal: its own executive-meeting members vote on it."""
    return ProcessDefinition(
        process=PROCESS,
        title="管理和服务职能目录 Catalogue of delegated management and service functions",
        legal_basis="Art. 4",
        supplement_role="reviewer_legal",
        steps=(
            LEGAL_REVIEW,
            Parallel(
                id="department_reviews",
                title="承接能力与公平竞争审查 Capacity and fair-competition reviews",
                branches=((CAPACITY_REVIEW,), (FAIR_COMPETITION_REVIEW,)),
            ),
            executive_meeting(proposal.committee),
        ),
        supervision=SUPERVISION,
    )


def power_adjustment_case_input(
    *,
    business_key: str,
    application: PowerCatalogueProposal,
    **fields: Any,
) -> CaseInput:
    """The case of one proposed catalogue: its data is the proposal, its stages built from it."""
    fields.setdefault(
        "title", f"职能目录 Function catalogue of {application.proposing_unit} ({len(application.items)} items)"
    )
    return CaseInput(
        business_key=business_key,
        definition=power_definition(application),
        data=application.model_dump(mode="json"),
        **fields,
    )


@workflow.defn(name="PowerAdjustmentWorkflow")
class PowerAdjustmentWorkflow(KernelWorkflow):
    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        self._proposal = application_or_wait(
            PowerCatalogueProposal.model_validate, case.data, "function catalogue proposal"
        )
        return await self.run_case()

    async def on_final(self) -> None:
        """An approved catalogue is published (Art. 4, Art. 18); the Committee is told of any decision."""
        if self.status is CaseStatus.withdrawn:
            return
        approved = self.status in (CaseStatus.approved, CaseStatus.approved_with_conditions)
        told = {"decision": self.status.value, "conditions": self.merged_conditions(), "published": approved}
        subject = f"职能目录审批结果 {self.case.title}: {self.status.value}"
        if not approved:  # nothing to publish (Art. 4 publishes approved catalogues); the Committee is told
            self.send(
                Notification(
                    idempotency_key=f"{self.case_id}/{self.last_seq}/log/{self.case.applicant.id}",
                    case_id=self.case_id,
                    channel=Channel.log,
                    kind="case.decided",
                    recipient=self.case.applicant.id,
                    subject=subject,
                    data={"case_title": self.case.title, **told},
                )
            )
            return
        rules = workflow.patched(PUBLICATION_RULES_PATCH)
        await self.publish(
            event_legal_basis=PUBLICATION_LEGAL_BASIS,
            notice_legal_basis=PUBLICATION_LEGAL_BASIS,
            subject=self._catalogue(local_date=rules),
            applicant_subject=subject,
            applicant_data=told,
            rules=DISCLOSURE_RULES if rules else None,
        )

    def _catalogue(self, *, local_date: bool) -> dict[str, Any]:
        """The catalogue as published, in force from its effective date or from the day of the decision
        (``local_date`` False: in UTC, as cases started before the rule publish it)."""
        proposal = self._proposal
        zone = self.calendar.tzinfo if local_date else None
        return {
            "proposing_unit": proposal.proposing_unit,
            "granting_authorities": proposal.granting_authorities,
            "effective_date": effective_date(proposal.effective_date, workflow.now(), zone).isoformat(),
            "items": [item.published() for item in proposal.items],
            "vote": self.results["executive_meeting"].tally,
        }

    async def on_adjusted(self, adjustment: CaseView, completed: DomainEvent) -> bool:
        """An adjusted catalogue is published again (Art. 3, Art. 18): the adjustment's decision and conditions
        (the new terms) with the catalogue they change. Supervision goes on either way."""
        adjusted = adjustment.status in (CaseStatus.approved, CaseStatus.approved_with_conditions)
        if adjusted and workflow.patched(PUBLICATION_RULES_PATCH):
            await self.publish(
                event_legal_basis=ADJUSTMENT_PUBLICATION_LEGAL_BASIS,
                notice_legal_basis=ADJUSTMENT_PUBLICATION_LEGAL_BASIS,
                subject={
                    **self._catalogue(local_date=True),
                    "adjustment": {
                        "child_case_id": adjustment.case_id,
                        "review_round": self.supervision_round,
                        "decision": adjustment.status.value,
                        "conditions": adjustment.conditions,
                    },
                },
                applicant_subject=f"职能目录调整 {self.case.title}: {adjustment.status.value}",
                applicant_data={"decision": adjustment.status.value, "conditions": adjustment.conditions},
                rules=DISCLOSURE_RULES,
                decision=adjustment.status.value,
            )
        return True


def effective_date(proposed: date | None, decided_at: datetime, zone: tzinfo | None) -> date:
    """The proposed effective date, or the day of the decision in the zone (UTC+8: 01:00 there is still the
    previous day in UTC). ``zone`` None: the UTC date cases started before the rule were published with."""
    if proposed is not None:
        return proposed
    return (decided_at.astimezone(zone) if zone else decided_at).date()
