"""The catalogue in force on a date (Art. 3, Art. 4) on the real stack: a catalogue approved and published, an
annual review that opens an adjustment child case, the adjusted catalogue published again, and a case withdrawn
before publication; ``GET /v1/catalogue`` and ``approvals catalogue`` as of two dates with the difference, the
same catalogue rebuilt from ``audit_events`` by the test, and bad dates refused naming the parameter.

The Temporal time-skipping test server (a year passes before the annual review) and real PostgreSQL; the API is
the real app over HTTP on the same database."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from temporalio.testing import WorkflowEnvironment

from approvals.audit.catalogue import fold_catalogue
from approvals.event_wording import CHINA_TIME
from approvals.storage.queries import case_events
from schemas.case import CaseStatus, WithdrawRequest
from schemas.process import Decision
from tests.api_server import live_api
from tests.cases import events, finished, json_of, open_tasks, view_when
from tests.test_power_adjustment import (
    COMMITTEE_OFFICE,
    MEMBERS,
    OFFICIAL,
    SUPERVISOR,
    decide,
    item,
    proposal,
    recorded,
    reviewed,
    start,
)
from workflows.kernel import ApprovalWorkflow
from workflows.power_adjustment import ADJUSTMENT_PROCESS, PowerAdjustmentWorkflow


async def rebuilt_from_audit_events(pool: asyncpg.Pool, as_of: date, compare_to: date) -> dict[str, Any]:
    """The test's own reading: every event of every case whose id names a catalogue process, folded."""
    case_ids = await pool.fetch(
        "SELECT DISTINCT case_id FROM audit_events WHERE case_id LIKE 'power-adjustment:%' "
        "OR case_id LIKE 'power-catalogue-adjustment:%'"
    )
    everything = [event for row in case_ids for event in await case_events(pool, row["case_id"])]
    return fold_catalogue(everything, as_of, compare_to).model_dump(mode="json")


def local_day(at: str) -> date:
    return datetime.fromisoformat(at).astimezone(CHINA_TIME).date()


