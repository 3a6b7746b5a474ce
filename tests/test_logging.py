"""Every log line written inside an activity names its case, workflow run and activity."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from temporalio import activity, workflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, UnsandboxedWorkflowRunner, Worker

from approvals.logging import ActivityLogContextInterceptor, configure_logging
from approvals.settings import LogFormat, load_settings

TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Configures JSON logging into a buffer and restores the previous logging set-up afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging(load_settings(log_format=LogFormat.json, log_level="INFO"), stream=buffer)
    yield buffer
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_json_format_renders_structlog_and_stdlib_lines_as_json_objects(json_log: io.StringIO) -> None:
    structlog.get_logger("approvals.test").info("case.started", process="project_approval")
    logging.getLogger("uvicorn.error").warning("plain %s line", "stdlib")

    first, second = lines(json_log)
    assert first["event"] == "case.started" and first["process"] == "project_approval"
    assert first["level"] == "info" and "timestamp" in first
    assert second["event"] == "plain stdlib line" and second["logger"] == "uvicorn.error"


def test_console_format_is_readable_text() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    buffer = io.StringIO()
    try:
        configure_logging(load_settings(log_format=LogFormat.console), stream=buffer)
        structlog.get_logger().info("hello", who="reviewer")
    finally:
        structlog.reset_defaults()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    text = buffer.getvalue()
    assert "hello" in text and "who=reviewer" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


async def test_interceptor_binds_case_context_for_the_activity_and_clears_it_after(json_log: io.StringIO) -> None:
    seen: dict[str, Any] = {}

    class Innermost(ActivityInboundInterceptor):
        async def execute_activity(self, input: ExecuteActivityInput) -> str:
            seen.update(structlog.contextvars.get_contextvars())
            structlog.get_logger("activities").info("inside")
            return "done"

    info = dataclasses.replace(
        ActivityEnvironment.default_info(),
        workflow_id="project_approval:BK-1",
        workflow_run_id="run-1",
        activity_type="record_events",
        attempt=3,
    )
    environment = ActivityEnvironment()
    environment.info = info
    chain = ActivityLogContextInterceptor().intercept_activity(Innermost(None))  # type: ignore[arg-type]

    result = await environment.run(chain.execute_activity, None)  # type: ignore[arg-type]

    assert result == "done"
    assert seen["case_id"] == seen["workflow_id"] == "project_approval:BK-1"
    assert seen["run_id"] == "run-1" and seen["activity_type"] == "record_events" and seen["attempt"] == 3
    (line,) = lines(json_log)
    assert line["case_id"] == "project_approval:BK-1" and line["run_id"] == "run-1"
    assert structlog.contextvars.get_contextvars() == {}


@activity.defn
async def log_async(note: str) -> str:
    structlog.get_logger("activities").info("async activity", note=note)
    activity.logger.info("through temporalio's activity logger")
    return note


@activity.defn
def log_sync(note: str) -> str:
    structlog.get_logger("activities").info("sync activity", note=note)
    return note


@workflow.defn
class LogTwice:
    @workflow.run
    async def run(self, note: str) -> str:
        first = await workflow.execute_activity(log_async, note, start_to_close_timeout=timedelta(seconds=10))
        return await workflow.execute_activity(log_sync, first, start_to_close_timeout=timedelta(seconds=10))


async def test_every_line_inside_activities_on_a_worker_carries_workflow_run_and_case(json_log: io.StringIO) -> None:
    from concurrent.futures import ThreadPoolExecutor

    async with await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=str(TEST_SERVER)
    ) as env:
        task_queue = f"logging-{uuid.uuid4()}"
        with ThreadPoolExecutor(max_workers=2) as executor:
            async with Worker(
                env.client,
                task_queue=task_queue,
                workflows=[LogTwice],
                activities=[log_async, log_sync],
                activity_executor=executor,
                interceptors=[ActivityLogContextInterceptor()],
                workflow_runner=UnsandboxedWorkflowRunner(),
            ):
                handle = await env.client.start_workflow(
                    LogTwice.run, "n-1", id="project_approval:BK-42", task_queue=task_queue
                )
                assert await handle.result() == "n-1"

    inside = [line for line in lines(json_log) if line.get("logger") == "activities" or "temporal_activity" in line]
    assert {line["event"] for line in inside} >= {
        "async activity",
        "sync activity",
        "through temporalio's activity logger",
    }
    for line in inside:
        assert line["case_id"] == "project_approval:BK-42", line
        assert line["workflow_id"] == "project_approval:BK-42", line
        assert line["run_id"] == handle.result_run_id, line
        assert line["activity_type"] in {"log_async", "log_sync"}, line
        assert line["attempt"] == 1, line
