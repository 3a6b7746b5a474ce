"""Administration: the working-day calendar, and publishing a year of it (admins only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel

from api.auth import CurrentPrincipal, Service
from api.routes._common import ERRORS
from approvals.calendar_publishing import CalendarPublisher, Publication
from approvals.service import ApprovalsService
from schemas.calendar import LAYER_NAME_PATTERN, WorkingCalendar, YearSchedule

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=ERRORS)


def _publisher(service: ApprovalsService) -> CalendarPublisher:
    return CalendarPublisher(service.client, service.pool, service.settings.calendar_path)


def _inlined(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` written in place: a ``#/$defs/…`` reference inside an OpenAPI
    operation points at nothing there (ReDoc refuses the whole document over it)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref", "")
            if reference.startswith("#/$defs/"):
                siblings = {key: value for key, value in node.items() if key != "$ref"}  # e.g. its default
                return {**resolve(definitions[reference.removeprefix("#/$defs/")]), **siblings}
            return {key: resolve(value) for key, value in node.items()}
        return [resolve(item) for item in node] if isinstance(node, list) else node

    return resolve(schema)  # type: ignore[no-any-return]


@router.get("/calendar", summary="The working-day calendar a case started now gets (file + published years)")
async def calendar(principal: CurrentPrincipal, service: Service) -> WorkingCalendar:
    return await _publisher(service).calendar(principal)


@router.put(
    "/calendar/layers/{layer}/years/{year}",
    summary="Publish one layer's year (a State Council or regional notice); running cases recount their deadlines",
    description="发布某一层（国家、自治区）某年的节假日安排；正在办理的办件按新日历重新计算未届满的期限。"
    " The body is a year schedule: `source`, `status` (`official` or `assumed`), `holidays` "
    "(`name`, `first`, `last`), `make_up_working_days`.",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": _inlined(YearSchedule)}}}},
)
async def publish_year(
    principal: CurrentPrincipal,
    service: Service,
    layer: Annotated[str, Path(pattern=LAYER_NAME_PATTERN)],
    year: Annotated[int, Path(ge=1, le=9999)],
    body: Annotated[dict[str, Any], Body()],
) -> Publication:
    return await _publisher(service).publish(principal, layer, year, body)
