"""The recorded cases of the determinism corpus (``tests/histories/``), driven by ``tests.record_histories``.

Each function drives one representative case and returns its handles: the case first, then any child case it
started. The recorder saves every run of each (a case that continued as new leaves one history per run).
``ON_DEV_SERVER`` run on the Temporal dev server, the real server, so their histories are what production
writes; ``ON_TIME_SKIPPING_SERVER`` on the time-skipping test server, where weeks of working days pass in
seconds: reminders, escalations, the end of an Art. 45 pause, supervision rounds and the continue-as-new
hand-over. The kernel's cases on the dev server are here, those that need time to pass in
``tests.corpus_timed_cases``, the processes' in ``tests.corpus_processes``; all are registered here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from schemas.case import (
    AddSignerRequest,
    CcRequest,
    ClaimRequest,
    CommentRequest,
    ConcernedPerson,
    DecideRequest,
    DeclareConflictRequest,
    DelegateRequest,
    ExcludePeriodRequest,
    ExtendRequest,
    MissingItem,
    RecallRequest,
    Relationship,
    RequestSupplementRequest,
    SupplementRequest,
    TransferRequest,
    UnclaimRequest,
    UrgeRequest,
    WithdrawRequest,
)
from schemas.process import (
    Condition,
    Deadline,
    Decision,
    ExcludedPeriodKind,
    Parallel,
    QuorumRule,
    RoutingMode,
    decree_673_approval_period,
    licensing_law_period,
)
from schemas.remedies import RECONSIDERATION, SUIT, Remedies
from tests.cases import (
    ALICE,
    APPLICANT,
    BOB,
    HEAD,
    decide,
    decide_until_final,
    definition,
    last_update_task,
    open_tasks,
    person,
    reset_workflow,
    stage,
    start_case,
    task_of,
    view_when,
)
from tests.corpus_processes import (
    Handle,
    Recorded,
    invalid_application_refused,
    project_approval_documents,
    project_approval_full,
    statutory,
)
from tests.corpus_timed_cases import (
    MEMBERS,
    OFFICER,
    VOTE,
    calendar_republication,
    deemed_acceptance,
    excluded_period_ends,
    reminder_escalation_no_quorum,
    supervision_two_continuations,
)
from workflows.kernel import ApprovalWorkflow

CAROL, DAVE = (person(name, "reviewer") for name in ("carol", "dave"))
CHIEF = person("chief-1", "section_chief")


# ------------------------------------------------------------------ on the dev server


async def single_approve(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    handle = await start_case(env.client, queue, definition(stage("acceptance", candidate_roles=("one_window",))))
    task_id = await task_of(handle)
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task_id))
    await decide(handle, OFFICER, task_id)
    return [handle]


async def recall_then_approve(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """收回: the stage's supervisor takes the claimed task back to the pool; another officer decides."""
    colleague = person("officer-2", "one_window")
    supervised = Deadline(working_days=5, remind_before_working_days=0, escalate_to_role="section_chief")
    handle = await start_case(
        env.client, queue, definition(stage("acceptance", candidate_roles=("one_window",), deadline=supervised))
    )
    task_id = await task_of(handle)
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task_id))
    recall = RecallRequest(actor=CHIEF, task_id=task_id, reason="officer-1 on leave")
    await handle.execute_update(ApprovalWorkflow.recall, recall)
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=colleague, task_id=task_id))
    await decide(handle, colleague, task_id)
    return [handle]


