"""Throughput and reviewer latency of project-approval cases end to end through the HTTP API, next to two
baselines measured in the same run on the same servers: a **durable bare** (the least a durable,
read-your-writes engine must do) and the **bare** Temporal workflow of the engine case's shape.

Per configuration (``--cases`` concurrent cases x ``--workers`` worker processes) a fresh
``approvals.devstack.stack.Stack`` in a temporary directory: embedded PostgreSQL, the Temporal dev server (SQLite,
WAL), ``--workers`` ``approvals worker`` processes, one ``approvals api`` process, ``--workers`` bare worker
processes (``bench/throughput.py --bare-worker``) on their own task queue, and the durable bare's HTTP server
(``bench/throughput.py --durable-api``). Then, in order:

1. **shape**: one project-approval case through the API, one step at a time (it also warms everything up);
   its Temporal history gives the shape: updates, activities, local activities, timers, workflow tasks, and
   the workflow tasks on each step's critical path (from its update's acceptance to its completion).
2. **baseline warm-ups**: one durable bare case and one bare case, one step at a time; their histories give
   their shapes.
3. **idle**: ``--idle-cases`` cases of each, one at a time, nothing else running: the decide latency with no
   other load (target: engine p50 <= 25 ms through HTTP, the inbox read-your-writes).
4. **engine load**: all N cases started through ``POST /v1/cases/project-approval`` (``--start-concurrency``
   in flight) while reviewer desks (``--desks-per-role`` people per role) work their inboxes: ``GET
   /v1/inbox``, then ``POST /v1/tasks/{id}/claim`` and ``/decide`` (approve) for every task of every case:
   acceptance, the five department reviews in parallel, the decision. Desks of one role share the work by
   case number, as an office would. Done when every workflow has completed (its result read).
5. **durable bare load** and 6. **bare load**: the same load shape (the same N, starts in flight, desks per
   role), each desk taking tasks from an in-memory inbox that a step fills when it completes the previous
   stage; the durable bare through its HTTP server, the bare straight through the Temporal client.

The **durable bare** does per human step (and per start) one HTTP request to a raw ASGI app under uvicorn,
which runs one Temporal update of a workflow doing nothing (the update completes in the workflow task that
accepts it) and then an INSERT into PostgreSQL, answering after the COMMIT.

The **bare** workflow does exactly the engine case's counts: one update per update of the engine case
(claims and decides alike), and per update, in its handler and in the workflow's reaction after it, as many
no-op local activities and no-op regular activities as the engine's history shows at that point, each
awaited when the engine waited for it (see :func:`history_shape`). It has no HTTP hop and no durable write.

CPU seconds per case are counted for each serving process of each phase (API, worker, Temporal server,
PostgreSQL), and the figures are judged against issue 15's targets (throughput >= 0.8x each baseline,
<= 1 workflow task per human step on the critical path, idle decide p50 <= 25 ms, decide p99 under load
<= 3x bare's); the replay and worker-memory targets are judged by ``bench/replay.py`` and
``bench/worker_memory.py``.

    .venv/bin/python bench/throughput.py [--cases 200,1000] [--workers 1,2] [--json out.json] [--quick]

Prints a table; never asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

PROCESS = "project-approval"
BARE_WORKFLOW = "BareCaseWorkflow"
BARE_UPDATE = "act"
BARE_ACTIVITY = "bare_noop"
TARGET_THROUGHPUT_RATIO = 0.8
"""Against each baseline: the durable bare and the bare (issue 15's targets, as every TARGET_ here)."""
TARGET_CRITICAL_PATH_TASKS = 1.0
TARGET_IDLE_DECIDE_P50_MS = 25.0
TARGET_LOADED_DECIDE_P99_RATIO = 3.0
OTHER_TARGETS = (
    "cache-miss replay of one project-approval case <= 70 ms CPU: bench/replay.py",
    "worker RSS at 10,000 open cases (cache 500) <= 300 MB: bench/worker_memory.py",
)
SERVICE_PRINCIPAL = "svc-one-window-portal"
APPLICANT = {"id": "ent-applicant", "name": "Bench applicant", "unit": "Bench Metals Co.", "roles": ["applicant"]}
LOCAL_ACTIVITY_MARKER = "core_local_activity"
INBOX_PAGE = 50
"""A reviewer's page (the API's default); a desk reads further pages only while none of its tasks is found."""
INBOX_PAGES = 20
INBOX_IDLE_SECONDS = 0.25
START_ATTEMPTS = 5
"""How long a desk waits before looking again when its inbox has nothing for it."""


# ---------------------------------------------------------------------------------------------- the bare baseline
# The bare worker runs the code between the two markers below as a module of its own (a small file, as a bare
# workflow's own module would be), because the sandbox re-imports a workflow's module for every workflow in
# its cache: registering it from this long file would charge the baseline for all of this file's functions.

BARE_MODULE_NAME = "bare_case_workflow"
BARE_MODULE_HEADER = f'''"""The bare baseline workflow, written out of bench/throughput.py by its bare worker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

BARE_WORKFLOW = "{BARE_WORKFLOW}"
BARE_UPDATE = "{BARE_UPDATE}"
BARE_ACTIVITY = "{BARE_ACTIVITY}"

'''
BARE_MODULE_START = "# >>> bare workflow module"
BARE_MODULE_END = "# <<< bare workflow module"

# >>> bare workflow module


@dataclass
class BareWork:
    """No-op activities at one point of the case, in order: ``L`` a local activity (awaited), ``A`` an
    activity awaited, ``F`` an activity started and not waited for (awaited only at the end of the case)."""

    ops: str = ""


@dataclass
class BareShape:
    """What the engine case did, counted from its history (see :func:`history_shape`)."""

    start: BareWork = field(default_factory=BareWork)
    handlers: list[BareWork] = field(default_factory=list)
    """Per update (in the order the engine accepted them): the work its handler did before returning."""
    after: list[BareWork] = field(default_factory=list)
    """Per update: the work the workflow did after it returned, before the next update was accepted."""


@activity.defn(name=BARE_ACTIVITY)
async def bare_noop() -> None:
    return None


@workflow.defn(name=BARE_WORKFLOW)
class BareCaseWorkflow:
    """A case of the engine's shape that does nothing: the i-th update does the engine's i-th update's work."""

    @workflow.init
    def __init__(self, shape: BareShape) -> None:
        self._shape = shape
        self._accepted = 0
        self._returned = 0
        self._background: list[Any] = []

    @workflow.run
    async def run(self, shape: BareShape) -> int:
        await self._work(shape.start)
        for index, work in enumerate(shape.after):
            await workflow.wait_condition(lambda index=index: self._returned > index)
            await self._work(work)
        await asyncio.gather(*self._background)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._returned

    @workflow.update(name=BARE_UPDATE)
    async def act(self, step: str) -> int:
        index = self._accepted
        self._accepted += 1
        if index < len(self._shape.handlers):
            await self._work(self._shape.handlers[index])
        self._returned += 1
        return index

    async def _work(self, work: BareWork) -> None:
        for op in work.ops:
            if op == "L":
                await workflow.execute_local_activity(BARE_ACTIVITY, start_to_close_timeout=timedelta(seconds=30))
            elif op == "A":
                await workflow.execute_activity(BARE_ACTIVITY, start_to_close_timeout=timedelta(minutes=2))
            else:
                self._background.append(
                    workflow.start_activity(BARE_ACTIVITY, start_to_close_timeout=timedelta(minutes=2))
                )


# <<< bare workflow module


def import_bare_module(directory: Path) -> Any:
    """Writes the bare workflow's code (between the markers above) to ``directory`` as a module, imports it."""
    import importlib

    source = Path(__file__).read_text()
    start = source.index(BARE_MODULE_START + "\n") + len(BARE_MODULE_START) + 1
    section = source[start : source.index(BARE_MODULE_END + "\n")]
    (directory / f"{BARE_MODULE_NAME}.py").write_text(BARE_MODULE_HEADER + "\n" + section.strip() + "\n")
    sys.path.insert(0, str(directory))
    return importlib.import_module(BARE_MODULE_NAME)


async def run_bare_worker(address: str, namespace: str, task_queue: str) -> None:
    """``--bare-worker``: the bare workflow and its no-op activity on ``task_queue`` until SIGTERM/SIGINT."""
    import shutil

    directory = Path(tempfile.mkdtemp(prefix="bare-workflow-"))
    try:
        bare = import_bare_module(directory)
        await serve_bare_worker(bare, address, namespace, task_queue)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def serve_bare_worker(bare: Any, address: str, namespace: str, task_queue: str) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    from approvals.settings import load_settings

    client = await Client.connect(address, namespace=namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[bare.BareCaseWorkflow],
        activities=[bare.bare_noop],
        graceful_shutdown_timeout=timedelta(seconds=5),
        max_cached_workflows=load_settings().worker_max_cached_workflows,  # the engine worker's cache size
    )
    async with worker:
        await stop.wait()


# ---------------------------------------------------------------------------------------------- the durable baseline
# The least a durable, read-your-writes engine must do per human step: an HTTP request, one Temporal update
# that completes in the workflow task accepting it (the bare workflow with no work at any point), and an
# INSERT into PostgreSQL awaited before the answer. Served by ``--durable-api``, a raw ASGI app under uvicorn
# (no framework: the baseline's HTTP cost is the hop, not a framework's), in a process of its own so that its
# CPU is counted next to the engine API's.

DURABLE_TABLE = "bench_durable_steps"


def durable_shape(updates: int) -> BareShape:
    """The bare workflow doing nothing: each of ``updates`` updates returns in the task that accepts it."""
    return BareShape(handlers=[BareWork() for _ in range(updates)], after=[BareWork() for _ in range(updates)])


async def run_durable_api(address: str, namespace: str, task_queue: str, database_url: str, port: int) -> None:
    """``--durable-api``: ``POST /start`` ``{"id", "updates"}`` starts a bare workflow of ``durable_shape``,
    ``POST /step`` ``{"id", "step"}`` runs one update; each then INSERTs a row and answers after the COMMIT."""
    import asyncpg
    import uvicorn
    from temporalio.client import Client

    client = await Client.connect(address, namespace=namespace)
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=10)
    await pool.execute(
        f"CREATE TABLE IF NOT EXISTS {DURABLE_TABLE} (workflow_id text NOT NULL, step text NOT NULL, "
        "result integer NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (workflow_id, step))"
    )

    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        result = 0
        if scope["method"] == "POST":
            request = json.loads(body)
            if scope["path"] == "/start":
                await client.start_workflow(
                    BARE_WORKFLOW, durable_shape(request["updates"]), id=request["id"], task_queue=task_queue
                )
                request["step"] = "start"
            else:
                handle = client.get_workflow_handle(request["id"])
                result = await handle.execute_update(BARE_UPDATE, request["step"], result_type=int)
            await pool.execute(
                f"INSERT INTO {DURABLE_TABLE} (workflow_id, step, result) VALUES ($1, $2, $3)",
                request["id"], request["step"], result,
            )  # fmt: skip
        answer = json.dumps({"result": result}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off")
    await uvicorn.Server(config).serve()


# ---------------------------------------------------------------------------------------------- figures


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def latency(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 0.50), 2),
        "p95_ms": round(percentile(values, 0.95), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "max_ms": round(max(values, default=float("nan")), 2),
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def temporal_version() -> str:
    try:
        out = subprocess.run(
            [str(Path(sys.executable).parent / "temporal"), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (out.strip() or "unknown").splitlines()[0]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# ---------------------------------------------------------------------------------------------- history shape


def history_shape(history: Any) -> tuple[dict[str, Any], BareShape]:
    """Counts of one completed case's history, and the bare shape doing the same updates and activities.

    Work is attributed by position: before the first update accepted (start); between an update's
    ``UpdateAccepted`` and its ``UpdateCompleted`` (its handler); after that until the next update is
    accepted (the workflow's reaction; for the last update, the end of the case). An activity counts as
    awaited when the code that scheduled it waited for it: no later workflow task issued a command for the same
    handler (its update's completion included), or for the workflow's main line when it was scheduled there,
    before it completed. Commands issued next to it in the task that scheduled it do not count, so a record
    awaited by a decide's handler is awaited even when the same task also upserted a search attribute; nor do
    another update's commands, so a reaction's record is awaited even when a claim ran meanwhile.

    A step's critical path is the workflow tasks between its update's acceptance and its completion: the
    accepting task, plus one per task completed before the update completed (1 when the handler returns in the
    task that accepted it).
    """
    from temporalio.api.enums.v1 import EventType

    not_commands = {
        "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED", "WORKFLOW_TASK_FAILED",
        "WORKFLOW_TASK_TIMED_OUT", "ACTIVITY_TASK_STARTED", "ACTIVITY_TASK_COMPLETED", "ACTIVITY_TASK_FAILED",
        "ACTIVITY_TASK_TIMED_OUT", "TIMER_FIRED", "WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
        "WORKFLOW_EXECUTION_SIGNALED",
    }  # fmt: skip
    kinds = [EventType.Name(event.event_type).removeprefix("EVENT_TYPE_") for event in history.events]
    completed_at = {
        event.activity_task_completed_event_attributes.scheduled_event_id: index
        for index, event in enumerate(history.events)
        if kinds[index] == "ACTIVITY_TASK_COMPLETED"
    }

    # Whose command each event is: the update id of the one handler open (its acceptance and completion
    # included), or "" for the workflow's main line (no handler open, or several: then it is the reaction's).
    # Work is attributed by the same rule: to that handler, or to the workflow's reaction.
    owners: list[str] = []
    running: list[str] = []
    for event, kind in zip(history.events, kinds, strict=True):
        if kind == "WORKFLOW_EXECUTION_UPDATE_ACCEPTED":
            running.append(event.workflow_execution_update_accepted_event_attributes.protocol_instance_id)
            owners.append(running[-1])
        elif kind == "WORKFLOW_EXECUTION_UPDATE_COMPLETED":
            owners.append(event.workflow_execution_update_completed_event_attributes.meta.update_id)
            running = [update_id for update_id in running if update_id != owners[-1]]
        else:
            owners.append(running[0] if len(running) == 1 else "")

    def awaited(index: int) -> bool:
        done = completed_at.get(history.events[index].event_id)
        if done is None:
            return False
        task_ended = next((i for i in range(index + 1, done) if kinds[i] == "WORKFLOW_TASK_COMPLETED"), done)
        return all(kinds[i] in not_commands or owners[i] != owners[index] for i in range(task_ended, done))

    counts: Counter[str] = Counter()
    activity_types: Counter[str] = Counter()
    local_types: Counter[str] = Counter()
    update_names: Counter[str] = Counter()
    shape = BareShape()
    handler_of: dict[str, int] = {}  # update id -> index of its handler in shape.handlers
    accepted_at: dict[str, int] = {}  # update id -> index of its acceptance
    critical_path: list[int] = []  # per completed update: workflow tasks from its acceptance to its completion
    current: BareWork = shape.start

    def target(index: int) -> BareWork:
        return shape.handlers[handler_of[owners[index]]] if owners[index] else current

    for index, event in enumerate(history.events):
        kind = kinds[index]
        counts[kind] += 1
        if kind == "WORKFLOW_EXECUTION_UPDATE_ACCEPTED":
            attributes = event.workflow_execution_update_accepted_event_attributes
            update_names[attributes.accepted_request.input.name] += 1
            handler_of[attributes.protocol_instance_id] = len(shape.handlers)
            accepted_at[attributes.protocol_instance_id] = index
            shape.handlers.append(BareWork())
            shape.after.append(BareWork())
            current = shape.after[-1]
        elif kind == "WORKFLOW_EXECUTION_UPDATE_COMPLETED":
            update_id = event.workflow_execution_update_completed_event_attributes.meta.update_id
            if update_id in accepted_at:
                critical_path.append(1 + kinds[accepted_at.pop(update_id) : index].count("WORKFLOW_TASK_COMPLETED"))
        elif kind == "ACTIVITY_TASK_SCHEDULED":
            activity_types[event.activity_task_scheduled_event_attributes.activity_type.name] += 1
            target(index).ops += "A" if awaited(index) else "F"
        elif kind == "MARKER_RECORDED":
            attributes = event.marker_recorded_event_attributes
            if attributes.marker_name == LOCAL_ACTIVITY_MARKER:
                target(index).ops += "L"
                try:
                    data = json.loads(attributes.details["data"].payloads[0].data)
                    local_types[str(data.get("activity_type", "?"))] += 1
                except (KeyError, IndexError, ValueError):
                    local_types["?"] += 1
            else:
                counts[f"MARKER_{attributes.marker_name}"] += 1
    updates = counts["WORKFLOW_EXECUTION_UPDATE_ACCEPTED"]
    workflow_tasks = counts["WORKFLOW_TASK_COMPLETED"]
    activity_tasks = counts["ACTIVITY_TASK_STARTED"]
    summary = {
        "history_events": len(history.events),
        "history_bytes": sum(event.ByteSize() for event in history.events),
        "updates": updates,
        "updates_by_name": dict(update_names),
        "activities": counts["ACTIVITY_TASK_SCHEDULED"],
        "activities_by_type": dict(activity_types),
        "activities_awaited": sum(w.ops.count("A") for w in [shape.start, *shape.handlers, *shape.after]),
        "activities_awaited_in_steps": sum(w.ops.count("A") for w in shape.handlers),
        "critical_path_workflow_tasks_per_step": (
            round(sum(critical_path) / len(critical_path), 2) if critical_path else None
        ),
        "critical_path_workflow_tasks_max": max(critical_path, default=None),
        "local_activities": sum(local_types.values()),
        "local_activities_by_type": dict(local_types),
        "timers_started": counts["TIMER_STARTED"],
        "timers_canceled": counts["TIMER_CANCELED"],
        "search_attribute_upserts": counts["UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"],
        "workflow_tasks": workflow_tasks,
        "activity_tasks": activity_tasks,
        "workflow_tasks_per_update": round(workflow_tasks / updates, 2) if updates else None,
        "server_tasks_per_update": round((workflow_tasks + activity_tasks) / updates, 2) if updates else None,
        # RPCs the server answers for one case: the start, each update, and a poll + a completion per task
        "server_rpcs_per_update": (
            round((1 + updates + 2 * (workflow_tasks + activity_tasks)) / updates, 2) if updates else None
        ),
    }
    return summary, shape


# ---------------------------------------------------------------------------------------------- the process


@dataclass(frozen=True)
class Step:
    stage_id: str
    role: str


def waves() -> list[list[Step]]:
    """The project-approval path of an application with no land-use change and no major hazard source:
    each wave's stages are open at the same time, a wave opens when the previous one is decided."""
    from schemas.process import Parallel, Stage
    from workflows.project_approval import DEFINITION

    result: list[list[Step]] = []
    for step in DEFINITION.steps:
        stages = [step] if isinstance(step, Stage) else [s for branch in step.branches for s in branch]
        assert all(isinstance(s, Stage) for s in stages) or isinstance(step, Parallel)
        wave = [Step(s.id, s.candidate_roles[0]) for s in stages if s.when is None]
        if wave:
            result.append(wave)
    return result


def roles_of(path: list[list[Step]]) -> list[str]:
    return sorted({step.role for wave in path for step in wave})


def desk_id(role: str, number: int) -> str:
    return f"bench-{role.replace('_', '-')}-{number + 1}"


def bench_principals(path: list[list[Step]], desks_per_role: int) -> list[Any]:
    from approvals.devstack.identities import DemoPrincipal

    return [
        DemoPrincipal(desk_id(role, k), f"Bench desk {k + 1} ({role})", "Bench office", (role,))
        for role in roles_of(path)
        for k in range(desks_per_role)
    ]


def application_body(key: str) -> dict[str, Any]:
    from schemas.project import EXAMPLE_APPLICATION

    application = {**EXAMPLE_APPLICATION, "major_hazard_source": False}
    application["planned_land_use"] = application["zoned_land_use"]
    return {"business_key": key, "title": f"Bench case {key}", "applicant": APPLICANT, "application": application}


# ---------------------------------------------------------------------------------------------- one configuration


class BenchError(RuntimeError):
    pass


@dataclass
class Context:
    stack: Any
    http: Any
    bare_client: Any
    bare_queue: str
    path: list[list[Step]]
    desks_per_role: int
    start_concurrency: int
    timeout: float
    stall_seconds: float = 120.0
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    @property
    def final_stages(self) -> set[str]:
        return {step.stage_id for step in self.path[-1]}


async def timed(samples: list[float] | None, call: Awaitable[Any]) -> Any:
    begin = time.perf_counter()
    result = await call
    if samples is not None:
        samples.append((time.perf_counter() - begin) * 1000)
    return result


def expect(response: Any, *statuses: int) -> dict[str, Any]:
    if response.status_code not in statuses:
        raise BenchError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}"
        )
    return response.json()  # type: ignore[no-any-return]


async def engine_start(ctx: Context, key: str, samples: list[float] | None = None) -> str:
    response = await timed(
        samples,
        ctx.http.post(f"/v1/cases/{PROCESS}", json=application_body(key), headers=ctx.stack.headers(SERVICE_PRINCIPAL)),
    )
    return str(expect(response, 201, 200)["case_id"])  # 200: a retried start found its case


async def engine_final(ctx: Context, case_id: str) -> None:
    result = await ctx.stack.client.get_workflow_handle(case_id).result()
    if result.get("status") != "approved":
        raise BenchError(f"{case_id} ended {result.get('status')}, expected approved")


async def engine_sequential(ctx: Context, key: str, decide_ms: list[float] | None) -> str:
    """One case, one step at a time, with nothing else running; returns its case id."""
    case_id = await engine_start(ctx, key)
    for wave in ctx.path:
        for step in wave:
            principal = desk_id(step.role, 0)
            deadline = time.monotonic() + ctx.timeout
            while True:
                page = expect(
                    await ctx.http.get(
                        "/v1/inbox",
                        params={"process": PROCESS, "stage": step.stage_id, "limit": 200},
                        headers=ctx.stack.headers(principal),
                    ),
                    200,
                )
                tasks = [t for t in page["items"] if t["case_id"] == case_id]
                if tasks:
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"{case_id}: no {step.stage_id} task in {principal}'s inbox")
                await asyncio.sleep(0.01)
            task_id = tasks[0]["task_id"]
            headers = ctx.stack.headers(principal)
            expect(await ctx.http.post(f"/v1/tasks/{task_id}/claim", json={}, headers=headers), 200)
            expect(
                await timed(
                    decide_ms,
                    ctx.http.post(f"/v1/tasks/{task_id}/decide", json={"decision": "approve"}, headers=headers),
                ),
                200,
            )
    await asyncio.wait_for(engine_final(ctx, case_id), ctx.timeout)
    return case_id


