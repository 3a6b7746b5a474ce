"""Nobody approves their own case, a service acts only for its own applicants, and the raw record is for
auditors: each refusal over real HTTP, recorded in denied_attempts like any refused operation."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import pytest_asyncio

from approvals.admission import RateLimit, start_refusal
from approvals.settings import SettingsError, load_settings
from schemas.case import CaseInput, ConcernedPerson, Relationship
from schemas.principal import Principal
from schemas.process import ProcessDefinition, Stage
from tests.api_server import JWT_AUDIENCE, JWT_ISSUER, JWT_SECRET, LiveApi, live_api_fixture

api = live_api_fixture("trust-api")

ENTERPRISE = {"id": "ent-001", "name": "Alashankou Metals Co.", "unit": "enterprise", "roles": ["applicant"]}


@pytest_asyncio.fixture
async def http(api: LiveApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        yield client


def generic_case(stage: dict[str, Any], applicant: dict[str, Any] = ENTERPRISE) -> dict[str, Any]:
    definition = {"process": "generic", "title": "Permit", "legal_basis": "Art. 4", "steps": [stage]}
    key = f"TRUST-{uuid.uuid4().hex[:10]}"
    return {"business_key": key, "title": "A permit", "applicant": applicant, "definition": definition}


async def denials(db_pool: asyncpg.Pool, actor_id: str, code: str) -> list[asyncpg.Record]:
    return await db_pool.fetch(
        "SELECT operation, case_id, reason_code FROM denied_attempts WHERE actor_id = $1 AND reason_code = $2",
        actor_id,
        code,
    )


async def test_a_service_cannot_route_a_case_to_itself_and_approve_it(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    # Named as the stage's assignee: refused at the start, naming the stage.
    own = generic_case({"kind": "stage", "id": "review", "title": "Review", "legal_basis": "Art. 10", "assignees": ["svc-portal"]})  # fmt: skip
    response = await http.post("/v1/cases/generic", json=own, headers=api.headers("service"))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "definition"
    assert "stage review is assigned to svc-portal, the starter" in response.json()["detail"]

    # Through a role it holds: the case starts, but the starter can neither claim nor decide it.
    pool = generic_case({"kind": "stage", "id": "review", "title": "Review", "legal_basis": "Art. 10", "candidate_roles": ["service"]})  # fmt: skip
    started = await http.post("/v1/cases/generic", json=pool, headers=api.headers("service"))
    assert started.status_code == 201, started.text
    case_id = started.json()["case_id"]
    task_id = f"{case_id}/review/1"
    for _ in range(100):
        if (await http.get(f"/v1/cases/{case_id}", headers=api.headers("service"))).json()["tasks"]:
            break
        await asyncio.sleep(0.05)
    for operation, body in (("claim", {}), ("decide", {"decision": "approve"})):
        refused = await http.post(f"/v1/tasks/{task_id}/{operation}", json=body, headers=api.headers("service"))
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "SEPARATION_OF_DUTIES"
        assert "svc-portal is the starter of case" in refused.json()["detail"]
    assert {row["operation"] for row in await denials(db_pool, "svc-portal", "SEPARATION_OF_DUTIES")} >= {
        "start:generic", "claim", "decide",
    }  # fmt: skip


async def test_a_service_names_only_the_applicants_it_is_configured_for(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    stage = {"kind": "stage", "id": "review", "title": "Review", "legal_basis": "Art. 10", "assignees": ["alice"]}
    organ_head = {"id": "head-1", "name": "Head of the Committee", "unit": "管委会", "roles": ["applicant"]}
    response = await http.post(
        "/v1/cases/generic", json=generic_case(stage, organ_head), headers=api.headers("service")
    )
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "APPLICANT_NOT_ALLOWED"
    assert "head-1" in response.json()["detail"]
    assert await denials(db_pool, "svc-portal", "APPLICANT_NOT_ALLOWED")


async def test_the_raw_history_is_for_auditors_and_a_refused_read_is_recorded(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    stage = {"kind": "stage", "id": "review", "title": "Review", "legal_basis": "Art. 10", "assignees": ["alice"]}
    started = await http.post("/v1/cases/generic", json=generic_case(stage), headers=api.headers("service"))
    case_id = started.json()["case_id"]
    for _ in range(100):  # alice may read the case once her task is recorded
        if (await http.get(f"/v1/cases/{case_id}", headers=api.headers("alice"))).status_code == 200:
            break
        await asyncio.sleep(0.05)
    cc = await http.post(f"/v1/cases/{case_id}/cc", json={"observers": ["bob"]}, headers=api.headers("alice"))
    assert cc.status_code == 200, cc.text

    assert (await http.get(f"/v1/cases/{case_id}", headers=api.headers("bob"))).status_code == 200  # copied in
    for reader in ("bob", "service", "alice"):
        refused = await http.get(f"/v1/cases/{case_id}/history", headers=api.headers(reader))
        assert refused.status_code == 403, (reader, refused.text)
        assert refused.json()["code"] == "ROLE_REQUIRED"
    assert (await http.get(f"/v1/cases/{case_id}/history", headers=api.headers("auditor"))).status_code == 200

    recorded = await db_pool.fetch(
        "SELECT actor_id FROM denied_attempts WHERE case_id = $1 AND operation = 'read:history'", case_id
    )
    assert {row["actor_id"] for row in recorded} == {"bob", "svc-portal", "alice"}
    outsider = await http.get(f"/v1/cases/{case_id}/timeline", headers=api.headers("nobody"))
    assert outsider.status_code == 403 and outsider.json()["code"] == "NOT_A_CASE_READER"
    assert (
        await db_pool.fetchval(
            "SELECT count(*) FROM denied_attempts WHERE case_id = $1 AND operation = 'read:timeline'", case_id
        )
        == 1
    )


def test_refused_reads_are_recorded_at_most_a_few_times_a_minute_per_principal() -> None:
    now = [0.0]
    limit = RateLimit(3, 60, clock=lambda: now[0])
    assert [limit.allow("mallory") for _ in range(5)] == [True, True, True, False, False]
    assert limit.allow("bob")  # each principal has their own allowance
    now[0] = 60.0
    assert limit.allow("mallory")  # a minute later the window has moved on


def test_free_form_definitions_are_for_admins_unless_the_setting_allows_services() -> None:
    service, admin = Principal(id="svc-portal", roles=("service",)), Principal(id="admin-1", roles=("admin",))
    production = load_settings(applicants_by_starter={"*": ["ent-*"]})
    refusal = start_refusal(service, "generic", None, production)
    assert refusal is not None and refusal.code == "FREEFORM_DEFINITIONS_OFF"
    assert start_refusal(admin, "generic", None, production) is None
    assert start_refusal(service, "project-approval", None, production) is None
    assert start_refusal(service, "generic", None, production.model_copy(update={"freeform_definitions": True})) is None


def test_a_starter_without_an_applicant_rule_names_no_applicant() -> None:
    definition = ProcessDefinition(
        process="generic", title="t", legal_basis="Art. 4",
        steps=[Stage(id="review", title="Review", legal_basis="Art. 10", assignees=("alice",))],
    )  # fmt: skip
    case = CaseInput(
        business_key="K-1", definition=definition, title="t", applicant=Principal(id="ent-9"),
        started_by=Principal(id="svc-other", roles=("service",)),
    )  # fmt: skip
    starter = Principal(id="svc-other", roles=("service",))
    rules = load_settings(freeform_definitions=True, applicants_by_starter={"svc-portal": ["ent-*"]})
    refusal = start_refusal(starter, "generic", case, rules)
    assert refusal is not None and refusal.code == "APPLICANT_NOT_ALLOWED"
    allowed = rules.model_copy(update={"applicants_by_starter": {"svc-other": ["ent-?"]}})
    assert start_refusal(starter, "generic", case, allowed) is None


def test_a_case_naming_a_concerned_person_as_reviewer_is_refused_at_start() -> None:
    """回避: a stage may not name as its reviewer someone the case concerns; the refusal names the ground."""
    definition = ProcessDefinition(
        process="generic", title="t", legal_basis="Art. 4",
        steps=[Stage(id="review", title="Review", legal_basis="Art. 10", assignees=("alice",))],
    )  # fmt: skip
    starter = Principal(id="svc-portal", roles=("service",))
    spouse = ConcernedPerson(user_id="alice", relationship=Relationship.close_relative, reason="spouse of the director")
    case = CaseInput(
        business_key="K-1", definition=definition, title="t", applicant=Principal(id="ent-9"), started_by=starter,
        concerned=[spouse],
    )  # fmt: skip
    rules = load_settings(freeform_definitions=True, applicants_by_starter={"svc-portal": ["ent-*"]})
    refusal = start_refusal(starter, "generic", case, rules)
    assert refusal is not None and (refusal.code, refusal.status) == ("RECUSAL_REQUIRED", 422)
    assert "close_relative" in refusal.message and "spouse" in refusal.message
    assert start_refusal(starter, "generic", case.model_copy(update={"concerned": []}), rules) is None


async def test_a_jwt_whose_roles_claim_is_not_a_list_of_strings_is_refused(
    http: httpx.AsyncClient, api: LiveApi
) -> None:
    claims = {"sub": "mallory", "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "exp": int(time.time()) + 60}
    for roles in ({"admin": True}, [{"role": "admin"}], 7):
        token = jwt.encode({**claims, "roles": roles}, JWT_SECRET, algorithm="HS256")
        response = await http.get("/v1/inbox", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (roles, response.text)
        assert "roles claim must be a list of strings" in response.json()["detail"]


def test_a_short_hs256_secret_stops_the_process_naming_the_setting() -> None:
    with pytest.raises(SettingsError, match="JWT_HS256_SECRET: .*at least 32"):
        load_settings(jwt_hs256_secret="too-short-to-be-safe")
