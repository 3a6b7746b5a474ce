"""The reviewer's inbox, answered from PostgreSQL."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import CurrentPrincipal, Service
from api.routes._common import ERRORS
from approvals.service import Page
from schemas.principal import Principal
from schemas.records import TaskProjection

router = APIRouter(prefix="/v1", tags=["inbox"], responses=ERRORS)


@router.get("/inbox", summary="Open tasks for me or my roles, by due date (none last)")
async def inbox(
    principal: CurrentPrincipal,
    service: Service,
    process: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9-]{0,63}$")] = None,
    stage: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = None,
    priority: bool | None = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[TaskProjection]:
    return await service.inbox(
        principal, process=process, stage=stage, priority=priority, overdue=overdue, limit=limit, offset=offset
    )


@router.get("/me", summary="The principal the bearer token stands for", tags=["auth"])
async def me(principal: CurrentPrincipal) -> Principal:
    return principal
