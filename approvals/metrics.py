"""The API's Prometheus metrics, served at ``GET /metrics`` (``api/routes/metrics.py``).

- HTTP requests and latency by route template (``handler``), method and status: the
  ``prometheus-fastapi-instrumentator`` middleware (:func:`instrument_http`).
- Events the API sees, counted where they happen with ``prometheus-client``: refused operations by reason
  code (:data:`DENIED_ATTEMPTS`), 401s by code (:data:`UNAUTHENTICATED`), audit verifications that found
  a problem (:data:`VERIFICATION_FAILURES`).
- The engine's state - cases started and closed, open and overdue tasks, the outbox by channel and status -
  counted by PostgreSQL when Prometheus scrapes (:class:`EngineState`: one bounded statement per scrape,
  never per request). Counting from the tables, not from this process, gives every API replica the same
  figures and survives restarts.

The worker's metrics (the Temporal SDK's ``temporal_*``, recording latency and errors) are served by the
worker itself on WORKER_METRICS_ADDRESS; see ``approvals.temporal.runtime``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import structlog
from fastapi import FastAPI
from prometheus_client import REGISTRY, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator import metrics as http_metrics

from approvals.storage.engine_state import StateRow, engine_state
from schemas.case import FINAL_STATUSES

__all__ = [
    "DENIED_ATTEMPTS",
    "ENGINE_STATE",
    "UNAUTHENTICATED",
    "VERIFICATION_FAILURES",
    "instrument_http",
    "scrape",
]

log = structlog.get_logger(__name__)

STATE_TIMEOUT_SECONDS = 3.0
"""The state query's budget: a scrape must answer within Prometheus's default 10 s timeout."""

HTTP_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Up to the 30 s an operation may wait for its case (UPDATE_TIMEOUT) before answering 503."""

DENIED_ATTEMPTS = Counter(
    "approvals_denied_attempts",
    "Operations refused by the engine's rules (recorded in denied_attempts), by operation and reason code.",
    ["operation", "reason_code"],
)
UNAUTHENTICATED = Counter(
    "approvals_unauthenticated_requests", "Requests answered 401, by the problem's code.", ["code"]
)
VERIFICATION_FAILURES = Counter(
    "approvals_verification_failures",
    "Audit verifications of a case (GET /v1/cases/{id}/verification) whose verdict was not ok.",
)


def instrument_http(app: FastAPI) -> None:
    """Counts and times every request by route template, method and status (not the scrape itself)."""
    instrumentator = Instrumentator(
        should_group_status_codes=False, excluded_handlers=["/metrics"], should_respect_env_var=False
    )
    instrumentator.add(http_metrics.requests())
    instrumentator.add(http_metrics.latency(buckets=HTTP_LATENCY_BUCKETS))
    instrumentator.instrument(app)


class EngineState(Collector):
    """The state counts of the last scrape (:meth:`refresh` runs the query, :meth:`collect` reports it)."""

    def __init__(self) -> None:
        self._rows: list[StateRow] | None = None

    async def refresh(self, pool: asyncpg.Pool) -> None:
        try:
            async with asyncio.timeout(STATE_TIMEOUT_SECONDS):
                self._rows = await engine_state(pool)
        except Exception as error:  # noqa: BLE001 - the other metrics are still worth serving
            log.warning("metrics.state_unavailable", error=" ".join(str(error).split()) or type(error).__name__)
            self._rows = None

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "approvals_state_up",
            "1 when the last scrape could count cases, tasks and the outbox in PostgreSQL.",
            value=0 if self._rows is None else 1,
        )
        if self._rows is None:
            return
        started = CounterMetricFamily("approvals_cases_started", "Cases started, by process.", labels=["process"])
        closed = CounterMetricFamily(
            "approvals_cases_closed",
            "Cases closed, by process and outcome (final status).",
            labels=["process", "outcome"],
        )
        tasks = ["process", "stage", "unit"]
        open_tasks = GaugeMetricFamily("approvals_tasks_open", "Open or claimed tasks, overdue included.", labels=tasks)
        overdue = GaugeMetricFamily(
            "approvals_tasks_overdue", "Open or claimed tasks past their due time.", labels=tasks
        )
        outbox = GaugeMetricFamily(
            "approvals_outbox_notifications", "Notifications by channel and status.", labels=["channel", "status"]
        )
        per_process: dict[str, int] = {}
        per_task_group: dict[tuple[str, str, str], list[int]] = {}  # (process, stage, unit) -> [open, overdue]
        for row in self._rows:
            if row.family == "cases":
                per_process[row.process] = per_process.get(row.process, 0) + row.count
                if row.a in FINAL_STATUSES:
                    closed.add_metric([row.process, row.a], row.count)
            elif row.family == "tasks":
                counts = per_task_group.setdefault((row.process, row.a, row.b), [0, 0])
                counts[0] += row.count
                counts[1] += row.count if row.overdue else 0
            else:
                outbox.add_metric([row.a, row.b], row.count)
        for process, count in sorted(per_process.items()):
            started.add_metric([process], count)
        for labels, (open_count, overdue_count) in sorted(per_task_group.items()):
            open_tasks.add_metric(list(labels), open_count)
            overdue.add_metric(list(labels), overdue_count)
        yield from (started, closed, open_tasks, overdue, outbox)


ENGINE_STATE = EngineState()
REGISTRY.register(ENGINE_STATE)


async def scrape(pool: asyncpg.Pool) -> bytes:
    """The exposition text of every metric of this process, the engine's state counted just now."""
    await ENGINE_STATE.refresh(pool)
    return generate_latest(REGISTRY)
