"""Which of the workflow sandbox's restrictions reach workflow code, as the worker runs it and as CI checks it.

The worker runs workflow code without the sandbox (``workflows.catalog.WORKER_SANDBOXED`` says why); CI's
corpus replay and the test suite's workers run it in the sandbox, where a call that is not deterministic
fails when it is made. Passing the workflow code through the sandbox (the alternative that was measured and
not chosen) would keep almost nothing of that check: only the builtins ``open`` still fails.

Each probe is a workflow making one such call, in a module of its own (as a process module of ``workflows/``
is), run on the real Temporal test server; a restricted call fails the workflow with
``RestrictedWorkflowAccessError``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError, SandboxedWorkflowRunner

from worker import build_worker
from workflows.catalog import WORKER_SANDBOXED, workflow_runner

PROBE_SOURCE = """
import os
import random
import time
import uuid
from datetime import datetime
from pathlib import Path

from temporalio import workflow

CALLS = {
    "datetime.now()": lambda: str(datetime.now()),
    "random.random()": lambda: str(random.random()),
    "time.time()": lambda: str(time.time()),
    "uuid.uuid4()": lambda: str(uuid.uuid4()),
    "Path.read_text()": lambda: Path(__file__).read_text()[:10],
    "os.environ": lambda: str(len(os.environ)),
    "open()": lambda: open(__file__).read(10),
}


@workflow.defn(name="sandbox-probe")
class Probe:
    @workflow.run
    async def run(self, call: str) -> str:
        return CALLS[call]()
"""
CALLS = ("datetime.now()", "random.random()", "time.time()", "uuid.uuid4()", "Path.read_text()", "os.environ", "open()")


@pytest.fixture
def probe_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The probe workflow's module, importable by name (the sandbox imports it afresh by name)."""
    import importlib
    import sys

    name = f"sandbox_probe_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(PROBE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module(name)
    yield name
    sys.modules.pop(name, None)


async def failing_calls(env: WorkflowEnvironment, probe: type, runner: object) -> set[str]:
    """The calls whose probe failed with RestrictedWorkflowAccessError under ``runner``."""
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    failed = set()
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[probe],
        workflow_runner=runner,  # type: ignore[arg-type]
        workflow_failure_exception_types=[RestrictedWorkflowAccessError],
    ):
        for call in CALLS:
            try:
                await env.client.execute_workflow(
                    "sandbox-probe", call, id=f"probe-{uuid.uuid4().hex}", task_queue=queue,
                    execution_timeout=timedelta(minutes=1),
                )  # fmt: skip
            except WorkflowFailureError as error:
                assert isinstance(error.cause, ApplicationError), error.cause
                assert error.cause.type == "RestrictedWorkflowAccessError", error.cause
                failed.add(call)
    return failed


def test_the_worker_runs_workflow_code_unsandboxed_and_the_tests_workers_in_the_sandbox() -> None:
    import inspect

    from tests.fixtures import temporal as fixtures

    assert WORKER_SANDBOXED is False
    assert inspect.signature(build_worker).parameters["sandboxed"].default is WORKER_SANDBOXED
    assert isinstance(workflow_runner(), UnsandboxedWorkflowRunner)
    assert isinstance(workflow_runner(sandboxed=True), SandboxedWorkflowRunner)
    assert "build_worker(env.client, settings, pool=pool or db_pool, sandboxed=True)" in inspect.getsource(fixtures)


async def test_in_the_sandbox_every_call_that_is_not_deterministic_fails(
    time_skipping_env: WorkflowEnvironment, probe_module: str
) -> None:
    import sys

    probe = sys.modules[probe_module].Probe
    # Reading the environment is the one probe the sandbox lets through: its default restrictions allow it.
    assert await failing_calls(time_skipping_env, probe, workflow_runner(sandboxed=True)) == set(CALLS) - {"os.environ"}


async def test_as_the_worker_runs_it_no_call_is_refused(
    time_skipping_env: WorkflowEnvironment, probe_module: str
) -> None:
    """What the corpus replay and the tests' sandboxed workers guard against, the worker itself lets run."""
    import sys

    probe = sys.modules[probe_module].Probe
    assert await failing_calls(time_skipping_env, probe, workflow_runner()) == set()


async def test_workflow_code_passed_through_the_sandbox_keeps_only_the_open_builtin_refused(
    time_skipping_env: WorkflowEnvironment, probe_module: str
) -> None:
    """The alternative not chosen: with its module passed through, the code's imports are the real modules."""
    import sys

    strict = workflow_runner(sandboxed=True)
    assert isinstance(strict, SandboxedWorkflowRunner)
    passed_through = SandboxedWorkflowRunner(restrictions=strict.restrictions.with_passthrough_modules(probe_module))
    probe = sys.modules[probe_module].Probe
    assert await failing_calls(time_skipping_env, probe, passed_through) == {"open()"}
