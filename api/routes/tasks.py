"""Task operations: every one a Workflow Update with the caller as actor, applied once per Idempotency-Key."""

from fastapi import APIRouter

from api.routes._common import ERRORS, TaskId, add_operation_route
from approvals.service import TASK_OPERATIONS

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


for _name, _operation in TASK_OPERATIONS.items():
    _base = "Return" if _name == "return" else _operation.request_model.__name__.removesuffix("Request")
    add_operation_route(
        router,
        _operation,
        path=f"/tasks/{{task_id:path}}/{_name}",
        target=("task_id", TaskId),
        body_name=f"{_base}TaskBody",
        summary=_DESCRIPTIONS[_name],
        without=("decision",) if _name == "return" else (),
    )
