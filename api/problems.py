"""RFC 9457 problem details: every error the API returns is ``application/problem+json``.

One shape for all of them: ``type`` (a stable URI per reason), ``title``, ``status``, ``detail`` (what went
wrong and where, in a sentence), ``code`` (machine-readable reason: the kernel's reason code for a refused
operation, e.g. ``NOT_ASSIGNEE``) and, for validation errors, ``errors`` with the field path of each.

Also here: the body-size guard (413 before a byte reaches Temporal, whose payloads are limited to 2 MB;
operations get the smaller OPERATION_MAX_BYTES), the method guard (405 with the path's ``Allow``), the
mapping of :mod:`approvals.errors` to HTTP statuses, and the OpenAPI document's account of all of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.service import RPCError

from approvals import errors
from approvals.tracing import span_ids

__all__ = [
    "PROBLEM_RESPONSES", "FieldError", "MethodGuard", "Problem", "ProblemError", "install", "problem_response",
]  # fmt: skip

log = structlog.get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://approvals.alashankou.gov.cn/problems/"
RETRY_AFTER_SECONDS = 5


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `applicant.id` or `steps.0.mode`.")
    location: str = Field(description="`body`, `query`, `path` or `header`.")
    message: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    instance: str | None = None
    code: str = Field(description="Machine-readable reason, e.g. NOT_ASSIGNEE, IDEMPOTENCY_CONFLICT.")
    errors: list[FieldError] | None = None
    trace_id: str | None = Field(
        None,
        description="The request's OpenTelemetry trace id (when tracing is on); the server's log lines of "
        "this request carry it as `trace_id`.",
    )


def _documented(description: str, **headers: str) -> dict[str, Any]:
    """An error answer as the OpenAPI document gives it: a ``Problem`` in ``application/problem+json``."""
    documented: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if headers:
        documented["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()
        }
    return documented


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _documented("Missing or invalid bearer token", **{"WWW-Authenticate": '`Bearer realm="approvals"`'}),
    403: _documented("The principal may not do this (the reason is in `detail`)"),
    404: _documented("Unknown process, case or task"),
    405: _documented(
        "The path is served, but not with this method: a path parameter of this shape names a resource "
        "another operation serves (e.g. `GET /v1/cases/generic`, a process). `Allow` lists the methods it serves",
        Allow="The methods the path serves, e.g. `POST`",
    ),
    409: _documented("Refused by the case's rules in its current state, or an idempotency-key conflict"),
    422: _documented("Invalid request (field paths in `errors`) or refused by a rule on the request's content"),
    503: _documented(
        "Temporal or PostgreSQL unreachable; retry after `Retry-After` seconds", **{"Retry-After": "Seconds"}
    ),
}
"""Declared on every route so the OpenAPI document (and clients generated from it) know the error shape."""

BODY_PROBLEM_RESPONSES: dict[str, dict[str, Any]] = {
    "400": _documented("The body is not JSON (MALFORMED_JSON) or Content-Length is not a number"),
    "413": _documented("Request body over MAX_PAYLOAD_BYTES (OPERATION_MAX_BYTES for task and case operations)"),
}
"""Added to every operation that takes a body (see :func:`document_problems`)."""


class ProblemError(Exception):
    """Raised anywhere in the API layer to answer with a problem."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")
        self.headers = headers or {}
        self.extra = extra


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    422: "Unprocessable content",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code.lower().replace("_", "-"),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    extra["trace_id"] = span_ids().get("trace_id")  # the request's trace; its log lines carry the same id
    body.update({key: value for key, value in extra.items() if value is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def field_errors(errors: list[Any], *, location: str | None = None) -> list[dict[str, Any]]:
    """pydantic/FastAPI error dicts -> ``FieldError`` dicts with a dotted field path."""
    found = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        where = location
        if where is None and loc and loc[0] in {"body", "query", "path", "header", "cookie"}:
            where, loc = loc[0], loc[1:]
        if where in {"query", "path", "header", "cookie"}:
            loc = loc[:1]  # a parameter is named as sent: a repeated one's index adds nothing the caller can act on
        found.append(
            {
                "field": ".".join(loc) or "(body)",
                "location": where or "body",
                "message": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return found


def validation_problem(errors: list[dict[str, Any]], instance: str, code: str = "VALIDATION_ERROR") -> JSONResponse:
    summary = "; ".join(f"{e['location']} {e['field']}: {e['message']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return problem_response(422, code, f"invalid request: {summary}{more}", instance=instance, errors=errors)


def malformed_json_problem(error: dict[str, Any], instance: str) -> JSONResponse:
    """400: the body cannot be parsed at all, so no field can be named; the position can."""
    reason = (error.get("ctx") or {}).get("error") or error.get("msg") or "JSON decode error"
    position = error.get("loc", ())[-1:]
    where = f" at character {position[0]}" if position and isinstance(position[0], int) else ""
    return problem_response(
        400, "MALFORMED_JSON", f"the request body is not valid JSON: {reason}{where}", instance=instance
    )


# --- service errors -> HTTP ---------------------------------------------------------------------------


def service_problem(error: errors.ServiceError, instance: str) -> JSONResponse:
    headers = {}
    if isinstance(error, errors.Unavailable):
        headers["Retry-After"] = str(error.retry_after or RETRY_AFTER_SECONDS)
    if isinstance(error, errors.Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="approvals"'
    extra: dict[str, Any] = {}
    if isinstance(error, errors.Denied):
        extra = {"operation": error.operation, "case_id": error.case_id, "task_id": error.task_id}
        if error.field:
            extra["errors"] = [{"field": error.field, "location": "body", "message": error.detail, "type": error.code}]
    if isinstance(error, errors.InvalidRequest):
        return validation_problem(error.errors, instance, error.code)
    return problem_response(error.status, error.code, error.detail, instance=instance, headers=headers, **extra)


# --- body size guard ----------------------------------------------------------------------------------


OPERATION_PATH = re.compile(r"^/v1/(?:tasks/.+|cases/[^/]+/[^/]+)$")
"""Task and case operations (``/v1/tasks/{task_id}/{op}``, ``/v1/cases/{case_id}/{op}``), not starts
(``/v1/cases/{process}``): their bodies are a comment and a few fields, so they get the smaller limit."""


class BodySizeLimit:
    """Refuses bodies over the limit with 413: from Content-Length before reading, or while reading a
    chunked body (buffered up to the limit, then replayed to the app). The limit is ``operation_limit``
    (OPERATION_MAX_BYTES) for task and case operations, ``limit`` (MAX_PAYLOAD_BYTES) for everything else."""

    def __init__(self, app: ASGIApp, limit: int, operation_limit: int | None = None) -> None:
        self.app = app
        self.limit = limit
        self.operation_limit = operation_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        if self.operation_limit is not None and OPERATION_PATH.match(scope.get("path", "")):
            limit, setting = min(self.limit, self.operation_limit), "OPERATION_MAX_BYTES"
        else:
            limit, setting = self.limit, "MAX_PAYLOAD_BYTES"
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await self._refuse(scope, send, 400, "BAD_CONTENT_LENGTH", "Content-Length is not a number")
                return
            if length > limit:
                await self._too_large(scope, send, f"{length} bytes declared", limit, setting)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(scope, send, f"more than {limit} bytes sent", limit, setting)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, send: Send, what: str, limit: int, setting: str) -> None:
        await self._refuse(
            scope,
            send,
            413,
            "PAYLOAD_TOO_LARGE",
            f"request body too large: {what}, the limit is {limit} bytes ({setting}); "
            "send attachments by reference (uri + sha256), never inline",
        )

    async def _refuse(self, scope: Scope, send: Send, status: int, code: str, detail: str) -> None:
        response = problem_response(status, code, detail, instance=scope.get("path"))
        await response(scope, _drain, send)


async def _drain() -> Message:
    return {"type": "http.disconnect"}


# --- methods: 405 with the path's Allow --------------------------------------------------------------


class MethodGuard:
    """Answers a method a path does not serve with 405 and an ``Allow`` header listing exactly the methods
    it does, before routing. Routing alone matches path templates, so ``GET /v1/cases/generic`` reached
    ``GET /v1/cases/{case_id}`` and failed its pattern (422), and Starlette's 405 named the methods of the
    first template that matched, not of the path.

    The methods a path serves are those of the routes whose template matches it and whose path parameters
    are valid there (``/v1/cases/generic`` names a process: POST). When no route's parameters are valid
    (``/v1/cases/not a case``), they are those of every route whose template matches, so such a route
    answers 422 naming the parameter. OPTIONS is not served (no browser calls the API across origins; the
    OpenAPI document describes every operation): it gets the same 405 and ``Allow``.
    """

    def __init__(self, app: ASGIApp, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self.app = app
        self._routes = routes
        self._table: list[tuple[re.Pattern[str], dict[str, Any], frozenset[str], list[Any]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            served = self.served(_route_path(scope))
            if served and scope["method"] not in served:
                allow = ", ".join(served)
                response = problem_response(
                    405, "METHOD_NOT_ALLOWED", f"{scope['method']} is not served at {scope['path']}; it serves {allow}",
                    instance=scope["path"], headers={"Allow": allow},
                )  # fmt: skip
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def served(self, path: str) -> list[str]:
        """The methods served at ``path``, sorted; empty when no route matches it (404)."""
        valid: set[str] = set()
        shaped: set[str] = set()
        for regex, convertors, methods, parameters in self.table():
            match = regex.match(path)
            if match is None:
                continue
            shaped |= methods
            values = {name: convertors[name].convert(value) for name, value in match.groupdict().items()}
            if not request_params_to_args(parameters, values)[1]:
                valid |= methods
        return sorted(valid or shaped)

    def table(self) -> list[tuple[re.Pattern[str], dict[str, Any], frozenset[str], list[Any]]]:
        """Every route's path regex, convertors, methods and path parameters; read on first use, since
        the routes are added after the middleware."""
        if self._table is None:
            self._table = []
            for route in iter_route_contexts(self._routes()):
                regex, methods = getattr(route, "path_regex", None), route.methods
                if regex is None or not methods:
                    continue
                dependant = getattr(route.original_route, "dependant", None)
                parameters = list(dependant.path_params) if dependant is not None else []
                self._table.append((regex, route.param_convertors, frozenset(methods), parameters))
        return self._table


def _route_path(scope: Scope) -> str:
    """The path routing sees: without the ``root_path`` a proxy mounts the API under."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


# --- the OpenAPI document -----------------------------------------------------------------------------


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Completes the generated OpenAPI document with the problem answers FastAPI cannot see: the
    ``Problem`` schema the error responses refer to, and 400 and 413 on every operation with a body
    (the body-size guard and the JSON parser answer before the route)."""
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for path_item in schema["paths"].values():
        for operation in path_item.values():
            if "requestBody" in operation:
                responses = {**operation["responses"], **BODY_PROBLEM_RESPONSES}
                operation["responses"] = dict(sorted(responses.items()))
    return schema


# --- installation -------------------------------------------------------------------------------------


def install(app: FastAPI, *, max_payload_bytes: int, operation_max_bytes: int | None = None) -> None:
    """Exception handlers and the body-size guard; called by ``api.app.create_app``."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, error: ProblemError) -> JSONResponse:
        return problem_response(
            error.status, error.code, error.detail, instance=request.url.path, title=error.title,
            headers=error.headers, **error.extra,
        )  # fmt: skip

    @app.exception_handler(errors.ServiceError)
    async def _service(request: Request, error: errors.ServiceError) -> JSONResponse:
        return service_problem(error, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, error: RequestValidationError) -> JSONResponse:
        found = list(error.errors())
        malformed = next((e for e in found if e.get("type") == "json_invalid"), None)
        if malformed is not None:
            return malformed_json_problem(malformed, request.url.path)
        return validation_problem(field_errors(found), request.url.path)

    @app.exception_handler(ValidationError)
    async def _validation(request: Request, error: ValidationError) -> JSONResponse:
        return validation_problem(field_errors(error.errors(), location="body"), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {400: "MALFORMED_JSON", 404: "NOT_FOUND"}.get(error.status_code, f"HTTP_{error.status_code}")
        detail = error.detail if isinstance(error.detail, str) else json.dumps(error.detail)
        if error.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        if error.status_code == 400 and detail == "There was an error parsing the body":  # FastAPI's words
            detail = "the request body cannot be read as JSON (it is not UTF-8 text)"
        return problem_response(
            error.status_code, code, detail, instance=request.url.path, headers=getattr(error, "headers", None)
        )

    async def _infrastructure(request: Request, error: Exception) -> JSONResponse:
        unavailable = errors.as_unavailable(error)
        if unavailable is not None:
            log.warning("api.unavailable", path=request.url.path, error=unavailable.detail)
            return service_problem(unavailable, request.url.path)
        return await _unexpected(request, error)

    # Handled here (not by the catch-all, which Starlette re-raises after answering) so a 503 is one log line.
    for infrastructure_error in (
        RPCError, RuntimeError, OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError,
        asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
    ):  # fmt: skip
        app.add_exception_handler(infrastructure_error, _infrastructure)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        unavailable = errors.as_unavailable(error)
        if unavailable is not None:
            return service_problem(unavailable, request.url.path)
        log.exception("api.unexpected_error", path=request.url.path)
        return problem_response(
            500, "INTERNAL_ERROR", f"unexpected {type(error).__name__}; the server log has the details",
            instance=request.url.path,
        )  # fmt: skip

    app.add_middleware(BodySizeLimit, limit=max_payload_bytes, operation_limit=operation_max_bytes)
    app.add_middleware(MethodGuard, routes=lambda: app.routes)  # outermost: a 405 reads no body

    generated = app.openapi

    def openapi() -> dict[str, Any]:
        return app.openapi_schema or document_problems(generated())

    app.openapi = openapi  # type: ignore[method-assign]
