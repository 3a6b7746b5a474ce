"""Case search and the case state over real HTTP and the CLI: a Chinese substring of the applicant's name, the
credit code, combined with a business key prefix; what each reader may see; 422s naming the parameter; the
state after an event for auditors (404 for an event or case that does not exist)."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest_asyncio

from approvals.audit.state import state_at
from approvals.storage.queries import case_events
from tests.api_server import LiveApi, live_api_fixture
from tests.test_api import start_body

api = live_api_fixture("search-api")


@pytest_asyncio.fixture
async def http(api: LiveApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        yield client


def chinese_tag() -> str:
    """Two CJK characters of this test only, so other tests' cases in the database never match."""
    return "".join(chr(random.randint(0x4E00, 0x9FA5)) for _ in range(2))


async def listed(http: httpx.AsyncClient, api: LiveApi, who: str, expected: int, **params: Any) -> list[str]:
    """The case ids ``who`` finds, once the recording of ``expected`` of them has reached PostgreSQL."""
    for _ in range(200):
        response = await http.get("/v1/cases", params=params, headers=api.headers(who))
        assert response.status_code == 200, response.text
        found = [case["case_id"] for case in response.json()["items"]]
        if len(found) >= expected:
            return found
        await asyncio.sleep(0.1)
    return found


async def test_a_chinese_substring_search_with_a_key_prefix_and_what_each_reader_sees(
    http: httpx.AsyncClient, api: LiveApi
) -> None:
    tag, prefix = chinese_tag(), f"S{uuid.uuid4().hex[:6].upper()}"
    names = [f"新疆{tag}物流有限公司", f"{tag}枸杞加工厂", "Alashankou Metals Co."]
    case_ids = []
    for number, name in enumerate(names):
        applicant = {"id": "ent-001", "name": name, "unit": "enterprise", "roles": ["applicant"]}
        data = {"site": "Border Road 7", "unified_social_credit_code": f"91652700MA77XAMP{number}{number}"}
        body = start_body(f"{prefix}-{number}", applicant=applicant, data=data)
        response = await http.post("/v1/cases/generic", json=body, headers=api.headers("service"))
        assert response.status_code == 201, response.text
        case_ids.append(response.json()["case_id"])

    assert await listed(http, api, "auditor", 2, applicant_name=tag, sort="business_key") == case_ids[:2]
    assert await listed(http, api, "auditor", 1, applicant_name=f"{tag}物流") == [case_ids[0]]
    everything = await listed(http, api, "auditor", 3, business_key_prefix=prefix, sort="business_key")
    assert everything == case_ids
    assert await listed(http, api, "auditor", 1, credit_code="91652700ma77xamp22") == [case_ids[2]]
    assert await listed(
        http, api, "auditor", 1, business_key_prefix=prefix, applicant_name="metals", received_from="2026-01-01"
    ) == [case_ids[2]]
    assert sorted(await listed(http, api, "applicant", 3, business_key_prefix=prefix)) == case_ids  # their own
    assert await listed(http, api, "nobody", 0, business_key_prefix=prefix) == []

    for params, field in (
        ({"applicant_name": tag[0]}, "applicant_name"),
        ({"received_from": "2026-02-30"}, "received_from"),
        ({"credit_code": "91652700MA77XAMPLO"}, "credit_code"),
        ({"sort": "applicant_name"}, "sort"),
        ({"decided_from": "2026-03-03", "decided_to": "2026-03-02"}, "decided_to"),
        ({"aplicant_name": "物流"}, "aplicant_name"),  # a misspelt filter is no filter: refused, not ignored
    ):
        response = await http.get("/v1/cases", params=params, headers=api.headers("auditor"))
        assert response.status_code == 422, response.text
        assert [error["field"] for error in response.json()["errors"]] == [field], response.text

    from typer.testing import CliRunner

    from approvals.cli import app

    env = {"APPROVALS_API_URL": api.url, "APPROVALS_TOKEN": api.tokens["auditor"], "COLUMNS": "250"}
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["cases", "--name", f"{tag}物流", "--key-prefix", prefix, "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    output = result.stdout
    page = json.JSONDecoder().raw_decode(output[output.index("{") :])[0]
    assert [case["case_id"] for case in page["items"]] == [case_ids[0]]
    assert page["items"][0]["applicant_name"] == names[0]


async def test_the_case_state_after_an_event_for_auditors(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    response = await http.post("/v1/cases/generic", json=start_body(), headers=api.headers("service"))
    case_id = response.json()["case_id"]
    for _ in range(200):
        events = await case_events(db_pool, case_id)
        if events:
            break
        await asyncio.sleep(0.1)
    path = f"/v1/cases/{case_id}/state"

    first = await http.get(path, params={"seq": 1}, headers=api.headers("auditor"))
    assert first.status_code == 200, first.text
    assert first.json() == state_at(events, seq=1).model_dump(mode="json")
    assert first.json()["as_of_seq"] == 1
    latest = await http.get(path, headers=api.headers("admin"))
    assert latest.status_code == 200 and latest.json()["as_of_seq"] >= events[-1].seq

    beyond = await http.get(path, params={"seq": 100_000}, headers=api.headers("auditor"))
    assert beyond.status_code == 404 and beyond.json()["code"] == "EVENT_NOT_FOUND", beyond.text
    assert "has no event 100000: its last is" in beyond.json()["detail"]
    zero = await http.get(path, params={"seq": 0}, headers=api.headers("auditor"))
    assert zero.status_code == 422 and [e["field"] for e in zero.json()["errors"]] == ["seq"]
    unknown = await http.get("/v1/cases/generic:NOPE-STATE/state", headers=api.headers("auditor"))
    assert unknown.status_code == 404 and unknown.json()["code"] == "CASE_NOT_FOUND"
    refused = await http.get(path, params={"seq": 1}, headers=api.headers("applicant"))
    assert refused.status_code == 403 and refused.json()["code"] == "ROLE_REQUIRED"
