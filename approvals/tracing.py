"""OpenTelemetry traces across the engine: HTTP request → Temporal client → workflow → activities → SQL.

Each part is the ecosystem's own: ``opentelemetry-instrumentation-fastapi`` for the API's requests,
``temporalio.contrib.opentelemetry.TracingInterceptor`` on the Temporal client (a worker built from that
client inherits it, so the update's workflow and activity spans join the caller's trace through Temporal's
headers), ``opentelemetry-instrumentation-asyncpg`` for every statement, and the OTLP/HTTP exporter.

Tracing is on only when OTEL_EXPORTER_OTLP_ENDPOINT is set: otherwise no provider is installed, nothing is
instrumented and no interceptor is added, so an engine without a collector pays nothing for it. Standard
``OTEL_*`` variables (``OTEL_SERVICE_NAME``, ``OTEL_BSP_SCHEDULE_DELAY``, …) tune the SDK as documented.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from approvals.settings import Settings

__all__ = ["configure_tracing", "instrument_app", "span_ids", "temporal_interceptors", "tracing_enabled"]

UNTRACED_PATHS = "/health,/ready,/metrics"
"""Probes and scrapes: frequent, and no operator looks for them in a trace."""


def configure_tracing(settings: Settings, *, service: str) -> bool:
    """Installs the process's tracer provider exporting to OTEL_EXPORTER_OTLP_ENDPOINT and instruments asyncpg;
    call once at start, before connecting. Returns whether tracing is on (False: the endpoint is unset)."""
    if not settings.otel_exporter_otlp_endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"  # the spec's per-signal path
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor().instrument()
    return True


def tracing_enabled() -> bool:
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def temporal_interceptors() -> list[Any]:
    """The Temporal client's interceptors: the tracing one when tracing is on."""
    if not tracing_enabled():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def instrument_app(app: FastAPI) -> None:
    """A server span per request (named by its route template) when tracing is on."""
    if tracing_enabled():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_PATHS)


def span_ids() -> dict[str, str]:
    """``trace_id`` (32 hex digits) and ``span_id`` (16) of the span in progress, as trace viewers show them;
    empty outside a span (tracing off, or no request in progress)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}