async def recusal_then_approve(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """回避: the case names a concerned person at start; the officer who claims the acceptance declares a conflict
    and it goes back to the pool; at the vote a member declares one and is withdrawn, the others carry it."""
    colleague = person("officer-2", "one_window")
    members = MEMBERS[:3]
    process = definition(
        stage("acceptance", candidate_roles=("one_window",)),
        stage(
            "vote", mode=RoutingMode.quorum, assignees=tuple(m.id for m in members), quorum=QuorumRule(min_attendance=2),
            allowed_decisions=(Decision.approve, Decision.reject, Decision.abstain), deadline=Deadline(working_days=5),
        ),
    )  # fmt: skip
    cousin = ConcernedPerson(user_id="officer-3", relationship=Relationship.close_relative, reason="applicant's cousin")
    handle = await start_case(env.client, queue, process, concerned=[cousin])
    task_id = await task_of(handle)
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task_id))
    declared = DeclareConflictRequest(actor=OFFICER, task_id=task_id, reason="officer-1 holds shares in the applicant")
    await handle.execute_update(ApprovalWorkflow.declare_conflict, declared)
    await decide(handle, colleague, task_id)
    view = await view_when(handle, lambda v: len(open_tasks(v, "vote")) == 3)
    by_user = {t.assignee_id: t.task_id for t in open_tasks(view, "vote")}
    withdrawn = DeclareConflictRequest(actor=members[2], task_id=by_user["member-3"], reason="advised the applicant")
    await handle.execute_update(ApprovalWorkflow.declare_conflict, withdrawn)
    for member in members[:2]:
        await decide(handle, member, by_user[member.id])
    return [handle]


