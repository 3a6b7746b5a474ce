"""The kernel's recorded cases that need time to pass (issue 20), on the time-skipping test server, where weeks of
working days pass in seconds: a reminder and an escalation fired, an Art. 45 pause that ends by itself, Art. 32's
deemed acceptance, a calendar year published mid-case, supervision rounds and the continue-as-new hand-over.
Registered with the others in ``tests.corpus_cases`` and recorded by ``tests.record_histories``.
"""

from __future__ import annotations

from datetime import timedelta, timezone

from temporalio.testing import WorkflowEnvironment

from schemas.calendar import Holiday, ScheduleStatus, YearSchedule
from schemas.case import AdoptCalendarRequest, ExcludePeriodRequest
from schemas.process import (
    CaseDeadline,
    Deadline,
    Decision,
    ExcludedPeriodKind,
    OnReject,
    QuorumRule,
    RoutingMode,
    Supervision,
    licensing_law_period,
)
from tests.cases import (
    ALICE,
    BOB,
    CALENDAR,
    decide,
    definition,
    open_tasks,
    person,
    stage,
    start_case,
    task_of,
    view_when,
)
from tests.corpus_processes import Handle
from workflows.kernel import ApprovalWorkflow

CST = timezone(timedelta(hours=8))
OFFICER = person("officer-1", "one_window")
MEMBERS = [person(f"member-{n}", "committee") for n in range(1, 6)]
VOTE = {"allowed_decisions": (Decision.approve, Decision.reject, Decision.abstain)}


async def reminder_escalation_no_quorum(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """A reminder fires and the stage escalates at its due time (the officer then decides); at the vote only one
    member of five votes: reminder, escalation, the absent members' tasks expire, no quorum; the vote is held
    again and every member votes."""
    reminded = Deadline(working_days=3, remind_before_working_days=1, escalate_to_role="section_chief")
    process = definition(
        stage("acceptance", assignees=("officer-1",), deadline=reminded),
        stage(
            "vote", mode=RoutingMode.quorum, assignees=tuple(m.id for m in MEMBERS),
            quorum=QuorumRule(min_attendance=3), deadline=reminded, **VOTE,
        ),
    )  # fmt: skip
    handle = await start_case(env.client, queue, process)
    acceptance = await task_of(handle)
    await env.sleep(timedelta(days=10))
    await view_when(handle, lambda v: v.tasks[0].overdue)
    await decide(handle, OFFICER, acceptance)
    await decide(handle, MEMBERS[0], await task_of(handle, "member-1", "vote"))
    await env.sleep(timedelta(days=10))
    await view_when(handle, lambda v: any(t.round == 2 for t in open_tasks(v, "vote")))  # the vote is held again
    for member in MEMBERS:
        await decide(handle, member, await task_of(handle, member.id, "vote"))
    return [handle]


async def excluded_period_ends(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """An Art. 45 expert review of two working days ends by itself: the clocks resume (``clock.resumed``)."""
    process = definition(
        stage("acceptance", assignees=("alice",), deadline=Deadline(working_days=5)),
        stage("review", assignees=("bob",), deadline=Deadline(working_days=10)),
        deadline=licensing_law_period(starts_after_stage="acceptance"),
    )
    handle = await start_case(env.client, queue, process)
    await decide(handle, ALICE, await task_of(handle, "alice"))
    review = await task_of(handle, "bob")
    pause = ExcludePeriodRequest(
        actor=person("head-1", "head"), kind=ExcludedPeriodKind.expert_review, reason="环评专家评审",
        expected_working_days=2,
    )  # fmt: skip
    await handle.execute_update(ApprovalWorkflow.exclude_period, pause)
    await env.sleep(timedelta(days=6))
    await decide(handle, BOB, review)
    return [handle]


async def deemed_acceptance(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """Art. 32: no acceptance, refusal or 补正 notice within five working days of receipt, so the law accepts the
    application from the day of receipt (the acceptance stage completed by law, ``case.accepted`` deemed); the
    review then decides within the period counted from receipt."""
    process = definition(
        stage("acceptance", assignees=("alice",), may_request_supplement=True),
        stage("review", assignees=("bob",)),
        deadline=licensing_law_period(starts_after_stage="acceptance"),
        supplement_role="one_window",
    )
    handle = await start_case(env.client, queue, process)
    await task_of(handle, "alice")
    await env.sleep(timedelta(days=10))
    await decide(handle, BOB, await task_of(handle, "bob"))
    return [handle]


async def calendar_republication(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """A calendar year published mid-case (adopt_calendar): the statutory period is counted again."""
    handle = await start_case(
        env.client, queue, definition(stage("review", assignees=("alice",)), deadline=CaseDeadline(working_days=20))
    )
    view = await view_when(handle, open_tasks)
    [old_due] = [clock.due_at for clock in view.clocks if clock.key == "case"]
    last_day = old_due.astimezone(CST).date() - timedelta(days=1)
    notice = YearSchedule(
        holidays=(Holiday(name="Eid al-Adha 古尔邦节", first=last_day, last=last_day),),
        make_up_working_days=(),
        source="corpus: regional notice",
        status=ScheduleStatus.official,
    )
    published = CALENDAR.with_year("xinjiang", last_day.year, notice, revision=CALENDAR.revision + 1)
    admin = person("admin-1", "admin")
    request = AdoptCalendarRequest(actor=admin, calendar=published, layer="xinjiang", year=last_day.year)
    await handle.execute_update(ApprovalWorkflow.adopt_calendar, request)
    await decide(handle, ALICE, await task_of(handle))
    return [handle]


async def supervision_two_continuations(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """A supervised grant: five reviews, two per run, so the case continues as new twice; the second review
    finds a problem and opens the adjustment as a child case; after the fifth, supervision ends."""
    review = stage(
        "annual_review", assignees=("inspector",), legal_basis="Art. 3", on_reject=OnReject.continue_,
        allowed_decisions=(Decision.approve, Decision.reject),
    )  # fmt: skip
    adjustment = definition(
        stage("adjust_powers", assignees=("adjuster",), legal_basis="Art. 3"), process="power-adjustment"
    )
    supervision = Supervision(every_days=30, review=review, adjustment=adjustment, max_rounds=5, rounds_per_run=2)
    process = definition(
        stage("grant", assignees=("official",), legal_basis="Art. 3"), process="power-grant", supervision=supervision
    )
    handle = await start_case(env.client, queue, process)
    await decide(handle, person("official", "approving_official"), await task_of(handle))
    inspector, child = person("inspector", "inspector"), None
    for round_ in range(1, 6):
        await env.sleep(timedelta(days=31))
        latest = env.client.get_workflow_handle_for(ApprovalWorkflow.run, handle.id)
        review = await task_of(latest, "inspector")
        if round_ == 2:
            await decide(latest, inspector, review, Decision.reject, comment="capacity to take on the power fell")
        else:
            await decide(latest, inspector, review)
        if round_ == 2:
            child = env.client.get_workflow_handle_for(
                ApprovalWorkflow.run, f"power-adjustment:{handle.id.split(':', 1)[1]}.adj2"
            )
            await decide(child, person("adjuster", "adjuster"), await task_of(child, "adjuster"))
    assert child is not None
    return [env.client.get_workflow_handle_for(ApprovalWorkflow.run, handle.id), child]
