"""Delegated powers and the function catalogue (Art. 3, Art. 4): the proposal's rules, and whole cases on the
Temporal test server and real PostgreSQL: legality review, parallel reviews, the executive meeting's vote,
publication, annual supervision with an adjustment child case, withdrawal, a vote that reconvenes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from schemas.calendar import BeyondKnownYears, add_working_days
from schemas.case import CaseStatus, CaseView, DecideRequest, Finding, WithdrawRequest
from schemas.power import EXAMPLE_PROPOSAL, PowerCatalogueProposal
from schemas.principal import Principal
from schemas.process import Decision
from tests.cases import CALENDAR, SERVICE, events, finished, open_tasks, person, view_when
from workflows.kernel import ApprovalWorkflow
from workflows.power_adjustment import (
    ADJUSTMENT_PROCESS,
    LEGAL_CRITERIA,
    PowerAdjustmentWorkflow,
    power_adjustment_case_input,
)

COMMITTEE_OFFICE = person("zone-committee-office", "applicant", unit="阿拉山口综合保税区管理委员会")
LEGAL = person("legal-office", "reviewer_legal", unit="司法局")
CAPACITY = person("hr-officer", "hr_officer", unit="党群工作部")
COMPETITION = person("rev-industry", "reviewer_industrial_policy", unit="经济发展局")
MEMBERS = [person(f"committee-member-{x}", "committee_member", unit="阿拉山口市人民政府") for x in "abc"]
SUPERVISOR = person("supervisor-chen", "supervisor", unit="阿拉山口市人民政府")
OFFICIAL = person("official-wang", "approving_official", unit="阿拉山口市人民政府")

Handle = WorkflowHandle[Any, CaseView]


def proposal(**changes: Any) -> PowerCatalogueProposal:
    return PowerCatalogueProposal.model_validate({**EXAMPLE_PROPOSAL, **changes})


def item(code: str, **changes: Any) -> dict[str, Any]:
    base = dict(EXAMPLE_PROPOSAL["items"][0])  # type: ignore[index]
    return {**base, "code": code, **changes}


async def start(env: WorkflowEnvironment, queue: str, app: PowerCatalogueProposal | None = None) -> Handle:
    key = f"PW-{uuid.uuid4().hex[:10]}"
    case = power_adjustment_case_input(
        business_key=key,
        application=app or proposal(),
        applicant=COMMITTEE_OFFICE,
        started_by=SERVICE,
        calendar=CALENDAR,
    )
    return await env.client.start_workflow(
        PowerAdjustmentWorkflow.run,
        case,
        id=f"power-adjustment:{key}",
        task_queue=queue,
        execution_timeout=timedelta(days=3650),
    )


async def recorded(db_pool: asyncpg.Pool, case_id: str, predicate: Callable[[list[str]], bool]) -> list[str]:
    """The case's recorded event types once ``predicate`` holds."""
    for _ in range(300):
        types = [row["type"] for row in await events(db_pool, case_id)]
        if predicate(types):
            return types
        await asyncio.sleep(0.05)
    raise AssertionError(f"case {case_id} never recorded the expected events: {types}")


def findings(**failing: str) -> list[Finding]:
    return [
        Finding(criterion=criterion, holds=criterion not in failing, note=failing.get(criterion, "checked"))
        for criterion in LEGAL_CRITERIA
    ]


async def decide(
    handle: Handle, stage_id: str, actor: Principal, decision: Decision = Decision.approve, **fields: Any
) -> None:
    view = await view_when(
        handle, lambda v: any(t.assignee_id in (None, actor.id) for t in open_tasks(v, stage_id)), timeout=20
    )
    [task] = [t for t in open_tasks(view, stage_id) if t.assignee_id in (None, actor.id)]
    if decision in (Decision.reject, Decision.return_):
        fields.setdefault("comment", "reasons given in the review opinion")
    await handle.execute_update(
        ApprovalWorkflow.decide, DecideRequest(actor=actor, task_id=task.task_id, decision=decision, **fields)
    )


async def reviewed(handle: Handle) -> None:
    """Legality review approved on all three criteria; capacity and fair-competition reviews approved."""
    await decide(handle, "legal_review", LEGAL, findings=findings())
    await decide(handle, "capacity_review", CAPACITY)
    await decide(handle, "fair_competition_review", COMPETITION)


# ---------------------------------------------------------------- the proposal


def test_the_example_proposal_is_valid_and_a_future_effective_date_is_allowed() -> None:
    assert [i.code for i in proposal().items] == ["ALSK-XK-001", "ALSK-JC-001"]
    assert proposal(effective_date="2031-07-01").effective_date == date(2031, 7, 1)


def test_duplicate_codes_are_refused_naming_them() -> None:
    with pytest.raises(ValidationError, match=r"item codes \['ALSK-XK-001'\] are listed more than once"):
        proposal(items=[item("ALSK-XK-001"), item("ALSK-XK-002"), item("ALSK-XK-001")])


