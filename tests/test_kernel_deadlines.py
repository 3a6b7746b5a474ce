"""Working-day deadlines of the kernel: reminders, escalation, the clock stopped during 补正 (before
acceptance, tests/test_statutory_periods.py has the rest of Art. 32), the statutory period and its one extension, holidays (the 2026 Spring Festival), and years the calendar does not know.

End to end on the time-skipping test server: ``env.sleep`` moves its clock, weeks pass in seconds. The
server starts at the real current time, so expectations are computed from each case's own recorded times
with the calendar functions the kernel uses, never from a hard-coded date.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta, timezone

import asyncpg
import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from schemas.calendar import (
    BeyondKnownYears,
    Holiday,
    ScheduleStatus,
    WorkingCalendar,
    YearSchedule,
    add_working_days,
    subtract_working_days,
    working_days_between,
)
from schemas.case import (
    AdoptCalendarRequest,
    CaseStatus,
    CaseView,
    ExtendRequest,
    MissingItem,
    RequestSupplementRequest,
    SupplementRequest,
)
from schemas.process import CaseDeadline, Deadline, Parallel
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
    recorded_when,
    stage,
    start_case,
    view_when,
    wind_up,
)
from workflows.kernel import ApprovalWorkflow

CST = timezone(timedelta(hours=8))
ADMIN = person("admin-1", "admin")
POLICY = BeyondKnownYears.weekends_only
"""What the kernel counts with: a year outside the calendar is counted Monday-Friday and recorded."""


Handle = WorkflowHandle[ApprovalWorkflow, CaseView]


# ---------------------------------------------------------------- helpers


def add(start: datetime, days: int, cal: WorkingCalendar = CALENDAR) -> datetime:
    return add_working_days(cal, start, days, beyond_known_years=POLICY).at


async def sleep_until(env: WorkflowEnvironment, moment: datetime) -> None:
    delta = moment - await env.get_current_time()
    if delta > timedelta(0):
        await env.sleep(delta)


async def event_at(db_pool: asyncpg.Pool, case_id: str, type_: str) -> datetime:
    [event] = await events(db_pool, case_id, type_)
    return event["at"]


# ---------------------------------------------------------------- reminders and escalation


async def test_a_reminder_fires_before_the_due_time_and_notifies_the_assignee(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(
        stage("review", assignees=("alice",), deadline=Deadline(working_days=3, remind_before_working_days=1))
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, open_tasks)
        [task] = open_tasks(view)
        started = await event_at(db_pool, handle.id, "stage.started")
        due = add(started, 3)
        remind_at = subtract_working_days(CALENDAR, due, 1, beyond_known_years=POLICY).at
        assert task.due_at == due

        await sleep_until(time_skipping_env, remind_at + timedelta(minutes=1))
        await view_when(handle, lambda v: v.last_seq > view.last_seq)
        await decide(handle, ALICE, task)
        await finished(time_skipping_env, handle)

    [reminder] = await events(db_pool, handle.id, "clock.reminder")
    assert remind_at <= reminder["at"] < due
    assert reminder["payload"] == {"clock": "stage:review:1", "due_at": due.isoformat()}
    assert reminder["actor_id"] == "system" and reminder["legal_basis"] == "Art. 10"
    assert await events(db_pool, handle.id, "clock.escalated") == []
    sent = await db_pool.fetch("SELECT recipient FROM outbox WHERE case_id = $1 AND kind = 'task.reminder'", handle.id)
    assert [r["recipient"] for r in sent] == ["alice"]


async def test_escalation_at_the_due_time_flags_the_task_and_notifies_the_supervisor_role(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    deadline = Deadline(working_days=2, remind_before_working_days=0, escalate_to_role="supervisor")
    process = definition(stage("review", assignees=("alice",), deadline=deadline))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        [task] = open_tasks(await view_when(handle, open_tasks))
        due = add(await event_at(db_pool, handle.id, "stage.started"), 2)
        assert task.due_at == due

        await sleep_until(time_skipping_env, due - timedelta(minutes=1))
        view = await handle.query(ApprovalWorkflow.view)
        assert not view.tasks[0].overdue and not view.clocks[0].overdue

        await sleep_until(time_skipping_env, due + timedelta(minutes=1))
        view = await view_when(handle, lambda v: v.tasks[0].overdue)
        assert view.clocks[0].overdue and view.status is CaseStatus.in_review  # escalation does not decide

        await decide(handle, ALICE, task)
        await finished(time_skipping_env, handle)

    [escalated] = await events(db_pool, handle.id, "clock.escalated")
    assert escalated["at"] >= due
    assert escalated["payload"]["escalated_to_role"] == "supervisor"
    assert escalated["payload"]["overdue_tasks"] == [task.task_id]
    [notice] = await db_pool.fetch(
        "SELECT recipient, data::text AS data FROM outbox WHERE case_id = $1 AND kind = 'case.escalated'", handle.id
    )
    assert notice["recipient"] == "role:supervisor" and json.loads(notice["data"])["tasks"] == [task.task_id]
    overdue = await db_pool.fetchval("SELECT overdue FROM tasks WHERE task_id = $1", task.task_id)
    assert overdue is True


# ---------------------------------------------------------------- 补正 stops the clock


async def test_supplement_before_acceptance_stops_the_clock_and_the_stage_starts_again_whole(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    """补正 comes before acceptance (Art. 32): the statutory period has not begun, and the acceptance stage has
    its whole time again once the material is complete."""
    process = definition(
        stage(
            "acceptance", assignees=("alice",), may_request_supplement=True,
            deadline=Deadline(working_days=5, remind_before_working_days=1, escalate_to_role="supervisor"),
        ),
        stage("review", assignees=("bob",)),
        deadline=CaseDeadline(working_days=20, starts_after_stage="acceptance"),
    )  # fmt: skip
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        [task] = open_tasks(await view_when(handle, open_tasks))
        dues = {clock.key: clock.due_at for clock in (await handle.query(ApprovalWorkflow.view)).clocks}
        assert set(dues) == {"stage:acceptance:1"}

        await time_skipping_env.sleep(timedelta(days=1))
        request = RequestSupplementRequest(
            actor=ALICE, items=[MissingItem(item="环评批复"), MissingItem(item="land title")]
        )
        await handle.execute_update(ApprovalWorkflow.request_supplement, request)
        paused_at = await event_at(db_pool, handle.id, "case.supplement_requested")
        left = {
            key: working_days_between(CALENDAR, paused_at, due, beyond_known_years=POLICY).days
            for key, due in dues.items()
        }
        paused = await handle.query(ApprovalWorkflow.view)
        assert paused.clock_state == "stopped" and all(not clock.running for clock in paused.clocks)

        # Ten days pass: the stage's original due time goes by, but a stopped clock neither reminds nor escalates.
        await time_skipping_env.sleep(timedelta(days=10))
        assert await time_skipping_env.get_current_time() > dues["stage:acceptance:1"]
        view = await handle.query(ApprovalWorkflow.view)
        assert view.last_seq == paused.last_seq and not view.tasks[0].overdue

        await handle.execute_update(
            ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="all attached")
        )
        resumed_at = await event_at(db_pool, handle.id, "case.supplemented")
        expected = {"stage:acceptance:1": add(resumed_at, 5)}  # whole, not the days that were left
        view = await handle.query(ApprovalWorkflow.view)
        assert {clock.key: clock.due_at for clock in view.clocks} == expected
        assert view.clock_state == "running" and open_tasks(view)[0].due_at == expected["stage:acceptance:1"]

        await decide(handle, ALICE, task)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "review")))
        accepted_at = await event_at(db_pool, handle.id, "case.accepted")
        assert {c.key: c.due_at for c in view.clocks}["case"] == add(accepted_at, 20)  # the period starts now
        await decide(handle, BOB, open_tasks(view, "review")[0])
        await finished(time_skipping_env, handle)

    [requested] = await events(db_pool, handle.id, "case.supplement_requested")
    assert requested["payload"]["working_days_left"] == left
    assert requested["legal_basis"] == "Administrative Licensing Law Art. 32"
    [supplemented] = await events(db_pool, handle.id, "case.supplemented")
    assert supplemented["payload"]["due_at"] == {key: due.isoformat() for key, due in expected.items()}
    assert await events(db_pool, handle.id, "clock.escalated") == []


# ---------------------------------------------------------------- the statutory period


async def test_the_case_deadline_starts_after_the_named_stage(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(
        stage("acceptance", assignees=("alice",)),
        stage("review", assignees=("bob",)),
        deadline=CaseDeadline(working_days=20, starts_after_stage="acceptance"),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, open_tasks)
        assert view.clocks == [] and view.clock_state == "none"

        await time_skipping_env.sleep(timedelta(days=3))  # acceptance takes a while: not part of the period
        await decide(handle, ALICE, open_tasks(view)[0])
        view = await view_when(handle, lambda v: bool(open_tasks(v, "review")))
        accepted_at = (await events(db_pool, handle.id, "stage.completed"))[0]["at"]
        [clock] = view.clocks
        assert (clock.key, clock.due_at, clock.running) == ("case", add(accepted_at, 20), True)

        await decide(handle, BOB, open_tasks(view, "review")[0])
        await finished(time_skipping_env, handle)

    [started] = await events(db_pool, handle.id, "clock.started")
    assert started["payload"] == {"clock": "case", "working_days": 20, "due_at": add(accepted_at, 20).isoformat()}
    assert started["legal_basis"] == "Administrative Licensing Law Art. 42"
    case_row = await db_pool.fetchrow("SELECT clock_state FROM cases WHERE case_id = $1", handle.id)
    assert case_row["clock_state"] == "none"  # the decision stops every clock


async def test_the_head_extends_the_period_once_from_its_previous_end(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    from temporalio.client import WorkflowUpdateFailedError

    process = definition(
        stage("review", assignees=("alice",)),
        deadline=CaseDeadline(working_days=20, extension_working_days=10, extension_role="head"),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, open_tasks)
        due = add(await event_at(db_pool, handle.id, "case.started"), 20)
        assert view.clocks[0].due_at == due

        await handle.execute_update(ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="expert hearing"))
        view = await handle.query(ApprovalWorkflow.view)
        assert view.extended and view.clocks[0].due_at == add(due, 10)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="once more"))
        assert refused.value.cause.type == "EXTENSION_USED"  # type: ignore[attr-defined]
        await decide(handle, ALICE, open_tasks(view)[0])
        await finished(time_skipping_env, handle)

    [extended] = await events(db_pool, handle.id, "case.extended")
    assert extended["actor_id"] == HEAD.id and extended["payload"]["working_days"] == 10
    assert extended["payload"]["previous_due_at"] == due.isoformat()
    assert extended["payload"]["due_at"] == add(due, 10).isoformat()


async def test_the_clock_timer_is_restarted_only_when_the_earliest_wake_moves(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    """Parallel branches due the same day: as each ends, its clock goes but the earliest due time stays, and so
    does the running timer (each restart is a cancelled and a started timer in the history, and server work)."""
    branches = Parallel(
        id="departments",
        title="Departments",
        branches=(
            (stage("planning", assignees=("alice",), deadline=Deadline(working_days=5)),),
            (stage("safety", assignees=("bob",), deadline=Deadline(working_days=5)),),
            (stage("land", assignees=("carol",), deadline=Deadline(working_days=5)),),
        ),
    )
    process = definition(branches, stage("decision", assignees=("bob",)), deadline=CaseDeadline(working_days=20))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 3)
        for task in open_tasks(view):
            await decide(handle, person(task.assignee_id, "reviewer"), task)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "decision")))
        await decide(handle, BOB, open_tasks(view, "decision")[0])
        await finished(time_skipping_env, handle)
        history = await handle.fetch_history()

    fire_at: dict[int, datetime] = {}
    restarted_at_the_same_time = []
    cancelled: datetime | None = None
    for event in history.events:
        if event.HasField("timer_started_event_attributes"):
            attributes = event.timer_started_event_attributes
            fire_at[event.event_id] = event.event_time.ToDatetime() + attributes.start_to_fire_timeout.ToTimedelta()
            if cancelled is not None and abs(fire_at[event.event_id] - cancelled) < timedelta(seconds=1):
                restarted_at_the_same_time.append(event.event_id)
            cancelled = None
        elif event.HasField("timer_canceled_event_attributes"):
            cancelled = fire_at[event.timer_canceled_event_attributes.started_event_id]
    assert len(fire_at) >= 2  # the branches' (a reminder, then their due time), the case's
    assert restarted_at_the_same_time == []


# ---------------------------------------------------------------- holidays: the 2026 Spring Festival


def local(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=CST)


def end_of_local_day(year: int, month: int, day: int) -> datetime:
    """A period ends at the end of its last working day: local midnight starting the next day."""
    return datetime.combine(date(year, month, day) + timedelta(days=1), time(0), tzinfo=CST).astimezone(UTC)


def test_spring_festival_a_stage_due_date_skips_the_holiday_and_counts_the_make_up_saturdays() -> None:
    # Started Tue 10 Feb 2026: 11, 12, 13, Sat 14 (make-up), [15-23 off], 24, 25, 26, 27, Sat 28 (make-up), Mon 2 Mar.
    assert add(local(2026, 2, 10, 10), 10) == end_of_local_day(2026, 3, 2)


def test_spring_festival_a_one_day_period_started_on_the_eve_ends_after_the_holiday() -> None:
    assert add(local(2026, 2, 13, 16), 1) == end_of_local_day(2026, 2, 14)  # the make-up Saturday
    assert add(local(2026, 2, 14, 16), 1) == end_of_local_day(2026, 2, 24)


def test_spring_festival_a_reminder_one_working_day_before_falls_on_the_make_up_saturday() -> None:
    due = end_of_local_day(2026, 3, 2)
    assert subtract_working_days(CALENDAR, due, 1, beyond_known_years=POLICY).at == end_of_local_day(2026, 2, 28)
    assert subtract_working_days(
        CALENDAR, end_of_local_day(2026, 2, 24), 1, beyond_known_years=POLICY
    ).at == end_of_local_day(2026, 2, 14)


def test_spring_festival_a_clock_stopped_before_the_holiday_keeps_its_working_days() -> None:
    # Paused Thu 12 Feb with the period ending 2 Mar: 13, 14, 24, 25, 26, 27, 28, 2 are left (8 working days).
    due = end_of_local_day(2026, 3, 2)
    left = working_days_between(CALENDAR, local(2026, 2, 12, 10), due, beyond_known_years=POLICY).days
    assert left == 8
    # Material arrives Mon 9 Mar: 10, 11, 12, 13, 16, 17, 18, 19 -> ends with Thu 19 Mar.
    assert add(local(2026, 3, 9, 9), left) == end_of_local_day(2026, 3, 19)


def test_spring_festival_the_statutory_twenty_days_and_the_extension_span_the_holiday() -> None:
    # Accepted Mon 9 Feb: 10-13, 14 (make-up), 24-27, 28 (make-up), 2-6 Mar, 9-13 Mar -> 20th is Fri 13 Mar.
    due = add(local(2026, 2, 9, 11), 20)
    assert due == end_of_local_day(2026, 3, 13)
    # Extended by 10 from its end: 16-20, 23-27 Mar.
    assert add(due, 10) == end_of_local_day(2026, 3, 27)
    assert add(due, 10) == add(local(2026, 2, 9, 11), 30)


def coming_holidays(now: datetime) -> tuple[WorkingCalendar, list[date], date]:
    """A calendar whose nine-day festival starts tomorrow (local), with a make-up weekend day after it."""
    today = now.astimezone(CST).date()
    festival = [today + timedelta(days=n) for n in range(1, 10)]
    make_up = next(d for d in (festival[-1] + timedelta(days=n) for n in range(1, 8)) if d.weekday() >= 5)
    years: dict[int, YearSchedule] = {}
    for year in sorted({today.year, today.year + 1, *(d.year for d in festival), make_up.year}):
        years[year] = YearSchedule(
            holidays=tuple(
                Holiday(name=f"Test festival 春节 day {d:%m-%d}", first=d, last=d) for d in festival if d.year == year
            ),
            make_up_working_days=tuple(d for d in (make_up,) if d.year == year),
            source="test: a festival starting tomorrow",
        )
    return WorkingCalendar(name="test-festival", timezone_offset_hours=8, years=years), festival, make_up


def nth_working_day_by_hand(start: date, n: int, off: set[date], make_up: set[date]) -> date:
    """An oracle independent of the calendar module: weekdays and make-up days work, holidays do not."""
    day = start
    while n:
        day += timedelta(days=1)
        if day in make_up or (day.weekday() < 5 and day not in off):
            n -= 1
    return day


async def test_end_to_end_a_due_date_skips_a_festival_in_the_case_calendar(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    calendar, festival, make_up = coming_holidays(await time_skipping_env.get_current_time())
    process = definition(
        stage("review", assignees=("alice",), deadline=Deadline(working_days=3, remind_before_working_days=1)),
        deadline=CaseDeadline(working_days=5),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process, calendar=calendar)
        [task] = open_tasks(await view_when(handle, open_tasks))
        started = await event_at(db_pool, handle.id, "case.started")
        start_day = started.astimezone(CST).date()
        off = set(festival)

        stage_due = nth_working_day_by_hand(start_day, 3, off, {make_up})
        case_due = nth_working_day_by_hand(start_day, 5, off, {make_up})
        assert task.due_at == end_of_local_day(stage_due.year, stage_due.month, stage_due.day)
        assert stage_due > festival[-1]  # nothing is due during the festival
        view = await handle.query(ApprovalWorkflow.view)
        assert {c.key: c.due_at for c in view.clocks}["case"] == end_of_local_day(
            case_due.year, case_due.month, case_due.day
        )
        # Without the festival the same period would have ended days earlier.
        assert task.due_at > add(started, 3)
        assert view.warnings == []

        # The festival passes with no reminder and no escalation; the reminder comes one working day before.
        await sleep_until(time_skipping_env, end_of_local_day(festival[-1].year, festival[-1].month, festival[-1].day))
        remind_at = subtract_working_days(calendar, task.due_at, 1, beyond_known_years=POLICY).at
        reminders = await events(db_pool, handle.id, "clock.reminder")
        assert all(r["at"] >= remind_at for r in reminders)
        await decide(handle, ALICE, task)
        await finished(time_skipping_env, handle)
    assert await events(db_pool, handle.id, "case.calendar_assumption") == []


# ---------------------------------------------------------------- years the calendar does not know


async def test_a_due_date_in_a_year_beyond_the_calendar_is_counted_weekends_only_and_recorded(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    now = await time_skipping_env.get_current_time()
    past_year = now.astimezone(CST).year - 1
    stale = WorkingCalendar(
        name="stale",
        timezone_offset_hours=8,
        years={past_year: YearSchedule(holidays=(), make_up_working_days=(), source="test: last year only")},
    )
    process = definition(
        stage("review", assignees=("alice",), deadline=Deadline(working_days=5, remind_before_working_days=1)),
        deadline=CaseDeadline(working_days=20),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process, calendar=stale)
        view = await view_when(handle, open_tasks)
        [review] = open_tasks(view)
        await recorded_when(db_pool, handle.id, "task.created")  # the open task's row, as the inbox reads it
        stored = await db_pool.fetchval("SELECT due_assumed_years FROM tasks WHERE task_id = $1", review.task_id)
        await decide(handle, ALICE, review)
        result = await finished(time_skipping_env, handle)

    started = await event_at(db_pool, handle.id, "case.started")
    expected = add_working_days(stale, started, 20, beyond_known_years=POLICY)
    # The reviewer sees which years of the task's due date were assumed, in the view and in the inbox's row.
    stage_due = add_working_days(
        stale, await event_at(db_pool, handle.id, "stage.started"), 5, beyond_known_years=POLICY
    )
    assert stage_due.assumed_years and review.due_assumed_years == list(stage_due.assumed_years)
    assert stored == list(stage_due.assumed_years)
    assert expected.assumed_years  # the premise: the period runs in years the calendar does not list
    assumptions = await events(db_pool, handle.id, "case.calendar_assumption")
    assert sorted(a["payload"]["year"] for a in assumptions) == list(expected.assumed_years)
    assert all(a["payload"]["assumption"] == "weekends_only" and a["actor_id"] == "system" for a in assumptions)
    assert len(result.warnings) == len(expected.assumed_years)  # recorded once per year, not per computation
    assert all(str(year) in warning for year, warning in zip(expected.assumed_years, result.warnings, strict=False))
    [clock_started] = await events(db_pool, handle.id, "clock.started")
    assert clock_started["payload"]["due_at"] == expected.at.isoformat()


# ---------------------------------------------------------------- a calendar year published mid-case


async def test_a_year_published_mid_case_moves_the_running_deadline_and_records_old_and_new_dates(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(stage("review", assignees=("alice",)), deadline=CaseDeadline(working_days=20))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, open_tasks)
        [old_due] = [clock.due_at for clock in view.clocks if clock.key == "case"]
        # The regional notice of the due date's year makes that very day a holiday.
        last_day = old_due.astimezone(CST).date() - timedelta(days=1)
        notice = YearSchedule(
            holidays=(Holiday(name="Eid al-Adha 古尔邦节", first=last_day, last=last_day),),
            make_up_working_days=(),
            source="test: regional notice",
            status=ScheduleStatus.official,
        )
        published = CALENDAR.with_year("xinjiang", last_day.year, notice, revision=CALENDAR.revision + 1)
        request = AdoptCalendarRequest(actor=ADMIN, calendar=published, layer="xinjiang", year=last_day.year)

        await handle.execute_update(ApprovalWorkflow.adopt_calendar, request)
        with pytest.raises(WorkflowUpdateFailedError) as refused:  # the same revision again changes nothing
            await handle.execute_update(ApprovalWorkflow.adopt_calendar, request)
        assert refused.value.cause.type == "CALENDAR_NOT_NEWER"  # type: ignore[attr-defined]
        view = await handle.query(ApprovalWorkflow.view)
        await wind_up(time_skipping_env, handle)

    [recomputed] = await events(db_pool, handle.id, "case.deadlines_recomputed")
    adopted_at = recomputed["at"]
    left = working_days_between(CALENDAR, adopted_at, old_due, beyond_known_years=POLICY).days
    new_due = add_working_days(published, adopted_at, left, beyond_known_years=POLICY).at
    assert new_due > old_due  # the holiday is not worked: the period ends a working day later
    assert [clock.due_at for clock in view.clocks if clock.key == "case"] == [new_due]
    assert recomputed["actor_id"] == ADMIN.id
    assert recomputed["legal_basis"] == "Administrative Licensing Law Art. 82"
    assert recomputed["payload"] == {
        "calendar": "cn",
        "revision": published.revision,
        "layer": "xinjiang",
        "year": last_day.year,
        "moved": [
            {
                "clock": "case",
                "label": "statutory period",
                "stage_id": None,
                "previous_due_at": old_due.isoformat(),
                "due_at": new_due.isoformat(),
            }
        ],
    }
