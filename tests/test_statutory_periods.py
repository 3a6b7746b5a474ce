"""Statutory periods of the Administrative Licensing Law, end to end on the time-skipping test server:
acceptance and 补正 (Art. 32), the one extension before the period ends (Art. 42), time not counted (Art. 45),
and stage deadlines that must fit the period. Expectations are computed from each case's recorded times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from approvals.audit.timeline import timeline
from approvals.processes import GenericStartRequest
from approvals.storage.queries import case_events
from schemas.calendar import BeyondKnownYears, add_working_days
from schemas.case import (
    ExcludePeriodRequest,
    ExtendRequest,
    MissingItem,
    RequestSupplementRequest,
    SupplementRequest,
)
from schemas.process import (
    Deadline,
    ExcludedPeriodKind,
    Parallel,
    decree_673_approval_period,
    licensing_law_period,
)
from tests.cases import (
    ALICE,
    APPLICANT,
    BOB,
    CALENDAR,
    HEAD,
    decide,
    definition,
    events,
    finished,
    open_tasks,
    person,
    stage,
    start_case,
    view_when,
    wind_up,
)
from workflows.kernel import ApprovalWorkflow
from workflows.kernel.refusal import local_time
from workflows.rules import definition_problems

ART_32 = "Administrative Licensing Law Art. 32"
ART_42 = "Administrative Licensing Law Art. 42"
ART_45 = "Administrative Licensing Law Art. 45"
ONE_WINDOW = person("officer", "one_window")


def add(start, days):  # type: ignore[no-untyped-def]
    return add_working_days(CALENDAR, start, days, beyond_known_years=BeyondKnownYears.weekends_only).at


def accepting(**profile: object):  # type: ignore[no-untyped-def]
    """A licence: the one window accepts (or asks for 补正), then a review within the Art. 42 period."""
    return definition(
        stage("acceptance", assignees=("alice",), may_request_supplement=True),
        stage("review", assignees=("bob",)),
        deadline=licensing_law_period(starts_after_stage="acceptance", **profile),
        supplement_role="one_window",
    )


async def refused(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await call
    return failure.value.cause.type  # type: ignore[union-attr]


async def test_no_notice_within_five_working_days_means_accepted_from_receipt(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, accepting())
        await view_when(handle, open_tasks)
        [started] = await events(db_pool, handle.id, "case.started")
        received = started["at"]
        await time_skipping_env.sleep(add(received, 5) - await time_skipping_env.get_current_time())
        view = await view_when(handle, lambda v: bool(open_tasks(v, "review")))
        assert not open_tasks(view, "acceptance")  # the officer's task is gone: the law decided
        [period] = [clock for clock in view.clocks if clock.key == "case"]
        assert period.due_at == add(received, 20)  # counted from receipt, not from today
        await decide(handle, BOB, open_tasks(view, "review")[0])
        await finished(time_skipping_env, handle)

    [accepted] = await events(db_pool, handle.id, "case.accepted")
    assert (accepted["actor_id"], accepted["legal_basis"]) == ("system", ART_32)
    assert accepted["payload"]["deemed"] is True
    assert accepted["payload"]["accepted_at"] == received.isoformat() == accepted["payload"]["received_at"]
    [completed, _] = await events(db_pool, handle.id, "stage.completed")
    assert (completed["stage_id"], completed["actor_id"], completed["legal_basis"]) == ("acceptance", "system", ART_32)
    [clock] = await events(db_pool, handle.id, "clock.started")
    assert clock["payload"]["due_at"] == add(received, 20).isoformat() and clock["legal_basis"] == ART_42
    assert clock["seq"] > accepted["seq"]


async def test_supplement_is_told_once_before_acceptance_and_never_after(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    ask = RequestSupplementRequest(actor=ALICE, items=[MissingItem(item="环评批复"), MissingItem(item="land title")])
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, accepting())
        [task] = open_tasks(await view_when(handle, open_tasks))
        await handle.execute_update(ApprovalWorkflow.request_supplement, ask)

        nothing = SupplementRequest(actor=APPLICANT, comment="  ")
        assert await refused(handle.execute_update(ApprovalWorkflow.supplement, nothing)) == "NOTHING_SUPPLIED"
        await handle.execute_update(ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="attached"))

        again = RequestSupplementRequest(actor=ALICE, items=[MissingItem(item="business licence")])
        code = await refused(handle.execute_update(ApprovalWorkflow.request_supplement, again))
        assert code == "SUPPLEMENT_ALREADY_USED"
        defective = again.model_copy(update={"supplied_material_defective": "the land title supplied is unsigned"})
        await handle.execute_update(ApprovalWorkflow.request_supplement, defective)
        await handle.execute_update(ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="signed"))

        # Five working days pass: the window no longer counts, 补正 was told in time.
        await time_skipping_env.sleep(timedelta(days=9))
        view = await handle.query(ApprovalWorkflow.view)
        assert open_tasks(view, "acceptance") and not any(c.key == "case" for c in view.clocks)

        await decide(handle, ALICE, task)
        await view_when(handle, lambda v: bool(open_tasks(v, "review")))
        # The supplement_role may ask at any time, yet no longer stop the Art. 42 period once the case is accepted.
        late = RequestSupplementRequest(actor=ONE_WINDOW, items=[MissingItem(item="anything")])
        code = await refused(handle.execute_update(ApprovalWorkflow.request_supplement, late))
        assert code == "SUPPLEMENT_AFTER_ACCEPTANCE"
        await wind_up(time_skipping_env, handle)

    first, second = await events(db_pool, handle.id, "case.supplement_requested")
    assert first["payload"]["supplied_material_defective"] == ""
    assert second["payload"]["supplied_material_defective"] == "the land title supplied is unsigned"
    assert all(e["legal_basis"] == ART_32 for e in (first, second))
    [accepted] = await events(db_pool, handle.id, "case.accepted")
    assert (accepted["actor_id"], accepted["payload"]["deemed"], accepted["legal_basis"]) == ("system", False, ART_32)


async def test_an_extension_is_refused_once_the_period_has_ended_and_its_reason_is_told(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(stage("review", assignees=("alice",)), deadline=licensing_law_period(working_days=3))
    async with engine_worker(time_skipping_env) as queue:
        early = await start_case(time_skipping_env.client, queue, process)
        late = await start_case(time_skipping_env.client, queue, process)
        await view_when(early, open_tasks)
        await view_when(late, open_tasks)
        await early.execute_update(ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="expert hearing"))
        due = next(c.due_at for c in (await late.query(ApprovalWorkflow.view)).clocks if c.key == "case")
        await time_skipping_env.sleep(due - await time_skipping_env.get_current_time() + timedelta(minutes=1))
        with pytest.raises(WorkflowUpdateFailedError) as expired:
            await late.execute_update(ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="late"))
        assert expired.value.cause.type == "PERIOD_EXPIRED"  # type: ignore[union-attr]
        last_day = (due.astimezone(CALENDAR.tzinfo) - timedelta(days=1)).date()
        assert f"ended at {last_day} 24时 (北京时间 UTC+8)" in str(expired.value.cause)  # local, labelled
        await wind_up(time_skipping_env, early)
        await wind_up(time_skipping_env, late)

    [extended] = await events(db_pool, early.id, "case.extended")
    assert extended["legal_basis"] == ART_42 and extended["payload"]["reason"] == "expert hearing"
    told = await db_pool.fetch(
        "SELECT recipient, data::text AS data FROM outbox WHERE case_id = $1 AND kind = 'case.extended'", early.id
    )
    assert [(row["recipient"], "expert hearing" in row["data"]) for row in told] == [(APPLICANT.id, True)]
    assert await events(db_pool, late.id, "case.extended") == []


async def test_an_excluded_period_stops_the_clock_and_it_runs_again_when_the_time_told_is_over(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(
        stage("review", assignees=("alice",), deadline=Deadline(working_days=5)), deadline=licensing_law_period()
    )
    request = ExcludePeriodRequest(
        actor=HEAD, kind=ExcludedPeriodKind.expert_review, reason="环评专家评审", expected_working_days=3
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        [task] = open_tasks(await view_when(handle, open_tasks))
        await time_skipping_env.sleep(timedelta(days=1))
        assert await refused(handle.execute_update(ApprovalWorkflow.exclude_period, request.model_copy(
            update={"actor": ALICE}))) == "NOT_ALLOWED"  # fmt: skip
        await handle.execute_update(ApprovalWorkflow.exclude_period, request)
        paused = await handle.query(ApprovalWorkflow.view)
        assert paused.clock_state == "stopped"
        [paused_event] = await events(db_pool, handle.id, "clock.paused")
        left = paused_event["payload"]["working_days_left"]
        resumes_at = add(paused_event["at"], 3)
        assert paused_event["payload"]["resumes_at"] == resumes_at.isoformat()

        await time_skipping_env.sleep(resumes_at - await time_skipping_env.get_current_time() + timedelta(minutes=1))
        view = await view_when(handle, lambda v: v.clock_state == "running")
        await decide(handle, ALICE, task)
        await finished(time_skipping_env, handle)

    assert (paused_event["actor_id"], paused_event["legal_basis"]) == (HEAD.id, ART_45)
    assert paused_event["payload"]["kind"] == "expert_review" and set(left) == {"case", "stage:review:1"}
    [resumed] = await events(db_pool, handle.id, "clock.resumed")
    assert (resumed["actor_id"], resumed["legal_basis"]) == ("system", ART_45) and resumed["at"] >= resumes_at
    expected = {key: add(resumed["at"], max(1, days)) for key, days in left.items()}
    assert {c.key: c.due_at for c in view.clocks} == expected
    assert resumed["payload"]["due_at"] == {key: due.isoformat() for key, due in expected.items()}
    told = await db_pool.fetch(
        "SELECT recipient FROM outbox WHERE case_id = $1 AND kind = 'case.period_excluded'", handle.id
    )
    assert [row["recipient"] for row in told] == [APPLICANT.id]
    started = (await events(db_pool, handle.id, "case.started"))[0]["at"]
    assert expected["case"] > add(started, 20)  # the review's working days were not counted


def test_stage_deadlines_longer_than_the_period_are_refused_naming_the_stages() -> None:
    review = stage("review", assignees=("bob",), deadline=Deadline(working_days=12))
    expert = stage("expert", assignees=("carol",), deadline=Deadline(working_days=6))
    site = stage("site", assignees=("dan",), deadline=Deadline(working_days=3))
    sign = stage("sign", assignees=("erin",), deadline=Deadline(working_days=4))
    process = definition(
        stage("acceptance", assignees=("alice",), deadline=Deadline(working_days=5)),  # before the period
        Parallel(id="reviews", title="Reviews", branches=((review, expert), (site,))),
        sign,
        deadline=licensing_law_period(starts_after_stage="acceptance"),
    )
    [problem] = definition_problems(process)
    assert "add up to 22" in problem and "review 12 + expert 6 + sign 4" in problem and "20-working-day" in problem
    assert definition_problems(process.model_copy(update={"steps": process.steps[:2]})) == []
    with pytest.raises(ValidationError, match="review 12 \\+ expert 6 \\+ sign 4"):
        GenericStartRequest(business_key="K-1", title="t", applicant=APPLICANT, definition=process)


DECREE_673 = "国务院令第673号《企业投资项目核准和备案管理条例》"


async def test_the_acceptance_chooses_decree_673_and_its_period_extension_and_appraisal_bound_apply(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    """A project under 核准: the one window picks Decree 673's profile when accepting; the case then has 20 working
    days from acceptance, extendable by 40 (Art. 10), and a consultancy's appraisal leaves at most 30 out (Art. 9)."""
    process = accepting().model_copy(
        update={
            "deadline_profiles": {"decree-673-approval": decree_673_approval_period(starts_after_stage="acceptance")}
        }
    )
    appraisal = ExcludePeriodRequest(
        actor=HEAD, kind=ExcludedPeriodKind.appraisal, reason="委托工程咨询机构评估", expected_working_days=31
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        [acceptance] = open_tasks(await view_when(handle, open_tasks))
        with pytest.raises(WorkflowUpdateFailedError) as unknown:
            await decide(handle, ALICE, acceptance, deadline_profile="decree-999")
        await decide(handle, ALICE, acceptance, deadline_profile="decree-673-approval")
        [task] = open_tasks(await view_when(handle, lambda v: bool(open_tasks(v, "review"))))
        too_long = await refused(handle.execute_update(ApprovalWorkflow.exclude_period, appraisal))
        hearing = appraisal.model_copy(update={"kind": ExcludedPeriodKind.hearing, "expected_working_days": 5})
        not_673 = await refused(handle.execute_update(ApprovalWorkflow.exclude_period, hearing))
        [accepted] = await events(db_pool, handle.id, "case.accepted")
        await time_skipping_env.sleep(add(accepted["at"], 15) - await time_skipping_env.get_current_time())
        await handle.execute_update(ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="征求有关单位意见"))
        await time_skipping_env.sleep(add(accepted["at"], 25) - await time_skipping_env.get_current_time())
        running = await handle.query(ApprovalWorkflow.view)  # past the first 20 days: the 40 hold it open
        await decide(handle, BOB, task)
        await finished(time_skipping_env, handle)

    cause = unknown.value.cause
    assert cause.type == "UNKNOWN_DEADLINE_PROFILE" and "['decree-673-approval']" in str(cause)  # type: ignore[union-attr]
    assert cause.details[0]["field"] == "deadline_profile"  # type: ignore[union-attr]
    assert (too_long, not_673) == ("EXCLUDED_TOO_LONG", "NOT_EXCLUDABLE")
    assert accepted["legal_basis"] == ART_32
    assert accepted["payload"]["deadline_profile"] == "decree-673-approval"
    assert accepted["payload"]["period_legal_basis"] == f"{DECREE_673} Art. 10"
    assert (accepted["payload"]["period_working_days"], accepted["payload"]["extension_working_days"]) == (20, 40)
    [period] = [e for e in await events(db_pool, handle.id, "clock.started") if e["payload"]["clock"] == "case"]
    assert period["legal_basis"] == f"{DECREE_673} Art. 10"
    assert period["payload"]["due_at"] == add(accepted["at"], 20).isoformat()
    [extended] = await events(db_pool, handle.id, "case.extended")
    assert extended["legal_basis"] == f"{DECREE_673} Art. 10" and extended["payload"]["working_days"] == 40
    assert extended["payload"]["due_at"] == add(accepted["at"], 60).isoformat()
    [case_clock] = [c for c in running.clocks if c.key == "case"]
    assert case_clock.due_at == add(accepted["at"], 60) and not case_clock.overdue
    told = {row.type: row for row in timeline(await case_events(db_pool, handle.id), calendar=CALENDAR)}
    assert f"办理期限20个工作日（{DECREE_673} Art. 10）" in told["case.accepted"].action_zh
    decided = [row for row in timeline(await case_events(db_pool, handle.id)) if row.type == "task.decided"][0]
    assert "under the deadline profile decree-673-approval" in decided.action


