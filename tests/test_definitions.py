"""Registered process definitions on the real stack: versions by content, starts by name (latest or pinned),
the version in the case's record, retirement, and the errors (422, 404, 409), with FREEFORM_DEFINITIONS off."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from typer.testing import CliRunner, Result

from approvals.cli import app
from tests.api_server import LiveApi, live_api_fixture
from tests.cases import json_of
from tests.test_api import DEFINITION, act, problem, wait_for_task

api = live_api_fixture("definitions", freeform_definitions=False)

APPLICANT = {"id": "ent-001", "name": "Alashankou Metals Co.", "unit": "enterprise", "roles": ["applicant"]}


@pytest_asyncio.fixture
async def http(api: LiveApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        yield client


def second_version() -> dict[str, Any]:
    """The same approval with a longer review deadline: other content, so a new version."""
    return {**DEFINITION, "deadline": {**DEFINITION["deadline"], "working_days": 15}}


async def register(http: httpx.AsyncClient, api: LiveApi, name: str, definition: dict[str, Any]) -> httpx.Response:
    return await http.post(
        "/v1/definitions", json={"name": name, "definition": definition}, headers=api.headers("admin")
    )


async def start_named(http: httpx.AsyncClient, api: LiveApi, name: str, **pin: Any) -> httpx.Response:
    body = {
        "business_key": f"DEF-{uuid.uuid4().hex[:10]}",
        "title": "Billboard at Border Road 9",
        "applicant": APPLICANT,
        "definition_name": name,
        **pin,
    }
    return await http.post("/v1/cases/generic", json=body, headers=api.headers("service"))


async def started_payload(db_pool: asyncpg.Pool, case_id: str) -> dict[str, Any]:
    payload = await db_pool.fetchval(
        "SELECT payload::text FROM audit_events WHERE case_id = $1 AND type = 'case.started'", case_id
    )
    return json.loads(payload)


async def test_a_definition_in_two_versions_with_a_case_running_on_each(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    name = f"billboard-{uuid.uuid4().hex[:6]}"
    first = await register(http, api, name, DEFINITION)
    assert first.status_code == 201, first.text
    v1 = first.json()["version"]
    assert v1["version"] == 1 and len(v1["sha256"]) == 64
    again = await register(http, api, name, DEFINITION)  # the same content: the same version, not a new one
    assert again.status_code == 200 and again.json() == {"created": False, "version": v1}
    second = await register(http, api, name, second_version())
    assert second.status_code == 201 and second.json()["version"]["version"] == 2
    v2 = second.json()["version"]
    assert v2["sha256"] != v1["sha256"]

    listed = await http.get(f"/v1/definitions/{name}", headers=api.headers("service"))
    assert [(v["version"], v["sha256"]) for v in listed.json()] == [(1, v1["sha256"]), (2, v2["sha256"])]
    processes = (await http.get("/v1/processes", headers=api.headers("service"))).json()
    generic = next(process for process in processes if process["name"] == "generic")
    assert {"source": "registered", "name": name, "versions": [
        {"version": 1, "sha256": v1["sha256"], "retired": False},
        {"version": 2, "sha256": v2["sha256"], "retired": False},
    ]} in generic["definitions"]  # fmt: skip
    assert next(p for p in processes if p["name"] == "project-approval")["definitions"][0]["source"] == "code"

    # FREEFORM_DEFINITIONS is off: a service cannot bring its own definition, but starts a registered one
    freeform = await http.post(
        "/v1/cases/generic",
        json={"business_key": "DEF-freeform", "title": "t", "applicant": APPLICANT, "definition": DEFINITION},
        headers=api.headers("service"),
    )
    problem(freeform, 403, "FREEFORM_DEFINITIONS_OFF")
    pinned = await start_named(http, api, name, definition_version=1)
    latest = await start_named(http, api, name)
    assert pinned.status_code == latest.status_code == 201, (pinned.text, latest.text)
    on_v1, on_v2 = pinned.json()["case_id"], latest.json()["case_id"]
    await wait_for_task(http, api, "officer", on_v1, "acceptance")
    await wait_for_task(http, api, "officer", on_v2, "acceptance")
    for case_id, version in ((on_v1, v1), (on_v2, v2)):
        recorded = (await started_payload(db_pool, case_id))["registered_definition"]
        assert recorded == {"name": name, "version": version["version"], "sha256": version["sha256"]}
    assert (await started_payload(db_pool, on_v2))["definition"]["deadline"]["working_days"] == 15

    # retiring version 1 stops new starts of it; the case running on it goes on
    retired = await http.post(
        f"/v1/definitions/{name}/versions/1/retire", json={"reason": "superseded"}, headers=api.headers("admin")
    )
    assert retired.status_code == 200 and retired.json()["retired_by"] == "admin-1", retired.text
    problem(await start_named(http, api, name, definition_version=1), 409, "DEFINITION_RETIRED")
    assert (await start_named(http, api, name)).status_code == 201  # the latest in force: version 2
    task_id = await wait_for_task(http, api, "officer", on_v1, "acceptance")
    assert (await act(http, api, "officer", f"/v1/tasks/{task_id}/claim")).status_code == 200
    decided = await act(http, api, "officer", f"/v1/tasks/{task_id}/decide", {"decision": "approve"})
    assert decided.status_code == 200, decided.text


async def test_definition_errors(http: httpx.AsyncClient, api: LiveApi) -> None:
    vote = {  # a vote that can never reach its quorum and has no deadline to close it
        "kind": "stage", "id": "vote", "title": "Committee vote", "legal_basis": "Art. 22", "mode": "quorum",
        "assignees": ["m1", "m2"], "quorum": {"min_attendance": 3}, "allowed_decisions": ["approve", "reject"],
    }  # fmt: skip
    body = problem(await register(http, api, "never-runs", {**DEFINITION, "steps": [vote]}), 422, "DEFINITION_INVALID")
    assert body["errors"][0]["field"] == "definition" and "cannot run" in body["errors"][0]["message"], body
    assert "exceeds the 2 members" in body["errors"][0]["message"]
    malformed = {**DEFINITION, "steps": [{**DEFINITION["steps"][1], "assignees": [], "candidate_roles": []}]}
    body = problem(await register(http, api, "malformed", malformed), 422, "DEFINITION_INVALID")
    assert body["errors"][0]["field"].startswith("definition.steps.0"), body
    bad_name = await http.post(
        "/v1/definitions", json={"name": "Not A Name", "definition": DEFINITION}, headers=api.headers("admin")
    )
    assert problem(bad_name, 422, "VALIDATION_ERROR")["errors"][0]["field"] == "name"
    problem(await http.get("/v1/definitions/no-such-name", headers=api.headers("service")), 404, "UNKNOWN_DEFINITION")
    problem(await start_named(http, api, "no-such-name"), 404, "UNKNOWN_DEFINITION")
    problem(await start_named(http, api, "no-such-name", definition_version=None, definition=DEFINITION), 422,
            "VALIDATION_ERROR")  # fmt: skip
    not_admin = await http.post(
        "/v1/definitions", json={"name": "mine", "definition": DEFINITION}, headers=api.headers("service")
    )
    problem(not_admin, 403, "ROLE_REQUIRED")
    name = f"pinned-{uuid.uuid4().hex[:6]}"
    assert (await register(http, api, name, DEFINITION)).status_code == 201
    problem(await start_named(http, api, name, definition_version=7), 404, "UNKNOWN_DEFINITION_VERSION")


async def test_the_cli_registers_lists_and_retires(api: LiveApi, tmp_path: Path) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    definition_file = tmp_path / "definition.json"
    definition_file.write_text(json.dumps(DEFINITION), encoding="utf-8")
    common = ["--api-url", api.url, "--token", api.tokens["admin"]]

    async def approvals(*args: str) -> Result:
        # in a thread: the command's HTTP client is synchronous, and the API serves on this event loop
        return await asyncio.to_thread(CliRunner().invoke, app, [*args, *common], env={"COLUMNS": "200"})

    registered = await approvals("definitions", "register", name, "-f", str(definition_file))
    assert registered.exit_code == 0 and "registered a new version" in registered.output, registered.output
    again = await approvals("definitions", "register", name, "-f", str(definition_file), "--json")
    assert json_of(again.output)["created"] is False
    retired = await approvals("definitions", "retire", name, "1", "-r", "wrong deadline")
    assert retired.exit_code == 0 and "retired" in retired.output and "wrong deadline" in retired.output
    listed = await approvals("definitions", "list", name, "--json")
    assert [(v["version"], v["retire_reason"]) for v in json_of(listed.output)] == [(1, "wrong deadline")]
    unknown = await approvals("definitions", "list", "no-such-name")
    assert unknown.exit_code != 0 and "UNKNOWN_DEFINITION" in unknown.output