async def all_with_reject(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    handle = await start_case(
        env.client, queue, definition(stage("joint", mode=RoutingMode.all, assignees=("alice", "bob", "carol")))
    )
    view = await view_when(handle, lambda v: len(open_tasks(v)) == 3)
    by_user = {t.assignee_id: t.task_id for t in open_tasks(view)}
    await decide(handle, ALICE, by_user["alice"])
    await decide(handle, BOB, by_user["bob"], Decision.reject, comment="land use not settled")
    return [handle]


async def quorum_vote(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    members = MEMBERS
    process = definition(
        stage(
            "vote", mode=RoutingMode.quorum, assignees=tuple(m.id for m in members),
            quorum=QuorumRule(threshold_numerator=2, threshold_denominator=3, min_attendance=3),
            allowed_decisions=(Decision.approve, Decision.reject, Decision.abstain), deadline=Deadline(working_days=5),
        )
    )  # fmt: skip
    handle = await start_case(env.client, queue, process)
    view = await view_when(handle, lambda v: len(open_tasks(v)) == 5)
    by_user = {t.assignee_id: t.task_id for t in open_tasks(view)}
    votes = [Decision.approve, Decision.approve, Decision.approve, Decision.approve, Decision.abstain]
    for member, vote in zip(members, votes, strict=False):
        await decide(handle, member, by_user[member.id], vote)
    return [handle]


async def supplement_then_approve(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    process = definition(  # 补正 comes before acceptance (Art. 32): the review here is the acceptance
        stage("review", assignees=("alice",), may_request_supplement=True, deadline=Deadline(working_days=5)),
        deadline=licensing_law_period(starts_after_stage="review"),
    )
    handle = await start_case(env.client, queue, process)
    task_id = await task_of(handle)
    await handle.execute_update(
        ApprovalWorkflow.request_supplement,
        RequestSupplementRequest(actor=ALICE, items=[MissingItem(item="环评批复"), MissingItem(item="land title")]),
    )
    await handle.execute_update(ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="attached"))
    await decide(handle, ALICE, task_id)
    return [handle]


async def accept_exclude_extend(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """Acceptance by the one window (case.accepted, the Art. 42 period starts), an expert review left out of the
    period (Art. 45, told to the applicant), the head's extension (its reason told), then the decision."""
    process = definition(
        stage("acceptance", assignees=("alice",), deadline=Deadline(working_days=5)),
        stage("review", assignees=("bob",), deadline=Deadline(working_days=10)),
        deadline=licensing_law_period(starts_after_stage="acceptance"),
    )
    handle = await start_case(env.client, queue, process)
    await decide(handle, ALICE, await task_of(handle, stage_id="acceptance"))
    review = await task_of(handle, stage_id="review")
    await handle.execute_update(
        ApprovalWorkflow.exclude_period,
        ExcludePeriodRequest(
            actor=HEAD, kind=ExcludedPeriodKind.expert_review, reason="环评专家评审", expected_working_days=5
        ),
    )
    await handle.execute_update(ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="expert review pending"))
    await decide(handle, BOB, review)
    return [handle]


async def decree_673_profile(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """A project under 核准: the one window accepts choosing Decree 673's deadline profile (case.accepted records
    it), a consultancy's appraisal left out of the period (Art. 9, 10), the head's 40-day extension, the decision."""
    process = definition(
        stage("acceptance", assignees=("alice",), deadline=Deadline(working_days=5)),
        stage("review", assignees=("bob",), deadline=Deadline(working_days=10)),
        deadline=licensing_law_period(starts_after_stage="acceptance"),
        deadline_profiles={"decree-673-approval": decree_673_approval_period(starts_after_stage="acceptance")},
    )
    handle = await start_case(env.client, queue, process)
    await decide(handle, ALICE, await task_of(handle, stage_id="acceptance"), deadline_profile="decree-673-approval")
    review = await task_of(handle, stage_id="review")
    await handle.execute_update(
        ApprovalWorkflow.exclude_period,
        ExcludePeriodRequest(
            actor=HEAD, kind=ExcludedPeriodKind.appraisal, reason="委托工程咨询机构评估", expected_working_days=10
        ),
    )
    await handle.execute_update(ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="征求有关单位意见"))
    await decide(handle, BOB, review)
    return [handle]


async def reject_with_remedies(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """Art. 38: the one window refuses to accept (不予受理) with its reasons; the refusal is recorded with the
    remedies the definition names (case.remedies_notified) and sent to the applicant."""
    organ = RECONSIDERATION.model_copy(update={"organ": "阿拉山口市人民政府", "organ_en": "Alashankou City Government"})
    process = definition(
        stage("acceptance", assignees=("officer-1",), deadline=Deadline(working_days=5)),
        stage("review", assignees=("alice",)),
        deadline=licensing_law_period(starts_after_stage="acceptance"),
        remedies=Remedies(options=(organ, SUIT)),
    )
    handle = await start_case(env.client, queue, process)
    await decide(handle, OFFICER, await task_of(handle), Decision.reject, comment="申请事项不属于本机关职权范围")
    return [handle]


async def return_and_rereview(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    handle = await start_case(
        env.client, queue, definition(stage("acceptance", assignees=("alice",)), stage("review", assignees=("bob",)))
    )
    await decide(handle, ALICE, await task_of(handle, stage_id="acceptance"))
    await decide(
        handle, BOB, await task_of(handle, stage_id="review"), Decision.return_, comment="verify the land title"
    )
    await decide(handle, ALICE, await task_of(handle, stage_id="acceptance"))
    await decide(handle, BOB, await task_of(handle, stage_id="review"))
    return [handle]


async def reset_mid_case(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """An operator resets the case to the workflow task that accepted the first decision (patch
    "reset-continues-record"): the new run records ``case.reset`` after the old run's events, then decides."""
    handle = await start_case(
        env.client, queue, definition(stage("review", assignees=("alice",)), stage("sign_off", assignees=("bob",)))
    )
    await decide(handle, ALICE, await task_of(handle))
    await task_of(handle, stage_id="sign_off")
    reset_workflow(env, handle.id, "--event-id", str(await last_update_task(handle)))
    latest = env.client.get_workflow_handle_for(ApprovalWorkflow.run, handle.id)
    await decide_until_final(latest)
    return [latest]


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


async def handover(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """交接 (``POST /v1/handovers``): an administrator moves the tasks of an officer who left, tasks the admin
    does not hold: a claimed pool task to a named colleague (a transfer), and a claimed task of a stage that
    names no supervisor back to the pool (a recall); the colleague decides both."""
    process = definition(
        stage("acceptance", candidate_roles=("one_window",)), stage("review", candidate_roles=("one_window",))
    )
    handle = await start_case(env.client, queue, process)
    admin, colleague = person("admin-1", "admin"), person("officer-2", "one_window")
    acceptance = await task_of(handle, stage_id="acceptance")
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=acceptance))
    moved = TransferRequest(actor=admin, task_id=acceptance, to_user=colleague.id, comment="officer-1 left the unit")
    await handle.execute_update(ApprovalWorkflow.transfer, moved)
    await decide(handle, colleague, acceptance)
    review = await task_of(handle, stage_id="review")
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=review))
    pooled = RecallRequest(actor=admin, task_id=review, reason="officer-1 left the unit")
    await handle.execute_update(ApprovalWorkflow.recall, pooled)
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=colleague, task_id=review))
    await decide(handle, colleague, review)
    return [handle]


