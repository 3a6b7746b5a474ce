"""The auditor's case page: timeline, stage durations against deadlines, verification on demand, the state
as of any event, denied attempts, the signed bundle, and the case in the Temporal Web UI."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.auth import service_of
from api.console import casedata
from api.console.chart import stage_chart
from api.console.rendering import render, request_language
from api.console.session import BASE, ConsolePrincipal
from approvals.admission import READ_ALL_ROLES
from approvals.settings import Settings

router = APIRouter(prefix=BASE, include_in_schema=False)


def temporal_ui_link(settings: Settings, case_id: str) -> str:
    base = settings.temporal_ui_url or f"http://127.0.0.1:{settings.temporal_ui_port}"
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{base.rstrip('/')}/namespaces/{namespace}/workflows/{quote(case_id, safe='')}"


@router.get("/cases/{case_id}")
async def case_page(
    request: Request,
    case_id: str,
    principal: ConsolePrincipal,
    verify: bool = False,
    seq: Annotated[int | None, Query(ge=1, le=10_000_000)] = None,
) -> Response:
    """Any reader sees the record; auditors and admins also verify it, see denied attempts and the bundle."""
    service = service_of(request)
    detail = await service.get_case(principal, case_id)
    timeline = await service.timeline(principal, case_id)
    auditor = principal.has_any_role(READ_ALL_ROLES)
    verification = await service.verification(principal, case_id) if verify and auditor else None
    denied = await service.denied_attempts(principal, case_id) if auditor else []
    state = await service.state(principal, case_id, seq) if seq is not None else None
    return render(
        request,
        "case.html",
        principal=principal,
        case_id=case_id,
        case=detail.case,
        tasks=detail.tasks,
        timeline=timeline,
        chart=stage_chart(timeline, chinese=request_language(request) == "zh_CN"),
        auditor=auditor,
        verification=verification,
        denied=denied,
        seq=seq,
        state=casedata.entries(state.model_dump(mode="json"), type(state)) if state else None,
        temporal_link=temporal_ui_link(request.app.state.settings, case_id),
    )


@router.get("/cases/{case_id}/bundle.zip")
async def bundle(request: Request, case_id: str, principal: ConsolePrincipal) -> Response:
    """The signed audit bundle, as ``approvals audit export`` writes it, zipped."""
    body = await service_of(request).bundle_zip(principal, case_id)
    filename = f"{case_id.replace(':', '_')}.bundle.zip"
    return Response(
        body, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
