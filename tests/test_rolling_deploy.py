"""A rolling deploy: a worker of the previous release meets a case of the next one (issue 20).

The application models forbid unknown fields in the worker too (why: ``workflows.compatibility``). A worker that
does not know a field the case's application carries neither runs nor fails the case: its workflow task fails
and is retried, and once a worker of the newer build polls, that worker runs the case from its start.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from pydantic import ConfigDict
from temporalio import workflow
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities import build_activities
from approvals.settings import load_settings
from schemas.case import CaseInput, CaseView
from schemas.project import ProjectApplication
from tests.cases import APPLICANT, SERVICE, open_tasks, view_when
from tests.fixtures.documents import organ_signer
from tests.fixtures.temporal import EngineWorker
from tests.project_cases import application
from workflows.compatibility import application_or_wait
from workflows.kernel import ApprovalWorkflow
from workflows.project_approval import ProjectApprovalWorkflow, project_case_input


class NextProjectApplication(ProjectApplication):
    """The next release's application: one field more."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site_photos: list[str] = []


@workflow.defn(name="ProjectApprovalWorkflow")
class NextProjectApprovalWorkflow(ProjectApprovalWorkflow):
    """The next release's workflow, which knows the field."""

    @workflow.run
    async def run(self, case: CaseInput) -> CaseView:
        self._application = application_or_wait(NextProjectApplication.model_validate, case.data, "project application")
        return await self.run_case()


async def start_next_release_case(env: WorkflowEnvironment, queue: str) -> WorkflowHandle:
    """A case as the next release's API starts it: its application carries ``site_photos``."""
    key = f"P-{uuid.uuid4().hex[:10]}"
    case = project_case_input(business_key=key, application=application(), applicant=APPLICANT, started_by=SERVICE)
    data = case.model_dump(mode="json")
    data["data"]["site_photos"] = ["plot-north.jpg"]
    return await env.client.start_workflow(
        "ProjectApprovalWorkflow", data, id=f"project-approval:{key}", task_queue=queue
    )


async def failed_task_attempts(handle: WorkflowHandle) -> tuple[WorkflowExecutionStatus | None, int]:
    description = await handle.describe()
    return description.status, description.raw_description.pending_workflow_task.attempt


async def test_an_older_worker_retries_a_newer_case_and_a_newer_worker_runs_it(
    dev_server_env: WorkflowEnvironment, engine_worker: EngineWorker, db_pool: asyncpg.Pool
) -> None:
    env = dev_server_env
    async with engine_worker(env) as queue:  # this release's worker: it does not know site_photos
        handle = await start_next_release_case(env, queue)
        for _ in range(200):
            status, attempts = await failed_task_attempts(handle)
            if attempts >= 2:
                break
            await asyncio.sleep(0.05)
    assert (status, attempts >= 2) == (WorkflowExecutionStatus.RUNNING, True)  # retried, not failed
    events = await db_pool.fetchval("SELECT count(*) FROM audit_events WHERE case_id = $1", handle.id)
    assert events == 0  # nothing of the case ran on the older build

    next_release = Worker(
        env.client,
        task_queue=queue,
        workflows=[NextProjectApprovalWorkflow, ApprovalWorkflow],
        activities=build_activities(
            db_pool,
            publication_webhook_url=None,
            calendar_path=None,
            organ=load_settings().document_organ(),
            signer=organ_signer(),
        ),
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    async with next_release:
        typed = env.client.get_workflow_handle_for(NextProjectApprovalWorkflow.run, handle.id)
        view = await view_when(typed, lambda v: bool(open_tasks(v, "acceptance")), timeout=30)
    assert view.status.value == "in_review"
