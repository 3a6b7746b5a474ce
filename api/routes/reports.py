"""The Committee's statistics (Art. 29, Art. 18): the figures of the cases received in a period, as JSON, CSV,
XLSX or the PDF report with its charts; for auditors, admins and the head."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from api.auth import CurrentPrincipal, Service
from api.routes._common import ERRORS
from approvals.reports.service import MEDIA_TYPES, Reports
from approvals.reports.summary import report_request
from schemas.reports import GroupBy, ReportFormat, ReportSummary

router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=ERRORS)

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_FILES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The figures: JSON by default, or the file `format` names.",
        "content": {media_type.split(";")[0]: _BINARY for media_type in MEDIA_TYPES.values()},
    }
}


@router.get(
    "/summary",
    summary="Statistics of the cases received in a period, grouped (auditors, admins, the head)",
    description="某期间收件的办件统计：收件、受理、不予受理、准予、不予、撤回、监管中；办结用时（工作日，平均、中位数、90%分位）；"
    "按期办结率；延期、补正、特别程序次数；超期未办任务；被拒绝的操作；容错免责认定；人才政策决定；职能目录变更。"
    " Dates are local dates (UTC+8), both included; `format=csv|xlsx|pdf` returns a file (the PDF is the Art. 29 "
    "report with its charts). `from` after `to` is 422 `INVALID_PERIOD`.",
    response_model=ReportSummary,
    responses=_FILES,
)
async def summary(
    principal: CurrentPrincipal,
    service: Service,
    from_: Annotated[date, Query(alias="from", description="First local date of receipt (UTC+8), YYYY-MM-DD.")],
    to: Annotated[date, Query(description="Last local date of receipt, YYYY-MM-DD (included).")],
    group_by: Annotated[GroupBy, Query(description="How the figures are grouped.")] = GroupBy.process,
    format: Annotated[ReportFormat, Query(description="json, or the file: csv, xlsx, pdf.")] = ReportFormat.json,
) -> ReportSummary | Response:
    request = report_request(from_, to, group_by, format)
    reports = Reports(service)
    if request.format is ReportFormat.json:
        return await reports.summary(principal, request)
    file = await reports.file(principal, request)
    headers = {"Content-Disposition": f'attachment; filename="{file.filename}"'}
    return Response(file.content, media_type=file.media_type, headers=headers)
