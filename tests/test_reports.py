"""The Committee's statistics (issue 19): real cases run on the dev server, then ``GET /v1/reports/summary`` (JSON,
CSV, XLSX, PDF) is read over HTTP, and its figures equal the ones folded case by case from ``audit_events``
(``tests.report_fold``), for every grouping. Bad parameters are 422 naming the parameter; other roles 403."""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openpyxl
import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from approvals.calendar_publishing import current_calendar
from approvals.cli import app
from approvals.event_wording import CHINA_TIME
from approvals.reports.summary import ReportRequest, local_start, summary
from approvals.storage.queries import case_events
from schemas.case import ClaimRequest, ExcludePeriodRequest, ExtendRequest, RequestSupplementRequest, SupplementRequest
from schemas.events import in_force
from schemas.process import Deadline, Decision, ExcludedPeriodKind, licensing_law_period
from schemas.reports import GroupBy
from tests.api_server import PEOPLE, LiveApi, live_api
from tests.cases import (
    APPLICANT,
    HEAD,
    decide,
    decide_until_final,
    definition,
    finished,
    open_tasks,
    person,
    reset_workflow,
    stage,
    start_case,
    view_when,
    wind_up,
)
from tests.fixtures.postgres import OwnDatabase
from tests.fixtures.temporal import EngineWorker
from tests.report_fold import comparable, fold_case, folded_cases, folded_summary, rounded
from workflows.kernel import ApprovalWorkflow


@pytest.fixture(scope="module")
async def own(own_database: OwnDatabase) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """The reports count every case received in a period: this module's cases alone are in its database, so the
    SQL and the fold are compared on exactly them (other modules seed rows by SQL that no event explains)."""
    async with own_database() as database:
        yield database


@pytest.fixture(scope="module")
def reports_pool(own: tuple[str, asyncpg.Pool]) -> asyncpg.Pool:
    return own[1]


@pytest.fixture(scope="module")
async def api(
    dev_server_env: WorkflowEnvironment,
    engine_worker: EngineWorker,
    own: tuple[str, asyncpg.Pool],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[LiveApi]:
    database_url, pool = own
    async with engine_worker(dev_server_env, pool=pool) as task_queue:
        async with live_api(
            dev_server_env, pool, database_url, task_queue, tmp_path_factory.mktemp("reports-api")
        ) as live:
            yield live


ONE_DAY = timedelta(days=1)
ALICE = person("alice", "reviewer", "one_window", unit="政务服务中心")
BOB = person("bob", "reviewer", unit="规划建设局")


def accepting() -> Any:
    """A licence: the one window (alice) accepts or asks for 补正, then bob reviews, within the Art. 42 period."""
    return definition(
        stage("acceptance", assignees=("alice",), may_request_supplement=True),
        stage("review", assignees=("bob",)),
        deadline=licensing_law_period(starts_after_stage="acceptance"),
        supplement_role="one_window",
    )


async def task_of(handle: Any, stage_id: str) -> Any:
    [task] = open_tasks(await view_when(handle, lambda v: bool(open_tasks(v, stage_id))), stage_id)
    return task


@pytest.fixture(scope="module")
async def cases(api: LiveApi, dev_server_env: WorkflowEnvironment) -> AsyncIterator[list[str]]:
    """One case of each kind the figures tell apart, run to where the report finds it; the open ones are withdrawn
    at the end (their tasks would otherwise sit in later modules' reviewer inboxes)."""
    client, queue = dev_server_env.client, api.task_queue
    granted = await start_case(client, queue, accepting())
    await task_of(granted, "acceptance")
    ask = RequestSupplementRequest(actor=ALICE, items=[{"item": "环评批复"}])
    await granted.execute_update(ApprovalWorkflow.request_supplement, ask)
    await granted.execute_update(ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="附件已补"))
    await decide(granted, ALICE, await task_of(granted, "acceptance"))
    review = await task_of(granted, "review")
    await granted.execute_update(ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="需专家论证"))
    pause = ExcludePeriodRequest(
        actor=HEAD, kind=ExcludedPeriodKind.expert_review, reason="专家评审", expected_working_days=2
    )
    await granted.execute_update(ApprovalWorkflow.exclude_period, pause)
    await decide(granted, BOB, review)

    not_accepted = await start_case(client, queue, accepting())
    await decide(not_accepted, ALICE, await task_of(not_accepted, "acceptance"), Decision.reject, comment="材料不全")

    refused = await start_case(client, queue, accepting())
    await decide(refused, ALICE, await task_of(refused, "acceptance"))
    await decide(refused, BOB, await task_of(refused, "review"), Decision.reject, comment="不符合规划")

    withdrawn = await start_case(client, queue, accepting())
    await task_of(withdrawn, "acceptance")
    await wind_up(dev_server_env, withdrawn)

    pooled = definition(stage("review", candidate_roles=("reviewer",), deadline=Deadline(working_days=3)))
    claimed = await start_case(client, queue, pooled)
    await claimed.execute_update(
        ApprovalWorkflow.claim, ClaimRequest(actor=ALICE, task_id=(await task_of(claimed, "review")).task_id)
    )
    waiting = await start_case(client, queue, pooled)
    await task_of(waiting, "review")
    yield [h.id for h in (granted, not_accepted, refused, withdrawn, claimed, waiting)]
    await wind_up(dev_server_env, claimed)
    await wind_up(dev_server_env, waiting)


