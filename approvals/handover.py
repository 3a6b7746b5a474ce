"""Handover (工作交接): when staff leave or are absent, an admin, or the head of their unit (``approvals.units``),
moves every open task one person holds to another person (a transfer) or back to the pool (a recall), in one
request. A unit head hands over their own unit's staff only: anyone else's is refused (403 ``NOT_OWN_UNIT``).

Each move is the registry's own operation run through the service layer as the admin or head, with the reason
as its comment, so it is recorded in its case like any transfer or recall and the case's rules apply: a task whose
rules forbid the move (the new holder is the case's applicant, must recuse themselves, already signs at the
stage; a task assigned by name cannot go to a pool …) is skipped with the refusal's reason code, recorded as a
denied attempt. The request is idempotent by its key: each task's update id is derived from it (Temporal
applies it once), and the results are stored (``handovers``), so sending it again reports the same results. A
handover with a case that did not answer in time (``not_reached``) is not stored: sending it again with the key
moves what the person still holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field

from approvals import units
from approvals.admission import ADMIN
from approvals.errors import Conflict, Denied, Forbidden, IdempotencyConflict, InvalidRequest, NotFound, Unavailable
from approvals.operations import Scope, operations
from approvals.service import ApprovalsService, case_id_of_task
from approvals.storage import handovers, queries
from schemas.case import UserId
from schemas.events import canonical_json
from schemas.principal import Principal
from schemas.text import CleanModel

__all__ = ["HandoverReport", "HandoverRequest", "TaskMove", "hand_over"]


class HandoverRequest(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    from_user: UserId = Field(description="Whose open tasks move (they left or are absent).")
    to_user: UserId | None = Field(None, description="Who takes them; null: back to the pool of each stage.")
    reason: str = Field(min_length=1, max_length=4000, description="Recorded with every move (交接原因).")


MOVES_AT_ONCE = 8
"""Tasks moved concurrently: each is an update of its own case, answered when that case recorded it."""
NOT_REACHED = "not_reached"


class TaskMove(BaseModel):
    task_id: str
    case_id: str
    outcome: str = Field(
        description="`transferred`, `returned_to_pool`, `skipped` (the case's rules refused: `code` says why) or "
        "`not_reached` (the case did not answer in time: send the handover again with its key)."
    )
    code: str | None = Field(None, description="Why it was skipped: the case's refusal code.")
    message: str | None = None


class HandoverReport(BaseModel):
    idempotency_key: str
    handed_over_by: str
    request: HandoverRequest
    moves: list[TaskMove]
    replayed: bool = Field(False, description="True: this key was handled before; these are its results.")


async def hand_over(
    service: ApprovalsService, principal: Principal, request: HandoverRequest, idempotency_key: str
) -> HandoverReport:
    """Moves every open task ``request.from_user`` holds; the results of an earlier request with this key and
    body when there was one (409 for the same key with another body)."""
    if units.heads_a_unit_only(principal):
        await units.own_unit_staff(service.pool, principal, request.from_user)
    elif not principal.has_any_role((ADMIN,)):
        raise Forbidden(
            f"{principal.id} may not hand over staff's tasks: role admin required, or unit_head for one's own unit",
            code="ROLE_REQUIRED",
        )
    if request.to_user == request.from_user:
        message = "to_user is from_user: tasks are handed over to someone else, or back to the pool (null)"
        raise InvalidRequest(
            message, [{"field": "to_user", "location": "body", "message": message, "type": "value_error"}]
        )
    body = request.model_dump(mode="json")
    digest = hashlib.sha256(canonical_json({"by": principal.id, "request": body})).hexdigest()
    earlier = await handovers.stored(service.pool, idempotency_key)
    if earlier is None:
        held = await queries.tasks_held(service.pool, request.from_user)
        at_once = asyncio.Semaphore(MOVES_AT_ONCE)

        async def move(task_id: str) -> TaskMove:
            async with at_once:
                return await _move(service, principal, request, task_id, idempotency_key)

        moves = list(await asyncio.gather(*(move(task.task_id) for task in held)))
        report = HandoverReport(
            idempotency_key=idempotency_key, handed_over_by=principal.id, request=request, moves=moves
        )
        if any(move.outcome == NOT_REACHED for move in moves):
            return report  # not recorded: sending it again with the key retries the tasks still held
        if await handovers.record(
            service.pool, idempotency_key, principal.id, json.dumps(body), digest, report.model_dump_json()
        ):
            return report
        earlier = await handovers.stored(service.pool, idempotency_key)  # a concurrent request with the key won
        assert earlier is not None
    if earlier["request_sha256"] != digest:
        raise IdempotencyConflict(
            f"Idempotency-Key {idempotency_key!r} was used for another handover; use a new key for a new one"
        )
    return HandoverReport.model_validate({**earlier["results"], "replayed": True})


async def _move(
    service: ApprovalsService, principal: Principal, request: HandoverRequest, task_id: str, key: str
) -> TaskMove:
    """One task's move, as the registry's transfer or recall by the admin or head; a refusal is reported, not
    raised."""
    task_operations = operations(Scope.task)
    if request.to_user is None:
        operation, body, outcome = task_operations["recall"], {"reason": request.reason}, "returned_to_pool"
    else:
        operation, outcome = task_operations["transfer"], "transferred"
        body = {"to_user": request.to_user, "comment": request.reason}
    case_id = case_id_of_task(task_id)
    try:
        await service.act(principal, operation, Scope.task, task_id, body, idempotency_key=f"handover:{key}")
    except (Denied, Forbidden, Conflict, NotFound) as refusal:
        return TaskMove(task_id=task_id, case_id=case_id, outcome="skipped", code=refusal.code, message=refusal.detail)
    except Unavailable as unavailable:
        return TaskMove(
            task_id=task_id, case_id=case_id, outcome=NOT_REACHED, code=unavailable.code, message=unavailable.detail
        )
    return TaskMove(task_id=task_id, case_id=case_id, outcome=outcome)
