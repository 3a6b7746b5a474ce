"""Error tolerance (容错, Art. 25) end to end: whole cases on the Temporal test server and real PostgreSQL.

The module runs its own worker with the error-tolerance workflow added, so it does not depend on the
workflow being registered in ``workflows.catalog.WORKFLOWS``.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from approvals.audit.chain import verify_chain
from approvals.audit.state import state_at
from approvals.audit.timeline import timeline
from approvals.processes import PROCESSES
from approvals.storage.queries import case_events
from schemas.case import (
    AttachmentRef,
    CaseInput,
    CaseStatus,
    CaseView,
    DecideRequest,
    Finding,
    MissingItem,
    RequestSupplementRequest,
    SupplementRequest,
    WithdrawRequest,
)
from schemas.committee import CommitteeRoster, RosterError
from schemas.error_tolerance import (
    CONDITION_IDS,
    EXAMPLE_APPLICATION,
    RECTIFICATION_CRITERIA,
    ErrorToleranceApplication,
    RectificationEffect,
)
from schemas.principal import Principal
from schemas.process import Decision
from tests.cases import CALENDAR, SERVICE, events, finished, open_tasks, person, view_when
from workflows.catalog import workflow_runner
from workflows.error_tolerance import ErrorToleranceWorkflow, error_tolerance_case_input

UNIT_OFFICER = person("unit-officer-liu", "applicant", unit="经济发展局")
INSPECTOR = person("inspector-wei", "discipline_inspector", unit="纪检监察工委")
CHAIR = person("chair-chu", "committee_chair", unit="评审委员会")
MEMBERS = {m: person(m, "committee_member") for m in ("committee-member-a", "committee-member-b", "committee-member-c")}
EVIDENCE = [AttachmentRef(uri="s3://evidence/interview-1.pdf", sha256="c" * 64, size=1024, name="谈话笔录")]
ROSTERS = {"error-tolerance": CommitteeRoster(revision="阿综保管发〔2026〕3号", chair=CHAIR.id, members=list(MEMBERS))}

Handle = WorkflowHandle[ErrorToleranceWorkflow, CaseView]


def application(today: date, **changes: Any) -> ErrorToleranceApplication:
    """The documented example, dated around ``today`` (the test server's clock moves between tests)."""
    data = json.loads(json.dumps(EXAMPLE_APPLICATION))
    data["measure"]["decision_date"] = (today - timedelta(days=120)).isoformat()
    data["shortfall"]["identified_on"] = (today - timedelta(days=30)).isoformat()
    data["liability_proceeding"]["opened_on"] = (today - timedelta(days=20)).isoformat()
    data["rectification_plan"]["promised_completion_date"] = (today + timedelta(days=30)).isoformat()
    return ErrorToleranceApplication.model_validate({**data, **changes})


async def start(env: WorkflowEnvironment, queue: str, *, applicant: Principal = UNIT_OFFICER) -> Handle:
    today = (await env.get_current_time()).astimezone(CALENDAR.tzinfo).date()
    key = f"ET-{uuid.uuid4().hex[:10]}"
    case = error_tolerance_case_input(
        business_key=key,
        application=application(today),
        rosters=ROSTERS,
        applicant=applicant,
        started_by=SERVICE,
        calendar=CALENDAR,
    )
    return await env.client.start_workflow(
        ErrorToleranceWorkflow.run,
        case,
        id=f"error-tolerance:{key}",
        task_queue=queue,
        execution_timeout=timedelta(days=400),
    )


def findings(criteria: tuple[str, ...], failing: tuple[str, ...] = ()) -> list[Finding]:
    return [
        Finding(criterion=c, holds=c not in failing, note=f"{c}: see the evidence", evidence=EVIDENCE) for c in criteria
    ]


async def act(
    handle: Handle, stage_id: str, actor: Principal, decision: Decision = Decision.approve, **fields: Any
) -> None:
    view = await view_when(handle, lambda v: bool(open_tasks(v, stage_id)))
    tasks = [t for t in open_tasks(view, stage_id) if t.assignee_id in (None, actor.id)]
    if decision in (Decision.reject, Decision.return_):
        fields.setdefault("comment", "reasons given in the written opinion")
    await handle.execute_update(
        ErrorToleranceWorkflow.decide,
        DecideRequest(actor=actor, task_id=tasks[0].task_id, decision=decision, **fields),
    )


async def denial(call: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await call
    return failure.value.cause.type  # type: ignore[union-attr]


async def vote(handle: Handle, *decisions: Decision) -> None:
    for member, decision in zip(MEMBERS.values(), decisions, strict=True):
        await act(handle, "deliberation", member, decision)


async def through_vote(handle: Handle, *, failing: tuple[str, ...] = ()) -> None:
    await act(handle, "acceptance", INSPECTOR)
    if failing:
        await act(handle, "investigation", INSPECTOR, Decision.reject, findings=findings(CONDITION_IDS, failing))
    else:
        await act(handle, "investigation", INSPECTOR, findings=findings(CONDITION_IDS))
    await vote(handle, Decision.approve, Decision.approve, Decision.abstain)


async def determine(
    env: WorkflowEnvironment, handle: Handle, decision: Decision = Decision.approve, **fields: Any
) -> date:
    """The chair's exemption (or reduction), with its reasons and the committee's rectification deadline."""
    deadline = (await env.get_current_time()).astimezone(CALENDAR.tzinfo).date() + timedelta(days=20)
    await act(
        handle,
        "decision",
        CHAIR,
        decision,
        comment="五项条件均已查实 all five conditions hold",
        due_date=deadline,
        **fields,
    )
    return deadline


async def withdrawn(env: WorkflowEnvironment, handle: Handle) -> None:
    """The unit withdraws a case the test is done with, so no open case holds the test server's clock."""
    await handle.execute_update(ErrorToleranceWorkflow.withdraw, WithdrawRequest(actor=UNIT_OFFICER, reason="done"))
    await finished(env, handle)


async def summary(db_pool: asyncpg.Pool, case_id: str) -> dict[str, Any]:
    row = await db_pool.fetchrow("SELECT status, summary::text AS summary FROM cases WHERE case_id = $1", case_id)
    return {"status": row["status"], **json.loads(row["summary"])}


# ---------------------------------------------------------------- whole cases


async def test_all_five_conditions_hold_exemption_then_prompt_rectification_is_recorded(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, engine_worker
) -> None:
    env = time_skipping_env
    async with engine_worker(env) as queue:
        handle = await start(env, queue)
        await through_vote(handle)
        unreasoned = await denial(act(handle, "decision", CHAIR, due_date=date.today() + timedelta(days=400)))
        undated = await denial(act(handle, "decision", CHAIR, comment="reasons"))
        deadline = await determine(env, handle)
        following = await view_when(handle, lambda v: v.status is CaseStatus.under_supervision)
        determined = await handle.query(ErrorToleranceWorkflow.error_tolerance)
        await env.sleep(timedelta(days=22))  # past the committee's deadline, before the promised date
        await act(handle, "rectification_check", INSPECTOR, findings=findings(RECTIFICATION_CRITERIA))
        result = await finished(env, handle)
        notice = await handle.query(ErrorToleranceWorkflow.error_tolerance)
        history = await handle.fetch_history()

    replayer = Replayer(
        workflows=[ErrorToleranceWorkflow],
        workflow_runner=workflow_runner(sandboxed=True),
        data_converter=pydantic_data_converter,
    )
    await replayer.replay_workflow(history)  # deterministic: the recorded history replays through this code
    assert unreasoned == "COMMENT_REQUIRED" and undated == "DUE_DATE_REQUIRED"
    assert following.outcome == "approved" and not open_tasks(following)
    [vote_result] = [r for r in following.stage_results if r.stage_id == "deliberation"]
    assert (
        vote_result.outcome == "approved" and vote_result.tally["abstain"] == 1 and vote_result.tally["required"] == 2
    )
    assert determined is not None and determined.determination == "exemption"
    assert determined.rectification is not None and determined.rectification.rectified_in_time is None
    assert determined.rectification.committee_deadline == deadline
    assert deadline < determined.rectification.promised_completion_date  # the committee's bound, not the promise
    assert result.status is CaseStatus.approved and result.outcome == "approved"
    assert notice is not None and notice.rectification is not None and notice.rectification.rectified_in_time
    assert notice.rectification.effect is RectificationEffect.no_effect

    recorded = await events(db_pool, handle.id)
    types = [row["type"] for row in recorded]
    assert types.index("case.decided") < types.index("error_tolerance.determined") < types.index("timer.fired")
    assert (
        types.index("timer.fired") < types.index("error_tolerance.effect_recorded") < types.index("supervision.ended")
    )
    [effect] = [row for row in recorded if row["type"] == "error_tolerance.effect_recorded"]
    assert effect["legal_basis"] == "Art. 25"
    assert effect["payload"]["rectification"]["effect"] == RectificationEffect.no_effect.value
    assert "在绩效考核、评先评优、提拔晋升和表彰奖励等方面不受影响" in effect["payload"]["rectification"]["effect_text"]
    [timer] = [row for row in recorded if row["type"] == "timer.started"]
    assert datetime.fromisoformat(timer["payload"]["until"]).astimezone(CALENDAR.tzinfo).date() == deadline + timedelta(
        days=1
    )
    [determination] = [row for row in recorded if row["type"] == "task.decided" and row["stage_id"] == "decision"]
    assert determination["payload"]["due_date"] == deadline.isoformat() and determination["payload"]["comment"]
    [decided] = [row for row in recorded if row["type"] == "task.decided" and row["stage_id"] == "investigation"]
    assert {f["criterion"] for f in decided["payload"]["findings"]} == set(CONDITION_IDS)
    assert await summary(db_pool, handle.id) == {
        "status": "approved",
        "conditions": [],
        "extended": False,
        "determination": "exemption",
        "rectified_in_time": True,
        "effect": RectificationEffect.no_effect.value,
    }
    chain = await case_events(db_pool, handle.id)
    assert verify_chain(chain) == [] and state_at(chain).status == "approved"
    assert [r for r in timeline(chain, calendar=CALENDAR) if r.legal_basis == "Art. 25"]
    assert state_at(chain, seq=effect["seq"]).status == "under_supervision"  # the fold follows the follow-up
    recipients = await db_pool.fetch(
        "SELECT recipient FROM outbox WHERE case_id = $1 AND kind = 'error_tolerance.effect_recorded'", handle.id
    )
    assert {r["recipient"] for r in recipients} == {"unit-officer-liu", "official-ma", "official-he", "role:hr_officer"}


async def test_a_condition_that_fails_blocks_approval_and_the_case_ends_not_applicable(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, engine_worker
) -> None:
    env = time_skipping_env
    async with engine_worker(env) as queue:
        handle = await start(env, queue)
        await act(handle, "acceptance", INSPECTOR)
        failing = findings(CONDITION_IDS, failing=("no_improper_benefit",))
        refused = await denial(act(handle, "investigation", INSPECTOR, findings=failing))
        await act(handle, "investigation", INSPECTOR, Decision.reject, findings=failing)
        await vote(handle, Decision.approve, Decision.approve, Decision.approve)
        blocked = await denial(determine(env, handle))
        await act(handle, "decision", CHAIR, Decision.reject)
        result = await finished(env, handle)
        notice = await handle.query(ErrorToleranceWorkflow.error_tolerance)

    assert refused == "FINDINGS_CONTRADICT_APPROVAL" and blocked == "APPROVAL_BLOCKED"
    assert result.status is CaseStatus.rejected
    assert notice is not None and notice.determination == "not_applicable" and notice.rectification is None
    types = [row["type"] for row in await events(db_pool, handle.id)]
    assert "error_tolerance.determined" in types
    assert not {"timer.started", "supervision.started", "error_tolerance.effect_recorded"} & set(types)
    assert (await summary(db_pool, handle.id))["determination"] == "not_applicable"


async def test_reduced_liability_with_conditions_and_late_rectification_loses_the_protection(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, engine_worker
) -> None:
    env = time_skipping_env
    conditions = ["通报批评 circulated criticism", "complete the rollback before the promised date"]
    async with engine_worker(env) as queue:
        handle = await start(env, queue)
        await through_vote(handle)
        await determine(env, handle, Decision.approve_with_conditions, conditions=conditions)
        await view_when(handle, lambda v: v.status is CaseStatus.under_supervision)
        await env.sleep(timedelta(days=22))
        late = findings(RECTIFICATION_CRITERIA, failing=("completed_by_committee_deadline",))
        refused = await denial(act(handle, "rectification_check", INSPECTOR, findings=late))
        await act(handle, "rectification_check", INSPECTOR, Decision.reject, findings=late)
        result = await finished(env, handle)
        notice = await handle.query(ErrorToleranceWorkflow.error_tolerance)

    assert refused == "FINDINGS_CONTRADICT_APPROVAL"
    assert result.status is CaseStatus.approved_with_conditions and result.conditions == conditions
    assert notice is not None and notice.determination == "reduced_liability" and notice.conditions == conditions
    assert notice.rectification is not None and notice.rectification.rectified_in_time is False
    assert notice.rectification.effect is RectificationEffect.protection_not_applicable
    [effect] = await events(db_pool, handle.id, "error_tolerance.effect_recorded")
    assert effect["legal_basis"] == "Art. 25"
    assert effect["payload"]["rectification"]["effect"] == RectificationEffect.protection_not_applicable.value
    assert "不受影响" not in effect["payload"]["rectification"]["effect_text"]
    assert (await summary(db_pool, handle.id))["rectified_in_time"] is False


async def test_each_finding_of_the_investigation_cites_evidence(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, engine_worker
) -> None:
    env = time_skipping_env
    bare = [
        f if f.criterion != "no_dereliction" else f.model_copy(update={"evidence": []}) for f in findings(CONDITION_IDS)
    ]
    async with engine_worker(env) as queue:
        handle = await start(env, queue)
        await act(handle, "acceptance", INSPECTOR)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await act(handle, "investigation", INSPECTOR, findings=bare)
        undated_stage = await denial(
            act(handle, "investigation", INSPECTOR, findings=findings(CONDITION_IDS), due_date=date(2099, 1, 1))
        )
        await act(handle, "investigation", INSPECTOR, findings=findings(CONDITION_IDS))
        view = await view_when(handle, lambda v: bool(open_tasks(v, "deliberation")))
        await withdrawn(env, handle)

    assert undated_stage == "DUE_DATE_NOT_ASKED"
    with pytest.raises(ValidationError, match="due_date is only given with approve"):
        DecideRequest(actor=CHAIR, task_id="t", decision=Decision.reject, comment="no", due_date=date(2099, 1, 1))
    cause = refused.value.cause
    assert cause.type == "FINDINGS_WITHOUT_EVIDENCE"  # type: ignore[union-attr]
    assert "['no_dereliction']" in str(cause) and cause.details[0]["field"] == "findings"  # type: ignore[union-attr]
    assert open_tasks(view, "deliberation")


async def test_a_person_concerned_cannot_act_on_their_own_case(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, engine_worker
) -> None:
    env = time_skipping_env
    concerned = person("official-ma", "applicant", "discipline_inspector", unit="经济发展局")
    async with engine_worker(env) as queue:
        handle = await start(env, queue, applicant=concerned)
        refused = await denial(act(handle, "acceptance", concerned))
        await handle.execute_update(
            ErrorToleranceWorkflow.request_supplement,
            RequestSupplementRequest(actor=INSPECTOR, items=[MissingItem(item="会议纪要原件 original minutes")]),
        )
        paused = await handle.query(ErrorToleranceWorkflow.view)
        await handle.execute_update(
            ErrorToleranceWorkflow.supplement, SupplementRequest(actor=concerned, documents=EVIDENCE)
        )
        await act(handle, "acceptance", INSPECTOR)
        await handle.execute_update(
            ErrorToleranceWorkflow.withdraw, WithdrawRequest(actor=concerned, reason="test over")
        )
        result = await finished(env, handle)

    assert refused == "SEPARATION_OF_DUTIES"
    assert paused.status is CaseStatus.awaiting_supplement and paused.clock_state == "stopped"  # 补正
    assert result.status is CaseStatus.withdrawn


async def test_a_case_with_an_invalid_application_fails_before_any_stage(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, engine_worker
) -> None:
    env = time_skipping_env
    today = (await env.get_current_time()).date()
    case = error_tolerance_case_input(
        business_key=f"ET-{uuid.uuid4().hex[:10]}",
        application=application(today),
        rosters=ROSTERS,
        applicant=UNIT_OFFICER,
        started_by=SERVICE,
        calendar=CALENDAR,
    )
    broken = CaseInput.model_validate({**case.model_dump(), "data": {**case.data, "persons_concerned": []}})
    async with engine_worker(env) as queue:
        handle = await env.client.start_workflow(
            ErrorToleranceWorkflow.run, broken, id=f"error-tolerance:{broken.business_key}", task_queue=queue
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await finished(env, handle)
    assert failure.value.cause.type == "INVALID_APPLICATION"  # type: ignore[union-attr]


# ---------------------------------------------------------------- the application


TODAY = date(2026, 7, 1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"committee": ["committee-member-a", "committee-member-b", "committee-member-c"]}, "roster seats"),
        ({"persons_concerned": []}, "at least 1 item"),
        (
            {"persons_concerned": [{"id": "official-ma", "name": "马某", "post": "局长"}] * 2},
            "persons_concerned lists",
        ),
        ({"loss_cny": "-1"}, "greater than or equal to 0"),
        ({"loss_cny": "12.345"}, "decimal places"),
        ({"loss_cny": 1e20}, "exponent"),
        ({"liability_proceeding": {"reference": "", "authority": "纪检监察工委"}}, "at least 1 character"),
        ({"unexpected": True}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_applications_are_refused_with_the_field_at_fault(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        application(TODAY, **changes)


def test_dates_procedure_and_unit_code_are_checked() -> None:
    valid = application(TODAY)
    assert valid.loss_cny is not None and str(valid.loss_cny) == "350000.00"
    measure = valid.measure.model_dump(mode="json")
    with pytest.raises(ValidationError, match="listed more than once"):
        application(TODAY, measure={**measure, "procedure_followed": ["legality_review", "legality_review"]})
    with pytest.raises(ValidationError, match="at least 1 item"):
        application(TODAY, measure={**measure, "documents": []})
    with pytest.raises(ValidationError, match="cannot fall short before it exists"):
        application(TODAY, measure={**measure, "decision_date": "2026-06-25"})
    plan = valid.rectification_plan.model_dump(mode="json")
    with pytest.raises(ValidationError, match="before the shortfall was identified"):
        application(TODAY, rectification_plan={**plan, "promised_completion_date": "2026-05-01"})
    with pytest.raises(ValidationError, match="at least 1 item"):
        application(TODAY, rectification_plan={**plan, "measures": []})
    unit = valid.applying_unit.model_dump(mode="json")
    with pytest.raises(ValidationError, match="check character"):
        application(TODAY, applying_unit={**unit, "unified_social_credit_code": "91350100M000100Y44"})
    with pytest.raises(ValidationError, match="NUL"):
        application(TODAY, shortfall={**valid.shortfall.model_dump(mode="json"), "what_happened": "bad\x00"})


def seated(applicant: Principal = UNIT_OFFICER, rosters: dict[str, CommitteeRoster] = ROSTERS) -> CaseInput:
    return error_tolerance_case_input(
        business_key="ET-1", application=application(TODAY), rosters=rosters, applicant=applicant, started_by=SERVICE
    )


def test_the_roster_seats_the_committee_and_the_case_records_which_roster() -> None:
    case = seated()
    assert case.definition.stage("deliberation").assignees == tuple(MEMBERS)
    assert case.definition.stage("decision").assignees == (CHAIR.id,)
    assert case.data["committee_roster"] == {
        "kind": "error-tolerance",
        "revision": "阿综保管发〔2026〕3号",
        "digest": ROSTERS["error-tolerance"].digest(),
        "chair": CHAIR.id,
        "members": list(MEMBERS),
        "recused": [],
    }
    assert "committee" not in case.data
    assert case.definition.stage("investigation").criteria == CONDITION_IDS


def test_the_applicant_and_the_persons_concerned_are_not_seated() -> None:
    members = [*MEMBERS, "official-ma", "committee-member-d"]  # 马某 is a person concerned by the example
    rosters = {"error-tolerance": CommitteeRoster(revision="r2", chair=CHAIR.id, members=members)}
    case = seated(person("committee-member-a", "applicant"), rosters)
    assert case.definition.stage("deliberation").assignees == (
        "committee-member-b",
        "committee-member-c",
        "committee-member-d",
    )
    assert case.data["committee_roster"]["recused"] == ["committee-member-a", "official-ma"]
    with pytest.raises(RosterError, match="fewer than 3"):
        seated(person("committee-member-a", "applicant"))
    with pytest.raises(RosterError, match="no committee roster 'error-tolerance'"):
        seated(rosters={})
    with pytest.raises(RosterError, match="chair chair-chu .* must recuse"):
        seated(person(CHAIR.id, "applicant"))


def test_a_request_naming_its_committee_is_refused_naming_the_field() -> None:
    body = {
        "business_key": "ET-1",
        "title": "容错申请",
        "applicant": UNIT_OFFICER.model_dump(mode="json"),
        "application": {**json.loads(json.dumps(EXAMPLE_APPLICATION)), "committee": list(MEMBERS)},
    }
    with pytest.raises(ValidationError) as refused:
        PROCESSES["error-tolerance"].request_model.model_validate(body)
    [error] = refused.value.errors()
    assert error["loc"] == ("application", "committee")
    assert "roster seats the committee (COMMITTEE_ROSTERS)" in error["msg"]


async def test_a_committee_comes_from_the_roster_the_vote_goes_to_its_members_only(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, engine_worker
) -> None:
    """Started as the API starts it (the registry, the configured rosters): the vote tasks are the roster's."""
    env = time_skipping_env
    members = ["roster-member-1", "roster-member-2", "roster-member-3", "roster-member-4"]
    rosters = {
        "error-tolerance": CommitteeRoster(revision="阿综保管发〔2026〕9号", chair="roster-chair", members=members)
    }
    body = {
        "business_key": f"ET-{uuid.uuid4().hex[:10]}",
        "title": "容错申请",
        "applicant": UNIT_OFFICER.model_dump(mode="json"),
        "application": application((await env.get_current_time()).date()).model_dump(mode="json"),
    }
    entry = PROCESSES["error-tolerance"]
    case = entry.to_case_input(entry.request_model.model_validate(body), SERVICE, rosters)
    case = case.model_copy(update={"calendar": CALENDAR})
    async with engine_worker(env) as queue:
        handle = await env.client.start_workflow(
            ErrorToleranceWorkflow.run, case, id=entry.workflow_id(case.business_key), task_queue=queue
        )
        await act(handle, "acceptance", INSPECTOR)
        await act(handle, "investigation", INSPECTOR, findings=findings(CONDITION_IDS))
        view = await view_when(handle, lambda v: bool(open_tasks(v, "deliberation")))
        assert sorted(task.assignee_id for task in open_tasks(view, "deliberation")) == members
        await withdrawn(env, handle)
        started = (await events(db_pool, handle.id))[0]
        assert started["payload"]["data"]["committee_roster"]["digest"] == rosters["error-tolerance"].digest()
