"""Talent one-case-one-policy decisions (一事一议、一人一策, Art. 22, with the pay forms of Art. 7; Art. 21).

The proposing unit applies for one person. HR reviews the post and the package (and may ask for 补正);
the committee seated from the organ's roster (COMMITTEE_ROSTERS, without the applicant: 回避) deliberates
and votes (一事一议: approvals of 2/3 of those present, a majority present, abstentions counted as present); a
package above the head-approval threshold of its pay form goes to the head as well; the roster's chair then
decides. An approved policy
is in force for its term and reviewed every year against its evaluation targets (Art. 21: incentive and
service mechanisms); a review that finds them missed opens an adjustment case, a child case in which the
chair keeps, adjusts or ends the package. After the last annual review the case is approved again.

The decision is not published: it is one person's pay and identity (PIPL Art. 25; Regulations on Open
Government Information Art. 15), so instead the candidate, HR and the proposing unit are notified, and
the notification is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.case import CaseInput, CaseStatus, CaseView
    from schemas.committee import SEAT_KEY, CommitteeRoster, CommitteeSeat, recorded_application, seat_committee
    from schemas.events import DomainEvent, EventType
    from schemas.principal import SYSTEM
    from schemas.process import (
        Condition,
        Deadline,
        Decision,
        OnReject,
        ProcessDefinition,
        QuorumRule,
        RoutingMode,
        Stage,
        Supervision,
    )
    from schemas.talent import PayForm, TalentPolicyApplication
    from workflows.compatibility import application_or_wait
    from workflows.kernel import KernelWorkflow
    from workflows.rules import condition_rule

PROCESS = "talent-policy"
ADJUSTMENT_PROCESS = "talent-policy-adjustment"
LEGAL_BASIS = "Art. 22"
COMMITTEE = "talent-policy"
"""The roster in COMMITTEE_ROSTERS that seats this process's committee."""
REVIEW_LEGAL_BASIS = "Art. 21"

HEAD_APPROVAL_THRESHOLDS_CNY: dict[PayForm, Decimal] = {
    PayForm.agreement_wage: Decimal("600000"),
    PayForm.annual_salary: Decimal("1000000"),
    PayForm.part_time_with_pay: Decimal("300000"),
}
"""Annual amounts above which the head approves the package too (a high package weighs on the payroll
total the Committee adjusts under Art. 7); a pay form outside Art. 7's list has none: the head approves it.
These are the engine's defaults, configurable by definition:
``talent_policy_case_input(head_approval_thresholds_cny=...)`` puts the thresholds in force into the case
data under THRESHOLDS_KEY, where the pure rule reads them and the record shows which applied."""

THRESHOLDS_KEY = "head_approval_thresholds_cny"
"""Case data key of the thresholds in force (the rest of the data is the application)."""

ANNUAL_REVIEW_DAYS = 365
VOTE_DEADLINE = Deadline(working_days=10, remind_before_working_days=2, escalate_to_role="committee_chair")
REVIEW_DEADLINE = Deadline(working_days=10, remind_before_working_days=2, escalate_to_role="supervisor")


@condition_rule("talent_package_needs_head_approval")
def talent_package_needs_head_approval(data: Mapping[str, Any]) -> bool:
    """Art. 7: a package whose annual amount exceeds the threshold of its pay form needs the head's approval."""
    package = data.get("package") or {}
    thresholds = data.get(THRESHOLDS_KEY) or {}
    try:
        form = PayForm(package.get("pay_form"))
        amount = Decimal(str(package.get("annual_amount_cny")))
    except (ValueError, ArithmeticError):
        return True  # an unreadable package is never waved through
    threshold = thresholds.get(form.value, HEAD_APPROVAL_THRESHOLDS_CNY.get(form))
    return threshold is None or amount > Decimal(str(threshold))  # a pay form the law does not list: the head