def test_an_item_the_committee_cannot_take_on_is_refused_naming_the_item_and_the_shortfall() -> None:
    with pytest.raises(ValidationError) as refused:
        proposal(
            items=[
                item("ALSK-XK-001"),
                item("ALSK-CF-001", name="罚没", kind="penalty", capacity={"staff": 3, "qualified_personnel": 1,
                                                                          "systems_ready": True}),
                item("ALSK-XK-009", name="无人承接", capacity={"staff": 0, "qualified_personnel": 0,
                                                               "systems_ready": False}),
            ]
        )  # fmt: skip
    message = str(refused.value)
    assert "capacity to take on these powers is insufficient (Art. 4 承接能力)" in message
    assert "item ALSK-CF-001 (罚没): a penalty power needs at least 2 qualified personnel, 1 given" in message
    assert "Administrative Penalty Law Art. 42" in message
    assert "item ALSK-XK-009 (无人承接): no staff is assigned" in message and "systems are not ready" in message
    assert "ALSK-XK-001 (" not in message  # the sufficient item is not named


def test_other_incoherent_proposals_are_refused() -> None:
    with pytest.raises(ValidationError, match="cannot exceed the 1 staff assigned"):
        proposal(items=[item("A1", capacity={"staff": 1, "qualified_personnel": 2, "systems_ready": True})])
    with pytest.raises(ValidationError, match=r"members \['committee-member-a'\] are listed more than once"):
        proposal(committee=["committee-member-a", "committee-member-b", "committee-member-a"])
    with pytest.raises(ValidationError, match="precedes 2026-01-01, when the regulation came into force"):
        proposal(effective_date="2025-12-31")
    with pytest.raises(ValidationError, match="items"):
        proposal(items=[])
    with pytest.raises(ValidationError, match="mode"):
        proposal(items=[item("A1", mode="delegate")])


# ---------------------------------------------------------------- whole cases


async def test_catalogue_approved_by_vote_published_supervised_adjusted_and_withdrawn(
    own_time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, engine_worker
) -> None:
    env = own_time_skipping_env
    async with engine_worker(env) as queue:
        handle = await start(env, queue)
        with pytest.raises(WorkflowUpdateFailedError) as refused:  # a criterion that fails cannot be approved
            await decide(handle, "legal_review", LEGAL, findings=findings(capacity_sufficient="one officer short"))
        assert refused.value.cause.type == "FINDINGS_CONTRADICT_APPROVAL"  # type: ignore[union-attr]
        await reviewed(handle)
        for member in MEMBERS:
            await decide(handle, "executive_meeting", member)
        view = await view_when(handle, lambda v: v.status is CaseStatus.under_supervision)
        assert view.outcome == "approved" and not open_tasks(view)

        await env.sleep(timedelta(days=366))  # the annual review
        await decide(
            handle,
            "annual_supervision",
            SUPERVISOR,
            Decision.reject,
            comment="ALSK-XK-001 under-used: 2 permits a year",
        )
        child_id = f"{ADJUSTMENT_PROCESS}:{handle.id.split(':', 1)[1]}.adj1"
        child = env.client.get_workflow_handle_for(ApprovalWorkflow.run, child_id)
        await decide(child, "adjust_powers", OFFICIAL, comment="ALSK-XK-001 returned to the city government")
        assert (await finished(env, child)).status is CaseStatus.approved
        await recorded(db_pool, handle.id, lambda types: types.count("timer.started") == 2)  # the next review
        await handle.execute_update(
            PowerAdjustmentWorkflow.withdraw,
            WithdrawRequest(actor=COMMITTEE_OFFICE, reason="the powers are revoked by the granting government"),
        )
        result = await finished(env, handle)

    assert result.status is CaseStatus.withdrawn
    rows = await events(db_pool, handle.id)
    types = [row["type"] for row in rows]
    assert all(row["actor_id"] and row["at"] and row["legal_basis"] for row in rows)
    [vote] = [r for r in rows if r["type"] == "stage.completed" and r["stage_id"] == "executive_meeting"]
    assert vote["legal_basis"] == "Art. 4" and vote["payload"]["tally"]["approve"] == 3
    published, republished = [r for r in rows if r["type"] == "case.published"]
    assert published["legal_basis"] == "Art. 4; Art. 18"
    notice = published["payload"]
    assert notice["process"] == "power-adjustment" and notice["decision"] == "approved"
    decided_at = datetime.fromisoformat(notice["decided_at"])
    assert notice["subject"]["effective_date"] == decided_at.astimezone(CALENDAR.tzinfo).date().isoformat()
    due = add_working_days(CALENDAR, decided_at, 7, beyond_known_years=BeyondKnownYears.weekends_only).at
    assert notice["publication_due_at"] == due.isoformat()  # Art. 18: within 7 working days of the decision
    # Art. 3: the adjusted catalogue is published again, with the adjustment that changed it
    assert republished["legal_basis"] == "Art. 3; Art. 18"
    adjusted = republished["payload"]
    assert adjusted["decision"] == "approved" and adjusted["subject"]["items"] == notice["subject"]["items"]
    assert adjusted["subject"]["adjustment"] == {
        "child_case_id": child_id,
        "review_round": 1,
        "decision": "approved",
        "conditions": [],
    }
    assert types.index("case.child_completed") < types.index("case.published", types.index("case.child_completed"))
    assert [i["code"] for i in notice["subject"]["items"]] == ["ALSK-XK-001", "ALSK-JC-001"]
    assert notice["subject"]["items"][0]["mode"] == "entrust"
    assert "capacity" not in notice["subject"]["items"][0]  # internal assessment, not published
    [decided] = [r for r in rows if r["type"] == "task.decided" and r["stage_id"] == "legal_review"]
    assert [f["criterion"] for f in decided["payload"]["findings"]] == list(LEGAL_CRITERIA)
    assert types.index("case.decided") < types.index("case.published") < types.index("supervision.started")
    [started] = [r for r in rows if r["type"] == "supervision.started"]
    assert started["legal_basis"] == "Art. 3" and started["payload"]["max_rounds"] is None
    assert started["payload"]["every_days"] == 365
    [review] = [r for r in rows if r["type"] == "stage.completed" and r["stage_id"] == "annual_supervision"]
    assert review["payload"]["outcome"] == "rejected" and review["actor_id"] == SUPERVISOR.id
    [completed] = [r for r in rows if r["type"] == "case.child_completed"]
    assert completed["payload"]["child_case_id"] == child_id and completed["payload"]["status"] == "approved"
    assert types[-2:] == ["timer.started", "case.withdrawn"]  # the next annual review never came
    assert types.count("timer.fired") == 1
    child_rows = await events(db_pool, child_id)
    assert child_rows[0]["payload"]["data"]["parent_case_id"] == handle.id
    assert child_rows[0]["legal_basis"] == "Art. 3" and child_rows[-1]["type"] == "case.decided"
    assert all(row["actor_id"] and row["at"] and row["legal_basis"] for row in child_rows)


