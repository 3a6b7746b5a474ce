"""The HTTP API's application factory.

Routes live in ``api/routes/``: every module there that defines a module-level ``router``
(``fastapi.APIRouter``) is included, in module-name order, so adding a resource does not touch this file.
Shared resources are on ``app.state``: ``settings``, ``pool`` (asyncpg) and ``temporal`` (Temporal client).
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, suppress
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from temporalio.client import Client

from approvals.metrics import instrument_http
from approvals.settings import Settings
from approvals.tracing import instrument_app

__all__ = ["HEALTH_TIMEOUT_SECONDS", "ApiServer", "ApiStartError", "create_app"]

log = structlog.get_logger(__name__)

HEALTH_TIMEOUT_SECONDS = 2.0
GRACEFUL_SHUTDOWN_SECONDS = 2.0
"""How long a stopping API waits for open requests before cancelling them: one stuck on a frozen database
must not keep the process from stopping (uvicorn would wait for it without end)."""
"""Each dependency gets this long to answer ``GET /health``; a load balancer must not wait on us."""


def create_app(
    settings: Settings, *, pool: asyncpg.Pool | None = None, temporal_client: Client | None = None
) -> FastAPI:
    """Builds the API. Without ``pool``/``temporal_client`` the lifespan connects (and later closes) them
    from DATABASE_URL and TEMPORAL_ADDRESS, failing start-up with a message naming the setting; given
    ones (``approvals dev`` shares its own) are used and left open."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from approvals import db, temporal

        async with AsyncExitStack() as stack:
            app.state.temporal = temporal_client or await temporal.connect(settings)
            if pool is None:
                app.state.pool = await db.create_pool(settings)
                stack.push_async_callback(app.state.pool.close)
            else:
                app.state.pool = pool
            log.info("api.connected", temporal=settings.temporal_address, namespace=settings.temporal_namespace)
            yield

    app = FastAPIOffline(  # /docs with its assets served here (works offline); /redoc: api.console.docs
        redoc_url=None,
        title="Alashankou approvals engine",
        summary="Cases, inbox and audit of the Comprehensive Bonded Zone Management Committee's approvals.",
        description="Every error is an RFC 9457 problem (`application/problem+json`: `type`, `title`, `status`, "
        "`detail`, `code`; `errors` with field paths for 422), and every operation lists the ones it can "
        "answer. A method a path does not serve gets 405 with `Allow` listing the ones it does; OPTIONS is "
        "not served (405 with `Allow`): this document describes every operation.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    from api.problems import install as install_problems  # problem+json errors, 413 guard

    install_problems(
        app, max_payload_bytes=settings.max_payload_bytes, operation_max_bytes=settings.operation_max_bytes
    )
    app.add_api_route(
        "/health", health, methods=["GET"], tags=["operations"], summary="Temporal and PostgreSQL reachable?",
        responses={503: {
            "description": "Temporal or PostgreSQL did not answer in time (the body names which)",
            "content": {"application/json": {"schema": {"type": "object"}}},
            "headers": {"Retry-After": {"description": "Seconds", "schema": {"type": "string"}}},
        }},
    )  # fmt: skip
    app.add_api_route(
        "/ready", ready, methods=["GET"], tags=["operations"],
        summary="Ready for traffic? Temporal and PostgreSQL reachable, migrations at head",
        responses={503: {
            "description": "Not ready: a dependency is down or migrations are pending (`checks` says which)",
            "content": {"application/problem+json": {"schema": {"type": "object"}}},
            "headers": {"Retry-After": {"description": "Seconds", "schema": {"type": "string"}}},
        }},
    )  # fmt: skip
    for router in _routers():
        app.include_router(router)
    if settings.api_request_metrics:
        instrument_http(app)  # Prometheus: requests and latency by route template and status
    instrument_app(app)  # OpenTelemetry: a server span per request, when tracing is on
    from api.console import install as install_console  # the web console at /console/

    install_console(app)
    return app


def _routers() -> list[APIRouter]:
    try:
        routes = importlib.import_module("api.routes")
    except ModuleNotFoundError as error:
        if error.name in {"api.routes"}:
            return []
        raise
    found = []
    for module_info in sorted(pkgutil.iter_modules(routes.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"api.routes.{module_info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found


async def health(request: Request) -> JSONResponse:
    """200 when both Temporal and PostgreSQL answer within the timeout, 503 naming the one that did not
    (with ``Retry-After``, as every 503 of the API has)."""
    from api.problems import RETRY_AFTER_SECONDS

    state = request.app.state
    settings: Settings = state.settings
    temporal, postgres = await asyncio.gather(_check_temporal(state.temporal, settings), _check_postgres(state.pool))
    ok = temporal["ok"] and postgres["ok"]
    body = {"status": "ok" if ok else "unavailable", "temporal": temporal, "postgres": postgres}
    if ok:
        return JSONResponse(body, status_code=200)
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def ready(request: Request) -> JSONResponse:
    """Readiness, for a load balancer or an orchestrator: Temporal and PostgreSQL answer and the schema is at the
    code's last migration (an API started before ``approvals migrate`` ran is alive but not ready). 503 is a
    problem whose ``checks`` say which failed. ``/health`` stays the liveness check."""
    from api.problems import RETRY_AFTER_SECONDS, problem_response

    state = request.app.state
    temporal, postgres, migrations = await asyncio.gather(
        _check_temporal(state.temporal, state.settings), _check_postgres(state.pool), _check_migrations(state.pool)
    )
    checks = {"temporal": temporal, "postgres": postgres, "migrations": migrations}
    failed = [name for name, check in checks.items() if not check["ok"]]
    if not failed:
        return JSONResponse({"status": "ready", **checks})
    return problem_response(
        503, "NOT_READY", "; ".join(f"{name}: {checks[name]['error']}" for name in failed),
        instance="/ready", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}, checks=checks,
    )  # fmt: skip


async def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await check
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {HEALTH_TIMEOUT_SECONDS:g}s"}
    except Exception as error:  # noqa: BLE001 - any failure means "down"; the reason goes to the caller
        return {"ok": False, "error": " ".join(str(error).split()) or type(error).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


async def _check_temporal(client: Client, settings: Settings) -> dict[str, Any]:
    async def serving() -> None:
        if not await client.service_client.check_health(timeout=timedelta(seconds=HEALTH_TIMEOUT_SECONDS)):
            raise RuntimeError("frontend reports NOT_SERVING")

    result = await _timed(serving())
    return {**result, "address": settings.temporal_address, "namespace": settings.temporal_namespace}


async def _check_postgres(pool: asyncpg.Pool) -> dict[str, Any]:
    return await _timed(pool.fetchval("SELECT 1"))


async def _check_migrations(pool: asyncpg.Pool) -> dict[str, Any]:
    from approvals.migrate import pending_migrations

    async def at_head() -> None:
        pending = await pending_migrations(pool)
        if pending:
            raise RuntimeError(f"pending migrations {', '.join(pending)}; run `approvals migrate`")

    return await _timed(at_head())


class ApiStartError(RuntimeError):
    """The HTTP server could not start (typically: API_HOST:API_PORT cannot be bound)."""


class _SignalFreeServer(uvicorn.Server):
    """uvicorn without its own SIGINT/SIGTERM handling: the process that embeds it decides when to stop
    (``approvals dev`` stops the API first, then the worker and the servers it started)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """The API served by uvicorn inside an asyncio program that owns the signals."""

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.settings = settings
        self._server = _SignalFreeServer(
            uvicorn.Config(
                app,
                host=settings.api_host,
                port=settings.api_port,
                log_config=None,  # our logging (approvals.logging) is already configured
                access_log=False,
                proxy_headers=True,
                lifespan="on",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            )
        )

    @property
    def started(self) -> bool:
        return self._server.started

    async def serve(self) -> None:
        """Serves until :meth:`stop`; raises :class:`ApiStartError` when it cannot start."""
        try:
            await self._server.serve()
        except SystemExit:  # uvicorn exits the process when it cannot bind; let the caller clean up first
            raise ApiStartError(
                f"the HTTP API could not listen on {self.settings.api_host}:{self.settings.api_port} "
                "(API_HOST/API_PORT); see the log line above"
            ) from None
        if not self._server.started:
            raise ApiStartError("the HTTP API did not start (lifespan failed); see the log above")

    def stop(self) -> None:
        self._server.should_exit = True

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Serves until ``stop`` is set, then shuts down gracefully (open requests finish)."""
        serving = asyncio.ensure_future(self.serve())
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            self.stop()
            with suppress(asyncio.CancelledError):
                await serving