def committee_stage(members: list[str]) -> Stage:
    return Stage(
        id="committee_deliberation",
        title="一事一议 Committee deliberation and vote",
        legal_basis=LEGAL_BASIS,
        mode=RoutingMode.quorum,
        assignees=tuple(members),
        quorum=QuorumRule(threshold_numerator=2, threshold_denominator=3),  # min_attendance None: a majority
        allowed_decisions=(Decision.approve, Decision.approve_with_conditions, Decision.reject, Decision.abstain),
        deadline=VOTE_DEADLINE,
        on_reject=OnReject.continue_,
    )


HR_REVIEW = Stage(
    id="hr_review",
    title="人事审核 HR review of the post and package",
    legal_basis="Art. 7",
    candidate_roles=("hr_officer",),
    allowed_decisions=(Decision.approve, Decision.approve_with_conditions, Decision.reject),
    may_request_supplement=True,
    deadline=Deadline(working_days=10, remind_before_working_days=2, escalate_to_role="supervisor"),
)
HEAD_APPROVAL = Stage(
    id="head_approval",
    title="主任审批 Head approval of a high package",
    legal_basis="Art. 7",
    candidate_roles=("head",),
    allowed_decisions=(Decision.approve, Decision.approve_with_conditions, Decision.reject, Decision.return_),
    deadline=Deadline(working_days=5, remind_before_working_days=1, escalate_to_role="supervisor"),
    on_reject=OnReject.continue_,
    when=Condition(rule="talent_package_needs_head_approval"),
)


def decision(chair: str) -> Stage:
    return Stage(
        id="decision",
        title="一人一策决定 Decision (committee chair)",
        legal_basis=LEGAL_BASIS,
        assignees=(chair,),
        allowed_decisions=(Decision.approve, Decision.approve_with_conditions, Decision.reject, Decision.return_),
        approval_blocked_by=("committee_deliberation", "head_approval"),
        deadline=Deadline(working_days=5, remind_before_working_days=1, escalate_to_role="supervisor"),
    )


ADJUSTMENT = ProcessDefinition(
    process=ADJUSTMENT_PROCESS,
    title="人才政策调整 Adjust or end a talent policy after a failed annual review",
    legal_basis=LEGAL_BASIS,
    steps=(
        Stage(
            id="package_adjustment",
            title="调整或终止 Chair: keep (approve), adjust (approve with conditions: the new terms) or end (reject)",
            legal_basis=LEGAL_BASIS,
            candidate_roles=("committee_chair",),
            allowed_decisions=(Decision.approve, Decision.approve_with_conditions, Decision.reject),
            deadline=Deadline(working_days=10, remind_before_working_days=2, escalate_to_role="supervisor"),
        ),
    ),
)
"""Run as a child case (the generic workflow) when an annual review rejects. Its outcome: approved keeps
the package, approved_with_conditions adjusts it (the conditions are the new terms), rejected ends it."""


def annual_review(application: TalentPolicyApplication) -> Stage:
    """The yearly review: a finding on every evaluation target, with evidence; a missed target means adjust."""
    return Stage(
        id="annual_review",
        title="年度考核 Annual review against the evaluation targets",
        legal_basis=REVIEW_LEGAL_BASIS,
        candidate_roles=("hr_officer",),
        allowed_decisions=(Decision.approve, Decision.approve_with_conditions, Decision.reject),
        deadline=REVIEW_DEADLINE,
        on_reject=OnReject.continue_,
        criteria=tuple(target.title for target in application.package.evaluation_targets),
    )