async def test_a_vote_below_attendance_reconvenes_then_approves(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, engine_worker
) -> None:
    env = time_skipping_env
    async with engine_worker(env) as queue:
        handle = await start(env, queue)
        await reviewed(handle)
        await decide(handle, "executive_meeting", MEMBERS[0])
        view = await handle.query(PowerAdjustmentWorkflow.view)
        due = open_tasks(view, "executive_meeting")[0].due_at
        assert due is not None
        await env.sleep(due - await env.get_current_time() + timedelta(minutes=1))
        view = await view_when(handle, lambda v: len([t for t in open_tasks(v) if t.round == 2]) == 3)
        await decide(handle, "executive_meeting", MEMBERS[0])
        await decide(handle, "executive_meeting", MEMBERS[1])
        await decide(handle, "executive_meeting", MEMBERS[2], Decision.abstain)
        await view_when(handle, lambda v: v.status is CaseStatus.under_supervision)
        await handle.execute_update(
            PowerAdjustmentWorkflow.withdraw, WithdrawRequest(actor=COMMITTEE_OFFICE, reason="test over")
        )
        await finished(env, handle)

    rows = await events(db_pool, handle.id)
    votes = [r["payload"] for r in rows if r["type"] == "stage.completed" and r["stage_id"] == "executive_meeting"]
    assert [v["outcome"] for v in votes] == ["no_quorum", "approved"]
    assert votes[0]["tally"] == {"approve": 1, "reject": 0, "abstain": 0, "absent": 2, "required": 1}
    assert votes[1]["tally"] == {"approve": 2, "reject": 0, "abstain": 1, "absent": 0, "required": 2}
    assert [r["type"] for r in rows].count("case.published") == 1


async def test_a_failed_legality_review_rejects_and_nothing_is_published(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, engine_worker
) -> None:
    env = time_skipping_env
    async with engine_worker(env) as queue:
        handle = await start(env, queue)
        await decide(
            handle,
            "legal_review",
            LEGAL,
            Decision.reject,
            comment="ALSK-JC-001: the city government may not entrust what the law reserves to the province",
            findings=findings(within_granting_authority="reserved to the autonomous region"),
        )
        result = await finished(env, handle)

    assert result.status is CaseStatus.rejected
    types = [row["type"] for row in await events(db_pool, handle.id)]
    assert "case.published" not in types and "supervision.started" not in types
    assert "executive_meeting" not in [r.stage_id for r in result.stage_results]
