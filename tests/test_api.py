"""The HTTP API over real HTTP: uvicorn on a free port, the Temporal dev server, PostgreSQL, the worker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from approvals.operations import Scope, operations
from tests.api_server import JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, PEOPLE, LiveApi, live_api_fixture

api = live_api_fixture("api")


@pytest_asyncio.fixture
async def http(api: LiveApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        yield client


DEFINITION: dict[str, Any] = {
    "process": "generic",
    "title": "Outdoor advertising permit",
    "legal_basis": "Art. 4",
    "steps": [
        {
            "kind": "stage",
            "id": "acceptance",
            "title": "受理 (acceptance)",
            "legal_basis": "Art. 6",
            "candidate_roles": ["one_window"],
            "may_request_supplement": True,
        },
        {"kind": "stage", "id": "review", "title": "审查 (review)", "legal_basis": "Art. 10", "assignees": ["alice"]},
    ],
    "deadline": {"working_days": 20, "extension_working_days": 10, "extension_role": "head"},
}


def start_body(business_key: str | None = None, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "business_key": business_key or f"API-{uuid.uuid4().hex[:10]}",
        "title": "Billboard at Border Road 7",
        "applicant": {"id": "ent-001", "name": "Alashankou Metals Co.", "unit": "enterprise", "roles": ["applicant"]},
        "definition": DEFINITION,
        "data": {"site": "Border Road 7"},
    }
    body.update(changes)
    return body


async def start(http: httpx.AsyncClient, api: LiveApi, **changes: Any) -> dict[str, Any]:
    response = await http.post("/v1/cases/generic", json=start_body(**changes), headers=api.headers("service"))
    assert response.status_code == 201, response.text
    return response.json()


async def inbox_ids(http: httpx.AsyncClient, api: LiveApi, who: str, **params: Any) -> list[str]:
    response = await http.get("/v1/inbox", params=params, headers=api.headers(who))
    assert response.status_code == 200, response.text
    return [task["task_id"] for task in response.json()["items"]]


async def wait_for_task(
    http: httpx.AsyncClient, api: LiveApi, who: str, case_id: str, stage: str, timeout: float = 20
) -> str:
    """The open task of ``stage`` in ``who``'s inbox (the case starts asynchronously to the API call)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [t for t in await inbox_ids(http, api, who, stage=stage) if t.startswith(case_id + "/")]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {stage} task of {case_id} in {who}'s inbox")


async def act(
    http: httpx.AsyncClient, api: LiveApi, who: str, path: str, body: dict[str, Any] | None = None, **headers: str
) -> httpx.Response:
    return await http.post(path, json=body or {}, headers=api.headers(who, **headers))


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["title"] and body["detail"] and body["type"]
    return body


# --- health and authentication ------------------------------------------------------------------------


async def test_health_reports_temporal_and_postgres(http: httpx.AsyncClient) -> None:
    body = (await http.get("/health")).json()
    assert body["status"] == "ok" and body["temporal"]["ok"] and body["postgres"]["ok"]


async def test_missing_or_unknown_token_is_401(http: httpx.AsyncClient) -> None:
    missing = problem(await http.get("/v1/inbox"), 401, "MISSING_TOKEN")
    assert "Authorization: Bearer" in missing["detail"]
    response = await http.get("/v1/inbox", headers={"Authorization": "Bearer not-a-token"})
    problem(response, 401, "INVALID_TOKEN")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_tokens_file_accepts_plain_and_hashed_entries(http: httpx.AsyncClient, api: LiveApi) -> None:
    for who, (user_id, roles) in PEOPLE.items():
        me = (await http.get("/v1/me", headers=api.headers(who))).json()
        assert me["id"] == user_id and tuple(me["roles"]) == roles


def _jwt(api: LiveApi, algorithm: str, **claims: Any) -> str:
    payload = {
        "sub": "jwt-reviewer", "name": "JWT Reviewer", "unit": "planning", "roles": ["reviewer"],
        "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "exp": int(time.time()) + 300, **claims,
    }  # fmt: skip
    key = JWT_SECRET if algorithm == "HS256" else api.rsa_private_pem
    return jwt.encode(payload, key, algorithm=algorithm)