@dataclass
class BareDriver:
    """How the load generator works a bare case: ``bare`` straight through the Temporal client, the engine
    case's shape; ``durable`` through the durable baseline's HTTP server (see :func:`run_durable_api`)."""

    name: str
    start: Callable[[str], Awaitable[str]]
    """Starts the case of a business key; returns its workflow id."""
    act: Callable[[str, str], Awaitable[Any]]
    """Runs one step (``<stage>/claim`` or ``<stage>/decide``) of a workflow id."""


def direct_driver(ctx: Context, shape: BareShape) -> BareDriver:
    async def start(key: str) -> str:
        handle = await ctx.bare_client.start_workflow(BARE_WORKFLOW, shape, id=f"bare:{key}", task_queue=ctx.bare_queue)
        return str(handle.id)

    async def act(workflow_id: str, step: str) -> Any:
        return await ctx.bare_client.get_workflow_handle(workflow_id).execute_update(BARE_UPDATE, step, result_type=int)

    return BareDriver("bare", start, act)


def durable_driver(ctx: Context, http: Any, updates: int) -> BareDriver:
    async def start(key: str) -> str:
        workflow_id = f"durable:{key}"
        expect(await http.post("/start", json={"id": workflow_id, "updates": updates}), 200)
        return workflow_id

    async def act(workflow_id: str, step: str) -> Any:
        return expect(await http.post("/step", json={"id": workflow_id, "step": step}), 200)["result"]

    return BareDriver("durable", start, act)