def talent_policy_definition(application: TalentPolicyApplication, seat: CommitteeSeat) -> ProcessDefinition:
    """The process of one application: the seated committee votes and its chair decides; the term sets the
    number of annual reviews."""
    return ProcessDefinition(
        process=PROCESS,
        title="一事一议、一人一策 Talent policy (Art. 22)",
        legal_basis=LEGAL_BASIS,
        supplement_role="hr_officer",
        steps=(HR_REVIEW, committee_stage(seat.members), HEAD_APPROVAL, decision(seat.chair)),
        supervision=Supervision(
            every_days=ANNUAL_REVIEW_DAYS,
            review=annual_review(application),
            adjustment=ADJUSTMENT,
            max_rounds=application.package.term_years,
            rounds_per_run=5,
            legal_basis=REVIEW_LEGAL_BASIS,
        ),
    )


def talent_policy_case_input(
    *,
    business_key: str,
    application: TalentPolicyApplication,
    rosters: dict[str, CommitteeRoster],
    head_approval_thresholds_cny: Mapping[PayForm, Decimal] | None = None,
    **fields: Any,
) -> CaseInput:
    """The case of one application: its data is the application plus the head-approval thresholds in force
    and the seat of its committee (the roster without the applicant, 回避; RosterError when it cannot seat)."""
    thresholds = {**HEAD_APPROVAL_THRESHOLDS_CNY, **(head_approval_thresholds_cny or {})}
    fields.setdefault("title", f"一人一策 {application.candidate.name}: {application.post.title}")
    applicant = fields.get("applicant")
    seat = seat_committee(COMMITTEE, rosters, [applicant.id] if applicant is not None else [])
    return CaseInput(
        business_key=business_key,
        definition=talent_policy_definition(application, seat),
        data={
            **application.model_dump(mode="json", exclude={"committee"}),
            THRESHOLDS_KEY: {form.value: str(amount) for form, amount in thresholds.items()},
            SEAT_KEY: seat.model_dump(mode="json"),
        },
        priority=application.priority,
        **fields,
    )


def application_of(data: Mapping[str, Any]) -> TalentPolicyApplication:
    return recorded_application(TalentPolicyApplication, data, THRESHOLDS_KEY)


@workflow.defn(name="TalentPolicyWorkflow")
class TalentPolicyWorkflow(KernelWorkflow):
    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        self._application = application_or_wait(application_of, case.data, "talent policy application")
        return await self.run_case()

    def _recipients(self) -> list[str]:
        """The candidate (when they have a portal account; else HR tells them), HR and the proposing unit."""
        candidate = self._application.candidate.portal_user_id
        return [*([candidate] if candidate else []), "role:hr_officer", self.case.applicant.id]

    def _notify_people(self, event: Any, kind: str, subject: str, data: dict[str, Any]) -> None:
        for recipient in self._recipients():
            self.notify(event, recipient, kind, subject, data)

    async def on_final(self) -> None:
        """Notifies the decision to the candidate and HR, on record, instead of publishing it."""
        if self.status is CaseStatus.withdrawn:
            return
        package = self._application.package
        data = {
            "decision": self.status.value,
            "conditions": self.merged_conditions(),
            "pay_form": package.pay_form.value,
            "annual_amount_cny": str(package.annual_amount_cny),
            "term_years": package.term_years,
        }
        event = self.emit(
            EventType.case_notified,
            actor=SYSTEM,
            legal_basis=LEGAL_BASIS,
            payload={
                **data,
                "recipients": self._recipients(),
                "published": False,
                "not_published_because": "a one-person policy is personal information (pay, identity): "
                "PIPL Art. 25; Regulations on Open Government Information Art. 15",
            },
        )
        self._notify_people(event, "case.decided", f"一人一策决定 {self.case.title}: {self.status.value}", data)
        await self.record()

    async def on_adjusted(self, adjustment: CaseView, completed: DomainEvent) -> bool:
        """The chair's adjustment decision: ending the package (rejected) ends the policy's term early."""
        if adjustment.status is not CaseStatus.rejected:
            return True
        self._notify_people(
            completed,
            "policy.ended",
            f"一人一策终止 {self.case.title}",
            {"review_round": self.supervision_round, "child_case_id": adjustment.case_id},
        )
        return False
