"""Task operations: every one a Workflow Update with the caller as actor, applied once per Idempotency-Key.

The routes are generated from the operation registry (``approvals.operations``)."""

from fastapi import APIRouter

from api.routes._common import ERRORS, TaskId, add_operation_routes
from approvals.operations import Scope

router = APIRouter(prefix="/v1", tags=["tasks"], responses=ERRORS)

add_operation_routes(router, Scope.task, ("task_id", TaskId))