async def bare_final(ctx: Context, workflow_id: str) -> None:
    await ctx.bare_client.get_workflow_handle(workflow_id).result()


async def bare_sequential(ctx: Context, driver: BareDriver, key: str, decide_ms: list[float] | None) -> str:
    """One bare case, one step at a time, with nothing else running; returns its workflow id."""
    workflow_id = await driver.start(key)
    for wave in ctx.path:
        for step in wave:
            await driver.act(workflow_id, f"{step.stage_id}/claim")
            await timed(decide_ms, driver.act(workflow_id, f"{step.stage_id}/decide"))
    await asyncio.wait_for(bare_final(ctx, workflow_id), ctx.timeout)
    return workflow_id


@dataclass
class LoadFigures:
    cases: int
    wall_seconds: float
    cases_per_second: float
    decide: dict[str, float]
    claim: dict[str, float]
    start: dict[str, float]
    inbox: dict[str, float] | None = None
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)


async def run_until(
    done: asyncio.Event,
    workers: list[asyncio.Task[Any]],
    timeout: float,
    what: Callable[[], str],
    progress: Callable[[], int],
    stall_seconds: float,
) -> None:
    """Waits for ``done``; a worker task's failure, the timeout, or ``stall_seconds`` without ``progress`` (a
    count of successful steps) ends the phase with an error."""
    waiter = asyncio.ensure_future(done.wait())
    deadline = time.monotonic() + timeout
    pending: set[asyncio.Future[Any]] = {waiter, *workers}
    seen, seen_at = progress(), time.monotonic()
    try:
        while not done.is_set():
            now = time.monotonic()
            if progress() != seen:
                seen, seen_at = progress(), now
            if now > deadline:
                raise BenchError(f"{what()}: not finished in {timeout:g}s")
            if now - seen_at > stall_seconds:
                raise BenchError(f"{what()}: no step succeeded for {stall_seconds:g}s")
            finished, pending = await asyncio.wait(pending, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                if task is not waiter and not task.cancelled() and task.exception() is not None:
                    raise BenchError(f"{what()}: {task.exception()!r}") from task.exception()
    finally:
        waiter.cancel()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def engine_load(ctx: Context, cases: int) -> LoadFigures:
    """N cases through the API while the desks work their inboxes; until every workflow has completed."""
    import httpx

    decide_ms: list[float] = []
    claim_ms: list[float] = []
    start_ms: list[float] = []
    inbox_ms: list[float] = []
    errors: Counter[str] = Counter()
    error_samples: list[str] = []
    done = asyncio.Event()
    finished = 0
    steps = 0
    end = 0.0
    waiters: list[asyncio.Task[Any]] = []
    prefix = f"BT-{ctx.run}-L-"

    async def final(case_id: str) -> None:
        nonlocal finished, end
        await engine_final(ctx, case_id)
        finished += 1
        if finished == cases:
            end = time.perf_counter()
            done.set()

    async def starter() -> None:
        gate = asyncio.Semaphore(ctx.start_concurrency)

        async def one(number: int) -> None:
            async with gate:
                for attempt in range(START_ATTEMPTS):  # a start is idempotent by business key
                    try:
                        await engine_start(ctx, f"{prefix}{number:06d}", start_ms)
                        return
                    except (httpx.TransportError, BenchError) as error:
                        failed_start(error)
                        if attempt == START_ATTEMPTS - 1:
                            raise
                        await asyncio.sleep(1.0)

        await asyncio.gather(*(one(number) for number in range(cases)))

    def failed_start(error: Exception) -> None:
        errors[f"start {type(error).__name__}"] += 1
        if len(error_samples) < 5:
            error_samples.append(f"start: {error!r}"[:300])

    def failed(operation: str, response: Any) -> None:
        errors[f"{operation} {response.status_code}"] += 1
        reason = f"{operation} {response.status_code}: {response.text[:300]}"
        if len(error_samples) < 5 and reason not in error_samples:
            error_samples.append(reason)

    def number_of(case_id: str) -> int:
        return int(case_id.rsplit("-", 1)[1])

    async def desk(role: str, k: int) -> None:
        principal = desk_id(role, k)
        headers = ctx.stack.headers(principal)
        while not done.is_set():
            try:
                await desk_round(principal, headers, k)
            except httpx.TransportError as error:  # counted; a reviewer would look again
                errors[f"desk {type(error).__name__}"] += 1
                if len(error_samples) < 5:
                    error_samples.append(f"{principal}: {error!r}"[:300])

    async def desk_round(principal: str, headers: dict[str, str], k: int) -> None:
        nonlocal steps
        mine: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None and not mine and offset < INBOX_PAGES * INBOX_PAGE:
            page = expect(
                await timed(
                    inbox_ms,
                    ctx.http.get(
                        "/v1/inbox",
                        params={"process": PROCESS, "limit": INBOX_PAGE, "offset": offset},
                        headers=headers,
                    ),
                ),
                200,
            )
            mine = [
                t
                for t in page["items"]
                if t["case_id"].startswith(f"{PROCESS}:{prefix}") and number_of(t["case_id"]) % ctx.desks_per_role == k
            ]
            offset = page["next_offset"]
        if not mine:
            await asyncio.sleep(INBOX_IDLE_SECONDS)
            return
        for task in mine:
            task_id = task["task_id"]
            if task["claimed_by"] != principal:
                response = await timed(claim_ms, ctx.http.post(f"/v1/tasks/{task_id}/claim", json={}, headers=headers))
                if response.status_code != 200:
                    failed("claim", response)
                    continue
            response = await timed(
                decide_ms,
                ctx.http.post(f"/v1/tasks/{task_id}/decide", json={"decision": "approve"}, headers=headers),
            )
            if response.status_code != 200:
                failed("decide", response)
                continue
            steps += 1
            if task["stage_id"] in ctx.final_stages:
                waiters.append(asyncio.create_task(final(task["case_id"])))

    begin = time.perf_counter()
    tasks = [asyncio.create_task(starter())]
    tasks += [asyncio.create_task(desk(role, k)) for role in roles_of(ctx.path) for k in range(ctx.desks_per_role)]
    try:
        await run_until(
            done,
            tasks,
            ctx.timeout,
            lambda: f"engine load of {cases} cases ({finished} final, errors {dict(errors)}, e.g. {error_samples})",
            lambda: steps + finished,
            ctx.stall_seconds,
        )
    finally:
        for waiter in waiters:
            waiter.cancel()
    wall = end - begin
    return LoadFigures(
        cases=cases,
        wall_seconds=round(wall, 3),
        cases_per_second=round(cases / wall, 3),
        decide=latency(decide_ms),
        claim=latency(claim_ms),
        start=latency(start_ms),
        inbox=latency(inbox_ms),
        errors=dict(errors),
        error_samples=error_samples,
    )


async def bare_load(ctx: Context, driver: BareDriver, cases: int) -> LoadFigures:
    """The same load shape against a bare workflow through ``driver``; in-memory inboxes."""
    decide_ms: list[float] = []
    claim_ms: list[float] = []
    start_ms: list[float] = []
    done = asyncio.Event()
    finished = 0
    end = 0.0
    inboxes: dict[str, asyncio.Queue[tuple[str, int, Step, list[int]]]] = {
        role: asyncio.Queue() for role in roles_of(ctx.path)
    }
    waiters: list[asyncio.Task[Any]] = []

    def open_wave(workflow_id: str, index: int) -> None:
        pending = [len(ctx.path[index])]
        for step in ctx.path[index]:
            inboxes[step.role].put_nowait((workflow_id, index, step, pending))

    async def final(workflow_id: str) -> None:
        nonlocal finished, end
        await bare_final(ctx, workflow_id)
        finished += 1
        if finished == cases:
            end = time.perf_counter()
            done.set()

    async def starter() -> None:
        gate = asyncio.Semaphore(ctx.start_concurrency)

        async def one(number: int) -> None:
            async with gate:
                workflow_id = await timed(start_ms, driver.start(f"{ctx.run}-L-{number:06d}"))
            open_wave(workflow_id, 0)

        await asyncio.gather(*(one(number) for number in range(cases)))

    async def desk(role: str) -> None:
        while True:
            workflow_id, index, step, pending = await inboxes[role].get()
            await timed(claim_ms, driver.act(workflow_id, f"{step.stage_id}/claim"))
            await timed(decide_ms, driver.act(workflow_id, f"{step.stage_id}/decide"))
            pending[0] -= 1
            if pending[0] == 0:
                if index + 1 < len(ctx.path):
                    open_wave(workflow_id, index + 1)
                else:
                    waiters.append(asyncio.create_task(final(workflow_id)))

    begin = time.perf_counter()
    tasks = [asyncio.create_task(starter())]
    tasks += [asyncio.create_task(desk(role)) for role in roles_of(ctx.path) for _ in range(ctx.desks_per_role)]
    try:
        await run_until(
            done,
            tasks,
            ctx.timeout,
            lambda: f"{driver.name} load of {cases} cases ({finished} final)",
            lambda: len(decide_ms) + finished,
            ctx.stall_seconds,
        )
    finally:
        for waiter in waiters:
            waiter.cancel()
    wall = end - begin
    return LoadFigures(
        cases=cases,
        wall_seconds=round(wall, 3),
        cases_per_second=round(cases / wall, 3),
        decide=latency(decide_ms),
        claim=latency(claim_ms),
        start=latency(start_ms),
    )


# ---------------------------------------------------------------------------------------------- processes


@dataclass
class BenchChild:
    """A child process of this benchmark: a bare worker or the durable baseline's HTTP server."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def failed(self, what: str) -> BenchError:
        self.stop()
        return BenchError(f"{what} ({self.process.returncode}):\n{self.log_path.read_text()[-3000:]}")


def spawn(stack: Any, name: str, *arguments: str) -> BenchChild:
    """``bench/throughput.py <arguments>`` as a child process logging to ``<stack root>/<name>.log``."""
    from approvals.devstack.dev import _parent_death_signal

    log_path = stack.root / f"{name}.log"
    settings = stack.settings
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                *arguments,
                "--address",
                settings.temporal_address,
                "--namespace",
                settings.temporal_namespace,
            ],  # fmt: skip
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_parent_death_signal(),  # noqa: PLW1509 - no threads of ours touch the fork
        )
    return BenchChild(process, log_path)


async def start_bare_worker(stack: Any, task_queue: str, name: str) -> BenchChild:
    """``--bare-worker`` as a child process, returned once it polls ``task_queue``."""
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    worker = spawn(stack, name, "--bare-worker", "--task-queue", task_queue)
    deadline = time.monotonic() + 60
    while True:
        if worker.process.poll() is not None:
            raise worker.failed("bare worker exited")
        described = await stack.client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(namespace=stack.settings.temporal_namespace, task_queue=TaskQueue(name=task_queue))
        )
        if any(poller.identity.startswith(f"{worker.process.pid}@") for poller in described.pollers):
            return worker
        if time.monotonic() > deadline:
            raise worker.failed(f"bare worker did not poll {task_queue} in 60s")
        await asyncio.sleep(0.1)


async def start_durable_api(stack: Any, task_queue: str) -> tuple[BenchChild, str]:
    """``--durable-api`` as a child process, returned with its URL once it answers."""
    import httpx

    from approvals.devstack.stack import free_port

    port = free_port()
    # The owner role: the baseline creates its own table, which the app role may not (no CREATE on public).
    database_url = stack.settings.migration_database_url or stack.settings.database_url or ""
    server = spawn(
        stack, "durable-api", "--durable-api", "--task-queue", task_queue,
        "--database-url", database_url, "--port", str(port),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        while True:
            if server.process.poll() is not None:
                raise server.failed("durable baseline server exited")
            try:
                if (await http.get("/")).status_code == 200:
                    return server, url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise server.failed("durable baseline server did not answer in 60s")
            await asyncio.sleep(0.1)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of the processes and their live children (ended children are not counted)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            for member in [process, *process.children(recursive=True)]:
                try:
                    times = member.cpu_times()
                    total += times.user + times.system
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
    return total


def cpu_snapshot(stack: Any, bare_workers: Sequence[BenchChild], durable_api: BenchChild) -> dict[str, float]:
    own = os.times()
    return {
        "temporal": cpu_seconds([stack.temporal.process.pid]),
        "postgres": cpu_seconds([stack.postgres.pid]),
        "api": cpu_seconds([stack.api.pid] if stack.api else []),
        "engine_workers": cpu_seconds([w.pid for w in stack.workers]),
        "durable_api": cpu_seconds([durable_api.process.pid]),
        "bare_workers": cpu_seconds([w.process.pid for w in bare_workers]),
        "load_generator": own.user + own.system,
    }


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before[name], 2) for name in before}


SIDES = ("engine", "durable", "bare")
SERVING: dict[str, dict[str, str | None]] = {
    "engine": {"api": "api", "worker": "engine_workers", "temporal": "temporal", "postgres": "postgres"},
    "durable": {"api": "durable_api", "worker": "bare_workers", "temporal": "temporal", "postgres": "postgres"},
    "bare": {"api": None, "worker": "bare_workers", "temporal": "temporal", "postgres": "postgres"},
}
"""Per side, the process (a key of :func:`cpu_snapshot`) doing each part of the serving; the load generator
is not counted. Bare has no API; its PostgreSQL figure is the idle server's (nothing writes to it)."""


def cpu_per_case(load: LoadFigures, side: str) -> dict[str, float | None]:
    per_case: dict[str, float | None] = {
        part: None if name is None else round(load.cpu_seconds[name] / load.cases, 4)
        for part, name in SERVING[side].items()
    }
    per_case["total"] = round(sum(value for value in per_case.values() if value is not None), 4)
    return per_case


def verdicts(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Each of the issue's targets this benchmark measures: what it is, the figure, and whether it is met."""
    engine, durable, bare = (figures[side] for side in SIDES)
    steps = figures["shape"]["engine"]["critical_path_workflow_tasks_per_step"]
    idle_p50 = figures["idle"]["engine_decide"]["p50_ms"]
    p99_ratio = engine["decide"]["p99_ms"] / bare["decide"]["p99_ms"]
    return [
        {
            "name": "throughput vs the durable bare",
            "target": f"throughput >= {TARGET_THROUGHPUT_RATIO}x the durable bare",
            "figure": f"{engine['cases_per_second']:.2f} vs {durable['cases_per_second']:.2f} cases/s: "
            f"{figures['throughput_ratio_durable']:.2f}x",
            "met": figures["throughput_ratio_durable"] >= TARGET_THROUGHPUT_RATIO,
        },
        {
            "name": "throughput vs the bare",
            "target": f"throughput >= {TARGET_THROUGHPUT_RATIO}x the bare",
            "figure": f"{engine['cases_per_second']:.2f} vs {bare['cases_per_second']:.2f} cases/s: "
            f"{figures['throughput_ratio']:.2f}x",
            "met": figures["throughput_ratio"] >= TARGET_THROUGHPUT_RATIO,
        },
        {
            "name": "workflow tasks per human step on the critical path",
            "target": f"workflow tasks per human step on the critical path <= {TARGET_CRITICAL_PATH_TASKS}",
            "figure": f"{steps} (at most {figures['shape']['engine']['critical_path_workflow_tasks_max']}; "
            f"{figures['shape']['engine']['activities_awaited_in_steps']} activities awaited inside steps)",
            "met": steps is not None and steps <= TARGET_CRITICAL_PATH_TASKS,
        },
        {
            "name": "decide with no other load",
            "target": f"decide p50 unloaded <= {TARGET_IDLE_DECIDE_P50_MS:g} ms",
            "figure": f"{idle_p50:.1f} ms (durable bare {figures['idle']['durable_decide']['p50_ms']:.1f}, "
            f"bare {figures['idle']['bare_decide']['p50_ms']:.1f})",
            "met": idle_p50 <= TARGET_IDLE_DECIDE_P50_MS,
        },
        {
            "name": "decide under load",
            "target": f"decide p99 under load <= {TARGET_LOADED_DECIDE_P99_RATIO:g}x bare's",
            "figure": f"{engine['decide']['p99_ms']:.0f} vs {bare['decide']['p99_ms']:.0f} ms: {p99_ratio:.1f}x "
            f"(durable bare {durable['decide']['p99_ms']:.0f} ms)",
            "met": p99_ratio <= TARGET_LOADED_DECIDE_P99_RATIO,
        },
    ]


async def run_configuration(
    cases: int,
    workers: int,
    *,
    desks_per_role: int,
    start_concurrency: int,
    idle_cases: int,
    timeout: float,
    stall_seconds: float,
) -> dict[str, Any]:
    import httpx
    from temporalio.client import Client

    from approvals.devstack.stack import Stack

    path = waves()
    load_before = load_average()
    root = Path(tempfile.mkdtemp(prefix="approvals-throughput-"))
    figures: dict[str, Any] = {"cases": cases, "workers": workers, "desks_per_role": desks_per_role}
    notes: list[str] = []
    loads: dict[str, LoadFigures] = {}
    began = time.perf_counter()
    try:
        async with Stack.open(root, principals=bench_principals(path, desks_per_role)) as stack:
            for _ in range(workers):
                await stack.start_worker()
            await stack.start_api()
            bare_queue = f"bare-{uuid.uuid4().hex[:8]}"
            children: list[BenchChild] = []
            try:
                bare_workers = []
                for number in range(workers):
                    bare_workers.append(await start_bare_worker(stack, bare_queue, f"bare-worker-{number + 1}"))
                children += bare_workers
                durable_api, durable_url = await start_durable_api(stack, bare_queue)
                children.append(durable_api)
                bare_client = await Client.connect(
                    stack.settings.temporal_address, namespace=stack.settings.temporal_namespace
                )
                limits = httpx.Limits(max_connections=desks_per_role * 8 + start_concurrency + 10)
                async with (
                    httpx.AsyncClient(base_url=stack.api_url, timeout=60, limits=limits) as http,
                    httpx.AsyncClient(base_url=durable_url, timeout=60, limits=limits) as durable_http,
                ):
                    ctx = Context(
                        stack, http, bare_client, bare_queue, path, desks_per_role, start_concurrency, timeout,
                        stall_seconds,
                    )  # fmt: skip
                    figures["startup_seconds"] = round(time.perf_counter() - began, 2)

                    # 1. shape (and warm-up) 2. bare and durable warm-ups, their shapes
                    case_id = await engine_sequential(ctx, f"BT-{ctx.run}-S-000000", None)
                    history = await stack.client.get_workflow_handle(case_id).fetch_history()
                    shape_counts, shape = history_shape(history)
                    human_steps = sum(len(wave) for wave in path) * 2
                    shape_counts["human_steps"] = human_steps
                    shape_counts["path"] = [[step.stage_id for step in wave] for wave in path]
                    if shape_counts["updates"] != human_steps:
                        notes.append(f"the engine case had {shape_counts['updates']} updates for {human_steps} steps")
                    drivers = {
                        "durable": durable_driver(ctx, durable_http, human_steps),
                        "bare": direct_driver(ctx, shape),
                    }
                    figures["shape"] = {"engine": shape_counts}
                    for side, driver in drivers.items():
                        workflow_id = await bare_sequential(ctx, driver, f"{ctx.run}-S-000000", None)
                        counts, _ = history_shape(await bare_client.get_workflow_handle(workflow_id).fetch_history())
                        figures["shape"][side] = counts
                    for key in ("updates", "activities", "local_activities"):
                        if figures["shape"]["bare"][key] != shape_counts[key]:
                            notes.append(f"bare {key} {figures['shape']['bare'][key]} != engine {shape_counts[key]}")

                    # 3. idle
                    idle: dict[str, list[float]] = {side: [] for side in SIDES}
                    for number in range(idle_cases):
                        await engine_sequential(ctx, f"BT-{ctx.run}-I-{number:06d}", idle["engine"])
                    for side, driver in drivers.items():
                        for number in range(idle_cases):
                            await bare_sequential(ctx, driver, f"{ctx.run}-I-{number:06d}", idle[side])
                    figures["idle"] = {"cases": idle_cases} | {
                        f"{side}_decide": latency(samples) for side, samples in idle.items()
                    }

                    # 4. engine load 5. durable bare load 6. bare load
                    snapshots = [cpu_snapshot(stack, bare_workers, durable_api)]
                    for side in SIDES:
                        load = engine_load(ctx, cases) if side == "engine" else bare_load(ctx, drivers[side], cases)
                        loads[side] = await load
                        snapshots.append(cpu_snapshot(stack, bare_workers, durable_api))
                    for side, before, after in zip(SIDES, snapshots, snapshots[1:], strict=False):
                        loads[side].cpu_seconds = cpu_delta(before, after)
            finally:
                for child in children:
                    await asyncio.to_thread(child.stop)
            for child in [*stack.workers, stack.api]:
                if child is not None and not child.alive():
                    notes.append(f"{child.name} died during the run: {child.log_tail(5)}")
    except BaseException:
        print(f"the run failed; the servers' and workers' logs are kept in {root}", file=sys.stderr)
        raise
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    for side in SIDES:
        figures[side] = loads[side].__dict__
    figures["throughput_ratio"] = round(loads["engine"].cases_per_second / loads["bare"].cases_per_second, 3)
    figures["throughput_ratio_durable"] = round(loads["engine"].cases_per_second / loads["durable"].cases_per_second, 3)
    figures["cpu_seconds_per_case"] = {side: cpu_per_case(loads[side], side) for side in SIDES}
    figures["verdicts"] = verdicts(figures)
    figures["load_before"], figures["load_after"] = load_before, load_average()
    figures["notes"] = notes
    return figures


# ---------------------------------------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def cpu_cells(per_case: dict[str, float | None]) -> str:
    return " / ".join("-" if per_case[part] is None else f"{per_case[part]:.3f}" for part in CPU_PARTS)


CPU_PARTS = ("api", "worker", "temporal", "postgres", "total")


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| cases | workers | cases/s engine / durable bare / bare | engine vs durable bare | engine vs bare "
        "| decide p50 / p95 / p99 engine | durable bare | bare | idle decide p50 engine / durable / bare "
        f"| CPU s per case ({' / '.join(CPU_PARTS)}) engine | durable bare | bare | load before / after |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in report["configurations"]:
        decide = {side: c[side]["decide"] for side in SIDES}
        idle = c["idle"]
        lines.append(
            f"| {c['cases']} | {c['workers']} | "
            + " / ".join(f"{c[side]['cases_per_second']:.2f}" for side in SIDES)
            + "".join(
                f" | {c[key]:.2f}x ({verdict(c[key] >= TARGET_THROUGHPUT_RATIO)})"
                for key in ("throughput_ratio_durable", "throughput_ratio")
            )
            + " | "
            + " | ".join(
                f"{decide[side]['p50_ms']:.0f} / {decide[side]['p95_ms']:.0f} / {decide[side]['p99_ms']:.0f} ms"
                for side in SIDES
            )
            + " | "
            + " / ".join(f"{idle[f'{side}_decide']['p50_ms']:.1f}" for side in SIDES)
            + " ms | "
            + " | ".join(cpu_cells(c["cpu_seconds_per_case"][side]) for side in SIDES)
            + f" | {c['load_before']} / {c['load_after']} |"
        )
    if report["configurations"]:
        first = report["configurations"][0]
        s = first["shape"]["engine"]
        lines += [
            "",
            f"Shape of one case ({s['human_steps']} human steps: claim + decide per task): {s['updates']} updates, "
            f"{s['activities']} activities {s['activities_by_type']}, {s['local_activities']} local activities "
            f"{s['local_activities_by_type']}, {s['timers_started']} timers started, "
            f"{s['search_attribute_upserts']} search-attribute upserts, {s['workflow_tasks']} workflow tasks, "
            f"{s['history_events']} history events ({s['history_bytes']} bytes); workflow tasks per human step "
            f"on the critical path: {s['critical_path_workflow_tasks_per_step']} (durable bare: "
            f"{first['shape']['durable']['critical_path_workflow_tasks_per_step']}, bare: "
            f"{first['shape']['bare']['critical_path_workflow_tasks_per_step']}); server tasks (workflow + "
            f"activity) per human step: {s['server_tasks_per_update']} (bare: "
            f"{first['shape']['bare']['server_tasks_per_update']}); server RPCs per human step (start + updates + "
            f"poll and completion of every task, over the updates): {s['server_rpcs_per_update']}.",
            "",
            "| target | figure | verdict |",
            "|---|---|---|",
        ]
        for c in report["configurations"]:
            where = f"{c['cases']} cases, {c['workers']} worker(s)"
            lines += [f"| {v['target']} ({where}) | {v['figure']} | {verdict(v['met'])} |" for v in c["verdicts"]]
        lines += [f"| {target.split(': ')[0]} | see {target.split(': ')[1]} | |" for target in OTHER_TARGETS]
    return "\n".join(lines)


def print_configuration(c: dict[str, Any]) -> None:
    def percentiles(x: dict[str, float]) -> str:
        return f"{x['p50_ms']:.0f}/{x['p95_ms']:.0f}/{x['p99_ms']:.0f} ms (n={x['n']})"

    print(f"  {'':<26}" + "".join(f"{side:<32}" for side in ("engine", "durable bare", "bare")))
    print(f"  {'cases/s':<26}" + "".join(f"{c[side]['cases_per_second']:<32.2f}" for side in SIDES))
    print(f"  {'wall s':<26}" + "".join(f"{c[side]['wall_seconds']:<32.1f}" for side in SIDES))
    for name in ("decide", "claim", "start"):
        print(f"  {name + ' p50/95/99':<26}" + "".join(f"{percentiles(c[side][name]):<32}" for side in SIDES))
    if c["engine"].get("inbox"):
        print(f"  {'inbox p50/95/99':<26}{percentiles(c['engine']['inbox'])}")
    print(
        f"  {'idle decide p50':<26}"
        + "".join(f"{c['idle'][f'{side}_decide']['p50_ms']:<32.1f}" for side in SIDES)
        + f"({c['idle']['cases']} case(s) one at a time each)"
    )
    for part in CPU_PARTS:
        cells = (c["cpu_seconds_per_case"][side][part] for side in SIDES)
        print(f"  {'CPU s per case, ' + part:<26}" + "".join(f"{'-' if v is None else v:<32}" for v in cells))
    print(
        f"  ratios    engine/durable bare {c['throughput_ratio_durable']:.2f}x   "
        f"engine/bare {c['throughput_ratio']:.2f}x"
    )
    for side in SIDES:
        print(f"  CPU seconds, {side} phase: {c[side]['cpu_seconds']}")
    if c["engine"]["errors"]:
        print(f"  errors            {c['engine']['errors']}")
        for sample in c["engine"].get("error_samples", []):
            print(f"    e.g. {sample}")
    print(
        f"  load average      {c['load_before']} before, {c['load_after']} after; servers up in {c['startup_seconds']}s"
    )
    for one in c["verdicts"]:
        print(f"  TARGET {one['target']}: {one['figure']}: {verdict(one['met'])}")
    for target in OTHER_TARGETS:
        print(f"  TARGET {target}")
    for note in c["notes"]:
        print(f"  NOTE {note}")


def print_shape(shape: dict[str, Any]) -> None:
    print(f"history of one case{'':<28}engine  durable     bare")
    for key in ("updates", "activities", "activities_awaited", "activities_awaited_in_steps", "local_activities",
                "timers_started", "search_attribute_upserts", "workflow_tasks", "activity_tasks", "history_events",
                "history_bytes", "critical_path_workflow_tasks_per_step", "critical_path_workflow_tasks_max",
                "workflow_tasks_per_update", "server_tasks_per_update", "server_rpcs_per_update"):  # fmt: skip
        print(f"  {key:<40}" + "".join(f"{shape[side][key]!s:>8} " for side in SIDES))
    e = shape["engine"]
    print(f"  engine activities by type: {e['activities_by_type']}; local: {e['local_activities_by_type']}")


def parse_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cases", type=parse_list, default=None, help="concurrent cases per run (default 200,1000)")
    parser.add_argument("--workers", type=parse_list, default=None, help="worker processes (default 1,2)")
    parser.add_argument("--desks-per-role", type=int, default=None, help="reviewers per role (default 4)")
    parser.add_argument("--start-concurrency", type=int, default=10, help="case starts in flight (default 10)")
    parser.add_argument("--idle-cases", type=int, default=None, help="cases one at a time, no load (default 5)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds a phase may take (default 1800)")
    parser.add_argument(
        "--stall-seconds", type=float, default=120.0, help="give up when no step succeeds for so long (default 120)"
    )
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown table here")
    parser.add_argument("--quick", action="store_true", help="smoke run: 6 cases, 1 worker, 2 desks per role")
    parser.add_argument("--bare-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--durable-api", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", default="default", help=argparse.SUPPRESS)
    parser.add_argument("--task-queue", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    defaults = (
        {"cases": [6], "workers": [1], "desks_per_role": 2, "idle_cases": 1}
        if args.quick
        else {"cases": [200, 1000], "workers": [1, 2], "desks_per_role": 4, "idle_cases": 5}
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.desks_per_role < 1 or args.start_concurrency < 1 or args.idle_cases < 1:
        parser.error("--desks-per-role, --start-concurrency and --idle-cases must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bare_worker:
        asyncio.run(run_bare_worker(args.address, args.namespace, args.task_queue))
        return 0
    if args.durable_api:
        asyncio.run(run_durable_api(args.address, args.namespace, args.task_queue, args.database_url, args.port))
        return 0
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from approvals.logging import configure_logging
    from approvals.settings import load_settings

    configure_logging(load_settings(log_level="WARNING", log_format="console"), stream=sys.stderr)
    report: dict[str, Any] = {
        "benchmark": "throughput",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "temporal": temporal_version(),
        "quick": args.quick,
        "targets": {
            "throughput_ratio_min": TARGET_THROUGHPUT_RATIO,
            "critical_path_workflow_tasks_per_step_max": TARGET_CRITICAL_PATH_TASKS,
            "idle_decide_p50_ms_max": TARGET_IDLE_DECIDE_P50_MS,
            "loaded_decide_p99_to_bare_max": TARGET_LOADED_DECIDE_P99_RATIO,
            "elsewhere": list(OTHER_TARGETS),
        },
        "desks_per_role": args.desks_per_role,
        "start_concurrency": args.start_concurrency,
        "configurations": [],
    }
    print(
        "throughput: project-approval end to end through the HTTP API vs a durable bare (HTTP hop + one update + "
        "an awaited INSERT per step) and a bare Temporal workflow of the same shape"
    )
    print(f"machine: {report['machine']}; {report['temporal']}; {report['date']}")
    print(
        f"desks per role {args.desks_per_role}, starts in flight {args.start_concurrency}"
        + ("  [--quick]" if args.quick else "")
    )
    for workers in args.workers:
        for cases in args.cases:
            print(f"\n== {cases} cases, {workers} worker process(es) ...", flush=True)
            figures = asyncio.run(
                run_configuration(
                    cases, workers, desks_per_role=args.desks_per_role, start_concurrency=args.start_concurrency,
                    idle_cases=args.idle_cases, timeout=args.timeout, stall_seconds=args.stall_seconds,
                )
            )  # fmt: skip
            report["configurations"].append(figures)
            if len(report["configurations"]) == 1:
                print_shape(figures["shape"])
            print_configuration(figures)
            if args.json:
                args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    table = markdown(report)
    print("\n" + table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
