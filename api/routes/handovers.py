"""Handover (工作交接): move every open task one person holds to another person or back to the pool (admins, and
unit heads for their own unit's staff)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from api.auth import CurrentPrincipal, Service
from api.routes._common import ERRORS
from approvals.handover import HandoverReport, HandoverRequest, hand_over

router = APIRouter(prefix="/v1", tags=["handovers"], responses=ERRORS)


@router.post(
    "/handovers",
    summary="Hand over every open task of a person (who left or is absent) to another, or back to the pool",
    description="工作交接：把某人名下的全部待办移交他人或退回待领池。"
    "An admin hands over anyone's tasks, a unit head (role `unit_head`) those of their own unit's staff: another "
    "unit's is 403 `NOT_OWN_UNIT` (a person's unit is the one recorded with their latest act; none recorded: "
    "`UNIT_UNKNOWN`). Each task's move is recorded in its case as a transfer (or a recall to the pool) by the admin "
    "or head, with the reason; a task the case's rules forbid to move (separation of duties, recusal, one "
    "signature per person …) is skipped with the reason code. Sending the same request with the same "
    "`Idempotency-Key` again reports the same results (`replayed`); the same key with another body is 409.",
)
async def handover(
    principal: CurrentPrincipal,
    service: Service,
    body: HandoverRequest,
    idempotency_key: Annotated[
        str,
        Header(
            min_length=1,
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Required: the handover's id; a repeat with it reports the first one's results.",
        ),
    ],
) -> HandoverReport:
    return await hand_over(service, principal, body, idempotency_key)