@pytest.mark.parametrize("algorithm", ["HS256", "RS256"])
async def test_signed_jwt_maps_to_principal(http: httpx.AsyncClient, api: LiveApi, algorithm: str) -> None:
    token = _jwt(api, algorithm)
    me = (await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me == {"id": "jwt-reviewer", "name": "JWT Reviewer", "unit": "planning", "roles": ["reviewer"]}


@pytest.mark.parametrize(
    ("claims", "code", "needle"),
    [
        ({"exp": int(time.time()) - 3600}, "TOKEN_EXPIRED", "expired"),
        ({"aud": "someone-else"}, "INVALID_TOKEN", "audience"),
        ({"iss": "https://evil.example"}, "INVALID_TOKEN", "issuer"),
    ],
)
async def test_bad_jwt_is_401_with_the_reason(
    http: httpx.AsyncClient, api: LiveApi, claims: dict[str, Any], code: str, needle: str
) -> None:
    token = _jwt(api, "HS256", **claims)
    body = problem(await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"}), 401, code)
    assert needle in body["detail"].lower()


async def test_jwt_signed_with_another_key_is_401(http: httpx.AsyncClient) -> None:
    forged = jwt.encode({"sub": "admin", "roles": ["admin"], "exp": int(time.time()) + 60}, "x" * 40, algorithm="HS256")
    problem(await http.get("/v1/me", headers={"Authorization": f"Bearer {forged}"}), 401, "INVALID_TOKEN")


# --- starting cases -----------------------------------------------------------------------------------


async def test_start_is_idempotent_by_business_key(http: httpx.AsyncClient, api: LiveApi) -> None:
    body = start_body()
    first = await http.post("/v1/cases/generic", json=body, headers=api.headers("service"))
    assert first.status_code == 201, first.text
    started = first.json()
    assert started["case_id"] == f"generic:{body['business_key']}" and started["created"] is True
    assert first.headers["location"] == f"/v1/cases/{started['case_id']}"

    again = await http.post("/v1/cases/generic", json=body, headers=api.headers("service"))
    assert again.status_code == 200
    assert again.json() == {**started, "created": False}

    changed = await http.post("/v1/cases/generic", json={**body, "title": "Another"}, headers=api.headers("service"))
    conflict = problem(changed, 409, "IDEMPOTENCY_CONFLICT")
    assert body["business_key"] in conflict["detail"]

    by_other = await http.post("/v1/cases/generic", json=body, headers=api.headers("other_service"))
    problem(by_other, 409, "IDEMPOTENCY_CONFLICT")


async def test_twenty_parallel_starts_of_one_key_make_one_workflow(
    http: httpx.AsyncClient, api: LiveApi, dev_server_env: WorkflowEnvironment
) -> None:
    body = start_body()
    responses = await asyncio.gather(
        *(http.post("/v1/cases/generic", json=body, headers=api.headers("service")) for _ in range(20))
    )
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201], [r.text for r in responses]
    assert len({r.json()["run_id"] for r in responses}) == 1
    case_id = responses[0].json()["case_id"]
    runs = [w async for w in dev_server_env.client.list_workflows(f"WorkflowId = '{case_id}'")]
    deadline = time.monotonic() + 10
    while not runs and time.monotonic() < deadline:  # visibility is eventually consistent
        await asyncio.sleep(0.2)
        runs = [w async for w in dev_server_env.client.list_workflows(f"WorkflowId = '{case_id}'")]
    assert len(runs) == 1


async def test_start_errors(http: httpx.AsyncClient, api: LiveApi) -> None:
    unknown = problem(
        await http.post("/v1/cases/no-such-process", json=start_body(), headers=api.headers("service")),
        404,
        "UNKNOWN_PROCESS",
    )
    assert "generic" in unknown["detail"]

    bad = start_body(applicant={"name": "no id"}, business_key="bad key!")
    invalid = problem(
        await http.post("/v1/cases/generic", json=bad, headers=api.headers("service")), 422, "VALIDATION_ERROR"
    )
    fields = {error["field"] for error in invalid["errors"]}
    assert {"applicant.id", "business_key"} <= fields

    stage_error = start_body(definition={**DEFINITION, "steps": [{**DEFINITION["steps"][0], "mode": "sideways"}]})
    invalid = problem(
        await http.post("/v1/cases/generic", json=stage_error, headers=api.headers("service")), 422, "VALIDATION_ERROR"
    )
    assert any(error["field"].startswith("definition.steps.0") for error in invalid["errors"])

    not_json = await http.post(
        "/v1/cases/generic",
        content=b"{not json",
        headers={**api.headers("service"), "content-type": "application/json"},
    )
    assert "not valid JSON" in problem(not_json, 400, "MALFORMED_JSON")["detail"]
    not_text = await http.post(
        "/v1/cases/generic",
        content=b"\x93\xab\xb2",
        headers={**api.headers("service"), "content-type": "application/json"},
    )
    assert "not UTF-8" in problem(not_text, 400, "MALFORMED_JSON")["detail"]

    forbidden = problem(
        await http.post("/v1/cases/generic", json=start_body(), headers=api.headers("alice")), 403, "ROLE_REQUIRED"
    )
    assert "service" in forbidden["detail"]


async def test_payload_over_the_limit_is_413_before_temporal(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    body = start_body(data={"blob": "x" * (api.settings.max_payload_bytes + 10)})
    response = await http.post("/v1/cases/generic", json=body, headers=api.headers("service"))
    assert "MAX_PAYLOAD_BYTES" in problem(response, 413, "PAYLOAD_TOO_LARGE")["detail"]

    async def chunked() -> AsyncIterator[bytes]:
        encoded = json.dumps(body).encode()
        for index in range(0, len(encoded), 65536):
            yield encoded[index : index + 65536]

    streamed = await http.post(
        "/v1/cases/generic", content=chunked(), headers={**api.headers("service"), "content-type": "application/json"}
    )
    problem(streamed, 413, "PAYLOAD_TOO_LARGE")
    assert await db_pool.fetchval("SELECT count(*) FROM cases WHERE business_key = $1", body["business_key"]) == 0


async def test_operation_body_over_its_limit_is_413_but_a_start_of_that_size_is_not(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    limit = api.settings.operation_max_bytes
    assert limit < api.settings.max_payload_bytes
    started = await start(http, api, data={"notes": "x" * (limit + 1000)})  # starts are bounded by the larger limit
    task_id = await wait_for_task(http, api, "officer", started["case_id"], "acceptance")

    conditions = ["c" * 1000] * (limit // 1000 + 5)
    too_big = await act(
        http,
        api,
        "officer",
        f"/v1/tasks/{task_id}/decide",
        {"decision": "approve_with_conditions", "conditions": conditions},
    )
    assert "OPERATION_MAX_BYTES" in problem(too_big, 413, "PAYLOAD_TOO_LARGE")["detail"]
    case_too_big = await act(http, api, "head", f"/v1/cases/{started['case_id']}/extend", {"reason": "r" * (limit + 1)})
    problem(case_too_big, 413, "PAYLOAD_TOO_LARGE")
    assert await db_pool.fetchval("SELECT count(*) FROM denied_attempts WHERE task_id = $1", task_id) == 0


async def test_a_definition_that_could_never_finish_is_422_before_any_workflow(
    http: httpx.AsyncClient, api: LiveApi
) -> None:
    vote = {
        "kind": "stage", "id": "vote", "title": "Committee vote", "legal_basis": "Art. 22", "mode": "quorum",
        "assignees": ["m1", "m2"], "quorum": {"min_attendance": 3}, "allowed_decisions": ["approve", "reject"],
    }  # fmt: skip
    body = start_body(definition={**DEFINITION, "steps": [vote]})
    response = await http.post("/v1/cases/generic", json=body, headers=api.headers("service"))
    problem(response, 422, "VALIDATION_ERROR")
    assert "needs a deadline" in response.text and "exceeds the 2 members" in response.text
    listed = await http.get("/v1/cases", params={"business_key": body["business_key"]}, headers=api.headers("admin"))
    assert listed.json()["items"] == []


async def test_unstorable_text_and_numbers_are_422_with_the_field_path(http: httpx.AsyncClient, api: LiveApi) -> None:
    """PostgreSQL refuses NUL in text and jsonb, and jsonb rewrites 1e20 and -0.0: refused before any workflow."""

    async def refused(response: httpx.Response) -> set[str]:
        body = problem(response, 422, "VALIDATION_ERROR")
        return {error["field"] for error in body["errors"]}

    service = api.headers("service")
    assert await refused(
        await http.post("/v1/cases/generic", json=start_body(title="Bill\u0000board"), headers=service)
    ) == {"title"}
    nested = start_body(data={"site": {"lines": ["Border Road 7", "gate\u0000 2"]}})
    assert await refused(await http.post("/v1/cases/generic", json=nested, headers=service)) == {"data.site.lines.1"}
    surrogate = start_body(applicant={"id": "ent-001", "name": "bad \ud800 name"})
    assert await refused(
        await http.post(
            "/v1/cases/generic", content=json.dumps(surrogate), headers={**service, "content-type": "application/json"}
        )
    ) == {"applicant.name"}
    huge = start_body(data={"area_m2": 1e20, "ratio": 24.5})
    fields = await refused(await http.post("/v1/cases/generic", json=huge, headers=service))
    assert fields == {"data.area_m2"}
    negative_zero = start_body(data={"offset": -0.0})
    assert await refused(await http.post("/v1/cases/generic", json=negative_zero, headers=service)) == {"data.offset"}

    from schemas.project import EXAMPLE_APPLICATION

    application = json.loads(json.dumps(EXAMPLE_APPLICATION))
    application["enterprise"]["contact"]["name"] = "Ma\u0000Lin"
    project = {
        "business_key": f"API-{uuid.uuid4().hex[:10]}",
        "title": "Copper line",
        "applicant": {"id": "ent-001", "roles": ["applicant"]},
        "application": application,
    }
    assert await refused(await http.post("/v1/cases/project-approval", json=project, headers=service)) == {
        "application.enterprise.contact.name"
    }

    case_id = (await start(http, api))["case_id"]
    task_id = await wait_for_task(http, api, "officer", case_id, "acceptance")
    comment = await act(http, api, "officer", f"/v1/tasks/{task_id}/comment", {"text": "received\u0000"})
    assert await refused(comment) == {"text"}
    decided = await act(
        http, api, "officer", f"/v1/tasks/{task_id}/decide",
        {"decision": "approve_with_conditions", "conditions": ["ok", "bad\u0000"]},
    )  # fmt: skip
    assert await refused(decided) == {"conditions.1"}
    # nothing reached the case: it still works, and its record has no trace of the refused content
    fine = await act(http, api, "officer", f"/v1/tasks/{task_id}/comment", {"text": "received"})
    assert fine.status_code == 200, fine.text


# --- a whole case -------------------------------------------------------------------------------------


async def test_reviewers_work_a_case_and_the_inbox_follows(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    case_id = (await start(http, api))["case_id"]
    task_id = await wait_for_task(http, api, "officer", case_id, "acceptance")
    assert task_id in await inbox_ids(http, api, "officer2", stage="acceptance")

    # The service that started it reads it; a stranger does not; the auditor reads everything.
    detail = (await http.get(f"/v1/cases/{case_id}", params={"live": True}, headers=api.headers("service"))).json()
    assert detail["case"]["status"] == "in_review" and detail["case"]["current_stages"] == ["acceptance"]
    assert detail["case"]["started_by"] == "svc-portal" and detail["case"]["observers"] == []
    assert detail["live"]["tasks"][0]["task_id"] == task_id
    problem(await http.get(f"/v1/cases/{case_id}", headers=api.headers("bob")), 403, "NOT_A_CASE_READER")
    assert (await http.get(f"/v1/cases/{case_id}", headers=api.headers("auditor"))).status_code == 200

    claimed = await act(http, api, "officer", f"/v1/tasks/{task_id}/claim")
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["task"]["claimed_by"] == "officer-1"
    assert task_id not in await inbox_ids(http, api, "officer2")

    decided = await act(
        http, api, "officer", f"/v1/tasks/{task_id}/decide", {"decision": "approve", "comment": "complete"}
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["task"]["status"] == "completed"
    # decide returns after the projection is written: the task is gone from the inbox at once
    assert task_id not in await inbox_ids(http, api, "officer")

    review = await wait_for_task(http, api, "alice", case_id, "review")
    assert review.endswith("/review/1")
    assert (await http.get(f"/v1/cases/{case_id}", headers=api.headers("alice"))).status_code == 200
    approved = await act(http, api, "alice", f"/v1/tasks/{review}/decide", {"decision": "approve"})
    assert approved.status_code == 200, approved.text

    deadline = time.monotonic() + 15
    while (await http.get(f"/v1/cases/{case_id}", headers=api.headers("service"))).json()["case"][
        "status"
    ] != "approved":
        assert time.monotonic() < deadline, "case never reached approved"
        await asyncio.sleep(0.1)

    listed = (
        await http.get("/v1/cases", params={"status": "approved", "process": "generic"}, headers=api.headers("service"))
    ).json()
    assert case_id in [case["case_id"] for case in listed["items"]]
    assert case_id not in [
        c["case_id"] for c in (await http.get("/v1/cases", headers=api.headers("other_service"))).json()["items"]
    ]

    timeline = (await http.get(f"/v1/cases/{case_id}/timeline", headers=api.headers("auditor"))).json()
    types = [event["type"] for event in timeline]
    assert types[0] == "case.started" and "task.claimed" in types and "task.decided" in types
    claimed_event = next(event for event in timeline if event["type"] == "task.claimed")
    assert claimed_event["actor_id"] == "officer-1" and claimed_event["roles"] == ["one_window"]
    assert claimed_event["legal_basis"] == "Art. 6" and claimed_event["action"] == "Officer-1 claimed the task"
    assert claimed_event["at"] and claimed_event["local_time"] and claimed_event["task_id"] == task_id
    decided_event = next(event for event in timeline if event["type"] == "task.decided")
    assert decided_event["data"]["decision"] == "approve" and decided_event["comment"] == "complete"
    started_event = timeline[0]
    assert started_event["data"]["business_key"] == case_id.split(":", 1)[1] and "definition" in started_event["data"]
    assert [e["seq"] for e in timeline] == list(range(1, len(timeline) + 1))

    history = await http.get(f"/v1/cases/{case_id}/history", headers=api.headers("auditor"))
    assert history.status_code == 200 and history.headers["content-type"].startswith("application/json")
    events = history.json()["events"]
    assert events[0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert any(e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED" for e in events)

    verdict = (await http.get(f"/v1/cases/{case_id}/verification", headers=api.headers("auditor"))).json()
    assert verdict["ok"] is True and verdict["report"]["last_seq"] == len(timeline), verdict
    problem(await http.get(f"/v1/cases/{case_id}/verification", headers=api.headers("service")), 403, "ROLE_REQUIRED")

    # An operation on the ended case is refused and recorded.
    late = await act(http, api, "alice", f"/v1/tasks/{review}/comment", {"text": "too late?"})
    problem(late, 409, "CASE_CLOSED")


async def test_denied_operation_is_a_problem_and_is_recorded(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    case_id = (await start(http, api))["case_id"]
    task_id = await wait_for_task(http, api, "officer", case_id, "acceptance")

    denied = await act(http, api, "bob", f"/v1/tasks/{task_id}/claim", {"expected_version": 1})
    body = problem(denied, 409, "NOT_ASSIGNEE")
    assert body["operation"] == "claim" and body["task_id"] == task_id and "bob" in body["detail"]

    row = await db_pool.fetchrow(
        "SELECT actor_id, actor_roles, case_id, task_id, operation, reason_code, message, request::text AS request, at "
        "FROM denied_attempts WHERE case_id = $1 AND actor_id = 'bob'",
        case_id,
    )
    assert row is not None
    assert (row["actor_roles"], row["task_id"], row["operation"], row["reason_code"]) == (
        ["reviewer"],
        task_id,
        "claim",
        "NOT_ASSIGNEE",
    )
    assert "bob" in row["message"] and json.loads(row["request"]) == {"expected_version": 1} and row["at"]

    # a refusal about the request's content is 422 with the reason code
    await act(http, api, "officer", f"/v1/tasks/{task_id}/claim")
    no_reason = await act(http, api, "officer", f"/v1/tasks/{task_id}/decide", {"decision": "reject"})
    problem(no_reason, 422, "COMMENT_REQUIRED")
    stale = await act(
        http, api, "officer", f"/v1/tasks/{task_id}/decide", {"decision": "approve", "expected_version": 1}
    )
    problem(stale, 409, "STALE_TASK_VERSION")

    # read-only principals are refused by the API itself, also recorded
    problem(await act(http, api, "auditor", f"/v1/tasks/{task_id}/comment", {"text": "hi"}), 403, "READ_ONLY")
    audited = (await http.get(f"/v1/cases/{case_id}/denied-attempts", headers=api.headers("auditor"))).json()
    assert [(d["actor_id"], d["reason_code"]) for d in audited] == [
        ("bob", "NOT_ASSIGNEE"), ("officer-1", "COMMENT_REQUIRED"), ("officer-1", "STALE_TASK_VERSION"),
        ("auditor-1", "READ_ONLY"),
    ]  # fmt: skip
    problem(
        await http.get(f"/v1/cases/{case_id}/denied-attempts", headers=api.headers("service")), 403, "ROLE_REQUIRED"
    )


async def test_a_large_denied_request_is_stored_truncated_as_valid_json(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    from approvals.service import DENIED_REQUEST_MAX_BYTES

    case_id = (await start(http, api))["case_id"]
    task_id = await wait_for_task(http, api, "officer", case_id, "acceptance")
    body = {"decision": "approve_with_conditions", "conditions": [f"{i}:" + "条" * 900 for i in range(20)]}
    sent = json.dumps(body, ensure_ascii=False).encode()
    assert DENIED_REQUEST_MAX_BYTES < len(sent) < api.settings.operation_max_bytes
    denied = await http.post(
        f"/v1/tasks/{task_id}/decide",
        content=sent,
        headers={**api.headers("bob"), "content-type": "application/json"},
    )
    assert denied.status_code == 409, denied.text
    stored = await db_pool.fetchval(
        "SELECT request::text FROM denied_attempts WHERE case_id = $1 AND actor_id = 'bob'", case_id
    )
    assert len(stored.encode()) <= DENIED_REQUEST_MAX_BYTES + 100  # jsonb's own spacing
    record = json.loads(stored)
    assert record["truncated"] is True and record["bytes"] == len(json.dumps(body, ensure_ascii=False).encode())
    assert record["head"].startswith('{"decision": "approve_with_conditions"')
    [audited] = (await http.get(f"/v1/cases/{case_id}/denied-attempts", headers=api.headers("auditor"))).json()
    assert audited["request"]["truncated"] is True


async def test_actor_comes_from_the_token_never_the_body(http: httpx.AsyncClient, api: LiveApi) -> None:
    case_id = (await start(http, api))["case_id"]
    task_id = await wait_for_task(http, api, "officer", case_id, "acceptance")
    smuggled = await act(
        http, api, "bob", f"/v1/tasks/{task_id}/claim", {"actor": {"id": "officer-1", "roles": ["one_window"]}}
    )
    invalid = problem(smuggled, 422, "VALIDATION_ERROR")
    assert invalid["errors"][0]["field"] == "actor"


async def test_retried_operation_with_the_same_idempotency_key_is_applied_once(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    case_id = (await start(http, api))["case_id"]
    task_id = await wait_for_task(http, api, "officer", case_id, "acceptance")
    key = uuid.uuid4().hex
    path = f"/v1/tasks/{task_id}/comment"
    first, second = await asyncio.gather(
        act(http, api, "officer", path, {"text": "received"}, **{"Idempotency-Key": key}),
        act(http, api, "officer", path, {"text": "received"}, **{"Idempotency-Key": key}),
    )
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json() == second.json()
    third = await act(http, api, "officer", path, {"text": "received"}, **{"Idempotency-Key": key})
    assert third.json() == first.json()
    count = await db_pool.fetchval(
        "SELECT count(*) FROM audit_events WHERE case_id = $1 AND type = 'case.commented'", case_id
    )
    assert count == 1
    other = await act(http, api, "officer", path, {"text": "received"}, **{"Idempotency-Key": uuid.uuid4().hex})
    assert other.json()["last_seq"] > first.json()["last_seq"]
    # the key is bound to the body: reused with another body it is another operation, not the first's result
    changed = await act(http, api, "officer", path, {"text": "received twice?"}, **{"Idempotency-Key": key})
    assert changed.status_code == 200 and changed.json()["last_seq"] > other.json()["last_seq"]
    again = await act(http, api, "officer", path, {"text": "received twice?"}, **{"Idempotency-Key": key})
    assert again.json() == changed.json()
    texts = [
        json.loads(row["payload"])["text"]
        for row in await db_pool.fetch(
            "SELECT payload::text AS payload FROM audit_events WHERE case_id = $1 AND type = 'case.commented' "
            "ORDER BY seq",
            case_id,
        )
    ]
    assert texts == ["received", "received", "received twice?"]
    other = changed
    # the key is scoped to operation, target and caller: reused for another operation it is a new one
    urged = await act(http, api, "officer", f"/v1/tasks/{task_id}/urge", {}, **{"Idempotency-Key": key})
    assert urged.status_code == 200 and urged.json()["last_seq"] > other.json()["last_seq"]


async def test_every_task_operation(http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool) -> None:
    case_id = (await start(http, api))["case_id"]
    task_id = await wait_for_task(http, api, "officer", case_id, "acceptance")

    async def ok(who: str, operation: str, body: dict[str, Any] | None = None, target: str = task_id) -> dict[str, Any]:
        response = await act(http, api, who, f"/v1/tasks/{target}/{operation}", body)
        assert response.status_code == 200, response.text
        return response.json()

    await ok("officer", "claim")
    await ok("officer", "unclaim")
    await ok("officer", "claim")
    await ok("officer", "urge", {"comment": "please hurry"})
    await ok("officer", "cc", {"observers": ["head-1"], "comment": "fyi"})
    await ok("officer", "add-signer", {"signer": "officer-2", "position": "after", "comment": "second look"})
    # one person signs a stage once: the delegate is not the added signer
    delegated = await ok("officer", "delegate", {"to_user": "bob"})
    assert delegated["task"]["delegate_id"] == "bob"
    await ok("bob", "decide", {"decision": "approve", "comment": "for officer-1"})
    # the added signer (officer-2) signs after: their task opened
    signer_task = await wait_for_task(http, api, "officer2", case_id, "acceptance")
    transferred = await ok("officer2", "transfer", {"to_user": "nobody", "comment": "over to you"}, target=signer_task)
    assert transferred["task"]["assignee_id"] == "nobody"
    await ok("nobody", "decide", {"decision": "approve"}, target=signer_task)

    review = await wait_for_task(http, api, "alice", case_id, "review")
    returned = await ok("alice", "return", {"comment": "site plan missing", "return_to": "acceptance"}, target=review)
    assert returned["task"]["decision"] == "return"
    again = await wait_for_task(http, api, "officer", case_id, "acceptance")
    assert again != task_id
    # the copied user now reads the case, and finds it among the cases they may list
    seen_by_head = await http.get(f"/v1/cases/{case_id}", headers=api.headers("head"))
    assert seen_by_head.status_code == 200
    assert seen_by_head.json()["case"]["observers"] == ["head-1"]
    business_key = case_id.split(":", 1)[1]
    listed = await http.get("/v1/cases", params={"business_key": business_key}, headers=api.headers("head"))
    assert [item["case_id"] for item in listed.json()["items"]] == [case_id], listed.text
    types = [
        r["type"] for r in await db_pool.fetch("SELECT type FROM audit_events WHERE case_id = $1 ORDER BY seq", case_id)
    ]
    for expected in (
        "task.urged",
        "case.cc",
        "task.signer_added",
        "task.delegated",
        "task.transferred",
        "task.unclaimed",
    ):
        assert expected in types


async def test_declare_conflict_route_and_a_recorded_recusal_refusal(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    """回避: a person the start request declares concerned may not claim; a reviewer declares a conflict through
    the route the registry generates, and cannot claim again. Both refusals are recorded as denied attempts."""
    concerned = [{"user_id": "officer-2", "relationship": "close_relative", "reason": "brother of the director"}]
    case_id = (await start(http, api, concerned=concerned))["case_id"]
    task_id = await wait_for_task(http, api, "officer", case_id, "acceptance")

    body = problem(await act(http, api, "officer2", f"/v1/tasks/{task_id}/claim"), 409, "RECUSAL_REQUIRED")
    assert "close_relative" in body["detail"] and body["operation"] == "claim"
    assert (await act(http, api, "officer", f"/v1/tasks/{task_id}/claim")).status_code == 200
    problem(await act(http, api, "officer", f"/v1/tasks/{task_id}/declare-conflict", {}), 422, "VALIDATION_ERROR")
    reason = {"reason": "my former employer applies"}
    declared = await act(http, api, "officer", f"/v1/tasks/{task_id}/declare-conflict", reason)
    assert declared.status_code == 200, declared.text
    assert (declared.json()["task"]["status"], declared.json()["task"]["claimed_by"]) == ("open", None)
    problem(await act(http, api, "officer", f"/v1/tasks/{task_id}/claim"), 409, "RECUSAL_REQUIRED")

    rows = await db_pool.fetch(
        "SELECT actor_id, operation, reason_code FROM denied_attempts WHERE case_id = $1 AND reason_code = $2 "
        "ORDER BY at",
        case_id,
        "RECUSAL_REQUIRED",
    )
    assert [(row["actor_id"], row["operation"]) for row in rows] == [("officer-2", "claim"), ("officer-1", "claim")]


async def test_every_case_operation(http: httpx.AsyncClient, api: LiveApi) -> None:
    # 补正 comes before acceptance (Art. 32): the period starts when the acceptance stage accepts.
    accepting = {**DEFINITION, "deadline": {**DEFINITION["deadline"], "starts_after_stage": "acceptance"}}
    case_id = (await start(http, api, definition=accepting))["case_id"]
    task_id = await wait_for_task(http, api, "officer", case_id, "acceptance")
    await act(http, api, "officer", f"/v1/tasks/{task_id}/claim")

    requested = await act(
        http, api, "officer", f"/v1/cases/{case_id}/request-supplement",
        {"items": [{"item": "site plan", "reason": "not signed"}], "comment": "补正"},
    )  # fmt: skip
    assert requested.status_code == 200 and requested.json()["status"] == "awaiting_supplement", requested.text
    problem(await act(http, api, "officer", f"/v1/tasks/{task_id}/decide", {"decision": "approve"}), 409, "CASE_PAUSED")
    supplied = await act(
        http, api, "service", f"/v1/cases/{case_id}/supplement",
        {"documents": [{"uri": "s3://docs/plan.pdf", "sha256": "b" * 64, "size": 10, "name": "plan"}]},
    )  # fmt: skip
    assert supplied.status_code == 200 and supplied.json()["status"] == "in_review", supplied.text
    problem(await act(http, api, "head", f"/v1/cases/{case_id}/extend", {"reason": "early"}), 409, "CLOCK_NOT_STARTED")
    accepted = await act(http, api, "officer", f"/v1/tasks/{task_id}/decide", {"decision": "approve"})
    assert accepted.status_code == 200, accepted.text

    problem(await act(http, api, "officer", f"/v1/cases/{case_id}/extend", {"reason": "complex"}), 409, "NOT_ALLOWED")
    extended = await act(http, api, "head", f"/v1/cases/{case_id}/extend", {"reason": "complex site"})
    assert extended.status_code == 200, extended.text
    commented = await act(http, api, "officer", f"/v1/cases/{case_id}/comment", {"text": "on the case"})
    assert commented.status_code == 200, commented.text

    problem(await act(http, api, "officer", f"/v1/cases/{case_id}/withdraw", {"reason": "x"}), 409, "NOT_APPLICANT")
    withdrawn = await act(http, api, "service", f"/v1/cases/{case_id}/withdraw", {"reason": "applicant withdrew"})
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn", withdrawn.text


async def test_unknown_and_malformed_targets(http: httpx.AsyncClient, api: LiveApi) -> None:
    problem(await http.get("/v1/cases/generic:NOPE-404", headers=api.headers("admin")), 404, "CASE_NOT_FOUND")
    problem(
        await http.get("/v1/cases/generic:NOPE-404/timeline", headers=api.headers("auditor")), 404, "CASE_NOT_FOUND"
    )
    problem(await http.get("/v1/cases/generic:NOPE-404/history", headers=api.headers("auditor")), 404, "CASE_NOT_FOUND")
    problem(
        await http.get("/v1/cases/generic:NOPE-404/verification", headers=api.headers("auditor")), 404, "CASE_NOT_FOUND"
    )
    gone = await act(http, api, "officer", "/v1/tasks/generic:NOPE-404/acceptance/1/claim")
    problem(gone, 404, "TASK_NOT_FOUND")
    encoded = await act(http, api, "officer", "/v1/tasks/generic:NOPE-404%2Facceptance%2F1/claim")
    problem(encoded, 404, "TASK_NOT_FOUND")
    problem(
        await act(http, api, "officer", "/v1/cases/generic:NOPE-404/withdraw", {"reason": "r"}), 404, "CASE_NOT_FOUND"
    )
    problem(await http.get("/v1/cases/not a case", headers=api.headers("admin")), 422, "VALIDATION_ERROR")
    problem(await act(http, api, "officer", "/v1/tasks/generic:X/acceptance/1/fly"), 404, "NOT_FOUND")
    listed = problem(
        await http.get("/v1/inbox", params={"limit": 0}, headers=api.headers("alice")), 422, "VALIDATION_ERROR"
    )
    assert listed["errors"][0] == {
        "field": "limit",
        "location": "query",
        "message": listed["errors"][0]["message"],
        "type": "greater_than_equal",
    }


async def test_inbox_filters_and_pages(http: httpx.AsyncClient, api: LiveApi) -> None:
    cases = [(await start(http, api, priority=bool(n % 2)))["case_id"] for n in range(3)]
    for case_id in cases:
        await wait_for_task(http, api, "officer", case_id, "acceptance")
    priority = await inbox_ids(http, api, "officer", priority=True, process="generic")
    assert any(t.startswith(cases[1] + "/") for t in priority)
    assert not any(t.startswith(cases[0] + "/") for t in priority)
    first = (await http.get("/v1/inbox", params={"limit": 2}, headers=api.headers("officer"))).json()
    assert len(first["items"]) == 2 and first["next_offset"] == 2
    second = (await http.get("/v1/inbox", params={"limit": 2, "offset": 2}, headers=api.headers("officer"))).json()
    assert not {t["task_id"] for t in first["items"]} & {t["task_id"] for t in second["items"]}
    assert await inbox_ids(http, api, "nobody") == []


async def test_callback_url_is_registered_at_start(
    http: httpx.AsyncClient, api: LiveApi, dev_server_env: WorkflowEnvironment
) -> None:
    from schemas.case import CaseInput

    started = await start(http, api, callback_url="https://portal.example.test/hooks/approvals")
    handle = dev_server_env.client.get_workflow_handle(started["case_id"])
    history = await handle.fetch_history()
    first = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    case = CaseInput.model_validate_json(first.data)
    assert str(case.callback_url) == "https://portal.example.test/hooks/approvals"
    assert case.started_by.id == "svc-portal"


async def test_a_callback_to_a_host_outside_the_allowlist_is_422(http: httpx.AsyncClient, api: LiveApi) -> None:
    """Callbacks are POSTed from inside the network: an internal address must not be reachable through them."""
    body = start_body(callback_url="http://169.254.169.254/latest/meta-data")
    response = await http.post("/v1/cases/generic", json=body, headers=api.headers("service"))
    problem(response, 422, "VALIDATION_ERROR")
    assert "CALLBACK_ALLOWED_HOSTS" in response.text and "callback_url" in response.text


async def test_openapi_names_the_routes(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    for path in (
        "/v1/cases/{process}", "/v1/cases", "/v1/cases/{case_id}", "/v1/inbox", "/v1/cases/{case_id}/timeline",
        "/v1/cases/{case_id}/history", "/health",
    ):  # fmt: skip
        assert path in paths
    for operation in (
        "claim",
        "unclaim",
        "decide",
        "transfer",
        "delegate",
        "add-signer",
        "return",
        "comment",
        "urge",
        "cc",
    ):
        assert f"/v1/tasks/{{task_id}}/{operation}" in paths
    for operation in ("withdraw", "supplement", "request-supplement", "extend"):
        assert f"/v1/cases/{{case_id}}/{operation}" in paths


EXAMPLE_PATH_PARAMETERS = {
    "process": "generic", "case_id": "generic:A-1", "task_id": "generic:A-1/review/1", "layer": "national",
    "year": "2026", "document_id": "00000000-0000-0000-0000-000000000000", "name": "billboard-permit", "version": "1",
}  # fmt: skip
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def test_a_method_a_path_does_not_serve_is_405_with_exactly_the_methods_it_serves(
    http: httpx.AsyncClient, api: LiveApi
) -> None:
    """For every path of the OpenAPI document, every other method (OPTIONS included: it is not served)
    gets 405 with an Allow header naming exactly the documented methods, before authentication."""
    paths = (await http.get("/openapi.json")).json()["paths"]
    for template, path_item in paths.items():
        path = template.format(**EXAMPLE_PATH_PARAMETERS)
        documented = {method.upper() for method in path_item}
        for method in set(METHODS) - documented:
            response = await http.request(method, path)
            assert response.status_code == 405, f"{method} {path}: {response.status_code} {response.text}"
            assert set(response.headers["allow"].split(", ")) == documented, (method, path, response.headers)
            if method != "HEAD":
                assert path in problem(response, 405, "METHOD_NOT_ALLOWED")["detail"]


async def test_a_path_is_served_by_the_route_its_parameters_fit(http: httpx.AsyncClient, api: LiveApi) -> None:
    """`/v1/cases/generic` is a process (started by POST), not a malformed case id: GET is 405, not 422.
    A path no route's parameters fit is answered by the route of its shape, naming the parameter."""
    generic = problem(await http.get("/v1/cases/generic", headers=api.headers("admin")), 405, "METHOD_NOT_ALLOWED")
    assert generic["detail"] == "GET is not served at /v1/cases/generic; it serves POST"
    case = await http.request("OPTIONS", "/v1/cases/generic:A-1", headers=api.headers("admin"))
    assert problem(case, 405, "METHOD_NOT_ALLOWED") and case.headers["allow"] == "GET"
    malformed = problem(await http.get("/v1/cases/not a case", headers=api.headers("admin")), 422, "VALIDATION_ERROR")
    assert [error["field"] for error in malformed["errors"]] == ["case_id"]
    bad_process = await http.post("/v1/cases/No_Such!", json=start_body(), headers=api.headers("service"))
    assert [error["field"] for error in problem(bad_process, 422, "VALIDATION_ERROR")["errors"]] == ["process"]
    elsewhere = await http.put("/v1/cases/not a case", headers=api.headers("admin"))
    assert problem(elsewhere, 405, "METHOD_NOT_ALLOWED") and elsewhere.headers["allow"] == "GET, POST"


async def test_openapi_documents_every_answer_as_a_problem(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    assert {"type", "title", "status", "detail", "code"} <= set(spec["components"]["schemas"]["Problem"]["properties"])
    for template, path_item in spec["paths"].items():
        for method, operation in path_item.items():
            responses = operation["responses"]
            probes = {"/health": {"200", "503"}, "/ready": {"200", "503"}, "/metrics": {"200"}}  # no auth, no body
            if template in probes:
                assert set(responses) == probes[template], template
                continue
            expected = {"401", "403", "404", "405", "409", "422", "503"}
            expected |= {"400", "413"} if "requestBody" in operation else set()
            assert expected <= responses.keys(), (method, template, sorted(responses))
            for status in expected:
                assert responses[status]["content"] == {"application/problem+json": {"schema": problem_ref}}
            assert "Allow" in responses["405"]["headers"]


def test_dev_tokens_file_shape_is_accepted(tmp_path: Path) -> None:
    from api.auth import TokensFile
    from approvals.devstack.identities import write_dev_tokens

    entries = write_dev_tokens(tmp_path / "dev-tokens.json")
    source = TokensFile(tmp_path / "dev-tokens.json")
    principal = source.lookup(entries[0]["token"])
    assert principal is not None and principal.id == entries[0]["id"]
    assert source.lookup("wrong") is None


def test_tokens_file_is_parsed_once_and_again_when_its_stat_changes(tmp_path: Path) -> None:
    """One stat per lookup, no read while (mtime, size, inode) stay; a replaced file with the same mtime and
    size (an atomic rename) is read again, because its inode differs."""
    import os

    from api.auth import TokensFile

    path = tmp_path / "tokens.json"
    path.write_text(json.dumps([{"token": "alpha-token", "id": "alice"}]))
    source = TokensFile(path)
    assert (found := source.lookup("alpha-token")) is not None and found.id == "alice"
    parsed = source._entries
    assert source.lookup("alpha-token") is not None and source._entries is parsed  # not parsed again

    before = path.stat()
    replacement = tmp_path / "tokens.json.new"
    replacement.write_text(json.dumps([{"token": "bravo-token", "id": "bobby"}]))  # same length as before
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, path)
    assert path.stat().st_mtime_ns == before.st_mtime_ns and path.stat().st_size == before.st_size
    assert source.lookup("alpha-token") is None
    assert (found := source.lookup("bravo-token")) is not None and found.id == "bobby"


# --- the CLI over the same API ------------------------------------------------------------------------


async def test_cli_commands_and_exit_codes(http: httpx.AsyncClient, api: LiveApi, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from approvals.cli import app

    runner = CliRunner()

    def parsed(output: str) -> Any:
        """The command's JSON (the in-process server's log lines share the captured stdout)."""
        start = next(i for i, line in enumerate(output.splitlines(keepends=True)) if line[:1] in "{[")
        text = "".join(output.splitlines(keepends=True)[start:])
        return json.JSONDecoder().raw_decode(text)[0]

    async def cli(who: str | None, *args: str) -> Any:
        env = {"APPROVALS_API_URL": api.url, "APPROVALS_TOKEN": api.tokens[who] if who else "", "COLUMNS": "250"}
        return await asyncio.to_thread(runner.invoke, app, list(args), env=env)

    request = tmp_path / "start.json"
    business_key = f"CLI-{uuid.uuid4().hex[:8]}"
    request.write_text(json.dumps(start_body(business_key)))
    started = await cli("service", "start", "generic", "--file", str(request), "--json")
    assert started.exit_code == 0, started.output
    case_id = parsed(started.stdout)["case_id"]
    again = await cli("service", "start", "generic", "--file", str(request))
    assert again.exit_code == 0 and "already started" in again.stdout

    task_id = await wait_for_task(http, api, "officer", case_id, "acceptance")
    inbox = await cli("officer", "inbox", "--stage", "acceptance", "--json")
    assert task_id in [t["task_id"] for t in parsed(inbox.stdout)["items"]]

    denied = await cli("bob", "claim", task_id)
    assert denied.exit_code == 3 and "NOT_ASSIGNEE" in denied.output
    assert (await cli("officer", "claim", task_id)).exit_code == 0
    no_comment = await cli("officer", "decide", task_id, "reject")
    assert no_comment.exit_code == 3 and "COMMENT_REQUIRED" in no_comment.output
    decided = await cli("officer", "decide", task_id, "approve", "-m", "ok")
    assert decided.exit_code == 0 and "done" in decided.stdout
    recusal = await cli("officer", "declare-conflict", "--help")
    assert recusal.exit_code == 0 and "回避" in recusal.stdout and "--relationship" in recusal.stdout

    shown = await cli("service", "case", case_id)
    assert shown.exit_code == 0 and task_id in shown.stdout
    timeline = await cli("auditor", "timeline", case_id, "--json")
    rows = parsed(timeline.stdout)
    assert rows[0]["type"] == "case.started" and rows[0]["data"]["business_key"] == business_key
    table = await cli("auditor", "timeline", case_id)
    assert table.exit_code == 0, table.output
    assert "Officer-1 (one_window)" in table.stdout and "decided: approve" in table.stdout and "“ok”" in table.stdout
    assert "times in UTC+8" in table.stdout and '"definition"' not in table.stdout  # no raw payloads
    exported = tmp_path / "history.json"
    assert (await cli("auditor", "history", "export", case_id, "-o", str(exported))).exit_code == 0
    assert json.loads(exported.read_text())["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"

    assert (await cli("service", "start", "nope", "--file", str(request))).exit_code == 2  # unknown process
    assert (await cli("service", "case")).exit_code == 2  # missing argument
    assert (await cli(None, "inbox")).exit_code == 2  # no token
    assert (await cli("auditor", "comment", case_id, "hi")).exit_code == 3  # read-only
    unreachable = await asyncio.to_thread(
        runner.invoke, app, ["inbox", "--api-url", "http://127.0.0.1:9"], env={"APPROVALS_TOKEN": "x"}
    )
    assert unreachable.exit_code == 4 and "cannot reach" in unreachable.output


async def test_unreachable_postgres_or_temporal_is_503_with_retry_after(
    api: LiveApi, database_url: str, db_pool: asyncpg.Pool
) -> None:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from api.app import ApiServer, create_app
    from approvals.devstack.stack import free_port

    closed_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    await closed_pool.close()  # PostgreSQL "down": every query fails
    dead_temporal = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True, data_converter=pydantic_data_converter)
    settings = api.settings.model_copy(update={"api_port": free_port()})
    server = ApiServer(create_app(settings, pool=closed_pool, temporal_client=dead_temporal), settings)
    stop = asyncio.Event()
    serving = asyncio.create_task(server.serve_until(stop))
    try:
        while not server.started:
            assert not serving.done(), serving
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.api_port}", timeout=60) as down:
            # A read needs PostgreSQL; a start or an operation goes to Temporal without asking it first (the
            # worker's recording, not the API's pool, writes it: see ApprovalsService), here down too.
            for method, path, body, unavailable in (
                ("GET", "/v1/inbox", None, "PostgreSQL"),
                ("POST", "/v1/cases/generic", start_body(), "Temporal"),
                ("POST", "/v1/tasks/generic:X-1/acceptance/1/claim", {}, "Temporal"),
            ):
                response = await down.request(method, path, json=body, headers=api.headers("service"))
                assert f"{unavailable} is unavailable" in problem(response, 503, "UNAVAILABLE")["detail"]
                assert int(response.headers["retry-after"]) > 0
            health = await down.get("/health")
            assert health.status_code == 503
    finally:
        stop.set()
        await serving

    # PostgreSQL up, Temporal down
    settings = api.settings.model_copy(update={"api_port": free_port()})
    server = ApiServer(create_app(settings, pool=db_pool, temporal_client=dead_temporal), settings)
    stop = asyncio.Event()
    serving = asyncio.create_task(server.serve_until(stop))
    try:
        while not server.started:
            assert not serving.done(), serving
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.api_port}", timeout=60) as down:
            body = start_body()
            response = await down.post("/v1/cases/generic", json=body, headers=api.headers("service"))
            assert "Temporal is unavailable" in problem(response, 503, "UNAVAILABLE")["detail"]
            assert int(response.headers["retry-after"]) > 0
            assert (
                await db_pool.fetchval("SELECT count(*) FROM cases WHERE business_key = $1", body["business_key"]) == 0
            )
    finally:
        stop.set()
        await serving


async def test_aborted_or_timed_out_update_is_retried_with_the_same_id() -> None:
    from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
    from temporalio.service import RPCError, RPCStatusCode

    from approvals import service as service_module
    from approvals.service import ApprovalsService
    from schemas.case import CaseStatus, CommentRequest, OperationResult
    from schemas.principal import Principal

    result = OperationResult(case_id="generic:R-1", status=CaseStatus.in_review, last_seq=7)
    failures: list[BaseException] = [
        RPCError("workflow update was aborted", RPCStatusCode.UNAVAILABLE, b""),
        WorkflowUpdateRPCTimeoutOrCancelledError(),
    ]
    seen_ids: list[str] = []

    class Handle:
        async def execute_update(self, update: str, request: Any, *, id: str, **_: Any) -> OperationResult:
            seen_ids.append(id)
            if failures:
                raise failures.pop(0)
            return result

    engine = ApprovalsService(client=None, pool=None, settings=None)  # type: ignore[arg-type]
    request = CommentRequest(actor=Principal(id="u"), text="t")
    comment = operations(Scope.case)["comment"]
    assert await engine._execute_update(Handle(), comment, request, "comment:key-1") == result  # type: ignore[arg-type]
    assert seen_ids == ["comment:key-1"] * 3

    class Stuck:
        async def execute_update(self, *args: Any, **kwargs: Any) -> OperationResult:
            raise RPCError("workflow update was aborted", RPCStatusCode.UNAVAILABLE, b"")

    original = service_module.UPDATE_DEADLINE_SECONDS
    service_module.UPDATE_DEADLINE_SECONDS = 1.0
    try:
        with pytest.raises(service_module.Unavailable, match="same Idempotency-Key"):
            await engine._execute_update(Stuck(), comment, request, "comment:key-2")  # type: ignore[arg-type]
    finally:
        service_module.UPDATE_DEADLINE_SECONDS = original


def test_a_lost_database_connection_is_a_503_not_a_500() -> None:
    """What asyncpg raises when PostgreSQL goes away (connection refused, closed, or dropped mid-query) is
    reported as unavailable, to retry later; an ordinary error is not."""
    import asyncpg

    from approvals.errors import as_unavailable

    for error in (
        ConnectionRefusedError(111, "Connect call failed"),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.InternalClientError("unexpected connection state"),
        asyncpg.CannotConnectNowError("the database system is shutting down"),
    ):
        unavailable = as_unavailable(error)
        assert unavailable is not None and unavailable.status == 503, error
        assert "PostgreSQL is unavailable" in unavailable.detail
    assert as_unavailable(ValueError("a bug")) is None


def test_a_temporal_call_past_its_deadline_is_a_503_not_a_500() -> None:
    """A query of a case no worker answers for now (a worker killed, its first workflow task not run yet) ends
    with the client's own deadline, which the SDK reports as CANCELLED "Timeout expired": retry later."""
    from temporalio.service import RPCError, RPCStatusCode

    from approvals.errors import as_unavailable

    unavailable = as_unavailable(RPCError("Timeout expired", RPCStatusCode.CANCELLED, b""))
    assert unavailable is not None and unavailable.status == 503
    assert "did not answer in time" in unavailable.detail
    assert as_unavailable(RPCError("cancelled by the caller", RPCStatusCode.CANCELLED, b"")) is None
