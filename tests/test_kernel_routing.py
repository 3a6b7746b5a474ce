"""Routing modes of the kernel, driven end to end on the Temporal test server and real PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from schemas.case import CaseStatus, CaseView, ClaimRequest, DecideRequest, TaskStatus, TaskView, WithdrawRequest
from schemas.principal import Principal
from schemas.process import Condition, Deadline, Decision, OnReject, Parallel, QuorumRule, RoutingMode
from tests.cases import APPLICANT, definition, open_tasks, person, stage, start_case, view_when
from workflows.kernel import ApprovalWorkflow

OFFICER = person("officer-1", "one_window")
OFFICER_2 = person("officer-2", "one_window")
ALICE = person("alice", "reviewer")
BOB = person("bob", "reviewer")
CAROL = person("carol", "reviewer")
MEMBERS = [person(f"member-{n}", "committee") for n in range(1, 6)]

Handle = WorkflowHandle[ApprovalWorkflow, CaseView]


async def decide(handle: Handle, actor: Principal, task: TaskView | str, decision: Decision, **fields: Any) -> None:
    task_id = task if isinstance(task, str) else task.task_id
    await handle.execute_update(
        ApprovalWorkflow.decide, DecideRequest(actor=actor, task_id=task_id, decision=decision, **fields)
    )


async def finished(env: WorkflowEnvironment, handle: Handle) -> CaseView:
    """The case's result, without letting the test server skip time while waiting for it.

    Awaiting a result unlocks time skipping, and the test server then jumps to the next timer it knows,
    which after the case has ended is its 400-day execution timeout: later cases would start years on.
    """
    with env.auto_time_skipping_disabled():
        return await handle.result()


async def wind_up(env: WorkflowEnvironment, handle: Handle) -> None:
    """Ends a case the test is done with: the applicant withdraws and the case finishes its notifications.

    Terminating instead would abandon notification activities in flight, and an activity the test server
    still counts as running keeps its clock from skipping for later tests.
    """
    await handle.execute_update(ApprovalWorkflow.withdraw, WithdrawRequest(actor=APPLICANT, reason="test over"))
    await finished(env, handle)


def task_of(view: CaseView, user_id: str, stage_id: str | None = None) -> TaskView:
    [task] = [
        t for t in view.tasks
        if t.assignee_id == user_id and (stage_id is None or t.stage_id == stage_id) and t.status.is_actionable
    ]  # fmt: skip
    return task


async def events(db_pool: asyncpg.Pool, case_id: str) -> list[asyncpg.Record]:
    return await db_pool.fetch(
        "SELECT seq, type, actor_id, stage_id, task_id, payload::text::jsonb AS payload FROM audit_events "
        "WHERE case_id = $1 ORDER BY seq",
        case_id,
    )


async def types(db_pool: asyncpg.Pool, case_id: str) -> list[str]:
    return [row["type"] for row in await events(db_pool, case_id)]


def payload(row: asyncpg.Record) -> dict[str, Any]:
    value = row["payload"]
    return json.loads(value) if isinstance(value, str) else dict(value)


# ---------------------------------------------------------------- single


async def test_single_pool_stage_approved_by_a_candidate(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(
            time_skipping_env.client, queue, definition(stage("acceptance", candidate_roles=("one_window",)))
        )
        [task] = open_tasks(await view_when(handle, open_tasks))
        assert task.status is TaskStatus.open and task.candidate_roles == ["one_window"]

        claimed = await handle.execute_update(ApprovalWorkflow.claim, ClaimRequest(actor=OFFICER, task_id=task.task_id))
        assert claimed.task.claimed_by == OFFICER.id
        await handle.execute_update(
            ApprovalWorkflow.decide, DecideRequest(actor=OFFICER, task_id=task.task_id, decision=Decision.approve)
        )
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.approved
    rows = await db_pool.fetch(
        "SELECT seq, type, actor_id FROM audit_events WHERE case_id = $1 ORDER BY seq", handle.id
    )
    assert [row["type"] for row in rows] == [
        "case.started",
        "stage.started",
        "task.created",
        "task.claimed",
        "task.decided",
        "stage.completed",
        "case.decided",
    ]
    assert rows[3]["actor_id"] == OFFICER.id


async def test_single_stage_rejected_with_a_veto_ends_the_case_rejected(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(stage("review", assignees=("alice",)), stage("sign_off", assignees=("bob",)))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, open_tasks)
        await decide(handle, ALICE, task_of(view, "alice"), Decision.reject, comment="not in the catalogue")
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.rejected
    assert [r.stage_id for r in result.stage_results] == ["review"]
    assert "sign_off" not in {t.stage_id for t in result.tasks}
    assert (await types(db_pool, handle.id))[-3:] == ["stage.completed", "case.rejected", "case.remedies_notified"]


async def test_approval_with_conditions_carries_the_conditions_to_the_case(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    allowed = (Decision.approve, Decision.approve_with_conditions, Decision.reject)
    process = definition(stage("review", assignees=("alice",), allowed_decisions=allowed))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, open_tasks)
        await decide(
            handle, ALICE, task_of(view, "alice"), Decision.approve_with_conditions, conditions=["report yearly"]
        )
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.approved_with_conditions
    assert result.conditions == ["report yearly"]


# ---------------------------------------------------------------- all (会签)


async def test_all_mode_every_assignee_must_approve(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(stage("joint", mode=RoutingMode.all, assignees=("alice", "bob", "carol")))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 3)
        await decide(handle, ALICE, task_of(view, "alice"), Decision.approve)
        await decide(handle, BOB, task_of(view, "bob"), Decision.approve)
        view = await handle.query(ApprovalWorkflow.view)
        assert view.status is CaseStatus.in_review and view.stage_results == []
        assert [t.assignee_id for t in open_tasks(view)] == ["carol"]

        await decide(handle, CAROL, task_of(view, "carol"), Decision.approve)
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.approved
    assert all(t.status is TaskStatus.completed for t in result.tasks)


async def test_all_mode_one_reject_rejects_and_cancels_the_others(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(stage("joint", mode=RoutingMode.all, assignees=("alice", "bob", "carol")))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 3)
        await decide(handle, ALICE, task_of(view, "alice"), Decision.approve)
        await decide(handle, BOB, task_of(view, "bob"), Decision.reject, comment="land use not settled")
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.rejected
    by_user = {t.assignee_id: t for t in result.tasks}
    assert by_user["alice"].status is TaskStatus.completed
    assert by_user["bob"].decision is Decision.reject
    assert by_user["carol"].status is TaskStatus.cancelled and by_user["carol"].decision is None
    rows = await events(db_pool, handle.id)
    cancelled = [r for r in rows if r["type"] == "task.cancelled"]
    assert [r["task_id"] for r in cancelled] == [by_user["carol"].task_id]
    assert "rejected" in payload(cancelled[0])["reason"]


# ---------------------------------------------------------------- any (或签)


async def test_any_mode_first_decision_wins_and_cancels_the_others(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(stage("either", mode=RoutingMode.any, assignees=("alice", "bob", "carol")))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 3)
        await decide(handle, BOB, task_of(view, "bob"), Decision.approve)
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.approved
    statuses = {t.assignee_id: t.status for t in result.tasks}
    assert statuses == {"alice": TaskStatus.cancelled, "bob": TaskStatus.completed, "carol": TaskStatus.cancelled}
    completed = [r for r in await events(db_pool, handle.id) if r["type"] == "stage.completed"]
    assert payload(completed[0])["outcome"] == "approved" and completed[0]["actor_id"] == "bob"


async def test_any_mode_a_first_reject_also_wins(time_skipping_env: WorkflowEnvironment, engine_worker) -> None:
    process = definition(stage("either", mode=RoutingMode.any, assignees=("alice", "bob")))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 2)
        await decide(handle, ALICE, task_of(view, "alice"), Decision.reject, comment="incomplete")
        result = await finished(time_skipping_env, handle)
    assert result.status is CaseStatus.rejected
    assert {t.assignee_id: t.status for t in result.tasks}["bob"] is TaskStatus.cancelled


# ---------------------------------------------------------------- sequential (依次)


async def test_sequential_mode_second_task_opens_only_after_the_first_approves(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(stage("chain", mode=RoutingMode.sequential, assignees=("alice", "bob")))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(v.tasks) == 2)
        first, second = view.tasks
        assert (first.assignee_id, first.status) == ("alice", TaskStatus.open)
        assert (second.assignee_id, second.status, second.waiting_for) == ("bob", TaskStatus.waiting, first.task_id)
        assert [t.task_id for t in open_tasks(view)] == [first.task_id]

        await decide(handle, ALICE, first, Decision.approve)
        view = await handle.query(ApprovalWorkflow.view)
        second = task_of(view, "bob")
        assert second.status is TaskStatus.open and second.waiting_for is None
        assert view.stage_results == []

        await decide(handle, BOB, second, Decision.approve)
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.approved
    kinds = await types(db_pool, handle.id)
    assert kinds.index("task.activated") > kinds.index("task.decided")


async def test_sequential_mode_a_first_reject_never_opens_the_second(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    process = definition(stage("chain", mode=RoutingMode.sequential, assignees=("alice", "bob")))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, open_tasks)
        await decide(handle, ALICE, task_of(view, "alice"), Decision.reject, comment="no")
        result = await finished(time_skipping_env, handle)
    assert result.status is CaseStatus.rejected
    bob = [t for t in result.tasks if t.assignee_id == "bob"][0]
    assert bob.status is TaskStatus.cancelled and bob.decision is None


# ---------------------------------------------------------------- quorum (vote)


def committee(**extra: Any) -> Any:
    extra.setdefault("deadline", Deadline(working_days=5, remind_before_working_days=0))
    return stage(
        "vote",
        mode=RoutingMode.quorum,
        assignees=tuple(m.id for m in MEMBERS),
        quorum=QuorumRule(threshold_numerator=2, threshold_denominator=3, min_attendance=3),
        allowed_decisions=(Decision.approve, Decision.reject, Decision.abstain),
        **extra,
    )


async def test_quorum_vote_with_abstention_records_the_tally_in_stage_completed(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, definition(committee()))
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 5)
        votes = [Decision.approve, Decision.approve, Decision.approve, Decision.approve, Decision.abstain]
        for member, vote in zip(MEMBERS, votes, strict=False):
            await decide(handle, member, task_of(view, member.id), vote)
        result = await finished(time_skipping_env, handle)

    # 5 present (abstention included): ceil(2/3 * 5) = 4 approvals needed, 4 given.
    assert result.status is CaseStatus.approved
    tally = {"approve": 4, "reject": 0, "abstain": 1, "absent": 0, "required": 4}
    assert result.stage_results[0].tally == tally
    [completed] = [r for r in await events(db_pool, handle.id) if r["type"] == "stage.completed"]
    assert payload(completed)["tally"] == tally and payload(completed)["outcome"] == "approved"


async def test_quorum_vote_an_abstention_can_defeat_the_motion(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, definition(committee()))
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 5)
        votes = [Decision.approve, Decision.approve, Decision.approve, Decision.reject, Decision.abstain]
        for member, vote in zip(MEMBERS, votes, strict=False):
            await decide(
                handle, member, task_of(view, member.id), vote, comment="" if vote is not Decision.reject else "no"
            )
        result = await finished(time_skipping_env, handle)
    assert result.status is CaseStatus.rejected
    assert result.stage_results[0].tally["required"] == 4


async def test_quorum_a_reject_vote_does_not_close_the_vote(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, definition(committee()))
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 5)
        await decide(handle, MEMBERS[0], task_of(view, MEMBERS[0].id), Decision.reject, comment="against")
        view = await handle.query(ApprovalWorkflow.view)
        assert view.status is CaseStatus.in_review and len(open_tasks(view)) == 4
        await wind_up(time_skipping_env, handle)


async def test_quorum_vote_closes_at_the_deadline_counting_non_voters_as_absent(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(committee(deadline=Deadline(working_days=3, remind_before_working_days=0)))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 5)
        due = open_tasks(view)[0].due_at
        for member, vote in zip(MEMBERS[:3], [Decision.approve, Decision.approve, Decision.abstain], strict=False):
            await decide(handle, member, task_of(view, member.id), vote)
        await time_skipping_env.sleep(timedelta(days=7))  # past 3 working days, whatever the weekday
        result = await finished(time_skipping_env, handle)

    # 3 present (min attendance 3 met): ceil(2/3 * 3) = 2 approvals needed, 2 given; 2 absent.
    assert result.status is CaseStatus.approved
    assert result.stage_results[0].tally == {"approve": 2, "reject": 0, "abstain": 1, "absent": 2, "required": 2}
    assert result.stage_results[0].decided_at >= due
    expired = [t for t in result.tasks if t.status is TaskStatus.expired]
    assert sorted(t.assignee_id for t in expired) == [MEMBERS[3].id, MEMBERS[4].id]
    kinds = await types(db_pool, handle.id)
    assert kinds.count("task.expired") == 2
    assert kinds.index("clock.escalated") < kinds.index("stage.completed")


async def test_quorum_without_minimum_attendance_reopens_the_vote_in_a_new_round(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(committee(deadline=Deadline(working_days=2, remind_before_working_days=0)))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 5)
        due = open_tasks(view)[0].due_at
        await decide(handle, MEMBERS[0], task_of(view, MEMBERS[0].id), Decision.approve)
        await time_skipping_env.sleep(due - await time_skipping_env.get_current_time() + timedelta(minutes=1))
        view = await view_when(handle, lambda v: any(t.round == 2 for t in open_tasks(v)))
        assert len([t for t in open_tasks(view) if t.round == 2]) == 5
        await wind_up(time_skipping_env, handle)

    rows = await events(db_pool, handle.id)
    [completed] = [r for r in rows if r["type"] == "stage.completed"]
    assert payload(completed)["outcome"] == "no_quorum"
    assert payload(completed)["tally"] == {"approve": 1, "reject": 0, "abstain": 0, "absent": 4, "required": 1}
    assert [payload(r)["round"] for r in rows if r["type"] == "stage.started"] == [1, 2]


# ---------------------------------------------------------------- parallel branches, conditions, return


async def test_parallel_branches_run_together_and_join_before_the_next_step(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(
        Parallel(
            id="opinions",
            title="Departmental opinions",
            branches=(
                (stage("land", assignees=("alice",)), stage("land_check", assignees=("carol",))),
                (stage("environment", assignees=("bob",)),),
            ),
        ),
        stage("decision", candidate_roles=("one_window",)),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 2)
        assert sorted(view.current_stages) == ["environment", "land"]

        await decide(handle, BOB, task_of(view, "bob"), Decision.approve)
        await decide(handle, ALICE, task_of(view, "alice"), Decision.approve)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "land_check")))
        assert view.current_stages == ["land_check"] and not open_tasks(view, "decision")

        await decide(handle, CAROL, task_of(view, "carol"), Decision.approve)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "decision")))
        await decide(handle, OFFICER, open_tasks(view, "decision")[0], Decision.approve)
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.approved
    started = [r["stage_id"] for r in await events(db_pool, handle.id) if r["type"] == "stage.started"]
    assert started.index("decision") == 3 and set(started[:3]) == {"land", "environment", "land_check"}


async def test_a_rejecting_branch_with_on_reject_continue_is_decided_at_the_join(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    process = definition(
        Parallel(
            id="opinions",
            title="Opinions",
            branches=(
                (stage("land", assignees=("alice",), on_reject=OnReject.continue_),),
                (stage("environment", assignees=("bob",), on_reject=OnReject.continue_),),
            ),
        )
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 2)
        await decide(handle, ALICE, task_of(view, "alice"), Decision.reject, comment="no land quota")
        view = await handle.query(ApprovalWorkflow.view)
        assert view.status is CaseStatus.in_review and open_tasks(view, "environment")
        await decide(handle, BOB, task_of(view, "bob"), Decision.approve)
        result = await finished(time_skipping_env, handle)
    assert result.status is CaseStatus.rejected  # the case outcome of the branches' last stages


async def test_conditional_stage_is_skipped_when_its_condition_does_not_hold(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(
        stage("energy_review", assignees=("alice",), when=Condition(path="project.sector", equals="energy")),
        stage("decision", assignees=("bob",)),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process, data={"project": {"sector": "logistics"}})
        view = await view_when(handle, open_tasks)
        assert [t.stage_id for t in view.tasks] == ["decision"]
        await decide(handle, BOB, task_of(view, "bob"), Decision.approve)
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.approved
    rows = await events(db_pool, handle.id)
    [skipped] = [r for r in rows if r["type"] == "stage.skipped"]
    assert skipped["stage_id"] == "energy_review"
    assert payload(skipped)["condition"]["path"] == "project.sector"
    assert "energy_review" not in [r["stage_id"] for r in rows if r["type"] == "stage.started"]


async def test_conditional_stage_is_included_when_its_condition_holds(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(
        stage("energy_review", assignees=("alice",), when=Condition(path="project.sector", equals="energy")),
        stage("decision", assignees=("bob",)),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process, data={"project": {"sector": "energy"}})
        view = await view_when(handle, open_tasks)
        await decide(handle, ALICE, task_of(view, "alice", "energy_review"), Decision.approve)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "decision")))
        await decide(handle, BOB, task_of(view, "bob"), Decision.approve)
        result = await finished(time_skipping_env, handle)
    assert [r.stage_id for r in result.stage_results] == ["energy_review", "decision"]
    assert "stage.skipped" not in await types(db_pool, handle.id)


async def test_return_to_an_earlier_stage_reruns_it_then_the_returning_stage(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(
        stage("acceptance", assignees=("alice",)),
        stage("review", assignees=("bob",)),
        stage("decision", assignees=("carol",)),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, open_tasks)
        await decide(handle, ALICE, task_of(view, "alice"), Decision.approve)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "review")))
        await decide(handle, BOB, task_of(view, "bob"), Decision.approve)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "decision")))
        await decide(
            handle,
            CAROL,
            task_of(view, "carol"),
            Decision.return_,
            comment="verify the land title",
            return_to="acceptance",
        )

        view = await view_when(handle, lambda v: bool(open_tasks(v, "acceptance")))
        again = task_of(view, "alice", "acceptance")
        assert again.round == 2 and view.current_stages == ["acceptance"]
        await decide(handle, ALICE, again, Decision.approve)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "review")))
        assert task_of(view, "bob", "review").round == 2
        await decide(handle, BOB, task_of(view, "bob", "review"), Decision.approve)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "decision")))
        await decide(handle, CAROL, task_of(view, "carol", "decision"), Decision.approve)
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.approved
    rows = await events(db_pool, handle.id)
    started = [(r["stage_id"], payload(r)["round"]) for r in rows if r["type"] == "stage.started"]
    assert started == [
        ("acceptance", 1),
        ("review", 1),
        ("decision", 1),
        ("acceptance", 2),
        ("review", 2),
        ("decision", 2),
    ]
    returned = [payload(r) for r in rows if r["type"] == "stage.completed" and payload(r)["outcome"] == "returned"]
    assert returned == [{"outcome": "returned", "round": 1, "conditions": [], "tally": {}, "return_to": "acceptance"}]


async def test_return_without_a_target_goes_back_to_the_previous_stage(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    process = definition(stage("acceptance", assignees=("alice",)), stage("review", assignees=("bob",)))
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, open_tasks)
        await decide(handle, ALICE, task_of(view, "alice"), Decision.approve)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "review")))
        await decide(handle, BOB, task_of(view, "bob"), Decision.return_, comment="missing stamp")
        view = await view_when(handle, lambda v: bool(open_tasks(v, "acceptance")))
        assert task_of(view, "alice", "acceptance").round == 2
        await wind_up(time_skipping_env, handle)


async def test_return_inside_a_parallel_branch_reruns_only_that_branch(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(
        Parallel(
            id="opinions",
            title="Opinions",
            branches=(
                (stage("land", assignees=("alice",)), stage("land_check", assignees=("carol",))),
                (stage("environment", assignees=("bob",)),),
            ),
        ),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 2)
        await decide(handle, ALICE, task_of(view, "alice"), Decision.approve)
        await decide(handle, BOB, task_of(view, "bob"), Decision.approve)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "land_check")))
        await decide(handle, CAROL, task_of(view, "carol"), Decision.return_, comment="redo the survey")
        view = await view_when(handle, lambda v: bool(open_tasks(v, "land")))
        assert task_of(view, "alice", "land").round == 2
        await decide(handle, ALICE, task_of(view, "alice", "land"), Decision.approve)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "land_check")))
        await decide(handle, CAROL, task_of(view, "carol", "land_check"), Decision.approve)
        result = await finished(time_skipping_env, handle)

    assert result.status is CaseStatus.approved
    started = [r["stage_id"] for r in await events(db_pool, handle.id) if r["type"] == "stage.started"]
    assert started.count("environment") == 1 and started.count("land") == 2
