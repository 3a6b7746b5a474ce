"""What the route modules share: path/query patterns, body models derived from the kernel's requests, and
the one factory of operation routes (task and case operations alike)."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path
from pydantic import BaseModel, ConfigDict, create_model
from starlette.convertors import PathConvertor, register_url_convertor

from api.auth import CurrentPrincipal, Service
from api.problems import PROBLEM_RESPONSES
from approvals.operations import Operation, Scope, operations
from approvals.service import ApprovalsService
from schemas.case import OperationResult
from schemas.principal import Principal
from schemas.text import CleanModel

CASE_ID_PATTERN = r"^[a-z][a-z0-9-]{0,63}:[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
TASK_ID_PATTERN = r"^[a-z][a-z0-9-]{0,63}:[A-Za-z0-9][A-Za-z0-9._:-]{0,127}/[a-z][a-z0-9_]{0,63}/[0-9]{1,9}$"


class TaskIdConvertor(PathConvertor):
    """A task id in a route's path, slashes and all, and nothing after it: ``GET /v1/tasks/{task_id:task_id}``
    leaves ``POST /v1/tasks/<task id>/<no such operation>`` to no route (404), where ``path`` would take it (405)."""

    regex = TASK_ID_PATTERN.removeprefix("^").removesuffix("$")


register_url_convertor("task_id", TaskIdConvertor())

CaseId = Annotated[
    str, Path(pattern=CASE_ID_PATTERN, description="`<process>:<business key>`", examples=["generic:A-1"])
]
TaskId = Annotated[
    str,
    Path(
        pattern=TASK_ID_PATTERN,
        description="`<case id>/<stage>/<n>`; its slashes may be sent as is or as %2F.",
        examples=["generic:A-1/review/1"],
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Your request id: a retried call with the same key and the same body is applied once. "
        "The key is scoped to the operation, its target and the caller, and bound to the body (a SHA-256 of "
        "it is part of the operation's id): the same key with a different body is a different operation. "
        "Without it, every call is a new operation.",
    ),
]

ERRORS: dict[int | str, dict[str, Any]] = PROBLEM_RESPONSES


class _Body(CleanModel):
    """Base of every operation body: unknown fields refused, unstorable text and numbers refused."""

    model_config = ConfigDict(extra="forbid")


def body_model(name: str, kernel_model: type[BaseModel], *, without: tuple[str, ...] = ()) -> type[BaseModel]:
    """The request body clients send: the kernel request without ``actor`` (taken from the token) and
    the target id (taken from the path). Unknown fields are refused, so ``actor`` cannot be smuggled in;
    NUL characters, lone surrogates and floats PostgreSQL would not store as sent are refused with their
    field path (see ``schemas.text``)."""
    excluded = {"actor", "task_id", *without}
    fields: dict[str, Any] = {
        field_name: (info.annotation, info)
        for field_name, info in kernel_model.model_fields.items()
        if field_name not in excluded
    }
    base = _Body
    rules = kernel_model.model_config.get("json_schema_extra")
    if rules and not without:  # rules between the kernel's fields (DecideRequest's); fixed fields: not all there
        base = type(f"{name}Rules", (_Body,), {"model_config": ConfigDict(json_schema_extra=rules)})
    return create_model(  # type: ignore[call-overload,no-any-return]
        name, __base__=base, __doc__=kernel_model.__doc__, **fields
    )


def add_operation_routes(router: APIRouter, scope: Scope, target: tuple[str, Any]) -> None:
    """``POST /tasks/{task_id}/<name>`` or ``POST /cases/{case_id}/<name>`` for every registered operation
    on that scope; ``target`` is the path parameter's name and annotation."""
    for operation in operations(scope).values():
        add_operation_route(router, operation, scope, target)


def add_operation_route(router: APIRouter, operation: Operation, scope: Scope, target: tuple[str, Any]) -> None:
    """``POST``: runs ``operation`` on the target in the path with the caller as actor, applied once per
    Idempotency-Key; the body is the kernel request without actor, target and fixed fields (see ``body_model``)."""
    target_name, target_type = target
    camel = "".join(part.capitalize() for part in operation.name.split("-"))
    model = body_model(
        f"{camel}{scope.value.capitalize()}Body", operation.request_model, without=tuple(operation.fixed)
    )

    async def act(
        principal: Principal, service: ApprovalsService, body: BaseModel, idempotency_key: str | None, **ids: str
    ) -> OperationResult:
        fields = body.model_dump(exclude_unset=True)
        return await service.act(principal, operation, scope, ids[target_name], fields, idempotency_key=idempotency_key)

    keyword = inspect.Parameter.KEYWORD_ONLY
    act.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(target_name, keyword, annotation=target_type),
            inspect.Parameter("principal", keyword, annotation=CurrentPrincipal),
            inspect.Parameter("service", keyword, annotation=Service),
            inspect.Parameter("body", keyword, annotation=model),
            inspect.Parameter("idempotency_key", keyword, annotation=IdempotencyKey, default=None),
        ],
        return_annotation=OperationResult,
    )
    act.__name__ = f"{scope.value}_{operation.name.replace('-', '_')}"
    # Task ids hold slashes (`<case id>/<stage>/<n>`), so a task's path parameter takes the rest of the path.
    parameter = f"{{{target_name}:path}}" if scope is Scope.task else f"{{{target_name}}}"
    router.add_api_route(
        f"/{scope.value}s/{parameter}/{operation.name}",
        act,
        methods=["POST"],
        summary=operation.summary,
        description=operation.summary_zh,
        response_model=OperationResult,
    )