async def test_catalogue_as_of_two_dates_with_the_difference_an_adjustment_child_case_made(
    own_time_skipping_env: WorkflowEnvironment,
    db_pool: asyncpg.Pool,
    database_url: str,
    engine_worker: Any,
    tmp_path: Path,
) -> None:
    env = own_time_skipping_env
    tag = uuid.uuid4().hex[:6].upper()  # codes of this test only: other tests' catalogues share the database
    road, safety = f"T{tag}-XK-001", f"T{tag}-JC-001"
    app = proposal(items=[item(road), item(safety, name="安全生产监督检查 Work-safety inspection")])
    async with engine_worker(env) as queue:
        never = await start(env, queue, app)  # withdrawn before publication: never in the catalogue
        await never.execute_update(
            PowerAdjustmentWorkflow.withdraw, WithdrawRequest(actor=COMMITTEE_OFFICE, reason="proposed again")
        )
        handle = await start(env, queue, app)
        await reviewed(handle)
        for member in MEMBERS:
            await decide(handle, "executive_meeting", member)
        await view_when(handle, lambda v: v.status is CaseStatus.under_supervision)
        await env.sleep(timedelta(days=366))
        await decide(handle, "annual_supervision", SUPERVISOR, Decision.reject, comment="ALSK-XK under-used")
        child_id = f"{ADJUSTMENT_PROCESS}:{handle.id.split(':', 1)[1]}.adj1"
        child = env.client.get_workflow_handle_for(ApprovalWorkflow.run, child_id)
        terms = ["临时占用城市道路许可每季度向市政府报告 Quarterly report to the city government"]
        await decide(child, "adjust_powers", OFFICIAL, Decision.approve_with_conditions, conditions=terms)
        assert (await finished(env, child)).status is CaseStatus.approved_with_conditions
        await recorded(db_pool, handle.id, lambda types: types.count("case.published") == 2)
        assert not open_tasks(await handle.query(PowerAdjustmentWorkflow.view))

        published, republished = await events(db_pool, handle.id, "case.published")
        first = date.fromisoformat(published["payload"]["subject"]["effective_date"])
        adjusted = local_day(republished["payload"]["decided_at"])
        assert first == local_day(published["payload"]["decided_at"]) and adjusted > first

        async with (
            live_api(env, db_pool, database_url, queue, tmp_path) as api,
            httpx.AsyncClient(base_url=api.url, headers=api.headers("applicant"), timeout=30) as http,
        ):
            answers = {}
            for as_of, compare_to in ((first, first - timedelta(days=1)), (adjusted, first)):
                response = await http.get("/v1/catalogue", params={"as_of": str(as_of), "compare_to": str(compare_to)})
                assert response.status_code == 200, response.text
                answers[as_of] = response.json()
                assert answers[as_of] == await rebuilt_from_audit_events(db_pool, as_of, compare_to)

            refused = await http.get("/v1/catalogue", params={"as_of": "2026-02-30"})
            assert refused.status_code == 422
            assert [(e["location"], e["field"]) for e in refused.json()["errors"]] == [("query", "as_of")]
            refused = await http.get("/v1/catalogue", params={"as_of": str(first), "compare_to": "tomorrow"})
            assert refused.status_code == 422 and "compare_to" in refused.json()["detail"]
            assert (await http.get("/v1/catalogue")).status_code == 422
            assert (
                await http.get("/v1/catalogue", params={"as_of": str(first)}, headers={"Authorization": ""})
            ).status_code == 401

            cli = await asyncio.to_thread(
                _cli, api.url, api.tokens["auditor"], "--as-of", str(adjusted), "--compare-to", str(first), "--json"
            )
            assert cli == answers[adjusted]
            table = await asyncio.to_thread(_cli_text, api.url, api.tokens["auditor"], "--as-of", str(adjusted))
            assert road in table and child_id in table

    def ours(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {f["code"]: f for f in answer["catalogue"]["functions"] if f["code"] in (road, safety)}

    on_first, on_adjusted = ours(answers[first]), ours(answers[adjusted])
    assert set(on_first) == {road, safety} and all(f["case_id"] == handle.id for f in on_first.values())
    assert never.id not in json.dumps(list(answers.values()))
    assert on_first[road] | {"publication": None} == {
        "code": road,
        "name": "临时占用城市道路许可 Temporary occupation of urban roads",
        "kind": "licensing",
        "mode": "entrust",
        "granting_authority": "alashankou_city_government",
        "legal_basis": "《城市道路管理条例》 第三十一条",
        "effective_date": str(first),
        "case_id": handle.id,
        "put_there_by": handle.id,
        "publication": None,
        "adjustment": None,
    }
    assert on_first[road]["publication"]["seq"] == published["seq"]
    assert on_first[road]["publication"]["legal_basis"] == "Art. 4; Art. 18"
    became = on_adjusted[road]
    assert became["effective_date"] == str(adjusted) and became["put_there_by"] == child_id
    assert became["publication"]["seq"] == republished["seq"]
    assert became["publication"]["legal_basis"] == "Art. 3; Art. 18"
    assert became["adjustment"]["conditions"] == terms and became["adjustment"]["legal_basis"] == "Art. 3"
    added = answers[first]["difference"]["added"]
    assert [(c["code"], c["by_case_id"]) for c in added if c["code"] in (road, safety)] == [
        (safety, handle.id),
        (road, handle.id),
    ]
    difference = answers[adjusted]["difference"]
    assert (difference["from_date"], difference["to_date"]) == (str(first), str(adjusted))
    ours_changed = [(c["code"], c["by_case_id"]) for c in difference["changed"] if c["code"] in (road, safety)]
    assert ours_changed == [(safety, child_id), (road, child_id)]
    assert not [c for c in difference["added"] + difference["withdrawn"] if c["code"] in (road, safety)]


def _invoke(api_url: str, token: str, *args: str) -> str:
    from typer.testing import CliRunner

    from approvals.cli import app

    env = {"APPROVALS_API_URL": api_url, "APPROVALS_TOKEN": token, "COLUMNS": "400"}
    result = CliRunner().invoke(app, ["catalogue", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def _cli(api_url: str, token: str, *args: str) -> Any:
    """The command's JSON (the in-process server's log lines may share the captured stdout)."""
    return json_of(_invoke(api_url, token, *args))


def _cli_text(api_url: str, token: str, *args: str) -> str:
    return _invoke(api_url, token, *args)
