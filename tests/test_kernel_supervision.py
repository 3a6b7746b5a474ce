"""Supervision after a decision (Art. 3: supervise and dynamically adjust): periodic reviews on a timer, an
adjustment opened as a child case, and a long-running case continuing as new without breaking its record."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from temporalio.testing import WorkflowEnvironment

from approvals.audit.chain import verify_chain
from approvals.storage.queries import case_events
from schemas.calendar import BeyondKnownYears, add_working_days
from schemas.case import (
    CaseStatus,
    CaseView,
    DecideRequest,
    MissingItem,
    RequestSupplementRequest,
    SupplementRequest,
    WithdrawRequest,
)
from schemas.process import Deadline, Decision, OnReject, Supervision
from tests.cases import (
    APPLICANT,
    CALENDAR,
    definition,
    events,
    finished,
    open_tasks,
    person,
    recorded_when,
    stage,
    start_case,
    view_when,
)
from workflows.kernel import ApprovalWorkflow

OFFICIAL = person("official", "approving_official")
INSPECTOR = person("inspector", "inspector")
ADJUSTER = person("adjuster", "adjuster")

REVIEW = stage(
    "annual_review",
    assignees=("inspector",),
    legal_basis="Art. 3",
    on_reject=OnReject.continue_,
    allowed_decisions=(Decision.approve, Decision.reject),
)
ADJUSTMENT = definition(
    stage("adjust_powers", assignees=("adjuster",), legal_basis="Art. 3"), process="power-adjustment"
)


def supervised(**supervision: object) -> object:
    fields = {"every_days": 30, "review": REVIEW, "adjustment": ADJUSTMENT, "max_rounds": 3, "rounds_per_run": 2}
    return definition(
        stage("grant", assignees=("official",), legal_basis="Art. 3"),
        process="power-grant",
        supervision=Supervision.model_validate({**fields, **supervision}),
    )


async def decide_open(env: WorkflowEnvironment, case_id: str, actor, decision=Decision.approve, **fields) -> CaseView:
    handle = env.client.get_workflow_handle_for(ApprovalWorkflow.run, case_id)  # the latest run
    view = await view_when(handle, lambda v: bool(open_tasks(v)))
    [task] = open_tasks(view)
    await handle.execute_update(
        ApprovalWorkflow.decide, DecideRequest(actor=actor, task_id=task.task_id, decision=decision, **fields)
    )
    return view


async def test_reviews_recur_an_adjustment_runs_as_a_child_and_the_case_continues_as_new(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    env = time_skipping_env
    async with engine_worker(env) as queue:
        handle = await start_case(env.client, queue, supervised())
        await decide_open(env, handle.id, OFFICIAL)
        view = await view_when(handle, lambda v: v.status is CaseStatus.under_supervision)
        assert view.outcome == "approved" and not open_tasks(view)

        await env.sleep(timedelta(days=31))
        await decide_open(env, handle.id, INSPECTOR)  # review 1: still fit
        await env.sleep(timedelta(days=30))
        await decide_open(env, handle.id, INSPECTOR, Decision.reject, comment="capacity to take on the power fell")
        child_id = f"power-adjustment:{handle.id.split(':', 1)[1]}.adj2"
        await decide_open(env, child_id, ADJUSTER)  # the adjustment case, a child with its own record

        await env.sleep(timedelta(days=31))  # review 3 happens in the next run (2 reviews per run)
        await decide_open(env, handle.id, INSPECTOR)
        latest = env.client.get_workflow_handle_for(ApprovalWorkflow.run, handle.id)
        result = await finished(env, latest)

    assert result.status is CaseStatus.approved
    assert (await latest.describe()).run_id != handle.result_run_id  # continued as new
    recorded = await events(db_pool, handle.id)
    assert [row["seq"] for row in recorded] == list(range(1, len(recorded) + 1))
    assert verify_chain(await case_events(db_pool, handle.id)) == []  # one unbroken chain across runs
    types = [row["type"] for row in recorded]
    assert types.count("timer.fired") == 3 and types.count("case.continued") == 1
    assert types.index("supervision.started") < types.index("case.child_started") < types.index("case.continued")
    [completed] = [row for row in recorded if row["type"] == "case.child_completed"]
    assert completed["payload"] == {"child_case_id": child_id, "status": "approved", "conditions": []}
    reviews = [
        row["payload"]["round"]
        for row in recorded
        if row["type"] == "stage.started" and row["stage_id"] == "annual_review"
    ]
    assert reviews == [1, 2, 3]
    child = await events(db_pool, child_id)
    assert child[0]["type"] == "case.started" and child[0]["payload"]["data"]["parent_case_id"] == handle.id
    assert child[-1]["type"] == "case.decided"


async def test_withdrawing_during_supervision_stops_the_reviews(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    env = time_skipping_env
    async with engine_worker(env) as queue:
        handle = await start_case(env.client, queue, supervised(max_rounds=None))
        await decide_open(env, handle.id, OFFICIAL)
        await recorded_when(db_pool, handle.id, "timer.started")  # waiting for the first review
        await handle.execute_update(
            ApprovalWorkflow.withdraw, WithdrawRequest(actor=APPLICANT, reason="the enterprise leaves the zone")
        )
        result = await finished(env, handle)

    assert result.status is CaseStatus.withdrawn
    types = [row["type"] for row in await events(db_pool, handle.id)]
    assert "timer.started" in types and "timer.fired" not in types and types[-1] == "case.withdrawn"


def test_a_periodic_review_can_neither_end_the_case_nor_return_it() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="on_reject must be `continue`"):
        Supervision(every_days=365, review=stage("annual_review", assignees=("inspector",)))
    with pytest.raises(ValidationError, match="no earlier stage to return to"):
        Supervision(every_days=365, review=REVIEW.model_copy(update={"allowed_decisions": (Decision.return_,)}))


async def test_a_review_opened_while_supplementary_material_is_awaited_starts_with_its_clock_stopped(
    time_skipping_env: WorkflowEnvironment, engine_worker
) -> None:
    env = time_skipping_env
    officer = person("officer", "one_window")
    timed_review = REVIEW.model_copy(update={"deadline": Deadline(working_days=10, remind_before_working_days=0)})
    process = supervised(review=timed_review, max_rounds=1).model_copy(update={"supplement_role": "one_window"})
    async with engine_worker(env) as queue:
        handle = await start_case(env.client, queue, process)
        await decide_open(env, handle.id, OFFICIAL)
        await view_when(handle, lambda v: v.status is CaseStatus.under_supervision)
        await handle.execute_update(
            ApprovalWorkflow.request_supplement,
            RequestSupplementRequest(actor=officer, items=[MissingItem(item="annual self-assessment")]),
        )
        await env.sleep(timedelta(days=45))  # the review falls due while the case waits for the material
        paused = await view_when(handle, lambda v: bool(open_tasks(v)))
        await handle.execute_update(
            ApprovalWorkflow.supplement, SupplementRequest(actor=APPLICANT, comment="self-assessment attached")
        )
        supplied_at = await env.get_current_time()
        resumed = await handle.query(ApprovalWorkflow.view)
        await decide_open(env, handle.id, INSPECTOR)
        result = await finished(env, handle)

    assert paused.status is CaseStatus.awaiting_supplement and paused.clock_state == "stopped"
    assert resumed.status is CaseStatus.under_supervision  # back to what it was before 补正
    [clock] = resumed.clocks
    expected = add_working_days(CALENDAR, supplied_at, 10, beyond_known_years=BeyondKnownYears.weekends_only).at
    assert abs(clock.due_at - expected) <= timedelta(days=1) and not clock.overdue  # the whole period, none used
    assert result.status is CaseStatus.approved
