"""Publishing a calendar year over the HTTP API: admins only, a bad year refused with a 422 naming the field,
and every running case counting its open deadline again on the new calendar, recorded with old and new dates.

Against the live API (dev server, real PostgreSQL, the engine's worker). Published rows are removed after each
test, so other tests' cases keep the built-in calendar.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest_asyncio

from tests.api_server import LiveApi, live_api_fixture
from tests.test_api import problem, start, wait_for_task

api = live_api_fixture("calendar-api")
CST = timezone(timedelta(hours=8))


@pytest_asyncio.fixture
async def http(api: LiveApi, superuser_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=120) as client:
        yield client
    await superuser_pool.execute("DELETE FROM calendar_years")  # published years are never deleted by the app


def regional_notice(day: date, **changes: Any) -> dict[str, Any]:
    return {
        "source": "test: regional notice",
        "status": "official",
        "holidays": [{"name": "Eid al-Adha 古尔邦节", "first": day.isoformat(), "last": day.isoformat()}],
        "make_up_working_days": [],
        **changes,
    }


def publish_path(layer: str, year: int) -> str:
    return f"/v1/admin/calendar/layers/{layer}/years/{year}"


async def test_only_admins_publish_or_read_the_calendar(http: httpx.AsyncClient, api: LiveApi) -> None:
    for who in ("service", "alice", "auditor"):
        refused = await http.put(publish_path("xinjiang", 2027), json=regional_notice(date(2027, 3, 10)),
                                 headers=api.headers(who))  # fmt: skip
        assert "role admin required" in problem(refused, 403, "ROLE_REQUIRED")["detail"]
    problem(await http.get("/v1/admin/calendar", headers=api.headers("alice")), 403, "ROLE_REQUIRED")
    calendar = (await http.get("/v1/admin/calendar", headers=api.headers("admin"))).json()
    assert [layer["name"] for layer in calendar["layers"]] == ["national", "xinjiang"]
    assert calendar["layers"][1]["years"]["2025"]["holidays"][0]["first"] == "2025-03-29"


async def test_a_malformed_year_is_refused_naming_the_field(http: httpx.AsyncClient, api: LiveApi) -> None:
    admin = api.headers("admin")
    cases = [
        ("national", 2027, regional_notice(date(2027, 3, 10), make_up_working_days=["2027-03-09"]),
         "make_up_working_days", "Tuesday"),
        ("national", 2027, regional_notice(date(2026, 12, 31)), "holidays.0", "not within 2027"),
        ("national", 2027, regional_notice(date(2027, 3, 10), status="rumoured"), "status", "official"),
        ("national", 2027, {"holidays": []}, "source", "Field required"),
        ("national", 1999, regional_notice(date(1999, 3, 10)), "year", "greater than or equal to 2000"),
    ]  # fmt: skip
    for layer, year, body, field, message in cases:
        refused = problem(await http.put(publish_path(layer, year), json=body, headers=admin), 422, "VALIDATION_ERROR")
        [error] = [error for error in refused["errors"] if error["field"] == field]
        assert message in error["message"], refused
    # A layer the calendar does not have is no resource to publish to.
    unknown = await http.put(publish_path("shanghai", 2027), json=regional_notice(date(2027, 3, 10)), headers=admin)
    assert "national, xinjiang" in problem(unknown, 404, "NO_SUCH_LAYER")["detail"]
    calendar = (await http.get("/v1/admin/calendar", headers=admin)).json()
    assert calendar["revision"] == 0  # nothing refused was stored


async def test_a_published_year_moves_the_deadline_of_a_running_case(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    case_id = (await start(http, api))["case_id"]
    await wait_for_task(http, api, "officer", case_id, "acceptance")
    old_due = datetime.fromisoformat((await http.get(f"/v1/cases/{case_id}", headers=api.headers("service"))).json()[
        "case"]["due_at"])  # fmt: skip
    last_day = old_due.astimezone(CST).date() - timedelta(days=1)

    response = await http.put(publish_path("xinjiang", last_day.year), json=regional_notice(last_day),
                              headers=api.headers("admin"))  # fmt: skip
    assert response.status_code == 200, response.text
    publication = response.json()
    assert publication["revision"] >= 1
    assert case_id in publication["cases"]["adopted"]

    deadline = time.monotonic() + 20
    while not (rows := await db_pool.fetch(
        "SELECT actor_id, payload::text FROM audit_events WHERE case_id = $1 AND type = 'case.deadlines_recomputed'",
        case_id,
    )):  # fmt: skip
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    [row] = rows
    case = (await http.get(f"/v1/cases/{case_id}", headers=api.headers("service"))).json()["case"]
    new_due = datetime.fromisoformat(case["due_at"])
    assert new_due > old_due  # the regional holiday is not worked: the statutory period ends later
    assert row["actor_id"] == "admin-1"
    assert old_due.isoformat() in row["payload"] and new_due.isoformat() in row["payload"]

    # A case started now gets the published year at once; the applicant then ends this one.
    calendar = (await http.get("/v1/admin/calendar", headers=api.headers("admin"))).json()
    assert calendar["revision"] == publication["revision"]
    withdrawn = await http.post(f"/v1/cases/{case_id}/withdraw", json={"reason": "test over"},
                                headers=api.headers("applicant"))  # fmt: skip
    assert withdrawn.status_code == 200, withdrawn.text
