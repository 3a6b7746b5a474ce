"""Registered process definitions: register (admins; the same content again is the same version), list
versions, retire a version (no new starts; running cases keep it). Cases start on one with
``POST /v1/cases/generic`` and ``definition_name`` (optionally ``definition_version``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from fastapi.responses import JSONResponse

from api.auth import CurrentPrincipal, Service
from api.routes._common import ERRORS
from approvals.definitions import DefinitionRegistry, Registered, RetireDefinitionRequest
from approvals.storage.definitions import DefinitionVersion
from schemas.process import DEFINITION_NAME_PATTERN

router = APIRouter(prefix="/v1/definitions", tags=["definitions"], responses=ERRORS)

# The definition itself is stated as an object: its rules (a stage's kind, unique ids, whether it can run) are
# more than JSON Schema can state, and a definition that breaks them is 422 DEFINITION_INVALID naming the field.
_REGISTER_BODY = {
    "type": "object",
    "required": ["name", "definition"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": DEFINITION_NAME_PATTERN, "description": "The definition's name."},
        "definition": {
            "type": "object",
            "description": "A process definition, as `definition` of the generic start request (`GET /v1/processes`).",
        },
    },
}

DefinitionName = Annotated[str, Path(pattern=DEFINITION_NAME_PATTERN, description="A registered definition's name.")]


@router.post(
    "",
    summary="Register a process definition (admins): a new version, or the version it already is (200)",
    description="登记流程定义：内容不同即为新版本；同名同内容再次登记返回原版本（幂等）。"
    "A definition that cannot run is 422 naming the problem, as at the start of a free-form generic case.",
    status_code=201,
    responses={200: {"model": Registered, "description": "This name already had this content"}},
    response_model=Registered,
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": _REGISTER_BODY}}}},
)
async def register(
    principal: CurrentPrincipal,
    service: Service,
    body: Annotated[dict[str, Any], Body()],
) -> Any:
    registered = await DefinitionRegistry(service.pool).register(principal, body)
    version = registered.version
    return JSONResponse(
        registered.model_dump(mode="json"),
        status_code=201 if registered.created else 200,
        headers={"Location": f"/v1/definitions/{version.name}"},
    )


@router.get("/{name}", summary="Every version of a registered definition, oldest first, with retirements")
async def versions(name: DefinitionName, principal: CurrentPrincipal, service: Service) -> list[DefinitionVersion]:
    return await DefinitionRegistry(service.pool).versions(principal, name)


@router.post(
    "/{name}/versions/{version}/retire",
    summary="Retire a version (admins): no new case starts on it; cases running on it continue",
)
async def retire(
    name: DefinitionName,
    version: Annotated[int, Path(ge=1, le=1_000_000)],
    principal: CurrentPrincipal,
    service: Service,
    body: RetireDefinitionRequest,
) -> DefinitionVersion:
    return await DefinitionRegistry(service.pool).retire(principal, name, version, body.reason)