def today() -> str:
    return datetime.now(UTC).astimezone(CHINA_TIME).date().isoformat()


@pytest.mark.parametrize("group_by", list(GroupBy))
async def test_the_summary_equals_the_fold_of_the_audit_log(
    api: LiveApi, cases: list[str], reports_pool: asyncpg.Pool, group_by: GroupBy
) -> None:
    day = datetime.now(UTC).astimezone(CHINA_TIME).date()
    request = ReportRequest(day - ONE_DAY, day + ONE_DAY, group_by)
    calendar = await current_calendar(reports_pool, api.settings.calendar_path)
    as_of = datetime.now(UTC) + timedelta(days=60)  # every open task with a due time is overdue by then
    start, end = local_start(request.from_date), local_start(request.to_date + ONE_DAY)
    for _ in range(20):  # other modules' cases may still be recording: compare a settled moment
        before = (await summary(reports_pool, calendar, request, as_of=as_of)).model_dump(mode="json")
        folded = folded_summary(await folded_cases(reports_pool, start, end, calendar, as_of), group_by.value)
        after = (await summary(reports_pool, calendar, request, as_of=as_of)).model_dump(mode="json")
        if before == after:
            break
    assert before == after
    assert rounded(comparable(after)) == rounded(folded)
    total = after["total"]
    assert total["received"] >= 6 and total["accepted"] >= 2 and total["refused_to_accept"] >= 1
    assert total["granted"] >= 1 and total["refused"] >= 1 and total["withdrawn"] >= 1
    assert total["extensions"] >= 1 and total["supplements"] >= 1 and total["excluded_periods"] >= 1
    assert total["on_time"] >= 2 and total["decision_days_median"] is not None
    assert sum(after["overdue_open_tasks"][i]["count"] for i in range(len(after["overdue_open_tasks"]))) >= 2


async def test_the_figures_of_these_cases_are_the_ones_they_recorded(
    api: LiveApi, cases: list[str], reports_pool: asyncpg.Pool
) -> None:
    rows = {
        row["case_id"]: dict(row)
        for row in await reports_pool.fetch("SELECT * FROM case_report_facts WHERE case_id = ANY($1)", cases)
    }
    granted, not_accepted, refused, withdrawn, claimed, waiting = (rows[case_id] for case_id in cases)
    assert (granted["decision"], granted["extensions"], granted["supplements"], granted["excluded_periods"]) == (
        "granted", 1, 1, 1,
    )  # fmt: skip
    assert granted["unit"] == BOB.unit and granted["accepted_at"] is not None
    assert not_accepted["refused_to_accept"] and not_accepted["accepted_at"] is None
    assert refused["decision"] == "refused" and not refused["refused_to_accept"]
    assert withdrawn["withdrawn_at"] is not None and withdrawn["decision"] is None
    assert claimed["decision"] is None and waiting["stage_id"] == "review"


