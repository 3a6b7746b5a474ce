"""Schemathesis over the live API's OpenAPI document, with every one of its checks: no generated request
causes a 5xx; every answer is one the document gives for that operation (status code, media type, headers,
body schema: the problem schema for errors); data the document calls valid is accepted and data it calls
invalid refused; an operation that declares authentication refuses a request without it. The checks of
schemathesis's other phases (an undeclared method, a missing required header) look at requests this test
does not send; tests/test_api.py sends those.

Every operation is fuzzed with a valid (admin) token, with free path parameters and with the ids of a
real running case and task, in positive and negative generation modes; bounded to a few examples each, a
few hundred requests in all.
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
from schemathesis.specs.openapi.checks import AcceptedNegativeData, RejectedPositiveData

from tests.api_server import LiveApi, live_api_fixture
from tests.test_api import start_body

MAX_EXAMPLES = 4
CASES = range(200, 800)
"""How many requests the run sends: a few hundred, as issue 14 bounds it."""
BUDGET_SECONDS = 120
UNSTATED_RULES = ("is written with an exponent",)
"""A refusal the OpenAPI document cannot state, inside free-form objects (a case's ``data``, extra fields of
evidence): JSON Schema constrains values, not how a number is written (``4.3e16``, which PostgreSQL's jsonb
would store as ``43000000000000000`` and so break the recorded hash). A 422 naming only it keeps the record
intact. (Text with NUL characters, which PostgreSQL cannot store, is not generated at all: tests/test_api.py
checks its refusal.)"""


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


def _refused_for_a_reason_the_schema_cannot_give(response: requests.Response) -> bool:
    """Schema-valid data refused with a 422 that is no gap in the document: the case's own rules refused it
    (a problem code other than VALIDATION_ERROR: e.g. NOT_EXCLUDABLE, a period the case's process does not
    leave out), or every error is one of the :data:`UNSTATED_RULES`."""
    if response.status_code != 422:
        return False
    problem = response.json()
    if problem.get("code") != "VALIDATION_ERROR":
        return True
    errors = problem.get("errors") or []
    return bool(errors) and all(any(rule in error.get("message", "") for rule in UNSTATED_RULES) for error in errors)


def _excused(failure: Exception, response: requests.Response) -> bool:
    if isinstance(failure, RejectedPositiveData):
        return _refused_for_a_reason_the_schema_cannot_give(response)
    # A body over OPERATION_MAX_BYTES is refused before it is parsed: a refusal, if not one the check lists.
    return isinstance(failure, AcceptedNegativeData) and response.status_code == 413


def _fuzz(api: LiveApi, case_id: str, task_id: str, statuses: Counter[int]) -> list[str]:
    spec = requests.get(f"{api.url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(spec)
    schema.config.generation.update(
        allow_x00=False,  # see UNSTATED_RULES
        allow_extra_parameters=False,  # an undeclared query parameter is ignored, as HTTP APIs do
        with_security_parameters=False,  # the token is ours (the admin's); ``ignored_auth`` drops it itself
    )
    headers = api.headers("admin")
    failures: list[str] = []
    started = time.monotonic()
    session = requests.Session()
    # What the checks that send requests of their own (``ignored_auth``: the same request without a token) use.
    transport = {"base_url": api.url, "headers": headers, "session": session, "timeout": 60}

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
                    raise AssertionError(
                        f"the run took over {BUDGET_SECONDS}s after {sum(statuses.values())} requests, before "
                        f"{operation.label} ({mode.value}); a slow API or too many examples"
                    )
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
                    try:
                        case.validate_response(response, headers=headers, transport_kwargs=transport)  # every check
                    except FailureGroup as group:  # collected, so one run reports every failure
                        found = [failure for failure in group.exceptions if not _excused(failure, response)]
                        if found:
                            request = (
                                f"{case.method} {case.formatted_path} query={case.query} body={str(case.body)[:300]}"
                            )
                            reasons = "; ".join(" ".join(str(failure).split())[:400] for failure in found)
                            failures.append(f"{response.status_code} {request}: {reasons}: {response.text[:300]}")

                try:
                    check()
                except Unsatisfiable:  # nothing to negate (e.g. no parameters, no body)
                    if mode is not GenerationMode.NEGATIVE:
                        raise
    return failures


async def test_every_schemathesis_check_passes_on_generated_requests(api: LiveApi) -> None:
    case_id, task_id = await _real_case(api)
    statuses: Counter[int] = Counter()
    failures = await asyncio.to_thread(_fuzz, api, case_id, task_id, statuses)
    print("schemathesis responses by status:", dict(sorted(statuses.items())))
    assert not failures, "\n".join(failures[:20])
    assert sum(statuses.values()) in CASES and statuses[200] > 0, statuses
