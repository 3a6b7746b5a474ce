"""Administration: the working-day calendar, and publishing a year of it (admins only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from api.auth import CurrentPrincipal, Service
from api.routes._common import ERRORS
from approvals.calendar_publishing import FIRST_YEAR, LAST_YEAR, CalendarPublisher, Publication
from approvals.service import ApprovalsService
from schemas.calendar import LAYER_NAME_PATTERN, WorkingCalendar, YearSchedule

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=ERRORS)
# Its parts referred to where GET /calendar puts them, the document's components: `$defs` of its own here would
# not be reachable by any reference inside an OpenAPI document.
_YEAR_SCHEDULE_BODY = YearSchedule.model_json_schema(ref_template="#/components/schemas/{model}")
del _YEAR_SCHEDULE_BODY["$defs"]


def _publisher(service: ApprovalsService) -> CalendarPublisher:
    return CalendarPublisher(service.client, service.pool, service.settings.calendar_path)


@router.get("/calendar", summary="The working-day calendar a case started now gets (file + published years)")
async def calendar(principal: CurrentPrincipal, service: Service) -> WorkingCalendar:
    return await _publisher(service).calendar(principal)


@router.put(
    "/calendar/layers/{layer}/years/{year}",
    summary="Publish one layer's year (a State Council or regional notice); running cases recount their deadlines",
    description="发布某一层（国家、自治区）某年的节假日安排；正在办理的办件按新日历重新计算未届满的期限。"
    " The body is a year schedule: `source`, `status` (`official` or `assumed`), `holidays` "
    "(`name`, `first`, `last`), `make_up_working_days`.",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": _YEAR_SCHEDULE_BODY}}}},
)
async def publish_year(
    principal: CurrentPrincipal,
    service: Service,
    layer: Annotated[str, Path(pattern=LAYER_NAME_PATTERN)],
    year: Annotated[int, Path(ge=FIRST_YEAR, le=LAST_YEAR)],
    body: Annotated[dict[str, Any], Body()],
) -> Publication:
    return await _publisher(service).publish(principal, layer, year, body)
