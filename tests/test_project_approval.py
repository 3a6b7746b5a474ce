"""Project approval (Art. 10) end to end: whole cases on the Temporal test server and real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from approvals.storage.queries import inbox
from schemas.calendar import (
    NATIONAL,
    BeyondKnownYears,
    Holiday,
    WorkingCalendar,
    YearSchedule,
    add_working_days,
    subtract_working_days,
)
from schemas.case import (
    CaseStatus,
    DecideRequest,
    ExtendRequest,
    MissingItem,
    RequestSupplementRequest,
    SupplementRequest,
    WithdrawRequest,
)
from schemas.principal import Principal
from schemas.process import Decision
from schemas.project import validate_uscc
from schemas.records import TaskProjection
from tests.cases import APPLICANT, CALENDAR, finished, open_tasks, view_when, wind_up
from tests.project_cases import HEAD, OFFICER, OFFICIAL, REVIEWERS, application, decide, review_all, start
from workflows.project_approval import DIMENSIONS, DISCLOSURE_RULES, ProjectApprovalWorkflow


async def denial(call: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await call
    return failure.value.cause.type  # type: ignore[union-attr]


async def inbox_when(
    pool: asyncpg.Pool, reviewer: Principal, predicate: Callable[[list[TaskProjection]], bool]
) -> list[TaskProjection]:
    """The reviewer's priority inbox (PostgreSQL only) once ``predicate`` holds; the next stage's tasks are
    recorded right after the decision that opens it."""
    for _ in range(200):
        tasks = await inbox(pool, reviewer.id, reviewer.roles, priority=True)
        if predicate(tasks):
            return tasks
        await asyncio.sleep(0.05)
    raise AssertionError(f"inbox of {reviewer.id} never showed the expected tasks: {tasks}")


async def events_of(pool: asyncpg.Pool, case_id: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM audit_events WHERE case_id = $1 ORDER BY seq", case_id)


# ---------------------------------------------------------------- the application


def test_application_validates_the_credit_code_check_character() -> None:
    assert validate_uscc("91350100m000100y43") == "91350100M000100Y43"
    with pytest.raises(ValidationError, match="check character"):
        application(
            enterprise={
                "name": "X",
                "unified_social_credit_code": "91350100M000100Y44",
                "contact": {"name": "a", "phone": "13800000000"},
            }
        )
    with pytest.raises(ValidationError, match="18 characters"):
        application(
            enterprise={
                "name": "X",
                "unified_social_credit_code": "9135",
                "contact": {"name": "a", "phone": "13800000000"},
            }
        )


def test_application_refuses_fixed_assets_above_total_and_inline_documents() -> None:
    with pytest.raises(ValidationError, match="exceeds total_investment_cny"):
        application(fixed_asset_investment_cny="200000000")
    with pytest.raises(ValidationError, match="total_investment_cny"):
        application(total_investment_cny="-5")
    with pytest.raises(ValidationError, match="attachments"):
        application(attachments=[{"uri": "inline", "sha256": "not-a-digest", "size": 3}])
    assert application().total_investment_cny == Decimal("120000000.00")


# ---------------------------------------------------------------- whole cases


async def test_approved_with_the_departments_conditions_merged_and_published(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start(time_skipping_env, queue)
        await decide(handle, "acceptance", OFFICER)
        await review_all(handle, environment=Decision.approve_with_conditions, safety=Decision.approve_with_conditions)
        flagged = await inbox_when(db_pool, OFFICIAL, lambda tasks: any(t.case_id == handle.id for t in tasks))
        assert [t.stage_id for t in flagged if t.case_id == handle.id] == ["decision"]  # an Art. 12 industry
        await decide(
            handle, "decision", OFFICIAL, Decision.approve_with_conditions, conditions=["environment: condition"]
        )
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.approved_with_conditions
    assert result.conditions == ["environment: condition", "safety: condition"]
    rows = await events_of(db_pool, handle.id)
    types = [row["type"] for row in rows]
    assert types.count("stage.skipped") == 2  # no land-use change, no major hazard source
    assert types[-2:] == ["case.published", "document.issued"]  # the licence follows the decision's record
    published = rows[-2]
    assert published["legal_basis"] == "Art. 18"
    assert "safety: condition" in published["payload"]
    notice = json.loads(published["payload"])
    assert notice["subject"]["unified_social_credit_code"] == application().enterprise.unified_social_credit_code
    decided_at = datetime.fromisoformat(notice["decided_at"])
    due = add_working_days(CALENDAR, decided_at, 7, beyond_known_years=BeyondKnownYears.weekends_only).at
    assert notice["publication_due_at"] == due.isoformat()  # Art. 18: within 7 working days of the decision
    for row in rows:
        assert row["actor_id"] and row["at"] and row["legal_basis"], row["type"]
    [disclosure] = await db_pool.fetch(
        "SELECT status, kind FROM outbox WHERE case_id = $1 AND kind = 'case.published'", handle.id
    )
    assert disclosure["status"] == "delivered"
    case_row = await db_pool.fetchrow("SELECT status, priority FROM cases WHERE case_id = $1", handle.id)
    assert case_row["status"] == "approved_with_conditions" and case_row["priority"] is True


async def test_a_rejected_dimension_blocks_approval_until_returned_and_re_reviewed(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start(time_skipping_env, queue)
        await decide(handle, "acceptance", OFFICER)
        await review_all(handle, environment=Decision.reject)
        code = await denial(decide(handle, "decision", OFFICIAL, Decision.approve))
        assert code == "APPROVAL_BLOCKED"

        await decide(handle, "decision", OFFICIAL, Decision.return_, return_to="environment")
        view = await decide(handle, "environment", REVIEWERS["environment"], Decision.approve)
        assert [r.round for r in view.stage_results if r.stage_id == "environment"] == [2]
        await decide(handle, "decision", OFFICIAL, Decision.approve)
        result = await finished(time_skipping_env, handle)
    assert result.status is CaseStatus.approved


async def test_acceptance_refused_ends_the_case_without_reviews_and_publishes_no_party(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start(time_skipping_env, queue)
        await decide(handle, "acceptance", OFFICER, Decision.reject, comment="the plot is outside the zone")
        result = await finished(time_skipping_env, handle)
    assert result.status is CaseStatus.rejected
    assert {t.stage_id for t in result.tasks} == {"acceptance"}
    [published] = [row for row in await events_of(db_pool, handle.id) if row["type"] == "case.published"]
    enterprise = application().enterprise
    assert enterprise.unified_social_credit_code not in published["payload"]
    assert enterprise.name not in published["payload"] and application().plot_id not in published["payload"]
    notice = json.loads(published["payload"])
    assert notice["decision"] == "rejected" and notice["title"] == DISCLOSURE_RULES.refusal_title
    assert set(notice["withheld"]) == {"enterprise", "unified_social_credit_code", "project_name", "plot_id"}
    [disclosure] = await db_pool.fetch(
        "SELECT data::text AS data FROM outbox WHERE case_id = $1 AND kind = 'case.published'", handle.id
    )
    assert enterprise.unified_social_credit_code not in disclosure["data"]  # what goes out, not only the record


async def test_land_use_change_review_joins_only_when_the_use_differs_from_the_plan(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start(
            time_skipping_env, queue, application(planned_land_use="logistics_warehousing", major_hazard_source=True)
        )
        await decide(handle, "acceptance", OFFICER)
        await decide(handle, "safety_risk_assessment", REVIEWERS["safety_risk_assessment"])
        await review_all(handle)
        await decide(handle, "land_use_change", REVIEWERS["land_use_change"])
        await decide(handle, "decision", OFFICIAL)
        result = await finished(time_skipping_env, handle)
    assert result.status is CaseStatus.approved
    assert {"land_use_change", "safety_risk_assessment"} <= {r.stage_id for r in result.stage_results}


async def test_reviewers_act_only_in_their_department_and_the_applicant_never_on_their_case(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    applicant_with_a_reviewer_role = APPLICANT.model_copy(update={"roles": ("applicant", "reviewer_safety")})
    async with engine_worker(time_skipping_env) as queue:
        handle = await start(time_skipping_env, queue)
        await decide(handle, "acceptance", OFFICER)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "safety")))
        [safety_task] = open_tasks(view, "safety")
        wrong_department = DecideRequest(
            actor=REVIEWERS["environment"], task_id=safety_task.task_id, decision=Decision.approve
        )
        assert await denial(handle.execute_update(ProjectApprovalWorkflow.decide, wrong_department)) == "NOT_ASSIGNEE"
        own_case = DecideRequest(
            actor=applicant_with_a_reviewer_role, task_id=safety_task.task_id, decision=Decision.approve
        )
        assert await denial(handle.execute_update(ProjectApprovalWorkflow.decide, own_case)) == "SEPARATION_OF_DUTIES"

        await handle.execute_update(
            ProjectApprovalWorkflow.withdraw, WithdrawRequest(actor=APPLICANT, reason="site changed")
        )
        result = await finished(time_skipping_env, handle)
    assert result.status is CaseStatus.withdrawn
    assert not open_tasks(result)
    history = await handle.fetch_history()
    assert "SEPARATION_OF_DUTIES" not in history.to_json()  # refused updates leave no trace


async def test_the_statutory_period_is_extended_once_by_the_head(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start(time_skipping_env, queue)
        await decide(handle, "acceptance", OFFICER)
        view = await view_when(handle, lambda v: any(c.key == "case" for c in v.clocks))
        [before] = [c.due_at for c in view.clocks if c.key == "case"]
        request = ExtendRequest(actor=HEAD, reason="expert review of the environmental report")
        assert (
            await denial(
                handle.execute_update(ProjectApprovalWorkflow.extend, request.model_copy(update={"actor": OFFICIAL}))
            )
            == "NOT_ALLOWED"
        )
        await handle.execute_update(ProjectApprovalWorkflow.extend, request)
        assert await denial(handle.execute_update(ProjectApprovalWorkflow.extend, request)) == "EXTENSION_USED"
        view = await handle.query(ProjectApprovalWorkflow.view)
        [after] = [c.due_at for c in view.clocks if c.key == "case"]
        await wind_up(time_skipping_env, handle)
    assert (
        before and after == add_working_days(CALENDAR, before, 10, beyond_known_years=BeyondKnownYears.weekends_only).at
    )


async def test_an_overdue_dimension_is_escalated_to_the_supervisor(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start(time_skipping_env, queue)
        await decide(handle, "acceptance", OFFICER)
        await view_when(handle, lambda v: bool(open_tasks(v, "environment")))
        await time_skipping_env.sleep(timedelta(days=20))  # more than 10 working days
        view = await view_when(handle, lambda v: all(t.overdue for t in open_tasks(v)))
        assert {t.stage_id for t in open_tasks(view)} == {s.id for s in DIMENSIONS}
        await wind_up(time_skipping_env, handle)
    escalations = await db_pool.fetch(
        "SELECT payload FROM audit_events WHERE case_id = $1 AND type = 'clock.escalated'", handle.id
    )
    assert len(escalations) >= len(DIMENSIONS)
    notified = await db_pool.fetchval(
        "SELECT count(*) FROM outbox WHERE case_id = $1 AND recipient = 'role:supervisor'", handle.id
    )
    assert notified >= len(DIMENSIONS)


def calendar_with_a_holiday_soon(today: date) -> tuple[WorkingCalendar, Holiday]:
    """The official calendar plus a two-day national holiday on the Monday after next, whatever today is; every
    layer lists the years around it (Monday to Friday where it had none)."""
    monday = today + timedelta(days=7 - today.weekday() + 7)
    holiday = Holiday(name="test holiday", first=monday, last=monday + timedelta(days=1))
    weekends_only = YearSchedule(holidays=(), make_up_working_days=(), source="weekends only (test)")
    calendar = CALENDAR.model_copy(update={"name": "test"})
    for layer in CALENDAR.layers:
        for year in {today.year, monday.year, monday.year + 1}:
            schedule = layer.years.get(year, weekends_only)
            if layer.name == NATIONAL and year == monday.year:
                holidays = (*schedule.holidays, holiday)  # validated: it must not overlap a holiday there
                schedule = YearSchedule.model_validate({**schedule.model_dump(), "holidays": holidays})
            calendar = calendar.with_year(layer.name, year, schedule, revision=calendar.revision)
    return calendar, holiday


async def test_supplementary_material_stops_the_clock_across_a_weekend_and_a_holiday(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    now = await time_skipping_env.get_current_time()
    calendar, holiday = calendar_with_a_holiday_soon(now.astimezone(timezone(timedelta(hours=8))).date())
    async with engine_worker(time_skipping_env) as queue:
        handle = await start(time_skipping_env, queue, calendar=calendar)
        await view_when(handle, lambda v: bool(open_tasks(v, "acceptance")))
        missing = [
            MissingItem(item="环评报告表 EIA report form", reason="not attached"),
            MissingItem(item="用地预审意见", reason="expired"),
        ]
        await handle.execute_update(
            ProjectApprovalWorkflow.request_supplement, RequestSupplementRequest(actor=OFFICER, items=missing)
        )
        paused = await handle.query(ProjectApprovalWorkflow.view)
        assert paused.status is CaseStatus.awaiting_supplement and paused.clock_state == "stopped"
        [task] = open_tasks(paused, "acceptance")
        code = await denial(
            handle.execute_update(
                ProjectApprovalWorkflow.decide,
                DecideRequest(actor=OFFICER, task_id=task.task_id, decision=Decision.approve),
            )
        )
        assert code == "CASE_PAUSED"

        await time_skipping_env.sleep(timedelta(days=16))  # two weekends and the holiday pass, clock stopped
        resumed_at = await time_skipping_env.get_current_time()
        assert resumed_at.astimezone(calendar.tzinfo).date() > holiday.last
        await handle.execute_update(
            ProjectApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="all attached")
        )
        view = await handle.query(ProjectApprovalWorkflow.view)
        await wind_up(time_skipping_env, handle)

    assert view.status is CaseStatus.in_review and view.clock_state == "running"
    requested = await db_pool.fetchrow(
        "SELECT payload FROM audit_events WHERE case_id = $1 AND type = 'case.supplement_requested'", handle.id
    )
    payload = json.loads(requested["payload"])
    assert [item["item"] for item in payload["items"]] == [m.item for m in missing]  # everything missing, at once
    days_left = payload["working_days_left"]["stage:acceptance:1"]
    [clock] = [c for c in view.clocks if c.key == "stage:acceptance:1"]
    supplemented = await db_pool.fetchval(
        "SELECT at FROM audit_events WHERE case_id = $1 AND type = 'case.supplemented'", handle.id
    )
    assert days_left >= 1
    # 补正 comes before acceptance: the one window has its five working days again, whole (Art. 32).
    expected = add_working_days(calendar, supplemented, 5, beyond_known_years=BeyondKnownYears.weekends_only).at
    assert clock.due_at == expected
    assert clock.due_at > datetime.combine(holiday.last, datetime.min.time(), tzinfo=UTC)


async def test_the_publication_clock_reminds_and_escalates_while_the_channel_does_not_take_the_notice(
    own_time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool, superuser_pool: asyncpg.Pool
) -> None:
    """Art. 18: the 7-working-day publication clock is a clock like the others: it reminds the configured working
    days before its end and escalates at its end while the publication channel (the outbox) refuses the notice.
    Slow for a test (about a minute): the refused hand-over is retried every few minutes of the skipped days."""
    env = own_time_skipping_env
    async with engine_worker(env) as queue:
        handle = await start(env, queue)
        await superuser_pool.execute(CHANNEL_DOWN.format(case_id=handle.id.replace("'", "''")))
        try:
            await decide(handle, "acceptance", OFFICER)
            await review_all(handle)
            await decide(handle, "decision", OFFICIAL)
            [published] = await wait_for_events(db_pool, handle.id, "case.published")
            due = datetime.fromisoformat(json.loads(published["payload"])["publication_due_at"])
            await env.sleep(due - await env.get_current_time() + timedelta(hours=1))
            escalated = await wait_for_events(db_pool, handle.id, "clock.escalated")
        finally:
            await superuser_pool.execute("DROP TRIGGER IF EXISTS publication_channel_down ON outbox")
        await finished(env, handle)

    remind_at = subtract_working_days(
        CALENDAR, due, DISCLOSURE_RULES.remind_before_working_days, beyond_known_years=BeyondKnownYears.weekends_only
    ).at
    [reminder] = [r for r in await events_by_type(db_pool, handle.id, "clock.reminder") if of_publication(r)]
    assert remind_at <= reminder["at"] < due and reminder["legal_basis"] == "Art. 18"
    [escalation] = [r for r in escalated if of_publication(r)]
    assert escalation["at"] >= due and escalation["legal_basis"] == "Art. 18"
    assert json.loads(escalation["payload"])["escalated_to_role"] == DISCLOSURE_RULES.escalate_to_role
    [disclosure] = await db_pool.fetch(
        "SELECT kind FROM outbox WHERE case_id = $1 AND kind = 'case.published'", handle.id
    )
    assert disclosure["kind"] == "case.published"  # handed over once the channel took it again


CHANNEL_DOWN = """
CREATE OR REPLACE FUNCTION publication_channel_down() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'publication channel down (test)'; END $$;
DROP TRIGGER IF EXISTS publication_channel_down ON outbox;
CREATE TRIGGER publication_channel_down BEFORE INSERT ON outbox FOR EACH ROW
WHEN (NEW.kind = 'case.published' AND NEW.case_id = '{case_id}') EXECUTE FUNCTION publication_channel_down();
"""
"""The publication channel refuses this case's notice: the publish activity fails and is retried."""


def of_publication(row: asyncpg.Record) -> bool:
    return json.loads(row["payload"])["clock"] == "publication"


async def events_by_type(pool: asyncpg.Pool, case_id: str, type_: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM audit_events WHERE case_id = $1 AND type = $2 ORDER BY seq", case_id, type_)


async def wait_for_events(pool: asyncpg.Pool, case_id: str, type_: str) -> list[asyncpg.Record]:
    for _ in range(400):
        rows = await events_by_type(pool, case_id, type_)
        if rows:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"{case_id} recorded no {type_}")
