"""Project approval (Art. 10, with Art. 8, 9, 12, 18, 19).

An enterprise applies through the one-window service (Art. 19); the one-window officer accepts, refuses,
or asks for everything missing at once (补正). Five departments then review the project in parallel on
the five dimensions of Art. 10; a land-use change review joins when the planned use differs from the
zoned use (Art. 8) and a safety-risk assessment when a major hazard source is involved (Art. 9). The city
government's approving official decides within 20 working days of acceptance (extendable once by 10 with
the head's approval; a hearing or expert review is not counted, Art. 45), and the decision is published
(Art. 18). The one window has 5 working days to accept, refuse or ask for 补正, or the application counts as
accepted from receipt (Administrative Licensing Law Art. 32).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from schemas.case import CaseInput, CaseStatus, CaseView
    from schemas.disclosure import DisclosureRules
    from schemas.process import (
        Condition,
        Deadline,
        Decision,
        OnReject,
        Parallel,
        ProcessDefinition,
        Stage,
        decree_673_approval_period,
        licensing_law_period,
    )
    from schemas.project import ProjectApplication
    from workflows.compatibility import application_or_wait
    from workflows.kernel import KernelWorkflow
    from workflows.rules import condition_rule

PROCESS = "project-approval"
DECREE_673_APPROVAL = "decree-673-approval"
"""The deadline profile of a project under 核准 (国务院令第673号)."""
PUBLICATION_LEGAL_BASIS = "Art. 18"
PUBLICATION_RULES_PATCH = "publication-deadline-and-redaction"
"""Cases started since publish within 7 working days on a recorded clock, redacted by DISCLOSURE_RULES."""

DISCLOSURE_RULES = DisclosureRules(
    refusal_title="建设项目审查 不予许可 Construction project approval refused",
    personal_data=("contact",),
    commercial_secrets=("total_investment_cny", "fixed_asset_investment_cny", "description"),
    party=("enterprise", "unified_social_credit_code", "project_name", "plot_id"),
)
"""A grant names the enterprise, its credit code, the project and the plot (Art. 18, 双公示); the contact person
and the investment figures and project description (business plans) are never published; a refusal names no
one: the project and plot identify the enterprise as well as its name does."""


@condition_rule("land_use_change_needed")
def land_use_change_needed(data: Mapping[str, Any]) -> bool:
    """Art. 8: the land use may not change without approval, so a change gets its own review."""
    return data.get("planned_land_use") != data.get("zoned_land_use")


@condition_rule("major_hazard_source")
def major_hazard_source(data: Mapping[str, Any]) -> bool:
    """Art. 9: a major hazard source needs a safety-risk assessment before the safety review."""
    return bool(data.get("major_hazard_source"))


REVIEW_DECISIONS = (Decision.approve, Decision.approve_with_conditions, Decision.reject, Decision.return_)
REVIEW_DEADLINE = Deadline(working_days=10, remind_before_working_days=2, escalate_to_role="supervisor")
FOLLOW_ON_REVIEW_DEADLINE = Deadline(working_days=5, remind_before_working_days=1, escalate_to_role="supervisor")
"""The Art. 8 and Art. 9 reviews share their branch with a dimension: 10 + 5 days of review and 5 for the decision
fill the 20-working-day period exactly (stage deadlines may not exceed it)."""


def _review(stage_id: str, title: str, role: str, legal_basis: str = "Art. 10", **extra: Any) -> Stage:
    extra.setdefault("deadline", REVIEW_DEADLINE)
    return Stage(
        id=stage_id,
        title=title,
        legal_basis=legal_basis,
        candidate_roles=(role,),
        allowed_decisions=REVIEW_DECISIONS,
        on_reject=OnReject.continue_,
        **extra,
    )


DIMENSIONS = (
    _review("industrial_policy", "产业政策审查 Industrial policy", "reviewer_industrial_policy"),
    _review("planning_site", "规划选址审查 Planning and site selection", "reviewer_planning"),
    _review("environment", "环境审查 Environment", "reviewer_environment"),
    _review("safety", "安全审查 Safety", "reviewer_safety"),
    _review("land_use_standards", "用地标准审查 Land-use standards", "reviewer_land_use"),
)
LAND_USE_CHANGE = _review(
    "land_use_change",
    "土地用途变更审查 Land-use change",
    "land_use_change_reviewer",
    legal_basis="Art. 8",
    when=Condition(rule="land_use_change_needed"),
    deadline=FOLLOW_ON_REVIEW_DEADLINE,
)
SAFETY_RISK_ASSESSMENT = _review(
    "safety_risk_assessment",
    "安全风险评估 Safety-risk assessment",
    "safety_risk_assessor",
    legal_basis="Art. 9",
    when=Condition(rule="major_hazard_source"),
    deadline=FOLLOW_ON_REVIEW_DEADLINE,
)
industrial_policy, planning_site, environment, safety, land_use_standards = DIMENSIONS

DEFINITION = ProcessDefinition(
    process=PROCESS,
    title="建设项目审查 Construction project approval",
    legal_basis="Art. 10",
    supplement_role="one_window",
    deadline=licensing_law_period(
        starts_after_stage="acceptance", remind_before_working_days=3, escalate_to_role="supervisor"
    ),
    # A project the investment catalogue puts under 核准 is decided on Decree 673's period and extension; the
    # one-window officer chooses it when accepting (DecideRequest.deadline_profile), since only the application
    # shows which regime a project falls under.
    deadline_profiles={
        DECREE_673_APPROVAL: decree_673_approval_period(
            starts_after_stage="acceptance", remind_before_working_days=3, escalate_to_role="supervisor"
        )
    },
    steps=(
        Stage(
            id="acceptance",
            title="受理 Acceptance (one window)",
            legal_basis="Art. 19",
            candidate_roles=("one_window",),
            allowed_decisions=(Decision.approve, Decision.reject),
            may_request_supplement=True,
            deadline=Deadline(working_days=5, remind_before_working_days=1, escalate_to_role="supervisor"),
        ),
        Parallel(
            id="department_reviews",
            title="五方面审查 Five-dimension review (Art. 10)",
            branches=(
                (industrial_policy,),
                (planning_site, LAND_USE_CHANGE),
                (environment,),
                (SAFETY_RISK_ASSESSMENT, safety),
                (land_use_standards,),
            ),
        ),
        Stage(
            id="decision",
            title="审批决定 Decision (city government)",
            legal_basis="Art. 10",
            candidate_roles=("approving_official",),
            allowed_decisions=REVIEW_DECISIONS,
            approval_blocked_by=(*(s.id for s in DIMENSIONS), LAND_USE_CHANGE.id, SAFETY_RISK_ASSESSMENT.id),
            deadline=Deadline(working_days=5, remind_before_working_days=1, escalate_to_role="supervisor"),
        ),
    ),
)


def project_case_input(
    *,
    business_key: str,
    application: ProjectApplication,
    **fields: Any,
) -> CaseInput:
    """The case of one application: its data is the application, flagged priority per Art. 8 / Art. 12."""
    fields.setdefault("title", f"{application.project_name} ({application.enterprise.name})")
    return CaseInput(
        business_key=business_key,
        definition=DEFINITION,
        data=application.model_dump(mode="json"),
        priority=application.priority,
        **fields,
    )


@workflow.defn(name="ProjectApprovalWorkflow")
class ProjectApprovalWorkflow(KernelWorkflow):
    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        self._application = application_or_wait(ProjectApplication.model_validate, case.data, "project application")
        return await self.run_case()

    async def on_final(self) -> None:
        """Publishes the decision (Art. 18) and tells the applicant; a withdrawn case has nothing to publish."""
        if self.status is CaseStatus.withdrawn:
            return
        decision_stage = self.results.get("decision")
        application = self._application
        await self.publish(
            event_legal_basis=PUBLICATION_LEGAL_BASIS,
            notice_legal_basis="Art. 10" if decision_stage else "Art. 19",
            subject={
                "project_name": application.project_name,
                "enterprise": application.enterprise.name,
                "unified_social_credit_code": application.enterprise.unified_social_credit_code,
                "plot_id": application.plot_id,
                "priority": application.priority,
            },
            applicant_subject=f"审批结果 {self.case.title}: {self.status.value}",
            applicant_data={"decision": self.status.value, "conditions": self.merged_conditions()},
            rules=DISCLOSURE_RULES if workflow.patched(PUBLICATION_RULES_PATCH) else None,
        )


@workflow.defn(name="ProjectApprovalWorkflow", versioning_behavior=VersioningBehavior.PINNED)
class PinnedProjectApprovalWorkflow(ProjectApprovalWorkflow):
    """Project approval as a versioned worker runs it (WORKER_VERSIONING): pinned, a licensing case runs for weeks
    and finishes on the build it started on. A class of its own because the server refuses a workflow task that
    names a versioning behaviour from a worker without versioning (``workflows.catalog.worker_workflows``)."""

    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        return await super().run(case)
