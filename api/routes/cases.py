"""Cases: start (idempotent by business key), read, list, case-level operations, timeline, history."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response
from fastapi.responses import JSONResponse

from api.auth import CurrentPrincipal, Service
from api.routes._common import ERRORS, CaseId, add_operation_routes
from approvals.admission import FREEFORM_PROCESS
from approvals.audit.timeline import TimelineRow
from approvals.definitions import DefinitionRegistry
from approvals.operations import Scope
from approvals.processes import PROCESSES
from approvals.service import (
    CaseDetail,
    DeniedAttempt,
    Page,
    StartedCase,
    Verification,
)
from schemas.case_state import CaseState
from schemas.documents import IssuedDocument
from schemas.records import StoredCase
from schemas.search import CaseSearch

router = APIRouter(prefix="/v1", tags=["cases"], responses=ERRORS)

PROCESS_PATTERN = r"^[a-z][a-z0-9-]{0,63}$"


@router.get(
    "/processes",
    summary="Registered processes, the JSON schema of their start request and their definitions' versions",
    description="A statutory process's definition is built by its code from the application (`definitions`: "
    "`source` `code`); `generic` lists every registered definition (`POST /v1/definitions`) with its versions, "
    "started with `definition_name` (and optionally `definition_version`).",
)
async def list_processes(principal: CurrentPrincipal, service: Service) -> list[dict[str, Any]]:
    registered: dict[str, list[dict[str, Any]]] = {}
    for version in await DefinitionRegistry(service.pool).all_versions():
        registered.setdefault(version.name, []).append(
            {"version": version.version, "sha256": version.sha256, "retired": version.retired_at is not None}
        )
    return [
        {
            "name": entry.name,
            "title": entry.title,
            "start_path": f"/v1/cases/{entry.name}",
            "start_request_schema": entry.request_model.model_json_schema(),
            "definitions": (
                [{"source": "registered", "name": name, "versions": found} for name, found in registered.items()]
                if entry.name == FREEFORM_PROCESS
                else [{"source": "code", "name": entry.name, "versions": []}]
            ),
        }
        for entry in PROCESSES.values()
    ]


@router.post(
    "/cases/{process}",
    summary="Start a case (a repeat with the same business key and payload returns the same case)",
    status_code=201,
    responses={200: {"model": StartedCase, "description": "The case already started with this business key"}},
    response_model=StartedCase,
)
async def start_case(
    process: Annotated[str, Path(pattern=PROCESS_PATTERN, description="A process name (`GET /v1/processes`).")],
    principal: CurrentPrincipal,
    service: Service,
    body: Annotated[
        dict[str, Any],
        Body(
            description="The process's start request; `GET /v1/processes` gives each one's JSON schema. "
            "`callback_url` is POSTed on every status change, signed (X-Approvals-Signature).",
        ),
    ],
) -> Any:
    started = await service.start_case(principal, process, body)
    return JSONResponse(
        started.model_dump(mode="json"),
        status_code=201 if started.created else 200,
        headers={"Location": f"/v1/cases/{started.case_id}"},
    )


@router.get(
    "/cases",
    summary="Cases I may read, searched and sorted: applicant name, credit code, title, key prefix, dates ...",
    description="办件查询：申请人名称（含中文，至少两个字）、统一社会信用代码、标题、业务编号前缀、流程、状态、环节、单位、"
    "收件和办结日期（UTC+8 本地日期，含首尾）。Every filter given must hold; latest received first by default.",
)
async def list_cases(
    principal: CurrentPrincipal,
    service: Service,
    search: Annotated[CaseSearch, Query()],
) -> Page[StoredCase]:
    return await service.list_cases(principal, search)


@router.get("/cases/{case_id}", summary="A case: status, stages, tasks, decisions, due dates")
async def get_case(
    case_id: CaseId,
    principal: CurrentPrincipal,
    service: Service,
    live: Annotated[bool, Query(description="Also ask the workflow for its live view.")] = False,
) -> CaseDetail:
    return await service.get_case(principal, case_id, live=live)


@router.get(
    "/cases/{case_id}/timeline",
    summary="Every recorded event: actor, time, legal basis, data, and what happened in plain language",
)
async def timeline(case_id: CaseId, principal: CurrentPrincipal, service: Service) -> list[TimelineRow]:
    return await service.timeline(principal, case_id)


HISTORY_SOURCE_HEADER = "Approvals-History-Source"


@router.get(
    "/cases/{case_id}/history",
    summary="The raw Temporal history of the latest run (the JSON `temporal workflow show --output json` prints)",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": "object"}}},
            "headers": {
                HISTORY_SOURCE_HEADER: {
                    "description": "`temporal`, or `archive`: the engine's copy, once Temporal's retention "
                    "deleted the run",
                    "schema": {"type": "string", "enum": ["temporal", "archive"]},
                }
            },
        }
    },
)
async def history(case_id: CaseId, principal: CurrentPrincipal, service: Service) -> Response:
    body, source = await service.history_json(principal, case_id)
    return Response(
        body,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{case_id.replace(":", "_")}.history.json"',
            HISTORY_SOURCE_HEADER: source,
        },
    )


@router.get(
    "/cases/{case_id}/verification",
    summary="Audit verdict: hash chain, cross-check with the Temporal history, projections (auditors, admins)",
)
async def verification(case_id: CaseId, principal: CurrentPrincipal, service: Service) -> Verification:
    return await service.verification(principal, case_id)


@router.get(
    "/cases/{case_id}/state",
    summary="The case as it stood after one of its events, folded from the audit log (auditors, admins)",
    description="办件在某一事件之后的状态（审计人员）。Without `seq`: after its latest event.",
)
async def state(
    case_id: CaseId,
    principal: CurrentPrincipal,
    service: Service,
    seq: Annotated[int | None, Query(ge=1, le=2_147_483_647, description="The event's sequence number.")] = None,
) -> CaseState:
    return await service.state(principal, case_id, seq)


@router.get("/cases/{case_id}/denied-attempts", summary="Refused operations on the case (auditors, admins)")
async def denied_attempts(case_id: CaseId, principal: CurrentPrincipal, service: Service) -> list[DeniedAttempt]:
    return await service.denied_attempts(principal, case_id)


add_operation_routes(router, Scope.case, ("case_id", CaseId))


@router.get("/cases/{case_id}/documents", summary="The case's official documents (公文): number, kind, SHA-256")
async def documents(case_id: CaseId, principal: CurrentPrincipal, service: Service) -> list[IssuedDocument]:
    return await service.documents(principal, case_id)


@router.get(
    "/cases/{case_id}/documents/{document_id}",
    summary="One official document: the signed PDF (PAdES), as stored (parties, auditors, admins)",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def document(
    case_id: CaseId,
    document_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f-]+$")],
    principal: CurrentPrincipal,
    service: Service,
) -> Response:
    pdf = await service.document_pdf(principal, case_id, document_id)
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{document_id}.pdf"'}
    )
