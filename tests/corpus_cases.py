"""The recorded paths that need time to pass or several runs (issue 20), driven by ``tests.record_histories``.

Each function drives one case and returns its handles: the case first, then any child case it started. The
recorder saves every run of each (a case that continued as new leaves one history per run). The cases in
``TIMED`` run on the time-skipping test server, where weeks of working days pass in seconds: reminders,
escalations, the end of an Art. 45 pause, supervision rounds and the continue-as-new hand-over.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta, timezone
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from approvals.processes import PROCESSES
from schemas.calendar import Holiday, ScheduleStatus, YearSchedule
from schemas.case import (
    AddSignerRequest,
    AdoptCalendarRequest,
    CaseInput,
    CaseView,
    CcRequest,
    ClaimRequest,
    CommentRequest,
    DecideRequest,
    DelegateRequest,
    ExcludePeriodRequest,
    Finding,
    MissingItem,
    RequestSupplementRequest,
    TransferRequest,
    UnclaimRequest,
    UrgeRequest,
    WithdrawRequest,
)
from schemas.error_tolerance import EXAMPLE_APPLICATION as TOLERANCE
from schemas.power import EXAMPLE_PROPOSAL as POWER
from schemas.principal import Principal
from schemas.process import (
    CaseDeadline,
    Deadline,
    Decision,
    ExcludedPeriodKind,
    OnReject,
    Parallel,
    QuorumRule,
    RoutingMode,
    Supervision,
    licensing_law_period,
)
from schemas.talent import EXAMPLE_APPLICATION as TALENT
from tests.cases import APPLICANT, CALENDAR, SERVICE, definition, open_tasks, person, stage, start_case, view_when
from workflows.error_tolerance import error_tolerance_case_input
from workflows.kernel import ApprovalWorkflow
from workflows.power_adjustment import power_adjustment_case_input
from workflows.talent_policy import talent_policy_case_input

Handle = WorkflowHandle[Any, CaseView]
Recorded = Callable[[WorkflowEnvironment, str], Awaitable[list[Handle]]]

CST = timezone(timedelta(hours=8))
ALICE, BOB, CAROL, DAVE = (person(name, "reviewer") for name in ("alice", "bob", "carol", "dave"))
OFFICER, CHIEF = person("officer-1", "one_window"), person("chief-1", "section_chief")
MEMBERS = [person(f"member-{n}", "committee") for n in range(1, 6)]
VOTE = {"allowed_decisions": (Decision.approve, Decision.reject, Decision.abstain)}


async def task_of(handle: Handle, holder: str | None = None, stage_id: str | None = None) -> str:
    """The id of the open task ``holder`` holds (or the first open one), once there is one."""

    def matching(view: CaseView) -> list[str]:
        held = [t for t in open_tasks(view, stage_id) if holder is None or holder in (t.assignee_id, t.claimed_by)]
        return [t.task_id for t in held]

    return matching(await view_when(handle, lambda v: bool(matching(v))))[0]


async def decide(
    handle: Handle, actor: Principal, task_id: str, decision: Decision = Decision.approve, comment: str = ""
) -> None:
    request = DecideRequest(actor=actor, task_id=task_id, decision=decision, comment=comment)
    await handle.execute_update(ApprovalWorkflow.decide, request)  # type: ignore[arg-type]


async def decide_open_tasks(handle: Handle) -> None:
    """Approves every open task as someone allowed to, with a finding on each criterion."""
    for task in open_tasks(await handle.query(ApprovalWorkflow.view)):
        actor = Principal(id=task.assignee_id or f"{task.candidate_roles[0]}-1", roles=tuple(task.candidate_roles))
        findings = [Finding(criterion=criterion, holds=True) for criterion in task.criteria]
        await handle.execute_update(
            ApprovalWorkflow.decide,
            DecideRequest(actor=actor, task_id=task.task_id, decision=Decision.approve, findings=findings),
        )  # type: ignore[arg-type]


# ------------------------------------------------------------------ on the dev server


async def task_operations(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """Every task operation but recall and 回避 (recorded elsewhere): claim and unclaim a pool task, comment,
    抄送, 催办, 委托 (the delegate decides), 转办, and 加签 before (the signer's task activates the holder's)."""
    process = definition(
        stage("acceptance", candidate_roles=("one_window",)),
        stage("review", assignees=("alice",)),
        stage("sign_off", assignees=("bob",)),
    )
    handle = await start_case(env.client, queue, process)
    task = await task_of(handle)
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task))
    await handle.execute_update(ApprovalWorkflow.unclaim, UnclaimRequest(actor=OFFICER, task_id=task))
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task))
    await decide(handle, OFFICER, task)
    review = await task_of(handle, "alice")
    await handle.execute_update(ApprovalWorkflow.comment, CommentRequest(actor=APPLICANT, text="营业执照已上传"))
    await handle.execute_update(ApprovalWorkflow.cc, CcRequest(actor=ALICE, observers=["zhang"], comment="FYI"))
    await handle.execute_update(ApprovalWorkflow.urge, UrgeRequest(actor=APPLICANT, task_id=review, comment="请尽快"))
    await handle.execute_update(ApprovalWorkflow.delegate, DelegateRequest(actor=ALICE, task_id=review, to_user="dave"))
    await decide(handle, DAVE, review)
    sign_off = await task_of(handle, "bob")
    await handle.execute_update(
        ApprovalWorkflow.transfer, TransferRequest(actor=BOB, task_id=sign_off, to_user="carol", comment="on leave")
    )
    before = AddSignerRequest(actor=CAROL, task_id=sign_off, signer="dave", position="before")
    await handle.execute_update(ApprovalWorkflow.add_signer, before)
    await decide(handle, DAVE, await task_of(handle, "dave"))
    await decide(handle, CAROL, sign_off)
    return [handle]


async def any_and_sequential(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """或签 (the first decision wins, the other task is cancelled), then 依次 (the next signer activates)."""
    process = definition(
        stage("either", mode=RoutingMode.any, assignees=("alice", "bob")),
        stage("chain", mode=RoutingMode.sequential, assignees=("carol", "dave")),
    )
    handle = await start_case(env.client, queue, process)
    await decide(handle, BOB, await task_of(handle, "bob"))
    await decide(handle, CAROL, await task_of(handle, "carol"))
    await decide(handle, DAVE, await task_of(handle, "dave"))
    return [handle]


async def return_across_parallel_branches(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """退回 from inside one parallel branch to the stage before the parallel step: the other branch, still open,
    is abandoned (``stage.abandoned``); the branches run again and the case is approved."""
    process = definition(
        stage("acceptance", assignees=("alice",)),
        Parallel(
            id="opinions", title="Departmental opinions",
            branches=((stage("land", assignees=("bob",)),), (stage("environment", assignees=("carol",)),)),
        ),
    )  # fmt: skip
    handle = await start_case(env.client, queue, process)
    await decide(handle, ALICE, await task_of(handle, "alice"))
    land = await task_of(handle, "bob")
    await task_of(handle, "carol")
    request = DecideRequest(
        actor=BOB, task_id=land, decision=Decision.return_, return_to="acceptance", comment="land title missing"
    )
    await handle.execute_update(ApprovalWorkflow.decide, request)  # type: ignore[arg-type]
    await decide(handle, ALICE, await task_of(handle, "alice"))
    await decide(handle, BOB, await task_of(handle, "bob"))
    await decide(handle, CAROL, await task_of(handle, "carol"))
    return [handle]


WITHDRAWN_IN: dict[str, dict[str, Any]] = {
    "single": {"candidate_roles": ("one_window",)},
    "all": {"mode": RoutingMode.all, "assignees": ("alice", "bob")},
    "any": {"mode": RoutingMode.any, "assignees": ("alice", "bob")},
    "sequential": {"mode": RoutingMode.sequential, "assignees": ("alice", "bob")},
    "quorum": {
        "mode": RoutingMode.quorum,
        "assignees": ("member-1", "member-2", "member-3"),
        "quorum": QuorumRule(min_attendance=2),
        "deadline": Deadline(working_days=5),
        **VOTE,
    },
}
"""撤回 while a stage of each routing mode is open, one task of it already acted on where the mode has several."""


def withdrawn_in(kind: str) -> Recorded:
    async def run(env: WorkflowEnvironment, queue: str) -> list[Handle]:
        handle = await start_case(env.client, queue, definition(stage("review", **WITHDRAWN_IN[kind])))
        first = await task_of(handle)
        if kind == "single":
            await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=first))
        else:
            view = await handle.query(ApprovalWorkflow.view)
            [task] = [t for t in view.tasks if t.task_id == first]
            if kind != "any":  # in 或签 the first decision would end the stage
                await decide(handle, person(task.assignee_id or "", "reviewer", "committee"), first)
        await handle.execute_update(ApprovalWorkflow.withdraw, WithdrawRequest(actor=APPLICANT, reason="项目取消"))
        return [handle]

    return run


async def withdrawn_awaiting_supplement(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """撤回 while the case waits for 补正 material (the clock stopped)."""
    process = definition(
        stage("review", assignees=("alice",), may_request_supplement=True, deadline=Deadline(working_days=5)),
        deadline=licensing_law_period(starts_after_stage="review"),
    )
    handle = await start_case(env.client, queue, process)
    await task_of(handle)
    await handle.execute_update(
        ApprovalWorkflow.request_supplement,
        RequestSupplementRequest(actor=ALICE, items=[MissingItem(item="环评批复")]),
    )
    await handle.execute_update(ApprovalWorkflow.withdraw, WithdrawRequest(actor=APPLICANT, reason="材料无法取得"))
    return [handle]


# ------------------------------------------------------------------ on the time-skipping server


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
            await decide(latest, inspector, review, Decision.reject, "capacity to take on the power fell")
        else:
            await decide(latest, inspector, review)
        if round_ == 2:
            child = env.client.get_workflow_handle_for(
                ApprovalWorkflow.run, f"power-adjustment:{handle.id.split(':', 1)[1]}.adj2"
            )
            await decide(child, person("adjuster", "adjuster"), await task_of(child, "adjuster"))
    assert child is not None
    return [env.client.get_workflow_handle_for(ApprovalWorkflow.run, handle.id), child]


def statutory_to_the_end(
    process: str,
    build: Callable[..., CaseInput],
    example: dict[str, object],
    *,
    withdrawn_after_days: int | None = None,
) -> Recorded:
    """A statutory process from application to its last event: every task approved; where the process goes on
    after its decision (supervision, a rectification check), time passes and each review is approved too. A
    supervision without end is withdrawn after ``withdrawn_after_days`` (the enterprise leaves the zone)."""

    async def run(env: WorkflowEnvironment, queue: str) -> list[Handle]:
        registered = PROCESSES[process]
        case = build(
            business_key=f"H-{uuid.uuid4().hex[:10]}",
            application=registered.request_model.model_fields["application"].annotation.model_validate(example),
            applicant=APPLICANT,
            started_by=SERVICE,
        )
        handle = await env.client.start_workflow(
            registered.workflow, case, id=registered.workflow_id(case.business_key), task_queue=queue,
            result_type=CaseView,
        )  # fmt: skip
        elapsed = 0
        for _ in range(200):
            latest = env.client.get_workflow_handle(handle.id, result_type=CaseView)
            if (await latest.describe()).status.name != "RUNNING":
                return [latest]
            await decide_open_tasks(latest)
            view = await latest.query(ApprovalWorkflow.view)
            if withdrawn_after_days is not None and elapsed >= withdrawn_after_days:
                leave = WithdrawRequest(actor=APPLICANT, reason="the enterprise leaves the zone")
                await latest.execute_update(ApprovalWorkflow.withdraw, leave)  # type: ignore[arg-type]
            elif view.status.value == "under_supervision" and not open_tasks(view):
                await env.sleep(timedelta(days=100))
                elapsed += 100
            await asyncio.sleep(0.1)
        raise AssertionError(f"{handle.id} did not end")

    return run


TIMED: dict[str, Recorded] = {
    "kernel-reminder-escalation-no-quorum": reminder_escalation_no_quorum,
    "kernel-excluded-period-ends": excluded_period_ends,
    "kernel-calendar-republication": calendar_republication,
    "kernel-supervision-two-continuations": supervision_two_continuations,
    "power-adjustment-to-the-end": statutory_to_the_end(
        "power-adjustment", power_adjustment_case_input, POWER, withdrawn_after_days=6 * 365 + 100
    ),
    "error-tolerance-to-the-end": statutory_to_the_end("error-tolerance", error_tolerance_case_input, TOLERANCE),
    "talent-policy-to-the-end": statutory_to_the_end("talent-policy", talent_policy_case_input, TALENT),
}
"""Recorded on the time-skipping test server."""

UNTIMED: dict[str, Recorded] = {
    "kernel-task-operations": task_operations,
    "kernel-any-and-sequential": any_and_sequential,
    "kernel-return-across-parallel-branches": return_across_parallel_branches,
    **{f"kernel-withdrawn-in-{kind}": withdrawn_in(kind) for kind in WITHDRAWN_IN},
    "kernel-withdrawn-awaiting-supplement": withdrawn_awaiting_supplement,
}
"""Recorded on the dev server, like the older files."""