async def test_a_reset_case_counts_only_what_the_reset_left_in_force(
    api: LiveApi, dev_server_env: WorkflowEnvironment, reports_pool: asyncpg.Pool
) -> None:
    """An operator's reset supersedes the old run's events from the reset point on: the projection is made again
    from the events in force at the ``case.reset``, as the fold of the log makes the case's state."""
    process = definition(stage("review", assignees=("alice",)), deadline=licensing_law_period())
    handle = await start_case(dev_server_env.client, api.task_queue, process)
    review = await task_of(handle, "review")
    await handle.execute_update(ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="需专家论证"))
    await decide(handle, ALICE, review)
    await finished(dev_server_env, handle)
    reset_workflow(dev_server_env, handle.id, "--type", "FirstWorkflowTask")
    latest = dev_server_env.client.get_workflow_handle_for(ApprovalWorkflow.run, handle.id)
    await decide_until_final(latest)
    await finished(dev_server_env, latest)

    recorded = await case_events(reports_pool, handle.id)
    types, in_force_types = [e.type for e in recorded], [e.type for e in in_force(recorded)]
    assert "case.reset" in types and types.count("case.extended") > in_force_types.count("case.extended")
    calendar = await current_calendar(reports_pool, api.settings.calendar_path)
    folded = fold_case(recorded, calendar, datetime.now(UTC))
    row = await reports_pool.fetchrow("SELECT * FROM case_report_facts WHERE case_id = $1", handle.id)
    assert row["extensions"] == folded.extensions == in_force_types.count("case.extended")
    assert (row["decision"], row["unit"], row["stage_id"]) == (folded.decision, folded.key["unit"], "review")
    [decision] = [e for e in in_force(recorded) if e.type == "case.decided"]
    assert row["decided_at"] == decision.at


async def test_csv_xlsx_and_pdf_carry_the_same_figures_with_chinese_headers(api: LiveApi, cases: list[str]) -> None:
    query = {"from": today(), "to": today(), "group_by": "process"}
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
        answer = (await http.get("/v1/reports/summary", params=query, headers=api.headers("auditor"))).json()
        as_csv = await http.get("/v1/reports/summary", params={**query, "format": "csv"}, headers=api.headers("head"))
        as_xlsx = await http.get(
            "/v1/reports/summary", params={**query, "format": "xlsx"}, headers=api.headers("admin")
        )
        as_pdf = await http.get(
            "/v1/reports/summary", params={**query, "format": "pdf"}, headers=api.headers("auditor")
        )
    assert as_csv.status_code == as_xlsx.status_code == as_pdf.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    header, *rows = table[: table.index([])]
    assert header[:3] == ["事项 process", "收件数 received", "受理数 accepted"]
    assert rows[-1][0] == "合计 total" and int(rows[-1][1]) == answer["total"]["received"]
    by_process = {row[0]: int(row[1]) for row in rows[:-1]}
    assert by_process == {group["key"]: group["received"] for group in answer["groups"]}
    assert ["被拒绝的操作（按原因）"] in table

    book = openpyxl.load_workbook(io.BytesIO(as_xlsx.content))
    sheet = book["统计 summary"]
    cells = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert cells[1][:2] == ["事项 process", "收件数 received"]
    assert cells[-1][0] == "合计 total" and cells[-1][1] == answer["total"]["received"]
    assert "超期未办任务（按单位）" in book.sheetnames

    assert as_pdf.headers["content-type"] == "application/pdf" and as_pdf.content.startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-", "-"], input=as_pdf.content, capture_output=True, check=True).stdout
        plain = text.decode().replace(" ", "")
        for heading in ("行政审批办件统计报告", "每月收件与办结", "办结用时分布", "各单位按期办结率", "第二十九条"):
            assert heading in plain, heading
        assert f"期间收件{answer['total']['received']}件" in plain


