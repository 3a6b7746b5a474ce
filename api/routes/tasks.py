"""Task operations: every one a Workflow Update with the caller as actor, applied once per Idempotency-Key."""

from fastapi import APIRouter

from api.auth import CurrentPrincipal, Service
from api.routes._common import ERRORS, IdempotencyKey, TaskId, body_model
from approvals.service import TASK_OPERATIONS
from schemas.case import OperationResult

router = APIRouter(prefix="/v1", tags=["tasks"], responses=ERRORS)

_DESCRIPTIONS = {
    "claim": "Take a pool task (open to a role) for yourself.",
    "unclaim": "Give a claimed task back to the pool.",
    "decide": "approve, reject, approve_with_conditions, return (with return_to) or abstain (votes).",
    "transfer": "转交: hand the task to another user.",
    "delegate": "Let another user act for you; you stay accountable.",
    "add-signer": "加签: add a signer before or after you.",
    "return": "退回: send the case back to an earlier stage (a decision `return`; a comment is required).",
    "comment": "Comment on the task.",
    "urge": "催办: remind the task's holder.",
    "cc": "抄送: inform other users.",
}


def _task_operation_route(name: str) -> None:
    operation = TASK_OPERATIONS[name]
    without = ("decision",) if name == "return" else ()
    base = operation.request_model.__name__.removesuffix("Request")
    model = body_model(f"{'Return' if name == 'return' else base}TaskBody", operation.request_model, without=without)

    async def act(
        task_id: TaskId,
        principal: CurrentPrincipal,
        service: Service,
        body: model,  # type: ignore[valid-type]
        idempotency_key: IdempotencyKey = None,
    ) -> OperationResult:
        return await service.act(
            principal, operation, task_id, body.model_dump(exclude_unset=True), idempotency_key=idempotency_key
        )

    act.__name__ = f"task_{name.replace('-', '_')}"
    router.add_api_route(
        f"/tasks/{{task_id:path}}/{name}",
        act,
        methods=["POST"],
        summary=_DESCRIPTIONS[name],
        response_model=OperationResult,
    )


for _name in TASK_OPERATIONS:
    _task_operation_route(_name)
