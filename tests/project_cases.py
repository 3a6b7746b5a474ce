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
from schemas.project import EXAMPLE_APPLICATION, ProjectApplication
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
    """The documented example application, with ``changes`` applied."""
    return ProjectApplication.model_validate({**EXAMPLE_APPLICATION, **changes})


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
