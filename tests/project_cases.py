"""Building blocks for driving project-approval cases: the people, a valid application, the steps."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from schemas.calendar import WorkingCalendar
from schemas.case import CaseView, DecideRequest
from schemas.principal import Principal
from schemas.process import Decision
from schemas.project import ProjectApplication
from tests.cases import APPLICANT, CALENDAR, SERVICE, open_tasks, person, view_when
from workflows.project_approval import DIMENSIONS, ProjectApprovalWorkflow, project_case_input

OFFICER = person("officer-li", "one_window", unit="one-window service centre")
OFFICIAL = person("official-wang", "approving_official", unit="Alashankou city government")
HEAD = person("head-zhao", "head", unit="Alashankou city government")
REVIEWERS = {
    "industrial_policy": person("rev-industry", "reviewer_industrial_policy", unit="development and reform"),
    "planning_site": person("rev-planning", "reviewer_planning", unit="natural resources and planning"),
    "environment": person("rev-env", "reviewer_environment", unit="ecology and environment"),
    "safety": person("rev-safety", "reviewer_safety", unit="emergency management"),
    "land_use_standards": person("rev-land", "reviewer_land_use", unit="natural resources"),
    "land_use_change": person("rev-land-change", "land_use_change_reviewer", unit="natural resources"),
    "safety_risk_assessment": person("rev-risk", "safety_risk_assessor", unit="emergency management"),
}

ProjectHandle = WorkflowHandle[ProjectApprovalWorkflow, CaseView]


def application(**changes: Any) -> ProjectApplication:
    fields: dict[str, Any] = {
        "enterprise": {
            "name": "Alashankou Metals Co.",
            "unified_social_credit_code": "91350100M000100Y43",
            "contact": {"name": "Ma Lin", "phone": "+86 909 555 0101", "email": "ma.lin@example.com"},
        },
        "project_name": "Imported copper concentrate bonded processing line",
        "description": "Bonded processing of imported metal ores (Art. 12), four-storey plant.",
        "industry_code": "C3311",
        "priority_industry": True,
        "total_investment_cny": "120000000.00",
        "fixed_asset_investment_cny": "90000000.00",
        "plot_id": "ALSK-B-07",
        "land_area_m2": "36000",
        "planned_land_use": "industrial",
        "zoned_land_use": "industrial",
        "storeys": 4,
        "floor_area_ratio": "1.60",
        "environmental_impact_category": "report_form",
        "major_hazard_source": False,
        "attachments": [
            {"uri": "s3://docs/feasibility.pdf", "sha256": "a" * 64, "size": 1048576, "name": "可行性研究报告"}
        ],
    }
    fields.update(changes)
    return ProjectApplication.model_validate(fields)


async def start(
    env: WorkflowEnvironment, queue: str, app: ProjectApplication | None = None, *, calendar: WorkingCalendar = CALENDAR
) -> ProjectHandle:
    key = f"P-{uuid.uuid4().hex[:10]}"
    case = project_case_input(
        business_key=key, application=app or application(), applicant=APPLICANT, started_by=SERVICE, calendar=calendar
    )
    return await env.client.start_workflow(
        ProjectApprovalWorkflow.run,
        case,
        id=f"project-approval:{key}",
        task_queue=queue,
        execution_timeout=timedelta(days=400),
    )


async def decide(
    handle: ProjectHandle, stage_id: str, actor: Principal, decision: Decision = Decision.approve, **fields: Any
) -> CaseView:
    view = await view_when(handle, lambda v: bool(open_tasks(v, stage_id)))
    [task] = open_tasks(view, stage_id)
    if decision in (Decision.reject, Decision.return_):
        fields.setdefault("comment", "reasons given in the review opinion")
    await handle.execute_update(
        ProjectApprovalWorkflow.decide, DecideRequest(actor=actor, task_id=task.task_id, decision=decision, **fields)
    )
    return await handle.query(ProjectApprovalWorkflow.view)


async def review_all(handle: ProjectHandle, **decisions: Decision) -> None:
    for stage in DIMENSIONS:
        decision = decisions.get(stage.id, Decision.approve)
        extra = {"conditions": [f"{stage.id}: condition"]} if decision is Decision.approve_with_conditions else {}
        await decide(handle, stage.id, REVIEWERS[stage.id], decision, **extra)
