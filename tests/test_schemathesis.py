"""Schemathesis over the live API's OpenAPI document: no generated request may cause a 5xx, and every
answer is one the document gives for that operation (status code, media type, body schema: the problem
schema for errors).

Every operation is fuzzed with a valid (admin) token, with free path parameters and with the ids of a
real running case and task, in positive and negative generation modes; bounded to a few examples each.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api_server import LiveApi, live_api_fixture
from tests.test_api import start_body

MAX_EXAMPLES = 8
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]
BUDGET_SECONDS = 90


api = live_api_fixture("st")


async def _real_case(api: LiveApi) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
        body = start_body(f"ST-{uuid.uuid4().hex[:8]}")
        started = await http.post("/v1/cases/generic", json=body, headers=api.headers("service"))
        assert started.status_code == 201, started.text
        case_id = started.json()["case_id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            detail = (await http.get(f"/v1/cases/{case_id}", headers=api.headers("admin"))).json()
            if detail.get("tasks"):
                return case_id, detail["tasks"][0]["task_id"]
            await asyncio.sleep(0.1)
    raise AssertionError("the case opened no task")


def _fuzz(api: LiveApi, case_id: str, task_id: str, statuses: Counter[int]) -> list[str]:
    spec = requests.get(f"{api.url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(spec)
    headers = api.headers("admin")
    failures: list[str] = []
    started = time.monotonic()
    session = requests.Session()

    for result in schema.get_all_operations():
        operation = result.ok()
        names = {p["name"] for p in spec["paths"][operation.path][operation.method.lower()].get("parameters", [])}
        fixed: list[dict[str, Any] | None] = [None]
        if "case_id" in names:
            fixed.append({"case_id": case_id})
        if "task_id" in names:
            fixed.append({"task_id": task_id})
        for path_parameters in fixed:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if time.monotonic() - started > BUDGET_SECONDS:
                    return failures
                try:
                    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
                except Exception as error:  # noqa: BLE001 - an operation schemathesis cannot negate is skipped
                    if mode is GenerationMode.NEGATIVE:
                        continue
                    raise AssertionError(f"{operation.label}: {error}") from error

                @settings(
                    max_examples=MAX_EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=strategy)
                def check(case: Any) -> None:
                    response = case.call(base_url=api.url, headers=headers, session=session, timeout=60)
                    statuses[response.status_code] += 1
                    request = f"{case.method} {case.formatted_path} query={case.query} body={str(case.body)[:300]}"
                    if response.status_code >= 500:
                        failures.append(f"{response.status_code} {request}: {response.text[:500]}")
                        return
                    try:
                        case.validate_response(response, checks=CONFORMANCE)
                    except FailureGroup as group:  # collected, so one run reports every undocumented answer
                        reasons = "; ".join(" ".join(str(failure).split())[:300] for failure in group.exceptions)
                        failures.append(f"{response.status_code} {request}: undocumented answer: {reasons}")

                try:
                    check()
                except Unsatisfiable:  # nothing to negate (e.g. no parameters, no body)
                    if mode is not GenerationMode.NEGATIVE:
                        raise
    return failures


async def test_no_generated_request_causes_a_server_error(api: LiveApi) -> None:
    case_id, task_id = await _real_case(api)
    statuses: Counter[int] = Counter()
    failures = await asyncio.to_thread(_fuzz, api, case_id, task_id, statuses)
    print("schemathesis responses by status:", dict(sorted(statuses.items())))
    assert not failures, "\n".join(failures[:20])
    assert sum(statuses.values()) > 200 and statuses[200] > 0, statuses
