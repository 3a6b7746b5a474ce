"""The recorded cases of the statutory processes (issue 20), driven by ``tests.record_histories``.

Every process case starts as the API starts it: the registry's request model validates the documented
example application and the registry builds the case, seating a voting committee from the organ's rosters
(those of ``approvals dev``), so a change to how a process starts reaches the recordings too. One driver,
:func:`statutory`, approves every task as someone allowed to (findings on each criterion, evidence, reasons
and a date where the stage asks for them), up to the decision or, on the time-skipping server, to the last event.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from approvals.devstack.identities import DEV_ADMISSION
from approvals.processes import PROCESSES
from schemas.case import (
    AttachmentRef,
    CaseInput,
    CaseStatus,
    CaseView,
    DecideRequest,
    Finding,
    MissingItem,
    RequestSupplementRequest,
    SupplementRequest,
    TaskView,
    WithdrawRequest,
)
from schemas.error_tolerance import EXAMPLE_APPLICATION as ERROR_TOLERANCE
from schemas.power import EXAMPLE_PROPOSAL as POWER
from schemas.principal import Principal
from schemas.process import Decision
from schemas.talent import EXAMPLE_APPLICATION as TALENT
from tests.cases import APPLICANT, SERVICE, open_tasks, view_when
from tests.project_cases import OFFICER, OFFICIAL, REVIEWERS, application, review_all
from tests.project_cases import decide as decide_project
from tests.project_cases import start as start_project
from workflows.kernel import ApprovalWorkflow

Handle = WorkflowHandle[Any, CaseView]
Recorded = Callable[[WorkflowEnvironment, str], Awaitable[list[Handle]]]
"""Drives one case on a server's task queue; returns the case's handle, then those of any child case it started."""

ROSTERS = DEV_ADMISSION["committee_rosters"]
"""The committees seat the demo's roster, as under ``approvals dev``."""
EVIDENCE = AttachmentRef(uri="s3://evidence/record.pdf", sha256="e" * 64, size=1024, name="调查笔录")
EXAMPLES: dict[str, dict[str, Any]] = {
    "power-adjustment": POWER,
    "error-tolerance": ERROR_TOLERANCE,
    "talent-policy": TALENT,
}
"""Each statutory process's documented example application (``schemas``)."""


async def project_approval_full(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """补正 at acceptance, a land-use change, one dimension rejected then returned and re-reviewed, approval
    with the departments' conditions merged, and the Art. 18 disclosure."""
    handle = await start_project(env, queue, application(planned_land_use="logistics_warehousing"))
    await view_when(handle, lambda v: bool(open_tasks(v, "acceptance")))
    await handle.execute_update(
        ApprovalWorkflow.request_supplement,
        RequestSupplementRequest(actor=OFFICER, items=[MissingItem(item="用地预审意见", reason="not attached")]),
    )
    await handle.execute_update(ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="attached"))
    await decide_project(handle, "acceptance", OFFICER)
    await review_all(handle, environment=Decision.reject, safety=Decision.approve_with_conditions)
    await decide_project(handle, "land_use_change", REVIEWERS["land_use_change"])
    await decide_project(handle, "decision", OFFICIAL, Decision.return_, return_to="environment")
    await decide_project(handle, "environment", REVIEWERS["environment"])
    await decide_project(handle, "decision", OFFICIAL, Decision.approve_with_conditions, conditions=["noise barrier"])
    return [handle]


async def project_approval_documents(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """Patch "documents-issued": the 补正 request, the acceptance and the licence each issue their document
    (补正材料通知书, 受理通知书, 准予行政许可决定书), recorded as ``document.issued`` after the event that made it due."""
    handle = await start_project(env, queue, application())
    await view_when(handle, lambda v: bool(open_tasks(v, "acceptance")))
    await handle.execute_update(
        ApprovalWorkflow.request_supplement,
        RequestSupplementRequest(actor=OFFICER, items=[MissingItem(item="营业执照副本", reason="未附")]),
    )
    await handle.execute_update(ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="已补正"))
    await decide_project(handle, "acceptance", OFFICER)
    await review_all(handle)
    await decide_project(handle, "decision", OFFICIAL, Decision.approve)
    return [handle]


