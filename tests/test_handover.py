"""Handover on the real stack: an admin moves every open task of a person who left to another person, or back
to the pool, in one idempotent request; each move is a transfer (or recall) by the admin in its case, and a
task whose rules forbid the move is skipped with the reason."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from typer.testing import CliRunner, Result

from approvals.cli import app
from tests.api_server import LiveApi, live_api_fixture
from tests.test_api import DEFINITION, act, problem, wait_for_task

api = live_api_fixture("handover", applicants_by_starter={"*": ["ent-*", "bob"]})

POOL_ONLY = {**DEFINITION, "steps": [DEFINITION["steps"][0]]}


def review_by(user_id: str) -> dict[str, Any]:
    return {**DEFINITION, "steps": [{**DEFINITION["steps"][1], "assignees": [user_id]}]}


async def open_task(http: httpx.AsyncClient, api: LiveApi, case_id: str, timeout: float = 20) -> dict[str, Any]:
    """The case's open task, once recorded (the case starts asynchronously to the API call)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        case = (await http.get(f"/v1/cases/{case_id}", headers=api.headers("admin"))).json()
        found = [task for task in case["tasks"] if task["status"] in ("open", "claimed")]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no open task in {case_id}")


@pytest_asyncio.fixture
async def http(api: LiveApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        yield client


async def start(http: httpx.AsyncClient, api: LiveApi, definition: dict[str, Any], applicant_id: str) -> str:
    body = {
        "business_key": f"HO-{uuid.uuid4().hex[:10]}",
        "title": "Warehouse extension",
        "applicant": {"id": applicant_id, "name": applicant_id, "unit": "enterprise", "roles": ["applicant"]},
        "definition": definition,
    }
    response = await http.post("/v1/cases/generic", json=body, headers=api.headers("service"))
    assert response.status_code == 201, response.text
    return response.json()["case_id"]


async def hand_over(http: httpx.AsyncClient, api: LiveApi, body: dict[str, Any], key: str, who: str = "admin"):
    return await http.post("/v1/handovers", json=body, headers=api.headers(who, **{"Idempotency-Key": key}))


async def test_a_handover_of_three_tasks_with_one_refused_by_separation_of_duties(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    # bob applied himself in the third case: he may not review it, so that task stays with the leaver
    leaver = f"leaver-{uuid.uuid4().hex[:8]}"
    cases = [await start(http, api, review_by(leaver), applicant) for applicant in ("ent-001", "ent-002", "bob")]
    tasks = [(await open_task(http, api, case_id))["task_id"] for case_id in cases]
    body = {"from_user": leaver, "to_user": "bob", "reason": f"{leaver} 调离 (transferred to another post)"}
    key = f"handover-{uuid.uuid4().hex}"

    problem(await hand_over(http, api, body, key, who="head"), 403, "ROLE_REQUIRED")
    response = await hand_over(http, api, body, key)
    assert response.status_code == 200, response.text
    report = response.json()
    moves = {move["task_id"]: move for move in report["moves"]}
    assert set(moves) == set(tasks)
    assert [moves[task]["outcome"] for task in tasks] == ["transferred", "transferred", "skipped"]
    assert moves[tasks[2]]["code"] == "SEPARATION_OF_DUTIES" and "bob" in moves[tasks[2]]["message"]
    assert not report["replayed"]

    for case_id in cases[:2]:  # each move is a transfer in its case, by the admin, with the reason
        event = await db_pool.fetchrow(
            "SELECT actor_id, payload->>'to' AS to_user, payload->>'comment' AS comment FROM audit_events "
            "WHERE case_id = $1 AND type = 'task.transferred'",
            case_id,
        )
        assert dict(event) == {"actor_id": "admin-1", "to_user": "bob", "comment": body["reason"]}
    bob_tasks = [await wait_for_task(http, api, "bob", case_id, "review") for case_id in cases[:2]]
    assert bob_tasks == tasks[:2]
    denied = await db_pool.fetchval(
        "SELECT reason_code FROM denied_attempts WHERE task_id = $1 AND operation = 'transfer'", tasks[2]
    )
    assert denied == "SEPARATION_OF_DUTIES"

    # sent again with its key: the same results, nothing moved twice
    again = await hand_over(http, api, body, key)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["moves"] == report["moves"]
    transfers = await db_pool.fetchval(
        "SELECT count(*) FROM audit_events WHERE case_id = ANY($1::text[]) AND type = 'task.transferred'", cases
    )
    assert transfers == 2
    problem(await hand_over(http, api, {**body, "reason": "another"}, key), 409, "IDEMPOTENCY_CONFLICT")
    still = await open_task(http, api, cases[2])
    assert still["assignee_id"] == leaver
    same = await hand_over(http, api, {**body, "to_user": leaver}, f"k-{uuid.uuid4().hex}")
    assert problem(same, 422, "VALIDATION_ERROR")["errors"][0]["field"] == "to_user"


async def test_a_handover_back_to_the_pool_recalls_claimed_pool_tasks(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    case_id = await start(http, api, POOL_ONLY, "ent-001")
    task_id = await wait_for_task(http, api, "absent_officer", case_id, "acceptance")
    assert (await act(http, api, "absent_officer", f"/v1/tasks/{task_id}/claim")).status_code == 200
    body = {"from_user": "officer-absent", "to_user": None, "reason": "officer-absent on leave (休假)"}
    report = (await hand_over(http, api, body, f"pool-{uuid.uuid4().hex}")).json()
    assert report["moves"] == [
        {"task_id": task_id, "case_id": case_id, "outcome": "returned_to_pool", "code": None, "message": None}
    ]
    recalled = await db_pool.fetchrow(
        "SELECT actor_id, payload->>'reason' AS reason FROM audit_events WHERE case_id = $1 AND type = 'task.recalled'",
        case_id,
    )
    assert dict(recalled) == {"actor_id": "admin-1", "reason": body["reason"]}
    assert task_id in [
        t["task_id"] for t in (await http.get("/v1/inbox", headers=api.headers("officer"))).json()["items"]
    ]


async def test_the_cli_hands_over_and_reports_each_task(http: httpx.AsyncClient, api: LiveApi) -> None:
    leaver = f"leaver-{uuid.uuid4().hex[:8]}"
    case_id = await start(http, api, review_by(leaver), "ent-001")
    task_id = (await open_task(http, api, case_id))["task_id"]
    common = ["--api-url", api.url, "--token", api.tokens["admin"]]
    key = ["--idempotency-key", f"cli-{leaver}"]

    async def approvals(*args: str) -> Result:
        # in a thread: the command's HTTP client is synchronous, and the API serves on this event loop
        return await asyncio.to_thread(CliRunner().invoke, app, [*args, *common], env={"COLUMNS": "200"})

    handed = await approvals("handover", leaver, "--to", "bob", "-r", "退休 (retired)", *key)
    assert handed.exit_code == 0 and f"{task_id}: transferred" in handed.output, handed.output
    again = await approvals("handover", leaver, "--to", "bob", "-r", "退休 (retired)", "--json", *key)
    assert json.loads(again.output)["replayed"] is True
    nothing = await approvals("handover", f"nobody-{leaver}", "-r", "never here")
    assert nothing.exit_code == 0 and "holds no open task" in nothing.output, nothing.output


def pool_of(role: str, **stage: Any) -> dict[str, Any]:
    survey = {"kind": "stage", "id": "survey", "title": "现场核查 (survey)", "legal_basis": "Art. 10", **stage}
    return {**DEFINITION, "steps": [{**survey, "candidate_roles": [role]}]}


async def claimed(http: httpx.AsyncClient, api: LiveApi, who: str, role: str, **stage: Any) -> tuple[str, str]:
    """A case whose pool task ``who`` (of ``role``) claimed: their act records their unit."""
    case_id = await start(http, api, pool_of(role, **stage), "ent-001")
    task_id = await wait_for_task(http, api, who, case_id, "survey")
    assert (await act(http, api, who, f"/v1/tasks/{task_id}/claim")).status_code == 200
    return case_id, task_id


async def test_a_unit_head_hands_over_their_own_units_staff_only(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    # planner-1 (规划建设局) holds a claimed pool task and a task assigned by name; surveyor-1 (生态环境分局) one
    own = [await claimed(http, api, "planner", "planner")]
    case_id = await start(http, api, review_by("planner-1"), "ent-002")
    own.append((case_id, (await open_task(http, api, case_id))["task_id"]))
    other_case, other_task = await claimed(http, api, "surveyor", "surveyor")
    reason = "planner-1 借调 (seconded), 规划建设局局长交接"
    body = {"from_user": "planner-1", "to_user": "bob", "reason": reason}
    key = f"unit-{uuid.uuid4().hex}"

    response = await hand_over(http, api, body, key, who="planning_head")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["handed_over_by"] == "head-planning" and not report["replayed"]
    assert sorted((move["task_id"], move["outcome"]) for move in report["moves"]) == sorted(
        (task_id, "transferred") for _, task_id in own
    )
    for case_id, task_id in own:  # each move a transfer by the head, with the reason, in its case
        event = await db_pool.fetchrow(
            "SELECT actor_id, actor_unit, payload->>'from' AS from_user, payload->>'to' AS to_user, "
            "payload->>'comment' AS comment FROM audit_events WHERE case_id = $1 AND type = 'task.transferred'",
            case_id,
        )
        assert dict(event) == {
            "actor_id": "head-planning", "actor_unit": "规划建设局", "from_user": "planner-1", "to_user": "bob",
            "comment": reason,
        }  # fmt: skip
        assert await wait_for_task(http, api, "bob", case_id, task_id.split("/")[-2]) == task_id
    again = await hand_over(http, api, body, key, who="planning_head")
    assert again.json()["replayed"] is True and again.json()["moves"] == report["moves"]

    # another unit's staff: refused whole, naming both units; nothing moves, by handover or by a plain transfer
    refused = problem(
        await hand_over(http, api, {**body, "from_user": "surveyor-1"}, f"k-{uuid.uuid4().hex}", who="planning_head"),
        403,
        "NOT_OWN_UNIT",
    )
    assert "生态环境分局" in refused["detail"] and "规划建设局" in refused["detail"]
    transfer = await act(http, api, "planning_head", f"/v1/tasks/{other_task}/transfer", {"to_user": "bob"})
    problem(transfer, 403, "NOT_OWN_UNIT")
    recall = await act(http, api, "planning_head", f"/v1/tasks/{other_task}/recall", {"reason": "absent"})
    problem(recall, 403, "NOT_OWN_UNIT")
    assert (await open_task(http, api, other_case))["claimed_by"] == "surveyor-1"
    denied = await db_pool.fetch(
        "SELECT operation, reason_code FROM denied_attempts WHERE task_id = $1 AND actor_id = 'head-planning' "
        "ORDER BY at",
        other_task,
    )
    assert [tuple(row) for row in denied] == [("transfer", "NOT_OWN_UNIT"), ("recall", "NOT_OWN_UNIT")]
    # someone who never acted has no recorded unit: an admin hands over their tasks
    ghost = {**body, "from_user": f"ghost-{uuid.uuid4().hex[:6]}"}
    problem(await hand_over(http, api, ghost, f"k-{uuid.uuid4().hex}", who="planning_head"), 403, "UNIT_UNKNOWN")


async def test_a_unit_head_returns_their_staffs_claimed_tasks_to_the_pool(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    case_id, task_id = await claimed(http, api, "planner", "planner")
    body = {"from_user": "planner-1", "to_user": None, "reason": "planner-1 病假 (sick leave)"}
    report = (await hand_over(http, api, body, f"pool-{uuid.uuid4().hex}", who="planning_head")).json()
    assert {"task_id": task_id, "case_id": case_id, "outcome": "returned_to_pool", "code": None, "message": None} in (
        report["moves"]
    )
    recalled = await db_pool.fetchrow(
        "SELECT actor_id, payload->>'reason' AS reason FROM audit_events WHERE case_id = $1 AND type = 'task.recalled'",
        case_id,
    )
    assert dict(recalled) == {"actor_id": "head-planning", "reason": body["reason"]}
    assert await wait_for_task(http, api, "planner", case_id, "survey") == task_id


async def test_a_unit_head_who_supervises_the_stage_recalls_any_claimant_as_its_supervisor(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    # the stage names unit_head its supervisor: recalling is the supervisor's right, whoever claimed the task
    supervised = {"deadline": {"working_days": 5, "escalate_to_role": "unit_head"}}
    case_id, task_id = await claimed(http, api, "surveyor", "surveyor", **supervised)
    recalled = await act(http, api, "planning_head", f"/v1/tasks/{task_id}/recall", {"reason": "现场核查人员外出"})
    assert recalled.status_code == 200, recalled.text
    assert (await open_task(http, api, case_id))["claimed_by"] is None
    # handing the same claimant's tasks over is still another unit's business
    body = {"from_user": "surveyor-1", "to_user": None, "reason": "外出"}
    problem(await hand_over(http, api, body, f"k-{uuid.uuid4().hex}", who="planning_head"), 403, "NOT_OWN_UNIT")
