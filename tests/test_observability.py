"""Operators see the engine (issue 17): Prometheus metrics of the API and the worker, one trace per request
from the HTTP call through the Temporal update and its activity down to SQL, and the trace id that joins a
refused request's problem response to its log line.

One production-shaped stack (``approvals.devstack.stack.Stack``: an ``approvals api`` and an ``approvals
worker`` process) with WORKER_METRICS_ADDRESS and OTEL_EXPORTER_OTLP_ENDPOINT set, the latter pointing at an
OTLP/HTTP receiver inside this test; ``approvals demo`` runs against it first, like a user would.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from approvals import temporal
from approvals.cli.demo import DEMO_APPLICANT, SETTLED_STATUSES
from approvals.devstack.dev import url_with_database
from approvals.devstack.stack import Stack, free_port
from approvals.migrate import load_migrations
from approvals.settings import SettingsError, load_settings
from schemas.case import FINAL_STATUSES

APPROVALS = Path(sys.executable).parent / "approvals"
SERVICE, REVIEWER, STRANGER = "svc-one-window-portal", "reviewer-planning", "reviewer-safety"
LATEST = load_migrations()[-1].version


class OtlpReceiver:
    """An OTLP/HTTP trace receiver (``POST /v1/traces``, protobuf), keeping every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                request = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
                for resource_spans in request.resource_spans:
                    service = next(
                        a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"
                    )
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            spans.append(
                                {
                                    **{a.key: str(a.value).strip() for a in span.attributes},
                                    "trace_id": span.trace_id.hex(),
                                    "span_id": span.span_id.hex(),
                                    "parent_span_id": span.parent_span_id.hex(),
                                    "linked_traces": {link.trace_id.hex() for link in span.links},
                                    "start": span.start_time_unix_nano,
                                    "name": span.name,
                                    "service": service,
                                }
                            )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    async def spans_until(self, found: Any, timeout: float = 20) -> list[dict[str, Any]]:
        """Every span received, once ``found(spans)`` holds (exporters send in batches) or at the timeout."""
        deadline = time.monotonic() + timeout
        while not found(self.spans) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        return list(self.spans)


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    yield receiver
    receiver.server.shutdown()


@pytest_asyncio.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver) -> AsyncIterator[Stack]:
    with pytest.MonkeyPatch.context() as env:  # the children read os.environ (Stack.environment)
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # milliseconds: export at once, not every 5 s
        async with Stack.open(tmp_path_factory.mktemp("observability"), log_level="INFO") as stack:
            taken = {stack.settings.api_port, stack.settings.temporal_port, stack.settings.temporal_ui_port}
            port = next(port for port in iter(free_port, None) if port not in taken)
            env.setenv("WORKER_METRICS_ADDRESS", f"127.0.0.1:{port}")
            await stack.start_worker()
            await stack.start_api()
            yield stack