def started_as_the_api_starts_it(process: str) -> CaseInput:
    """A case of ``process`` with its documented example, built by the registry from a validated request."""
    entry = PROCESSES[process]
    request = entry.request_model.model_validate(
        {
            "business_key": f"H-{uuid.uuid4().hex[:10]}",
            "title": f"{entry.title} (corpus)",
            "applicant": APPLICANT.model_dump(mode="json"),
            "application": EXAMPLES[process],
        }
    )
    return entry.to_case_input(request, SERVICE, ROSTERS)


async def approve(env: WorkflowEnvironment, handle: Handle, case: CaseInput, task: TaskView) -> None:
    """Whoever may act on ``task`` approves it, finding that each criterion holds, with what the stage asks for."""
    stage = case.definition.stage(task.stage_id)
    actor = Principal(id=task.assignee_id or f"{task.candidate_roles[0]}-1", roles=tuple(task.candidate_roles))
    evidence = [EVIDENCE] if stage.evidence_required else []
    today = (await env.get_current_time()).date()
    request = DecideRequest(
        actor=actor,
        task_id=task.task_id,
        decision=Decision.approve,
        findings=[Finding(criterion=criterion, holds=True, evidence=evidence) for criterion in task.criteria],
        comment="理由见书面意见 reasons in the written opinion" if stage.reasons_required else "",
        due_date=today + timedelta(days=30) if stage.sets_date else None,
    )
    await handle.execute_update(ApprovalWorkflow.decide, request)  # type: ignore[arg-type]


def statutory(process: str, *, to_the_end: bool = False, withdrawn_after_days: int | None = None) -> Recorded:
    """A case of a statutory process, every task approved, recorded up to its decision; ``to_the_end`` (on the
    time-skipping server) goes on to its last event: time passes for each supervision review or rectification
    check, and a supervision without end is withdrawn after ``withdrawn_after_days`` (the enterprise leaves)."""

    async def run(env: WorkflowEnvironment, queue: str) -> list[Handle]:
        case = started_as_the_api_starts_it(process)
        entry = PROCESSES[process]
        handle = await env.client.start_workflow(
            entry.workflow, case, id=entry.workflow_id(case.business_key), task_queue=queue, result_type=CaseView
        )
        elapsed_days = 0
        for _ in range(400):
            latest = env.client.get_workflow_handle(handle.id, result_type=CaseView)  # the run of the moment
            if (await latest.describe()).status.name != "RUNNING":
                return [latest]
            view = await latest.query(ApprovalWorkflow.view)
            if not to_the_end and view.status is CaseStatus.under_supervision:
                return [latest]  # decided; the supervision would go on for years
            if tasks := open_tasks(view):
                await approve(env, latest, case, tasks[0])
                continue
            if withdrawn_after_days is not None and elapsed_days >= withdrawn_after_days:
                leave = WithdrawRequest(actor=APPLICANT, reason="the enterprise leaves the zone")
                await latest.execute_update(ApprovalWorkflow.withdraw, leave)  # type: ignore[arg-type]
            elif view.status is CaseStatus.under_supervision:
                await env.sleep(timedelta(days=100))
                elapsed_days += 100
            await asyncio.sleep(0.1)
        raise AssertionError(f"{handle.id} did not {'end' if to_the_end else 'reach its decision'}")

    return run


def invalid_application_refused(process: str) -> Recorded:
    """A case whose application its process refuses (the persons concerned left out: the API refuses it first, a
    client of Temporal's own may not): it fails at once with INVALID_APPLICATION, before any stage."""

    async def run(env: WorkflowEnvironment, queue: str) -> list[Handle]:
        case = started_as_the_api_starts_it(process)
        broken = case.model_copy(update={"data": {**case.data, "persons_concerned": []}})
        entry = PROCESSES[process]
        handle = await env.client.start_workflow(
            entry.workflow, broken, id=entry.workflow_id(case.business_key), task_queue=queue, result_type=CaseView
        )
        return [handle]

    return run