@pytest.mark.parametrize(
    ("query", "parameter", "code"),
    [
        ({"to": "2026-12-31"}, "from", "VALIDATION_ERROR"),
        ({"from": "2026-13-01", "to": "2026-12-31"}, "from", "VALIDATION_ERROR"),
        ({"from": "2026-12-01", "to": "31.12.2026"}, "to", "VALIDATION_ERROR"),
        ({"from": "2026-12-31", "to": "2026-12-01"}, "from", "INVALID_PERIOD"),
        ({"from": "2000-01-01", "to": "2026-12-01"}, "to", "INVALID_PERIOD"),
        ({"from": "2026-12-01", "to": "2026-12-31", "group_by": "weekday"}, "group_by", "VALIDATION_ERROR"),
        ({"from": "2026-12-01", "to": "2026-12-31", "format": "docx"}, "format", "VALIDATION_ERROR"),
    ],
)
async def test_a_bad_parameter_is_refused_naming_it(
    api: LiveApi, query: dict[str, str], parameter: str, code: str
) -> None:
    async with httpx.AsyncClient(base_url=api.url) as http:
        response = await http.get("/v1/reports/summary", params=query, headers=api.headers("auditor"))
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert [(error["field"], error["location"]) for error in problem["errors"]] == [(parameter, "query")]
    assert f"{parameter}:" in problem["detail"] and problem["code"] == code


@pytest.mark.parametrize("who", ["nobody", "applicant", "alice", "service"])
async def test_other_roles_are_refused_and_the_refusal_recorded(
    api: LiveApi, reports_pool: asyncpg.Pool, who: str
) -> None:
    query = {"from": today(), "to": today(), "format": "csv"}
    user_id = PEOPLE[who][0]
    refusals = "SELECT count(*) FROM denied_attempts WHERE operation = 'read:reports' AND actor_id = $1"
    before = await reports_pool.fetchval(refusals, user_id)
    async with httpx.AsyncClient(base_url=api.url) as http:
        response = await http.get("/v1/reports/summary", params=query, headers=api.headers(who))
    assert response.status_code == 403 and response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "ROLE_REQUIRED" and "auditor" in response.json()["detail"]
    assert await reports_pool.fetchval(refusals, user_id) == before + 1


async def test_the_cli_prints_the_table_and_saves_the_files(api: LiveApi, cases: list[str], tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "250", "APPROVALS_API_URL": api.url, "APPROVALS_TOKEN": api.tokens["head"]})
    period = ["--from", today(), "--to", today()]
    shown = await asyncio.to_thread(
        runner.invoke, app, ["reports", "summary", *period, "--group-by", "unit"], catch_exceptions=False
    )
    assert shown.exit_code == 0, shown.output
    assert "收件" in shown.output and "合计 total" in shown.output and "overdue open tasks" in shown.output
    saved = tmp_path / "report.xlsx"
    written = await asyncio.to_thread(
        runner.invoke,
        app,
        ["reports", "summary", *period, "--format", "xlsx", "-o", str(saved)],
        catch_exceptions=False,
    )
    assert written.exit_code == 0, written.output
    assert openpyxl.load_workbook(saved)["统计 summary"]["A2"].value == "事项 process"
    refused = await asyncio.to_thread(
        runner.invoke, app, ["reports", "summary", "--from", "2026-12-31", "--to", "2026-12-01"], catch_exceptions=False
    )
    assert refused.exit_code == 2 and "--from" in refused.output  # a usage error naming the option
