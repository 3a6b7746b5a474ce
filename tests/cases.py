"""Building blocks for tests that drive whole cases: people, definitions, a started case, decisions, and the
events it recorded."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from schemas.calendar import load_calendar
from schemas.case import CaseInput, CaseView, DecideRequest, TaskView, WithdrawRequest
from schemas.principal import Principal
from schemas.process import Decision, ProcessDefinition, Stage
from workflows.kernel import ApprovalWorkflow

T = TypeVar("T")

CALENDAR = load_calendar()

SERVICE = Principal(id="svc-portal", name="One-window portal", unit="portal", roles=("service",))
APPLICANT = Principal(id="ent-001", name="Alashankou Metals Co.", unit="enterprise", roles=("applicant",))


def person(user_id: str, *roles: str, unit: str = "committee") -> Principal:
    return Principal(id=user_id, name=user_id.title(), unit=unit, roles=roles)


ALICE = person("alice", "reviewer")
BOB = person("bob", "reviewer")
HEAD = person("head-1", "head")


def definition(*steps: Any, process: str = "generic", **extra: Any) -> ProcessDefinition:
    return ProcessDefinition(process=process, title="Test process", legal_basis="Art. 4", steps=steps, **extra)


def stage(stage_id: str, **fields: Any) -> Stage:
    fields.setdefault("title", stage_id.replace("_", " ").title())
    fields.setdefault("legal_basis", "Art. 10")
    return Stage(id=stage_id, **fields)


async def start_case(
    client: Client,
    task_queue: str,
    process: ProcessDefinition,
    *,
    data: dict[str, Any] | None = None,
    applicant: Principal = APPLICANT,
    **fields: Any,
) -> WorkflowHandle[ApprovalWorkflow, CaseView]:
    business_key = f"T-{uuid.uuid4().hex[:10]}"
    case = CaseInput(
        business_key=business_key,
        definition=process,
        title=fields.pop("title", f"Case {business_key}"),
        applicant=applicant,
        started_by=SERVICE,
        data=data or {},
        calendar=fields.pop("calendar", CALENDAR),
        **fields,
    )
    return await client.start_workflow(
        ApprovalWorkflow.run,
        case,
        id=f"{process.process}:{business_key}",
        task_queue=task_queue,
        execution_timeout=timedelta(days=400),
    )


async def view_when(
    handle: WorkflowHandle[ApprovalWorkflow, CaseView], predicate: Callable[[CaseView], bool], *, timeout: float = 15
) -> CaseView:
    """The case view once ``predicate`` holds (the workflow runs asynchronously to the test)."""
    deadline = asyncio.get_running_loop().time() + timeout
    view: CaseView | None = None
    while True:
        try:
            view = await handle.query(ApprovalWorkflow.view)
        except RPCError as error:  # a child case the parent is about to start does not exist yet
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
        else:
            if predicate(view):
                return view
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"case {handle.id} never reached the expected state; last view: {view}")
        await asyncio.sleep(0.05)


def open_tasks(view: CaseView, stage_id: str | None = None) -> list[TaskView]:
    return [t for t in view.tasks if t.status.is_actionable and (stage_id is None or t.stage_id == stage_id)]


async def task_of(handle: WorkflowHandle[Any, CaseView], holder: str | None = None, stage_id: str | None = None) -> str:
    """The id of the open task ``holder`` holds (or the first open one; of ``stage_id`` only, if given), once
    there is one."""

    def matching(view: CaseView) -> list[str]:
        held = [t for t in open_tasks(view, stage_id) if holder is None or holder in (t.assignee_id, t.claimed_by)]
        return [t.task_id for t in held]

    return matching(await view_when(handle, lambda v: bool(matching(v))))[0]


async def finished(env: WorkflowEnvironment, handle: WorkflowHandle[Any, CaseView]) -> CaseView:
    """The result without unlocking time skipping (which would jump the test server's clock to the timeout)."""
    with env.auto_time_skipping_disabled():
        return await handle.result()


async def wind_up(env: WorkflowEnvironment, handle: WorkflowHandle[Any, CaseView]) -> None:
    """Ends a case the test is done with: the applicant withdraws and the case finishes its notifications.

    Terminating instead would abandon notification activities in flight, and an activity the test server
    still counts as running keeps its clock from skipping for later tests.
    """
    await handle.execute_update(ApprovalWorkflow.withdraw, WithdrawRequest(actor=APPLICANT, reason="test over"))
    await finished(env, handle)


async def decide(
    handle: WorkflowHandle[Any, CaseView],
    actor: Principal,
    task: TaskView | str,
    decision: Decision = Decision.approve,
    **fields: Any,
) -> Any:
    """``actor`` decides ``task`` (a view or its id); the update's result."""
    task_id = task if isinstance(task, str) else task.task_id
    return await handle.execute_update(
        ApprovalWorkflow.decide, DecideRequest(actor=actor, task_id=task_id, decision=decision, **fields)
    )


async def events(db_pool: asyncpg.Pool, case_id: str, type_: str | None = None) -> list[dict[str, Any]]:
    """The case's recorded events (of ``type_`` only, if given) as rows, their payloads decoded, by seq."""
    rows = await db_pool.fetch(
        "SELECT seq, type, actor_id, at, legal_basis, stage_id, task_id, payload::text AS payload FROM audit_events "
        "WHERE case_id = $1 AND ($2::text IS NULL OR type = $2) ORDER BY seq",
        case_id,
        type_,
    )
    return [{**dict(row), "payload": json.loads(row["payload"])} for row in rows]


async def _poll(
    read: Callable[[], Awaitable[T]], done: Callable[[T], bool], failure: Callable[[T], str], *, timeout: float
) -> T:
    """``read()`` again every 50 ms until ``done`` holds for what it returns; AssertionError after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not done(found := await read()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(failure(found))
        await asyncio.sleep(0.05)
    return found


async def recorded_when(db_pool: asyncpg.Pool, case_id: str, type_: str, *, timeout: float = 15) -> dict[str, Any]:
    """The first recorded event of ``type_`` once it is in PostgreSQL (recording runs asynchronously)."""
    rows = await _poll(
        lambda: events(db_pool, case_id, type_),
        bool,
        lambda _: f"case {case_id} never recorded {type_}",
        timeout=timeout,
    )
    return rows[0]


async def outbox_when(
    db_pool: asyncpg.Pool,
    case_id: str,
    predicate: Callable[[list[asyncpg.Record]], bool],
    *,
    kind: str | None = None,
    timeout: float = 20,
) -> list[asyncpg.Record]:
    """The case's outbox rows (of ``kind`` only, if given) once ``predicate`` holds (delivery is asynchronous)."""
    return await _poll(
        lambda: db_pool.fetch(
            "SELECT * FROM outbox WHERE case_id = $1 AND ($2::text IS NULL OR kind = $2) ORDER BY position",
            case_id,
            kind,
        ),
        predicate,
        lambda rows: f"the outbox of {case_id} never reached the expected state: {[dict(r) for r in rows]}",
        timeout=timeout,
    )


# ------------------------------------------------------------------ an operator resets a case

TEMPORAL_CLI = Path(sys.executable).parent / "temporal"
REVIEWERS_BY_ID = {"alice": ALICE, "bob": BOB}
"""Who decides a task assigned to ``alice`` or ``bob``."""


def reset_workflow(env: WorkflowEnvironment, case_id: str, *point: str) -> None:
    """What an operator runs: the Temporal CLI's ``workflow reset``, against the dev server."""
    subprocess.run(
        [
            str(TEMPORAL_CLI), "workflow", "reset", "--address", env.client.service_client.config.target_host,
            "--namespace", env.client.namespace, "--workflow-id", case_id, "--reason", "operator ops-1: stuck task",
            *point,
        ],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


async def decide_until_final(handle: WorkflowHandle[ApprovalWorkflow, CaseView]) -> None:
    """Whoever holds an open task approves it, until the case has its decision."""
    while True:
        view = await view_when(handle, lambda v: v.status.is_final or bool(open_tasks(v)), timeout=30)
        if view.status.is_final:
            return
        task = open_tasks(view)[0]
        await decide(handle, REVIEWERS_BY_ID[task.assignee_id or ""], task)


async def last_update_task(handle: WorkflowHandle[ApprovalWorkflow, CaseView]) -> int:
    """The ``WorkflowTaskCompleted`` event of the workflow task that accepted the last decision."""
    history = await handle.fetch_history()
    accepted = max(
        event.event_id
        for event in history.events
        if event.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )
    return max(
        event.event_id
        for event in history.events
        if event.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and event.event_id < accepted
    )


def json_of(output: str) -> Any:
    """A command's JSON; the log lines of the worker and the API running in this process share its stdout."""
    lines = output.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line[:1] in "[{")
    return json.JSONDecoder().raw_decode("".join(lines[start:]))[0]