async def recusal_of_holders(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """回避 by a named reviewer (the task goes to the stage supervisor's pool, whose member decides), and by a
    delegate (the task goes back to its owner); a pool task delegated; a signer added after the holder (加签 后)."""
    supervised = Deadline(working_days=5, escalate_to_role="section_chief")
    process = definition(
        stage("review", assignees=("alice",), deadline=supervised),
        stage("sign_off", candidate_roles=("one_window",)),
        stage("final", assignees=("bob",)),
    )
    handle = await start_case(env.client, queue, process)
    review = await task_of(handle, "alice")
    related = DeclareConflictRequest(actor=ALICE, task_id=review, reason="alice's spouse works for the applicant")
    await handle.execute_update(ApprovalWorkflow.declare_conflict, related)
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=CHIEF, task_id=review))
    await decide(handle, CHIEF, review)
    sign_off = await task_of(handle, stage_id="sign_off")
    await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=sign_off))
    delegated = DelegateRequest(actor=OFFICER, task_id=sign_off, to_user="officer-2")
    await handle.execute_update(ApprovalWorkflow.delegate, delegated)
    delegate = person("officer-2", "one_window")
    own = DeclareConflictRequest(actor=delegate, task_id=sign_off, reason="officer-2 advised the applicant")
    await handle.execute_update(ApprovalWorkflow.declare_conflict, own)
    await decide(handle, OFFICER, sign_off)
    final = await task_of(handle, "bob")
    after = AddSignerRequest(actor=BOB, task_id=final, signer="dave", position="after")
    await handle.execute_update(ApprovalWorkflow.add_signer, after)
    await decide(handle, BOB, final)
    await decide(handle, DAVE, await task_of(handle, "dave"))
    return [handle]