async def test_without_a_choice_the_case_keeps_the_licensing_law_period(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = accepting().model_copy(
        update={
            "deadline_profiles": {"decree-673-approval": decree_673_approval_period(starts_after_stage="acceptance")}
        }
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        [acceptance] = open_tasks(await view_when(handle, open_tasks))
        await decide(handle, ALICE, acceptance)
        [task] = open_tasks(await view_when(handle, lambda v: bool(open_tasks(v, "review"))))
        late_choice = await refused(decide(handle, BOB, task, deadline_profile="decree-673-approval"))
        await decide(handle, BOB, task)
        await finished(time_skipping_env, handle)

    assert late_choice == "UNKNOWN_DEADLINE_PROFILE"  # only the acceptance chooses
    [accepted] = await events(db_pool, handle.id, "case.accepted")
    assert "deadline_profile" not in accepted["payload"]  # recorded as cases without profiles always were
    [period] = [e for e in await events(db_pool, handle.id, "clock.started") if e["payload"]["clock"] == "case"]
    assert period["legal_basis"] == ART_42 and period["payload"]["due_at"] == add(accepted["at"], 20).isoformat()


def test_profiles_are_chosen_at_the_acceptance_stage_only() -> None:
    with pytest.raises(ValidationError, match="deadline_profiles are chosen at acceptance"):
        definition(
            stage("review", assignees=("bob",)),
            deadline=licensing_law_period(),
            deadline_profiles={"decree-673-approval": decree_673_approval_period()},
        )


def test_refusals_say_times_in_the_zones_local_time_labelled() -> None:
    moment = datetime(2026, 3, 2, 2, 30, tzinfo=UTC)
    assert local_time(moment, CALENDAR.tzinfo) == "2026-03-02 10:30:00 (北京时间 UTC+8)"
    midnight = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 00:00 on 3 March there: the end of 2 March
    assert local_time(midnight, CALENDAR.tzinfo) == "2026-03-02 24时 (北京时间 UTC+8)"