def worker_metrics_url() -> str:
    """Where the stack's worker serves metrics (the ``stack`` fixture sets it for the module's duration)."""
    return f"http://{os.environ['WORKER_METRICS_ADDRESS']}/metrics"


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus endpoint, by name and labels."""
    text = httpx.get(url, timeout=10).raise_for_status().text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


def names(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> set[str]:
    return {name for name, _ in samples}


async def start_case(http: httpx.AsyncClient, stack: Stack) -> str:
    """A generic case with one stage named to REVIEWER; returns its task id once it is open."""
    body = {
        "business_key": f"OBS-{uuid.uuid4().hex[:10]}",
        "title": "Observed case",
        "applicant": DEMO_APPLICANT,
        "definition": {
            "process": "generic",
            "title": "Observed process",
            "legal_basis": "Art. 4",
            "steps": [
                {"kind": "stage", "id": "review", "title": "审查", "legal_basis": "Art. 10", "assignees": [REVIEWER]}
            ],
        },
        "data": {},
    }
    started = await http.post("/v1/cases/generic", json=body, headers=stack.headers(SERVICE))
    assert started.status_code == 201, started.text
    case_id = started.json()["case_id"]
    for _ in range(100):
        inbox = (await http.get("/v1/inbox", headers=stack.headers(REVIEWER))).json()["items"]
        found = [task["task_id"] for task in inbox if task["case_id"] == case_id]
        if found:
            return str(found[0])
        await asyncio.sleep(0.2)
    raise AssertionError(f"no task of {case_id} reached {REVIEWER}")


def traceparent() -> tuple[str, dict[str, str]]:
    """A new W3C trace context, as a caller that traces its own requests sends it."""
    trace_id = uuid.uuid4().hex
    return trace_id, {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}


async def test_after_the_demo_metrics_show_what_it_did(stack: Stack) -> None:
    demo = await asyncio.to_thread(
        subprocess.run,
        [str(APPROVALS), "demo"],
        env={**stack.environment(), "APPROVALS_API_URL": stack.api_url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    ended = dict(re.findall(r"^([a-z-]+):DEMO-[0-9a-f]+: (\w+)$", demo.stdout, flags=re.MULTILINE))
    assert len(ended) == 5, demo.stdout
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        open_task = await start_case(http, stack)  # one case left open: its task is counted as open
        assert (await http.get("/v1/inbox")).status_code == 401
        case_id = re.findall(r"^([a-z-]+:DEMO-[0-9a-f]+): \w+$", demo.stdout, flags=re.MULTILINE)[0]
        verified = await http.get(f"/v1/cases/{case_id}/verification", headers=stack.headers("auditor"))
        assert verified.status_code == 200 and verified.json()["ok"], verified.text

    api = scrape(f"{stack.api_url}/metrics")
    pool = await stack.pool()
    try:
        tasks = await pool.fetch(
            "SELECT process, stage_id, count(*) AS n, count(*) FILTER (WHERE due_at < now()) AS overdue FROM tasks "
            "WHERE status IN ('open', 'claimed') GROUP BY 1, 2"
        )
        outbox = await pool.fetch("SELECT channel, status, count(*) AS n FROM outbox GROUP BY 1, 2")
        statuses = dict(await pool.fetch("SELECT case_id, status FROM cases WHERE case_id LIKE '%:DEMO-%'"))
    finally:
        await pool.close()

    assert value(api, "approvals_state_up") == 1
    # One case of each process, and the generic one left open. A supervised decision (power-adjustment,
    # talent-policy) goes on as under_supervision after the demo saw it decided: open, not closed.
    assert set(statuses.values()) <= SETTLED_STATUSES and {case.split(":")[0] for case in statuses} == set(ended)
    for case_id, status in statuses.items():
        process = case_id.split(":")[0]
        assert value(api, "approvals_cases_started_total", process=process) == 1 + (process == "generic")
        closed = 1 if status in FINAL_STATUSES else 0
        assert value(api, "approvals_cases_closed_total", process=process) == closed, (process, status)
        assert value(api, "approvals_cases_closed_total", process=process, outcome=status) == closed
    assert value(api, "approvals_cases_closed_total") == sum(s in FINAL_STATUSES for s in statuses.values()) > 0
    for row in tasks:
        labels = {"process": row["process"], "stage": row["stage_id"]}
        assert value(api, "approvals_tasks_open", **labels) == row["n"], labels
        assert value(api, "approvals_tasks_overdue", **labels) == row["overdue"], labels
    assert value(api, "approvals_tasks_open", process="generic", stage="review", unit="named") >= 1, open_task
    assert outbox, "the demo's cases queue notifications"
    for row in outbox:
        assert value(api, "approvals_outbox_notifications", channel=row["channel"], status=row["status"]) == row["n"]
    assert value(api, "approvals_denied_attempts_total", reason_code="NOT_ASSIGNEE") == 1  # the demo's refusal
    assert value(api, "approvals_unauthenticated_requests_total", code="MISSING_TOKEN") == 1
    assert value(api, "approvals_verification_failures_total") == 0  # the demo's case verified clean
    decide = {"handler": "/v1/tasks/{task_id:path}/decide", "method": "POST", "status": "200"}
    assert value(api, "http_requests_total", **decide) >= 5
    assert value(api, "http_request_duration_seconds_count", **decide) == value(api, "http_requests_total", **decide)
    assert value(api, "http_requests_total", handler="/v1/inbox", status="401") == 1

    # What two of the metrics watch, made to happen: a task past its due time, a case whose log lost rows.
    closed_case = next(case_id for case_id, status in statuses.items() if status in FINAL_STATUSES)
    owner = await asyncpg.connect(url_with_database(stack.postgres.url, "approvals"))
    try:
        await owner.execute("UPDATE tasks SET due_at = now() - interval '1 day' WHERE task_id = $1", open_task)
        await owner.execute("UPDATE cases SET last_seq = last_seq + 5 WHERE case_id = $1", closed_case)
    finally:
        await owner.close()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        tampered = await http.get(f"/v1/cases/{closed_case}/verification", headers=stack.headers("auditor"))
    assert tampered.status_code == 200 and tampered.json()["ok"] is False, tampered.text
    api = scrape(f"{stack.api_url}/metrics")
    assert value(api, "approvals_tasks_overdue", process="generic", stage="review", unit="named") == 1
    assert value(api, "approvals_verification_failures_total") == 1

    worker = scrape(worker_metrics_url())
    assert value(worker, "approvals_recording_seconds_count", process="generic") >= 1
    assert value(worker, "approvals_recording_errors_total") == 0
    assert value(worker, "temporal_workflow_completed_total") >= 1
    assert {"temporal_num_pollers", "temporal_activity_execution_latency_bucket"} <= names(worker)


async def test_one_decide_is_one_trace_from_http_to_sql(stack: Stack, receiver: OtlpReceiver) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        task_id = await start_case(http, stack)
        trace_id, context = traceparent()
        decided = await http.post(
            f"/v1/tasks/{task_id}/decide",
            json={"decision": "approve"},
            headers={**stack.headers(REVIEWER), **context},
        )
        assert decided.status_code == 200, decided.text

    def handled(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s for s in spans if s["name"] == "HandleUpdate:decide" and trace_id in s["linked_traces"]]

    def recorded_after(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The recording activities of the case's trace that ran after the update was handled."""
        return [
            s
            for update in handled(spans)
            for s in spans
            if s["trace_id"] == update["trace_id"] and s["name"] == "RunActivity:record_events"
            if s["start"] >= update["start"]
        ]

    def sql_under(spans: list[dict[str, Any]], parents: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = {parent["span_id"] for parent in parents}
        return [s for s in spans if s["parent_span_id"] in ids and "postgresql" in s.get("db.system", "")]

    expected = {"POST /v1/tasks/{task_id:path}/decide", "StartWorkflowUpdate:decide"}

    def complete(spans: list[dict[str, Any]]) -> bool:
        request = {s["name"] for s in spans if s["trace_id"] == trace_id}
        return expected <= request and bool(sql_under(spans, recorded_after(spans)))

    spans = await receiver.spans_until(complete)
    request = [s for s in spans if s["trace_id"] == trace_id]
    names = {s["name"] for s in request}
    # The request's trace: the HTTP request by route template and the Temporal client's update (the API itself
    # runs no SQL for an operation: the worker's recording writes it).
    assert expected <= names, names
    # TracingInterceptor keeps a case in one trace (its start's) and links each update's handler to the
    # request that sent it: the workflow's handler, then the recording activity and its SQL, in the worker.
    assert [s["service"] for s in handled(spans)] == ["approvals-worker"], names
    recordings = recorded_after(spans)
    assert recordings and {s["service"] for s in recordings} == {"approvals-worker"}
    statements = {s["name"].split()[0] for s in sql_under(spans, recordings)}
    assert "INSERT" in statements, statements


async def test_a_refused_requests_log_line_carries_the_trace_id_of_its_problem(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        task_id = await start_case(http, stack)
        refused = await http.post(
            f"/v1/tasks/{task_id}/decide", json={"decision": "approve"}, headers=stack.headers(STRANGER)
        )
    problem = refused.json()
    assert refused.status_code == 409 and problem["code"] == "NOT_ASSIGNEE", problem
    assert re.fullmatch(r"[0-9a-f]{32}", problem["trace_id"]), problem

    assert stack.api is not None
    lines = [json.loads(line) for line in stack.api.log_path.read_text().splitlines() if line.startswith("{")]
    logged = [line for line in lines if line.get("trace_id") == problem["trace_id"]]
    assert [line["event"] for line in logged if line["event"] == "operation.denied"] == ["operation.denied"], logged
    assert all(line["span_id"] for line in logged)


async def test_ready_needs_the_schema_at_head_while_health_stays_liveness(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        ready = await http.get("/ready")
        assert ready.status_code == 200, ready.text
        assert {name: check["ok"] for name, check in ready.json().items() if name != "status"} == {
            "temporal": True, "postgres": True, "migrations": True,
        }  # fmt: skip
        owner = await asyncpg.connect(url_with_database(stack.postgres.url, "approvals"))
        try:  # as if this API were deployed before `approvals migrate` ran
            latest = await owner.fetchrow("DELETE FROM schema_migrations WHERE version = $1 RETURNING *", LATEST)
            refused = await http.get("/ready")
            alive = await http.get("/health")
        finally:
            await owner.execute(
                "INSERT INTO schema_migrations SELECT * FROM json_populate_record(NULL::schema_migrations, $1)",
                json.dumps(dict(latest), default=str),
            )
            await owner.close()
        assert (await http.get("/ready")).status_code == 200
    assert alive.status_code == 200
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    problem = refused.json()
    assert problem["code"] == "NOT_READY" and problem["checks"]["migrations"]["ok"] is False, problem
    assert LATEST in problem["detail"] and "approvals migrate" in problem["detail"], problem


async def test_a_worker_metrics_address_in_use_is_refused_naming_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(SettingsError, match=f"WORKER_METRICS_ADDRESS={address}: cannot serve metrics there"):
            await temporal.connect(load_settings(), metrics_address=address)