async def cancelled_by_operator(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """An operator cancels the workflow (``temporal workflow cancel``): the open task is cancelled and the case
    closed on record (``case.cancelled``), then the workflow ends as cancelled."""
    handle = await start_case(env.client, queue, definition(stage("review", assignees=("alice",))))
    await task_of(handle)
    await handle.cancel()
    return [handle]


async def unrunnable_definition_refused(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """A definition the kernel cannot run (a condition no rule answers; the API refuses it first, a client of
    Temporal's own may not): the case fails at once with INVALID_DEFINITION and its problems, before any stage."""
    process = definition(stage("review", assignees=("alice",), when=Condition(rule="no_such_rule")))
    return [await start_case(env.client, queue, process)]


async def return_within_a_branch_with_callbacks(env: WorkflowEnvironment, queue: str) -> list[Handle]:
    """A case whose starting service asked for callbacks (a signed POST on every status change), and a 退回 inside
    a parallel branch with no stage named: it goes to the nearest earlier stage of the same branch."""
    process = definition(
        Parallel(
            id="opinions", title="Departmental opinions",
            branches=((stage("land", assignees=("bob",)), stage("land_check", assignees=("carol",))),
                      (stage("environment", assignees=("dave",)),)),
        ),
    )  # fmt: skip
    handle = await start_case(env.client, queue, process, callback_url="https://portal.example/callbacks/cases")
    await decide(handle, BOB, await task_of(handle, "bob"))
    await decide(handle, CAROL, await task_of(handle, "carol"), Decision.return_, comment="the survey is outdated")
    await decide(handle, BOB, await task_of(handle, "bob"))
    await decide(handle, CAROL, await task_of(handle, "carol"))
    await decide(handle, DAVE, await task_of(handle, "dave"))
    return [handle]


ON_DEV_SERVER: dict[str, Recorded] = {
    "kernel-single-approve": single_approve,
    "kernel-all-with-reject": all_with_reject,
    "kernel-quorum-vote": quorum_vote,
    "kernel-supplement-then-approve": supplement_then_approve,
    "kernel-return-and-rereview": return_and_rereview,
    "kernel-recall-then-approve": recall_then_approve,
    "kernel-recusal-then-approve": recusal_then_approve,
    "kernel-accept-exclude-extend": accept_exclude_extend,
    "kernel-reject-with-remedies": reject_with_remedies,
    "kernel-reset-mid-case": reset_mid_case,
    "kernel-decree-673-profile": decree_673_profile,
    "kernel-task-operations": task_operations,
    "kernel-handover": handover,
    "kernel-recusal-of-holders": recusal_of_holders,
    "kernel-cancelled-by-operator": cancelled_by_operator,
    "kernel-unrunnable-definition-refused": unrunnable_definition_refused,
    "kernel-any-and-sequential": any_and_sequential,
    "kernel-return-across-parallel-branches": return_across_parallel_branches,
    "kernel-return-within-a-branch-with-callbacks": return_within_a_branch_with_callbacks,
    **{f"kernel-withdrawn-in-{kind}": withdrawn_in(kind) for kind in WITHDRAWN_IN},
    "kernel-withdrawn-awaiting-supplement": withdrawn_awaiting_supplement,
    "project-approval-full": project_approval_full,
    "project-approval-documents": project_approval_documents,
    "power-adjustment-under-supervision": statutory("power-adjustment"),
    "error-tolerance-rectification-check": statutory("error-tolerance"),
    "talent-policy-under-review": statutory("talent-policy"),
    "error-tolerance-invalid-application-refused": invalid_application_refused("error-tolerance"),
}
"""Recorded on the dev server (``kernel-reset-mid-case`` needs it: ``temporal workflow reset``)."""

ON_TIME_SKIPPING_SERVER: dict[str, Recorded] = {
    "kernel-reminder-escalation-no-quorum": reminder_escalation_no_quorum,
    "kernel-excluded-period-ends": excluded_period_ends,
    "kernel-deemed-acceptance": deemed_acceptance,
    "kernel-calendar-republication": calendar_republication,
    "kernel-supervision-two-continuations": supervision_two_continuations,
    "power-adjustment-to-the-end": statutory("power-adjustment", to_the_end=True, withdrawn_after_days=6 * 365 + 100),
    "error-tolerance-seated-to-the-end": statutory("error-tolerance", to_the_end=True),
    "talent-policy-seated-to-the-end": statutory("talent-policy", to_the_end=True),
}
"""Recorded on the time-skipping test server: weeks and years pass while the case waits."""

CASES: dict[str, Recorded] = {**ON_DEV_SERVER, **ON_TIME_SKIPPING_SERVER}
"""Every case the recorder records, by name: the stem of its files in ``tests/histories/``."""

NO_LONGER_RECORDED: dict[str, str] = {
    "error-tolerance-to-the-end": "recorded when the applicant named its committee (before the organ's rosters "
    "seated it, and before patch art-25-decision-rules); today's recording is error-tolerance-seated-to-the-end",
    "talent-policy-to-the-end": "recorded when the applicant named its committee (before the organ's rosters "
    "seated it); today's recording is talent-policy-seated-to-the-end",
}
"""Top-level recordings whose case today's code can no longer start as it was, kept so that cases started then
keep replaying, with why and which case records the path today (``tests/test_corpus_coverage.py`` checks that
every other top-level file is some case's)."""


def recorded_files(out: Path, name: str) -> list[Path]:
    """The files a recording of case ``name`` left in ``out``: its runs and those of its child cases."""
    patterns = (f"{name}.json", f"{name}-run[0-9]*.json", f"{name}-child[0-9]*.json")
    return sorted(path for pattern in patterns for path in out.glob(pattern))
