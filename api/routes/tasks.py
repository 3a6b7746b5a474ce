"""Tasks: each one's view, and the task operations, every one a Workflow Update with the caller as actor, applied
once per Idempotency-Key.

The operation routes are generated from the operation registry (``approvals.operations``)."""

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.auth import CurrentPrincipal, Service
from api.routes._common import ERRORS, TaskId, add_operation_routes
from approvals.errors import NotFound
from approvals.operations import Scope
from approvals.service import RecordedAttachment, case_id_of_task
from schemas.records import StoredCase, TaskProjection

router = APIRouter(prefix="/v1", tags=["tasks"], responses=ERRORS)


class TaskDetail(BaseModel):
    model_config = ConfigDict(frozen=True)

    task: TaskProjection
    case: StoredCase | None = Field(description="Its case's projection (None just after the start).")
    attachments: list[RecordedAttachment] = Field(
        description="Every document the acts on its case referenced (decisions, returns, comments, 补正 and the "
        "material supplied), by event and task: what the reviewer reads before acting."
    )


@router.get(
    "/tasks/{task_id:task_id}",
    summary="A task, its case and the documents the acts on the case referenced (readers of the case)",
)
async def get_task(task_id: TaskId, principal: CurrentPrincipal, service: Service) -> TaskDetail:
    detail = await service.get_case(principal, case_id_of_task(task_id))
    task = next((task for task in detail.tasks if task.task_id == task_id), None)
    if task is None:
        raise NotFound(f"case {detail.case_id} has no task {task_id}", code="TASK_NOT_FOUND")
    return TaskDetail(task=task, case=detail.case, attachments=detail.attachments)


add_operation_routes(router, Scope.task, ("task_id", TaskId))
