"""Talent one-case-one-policy (Art. 22, pay forms of Art. 7, annual reviews under Art. 21): the application's
rules, and whole cases on the time-skipping Temporal server and real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from approvals.audit.chain import verify_chain
from approvals.storage.queries import case_events
from schemas.case import AttachmentRef, CaseStatus, CaseView, DecideRequest, Finding
from schemas.committee import CommitteeRoster
from schemas.principal import Principal
from schemas.process import Decision
from schemas.talent import EXAMPLE_APPLICATION, PayForm, TalentPolicyApplication
from tests.cases import APPLICANT, CALENDAR, SERVICE, events, finished, open_tasks, person, view_when, wind_up
from workflows.rules import definition_problems
from workflows.talent_policy import (
    HEAD_APPROVAL_THRESHOLDS_CNY,
    TalentPolicyWorkflow,
    talent_package_needs_head_approval,
    talent_policy_case_input,
)

HR = person("hr-jiang", "hr_officer", unit="党群工作部")
HEAD = person("head-feng", "head", unit="管委会")
CHAIR = person("chair-chu", "committee_chair", unit="评审委员会")
MEMBERS = [person(f"member-{x}", "committee_member", unit="评审委员会") for x in "abcd"]
ROSTERS = {
    "talent-policy": CommitteeRoster(revision="阿综保管发〔2026〕4号", chair=CHAIR.id, members=[m.id for m in MEMBERS])
}
EVIDENCE = [AttachmentRef(uri="s3://hr/review/report.pdf", sha256="c" * 64, size=1024, name="年度考核报告")]

Handle = WorkflowHandle[Any, CaseView]


def application(**changes: Any) -> TalentPolicyApplication:
    """The documented example, with ``changes`` (``package`` entries are merged into the example package)."""
    package = {**EXAMPLE_APPLICATION["package"], **changes.pop("package", {})}  # type: ignore[dict-item]
    data = {**EXAMPLE_APPLICATION, "package": package, **changes}
    return TalentPolicyApplication.model_validate(data)


# ---------------------------------------------------------------- the application (pure rules)


def test_a_field_outside_art_22_is_refused() -> None:
    with pytest.raises(ValidationError, match="key_industry"):
        application(field="real_estate")
    assert application().field.value == "key_industry"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"package": {"annual_amount_cny": "0"}}, "greater than 0"),
        ({"package": {"annual_amount_cny": "50000000"}}, "less than or equal to 5000000"),
        ({"package": {"annual_amount_cny": "25000"}}, "per year, not per month"),
        ({"package": {"term_years": 6}}, "less than or equal to 5"),
        ({"package": {"term_years": 0}}, "greater than or equal to 1"),
        ({"package": {"pay_form": "stock_options"}}, "part_time_with_pay"),
        ({"package": {"evaluation_targets": []}}, "at least 1 item"),
        ({"package": {"evaluation_targets": [{"title": "A"}, {"title": "A"}]}}, "titles must differ"),
        ({"package": {"measures": [{"kind": "housing", "description": "flat"}] * 11}}, "at most 10 items"),
        ({"committee": ["m1", "m2", "m3"]}, "roster seats the committee"),
        ({"category": "celebrity"}, "high_level"),
        ({"urgency": "needed"}, "at least 10 characters"),
    ],
)
def test_invalid_packages_are_refused_with_clear_messages(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        application(**changes)


def test_identity_numbers_travel_masked_or_by_reference_only() -> None:
    candidate = dict(EXAMPLE_APPLICATION["candidate"])  # type: ignore[call-overload]
    with pytest.raises(ValidationError, match="full identity number"):
        application(candidate={**candidate, "id_number_masked": "65270119900101123X"})
    with pytest.raises(ValidationError, match="id_number_masked or person_ref"):
        application(candidate={**candidate, "id_number_masked": None, "person_ref": None})
    only_ref = application(candidate={**candidate, "id_number_masked": None})
    assert only_ref.candidate.person_ref == "hr-file:TAL-2026-0007"


def test_part_time_with_pay_needs_the_current_employers_consent() -> None:
    part_time = {"pay_form": "part_time_with_pay", "annual_amount_cny": "120000"}
    with pytest.raises(ValidationError, match="employer_consent.*Xinjiang University"):
        application(package=part_time)
    candidate = {**EXAMPLE_APPLICATION["candidate"], "current_employer": None}  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="needs the candidate's current_employer"):
        application(package=part_time, candidate=candidate)
    consent = {"uri": "s3://hr/consent.pdf", "sha256": "d" * 64, "size": 10, "kind": "employer_consent"}
    assert application(package=part_time, documents=[consent]).package.pay_form is PayForm.part_time_with_pay


def test_head_approval_rule_uses_the_thresholds_in_force() -> None:
    def data(amount: str, form: str = "agreement_wage", **thresholds: str) -> dict[str, Any]:
        case = talent_policy_case_input(
            business_key="K",
            application=application(package={"pay_form": form, "annual_amount_cny": amount}),
            rosters=ROSTERS,
            head_approval_thresholds_cny={PayForm(k): Decimal(v) for k, v in thresholds.items()},
            applicant=APPLICANT,
            started_by=SERVICE,
        )
        assert definition_problems(case.definition) == []
        return case.data

    limit = HEAD_APPROVAL_THRESHOLDS_CNY[PayForm.agreement_wage]
    assert not talent_package_needs_head_approval(data(str(limit)))  # at the threshold: no
    assert talent_package_needs_head_approval(data(str(limit + Decimal("0.01"))))
    assert not talent_package_needs_head_approval(data("900000", "annual_salary"))  # its own threshold
    assert talent_package_needs_head_approval(data("400000", agreement_wage="300000"))  # configured lower
    assert talent_package_needs_head_approval({"package": {"pay_form": "??"}})  # unreadable: never waved through


# ---------------------------------------------------------------- whole cases


async def start(env: WorkflowEnvironment, queue: str, app: TalentPolicyApplication) -> Handle:
    key = f"TAL-{uuid.uuid4().hex[:10]}"
    case = talent_policy_case_input(
        business_key=key, application=app, rosters=ROSTERS, applicant=APPLICANT, started_by=SERVICE, calendar=CALENDAR
    )
    return await env.client.start_workflow(
        TalentPolicyWorkflow.run,
        case,
        id=f"talent-policy:{key}",
        task_queue=queue,
        execution_timeout=timedelta(days=3000),
    )


async def decide(handle: Handle, stage_id: str, actor: Principal, decision: Decision = Decision.approve, **fields: Any):
    view = await view_when(handle, lambda v: bool(open_tasks(v, stage_id)))
    tasks = [t for t in open_tasks(view, stage_id) if t.assignee_id in (None, actor.id)]
    if decision in (Decision.reject, Decision.return_):
        fields.setdefault("comment", "reasons given in the opinion")
    request = DecideRequest(actor=actor, task_id=tasks[0].task_id, decision=decision, **fields)
    return await handle.execute_update(TalentPolicyWorkflow.decide, request)


async def vote(handle: Handle, *decisions: Decision, members: list[Principal] = MEMBERS) -> None:
    for member, decision in zip(members, decisions, strict=True):
        await decide(handle, "committee_deliberation", member, decision)


def findings(app: TalentPolicyApplication, *, met: bool = True) -> list[Finding]:
    return [
        Finding(criterion=t.title, holds=met, note="per the annual report", evidence=EVIDENCE)
        for t in app.package.evaluation_targets
    ]


async def review(env: WorkflowEnvironment, handle: Handle, app: TalentPolicyApplication, *, met: bool) -> None:
    await env.sleep(timedelta(days=366))  # a year in force: the annual review falls due
    decision = Decision.approve if met else Decision.reject
    await decide(handle, "annual_review", HR, decision, findings=findings(app, met=met))


async def denial(call: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await call
    return failure.value.cause.type  # type: ignore[union-attr]


async def test_approved_by_vote_notified_not_published_reviewed_yearly_adjusted_and_ends_with_its_term(
    own_time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, engine_worker
) -> None:
    env = own_time_skipping_env
    app = application()  # agreement wage 480,000: below the head-approval threshold
    async with engine_worker(env) as queue:
        handle = await start(env, queue, app)
        await decide(handle, "hr_review", HR)
        await decide(handle, "committee_deliberation", MEMBERS[0])
        view = await handle.query(TalentPolicyWorkflow.view)
        [task_of_b] = [t for t in open_tasks(view) if t.assignee_id == MEMBERS[1].id]
        second = DecideRequest(actor=MEMBERS[0], task_id=task_of_b.task_id, decision=Decision.approve)
        assert await denial(handle.execute_update(TalentPolicyWorkflow.decide, second)) == "DUPLICATE_VOTE"
        await vote(handle, Decision.approve, Decision.abstain, Decision.approve, members=MEMBERS[1:])
        await decide(handle, "decision", CHAIR)
        view = await view_when(handle, lambda v: v.status is CaseStatus.under_supervision)
        assert [r.tally for r in view.stage_results if r.stage_id == "committee_deliberation"] == [
            {"approve": 3, "reject": 0, "abstain": 1, "absent": 0, "required": 3}
        ]

        await review(env, handle, app, met=True)  # year 1: targets met
        await env.sleep(timedelta(days=366))  # year 2: a target missed
        missed = findings(app, met=False)
        # approving while a target is missed is refused: the review must reject, which means adjust
        code = await denial(decide(handle, "annual_review", HR, Decision.approve, findings=missed))
        assert code == "FINDINGS_CONTRADICT_APPROVAL"
        assert await denial(decide(handle, "annual_review", HR, Decision.reject)) == "FINDINGS_INCOMPLETE"
        await decide(handle, "annual_review", HR, Decision.reject, findings=missed)
        child = env.client.get_workflow_handle(f"talent-policy-adjustment:{handle.id.split(':', 1)[1]}.adj2")
        await decide(
            child, "package_adjustment", CHAIR, Decision.approve_with_conditions, conditions=["pay 400,000 from year 3"]
        )
        await review(env, handle, app, met=True)  # year 3, the last of the term
        result = await finished(env, handle)

    assert result.status is CaseStatus.approved  # the term is over: back to the decision as made
    assert verify_chain(await case_events(db_pool, handle.id)) == []
    recorded = await events(db_pool, handle.id)
    types = [row["type"] for row in recorded]
    [skipped] = [row for row in recorded if row["type"] == "stage.skipped"]
    assert skipped["stage_id"] == "head_approval"
    assert "case.published" not in types
    [notified] = [row for row in recorded if row["type"] == "case.notified"]
    assert notified["legal_basis"] == "Art. 22" and notified["payload"]["published"] is False
    assert notified["payload"]["recipients"] == ["talent-aliya", "role:hr_officer", APPLICANT.id]
    outbox = await db_pool.fetch("SELECT recipient FROM outbox WHERE case_id = $1 AND kind = 'case.decided'", handle.id)
    assert sorted(row["recipient"] for row in outbox) == sorted(notified["payload"]["recipients"])
    reviews = [row for row in recorded if row["type"] == "stage.completed" and row["stage_id"] == "annual_review"]
    assert [row["payload"]["outcome"] for row in reviews] == ["approved", "rejected", "approved"]
    [completed] = [row for row in recorded if row["type"] == "case.child_completed"]
    assert completed["payload"]["status"] == "approved_with_conditions"
    assert completed["payload"]["conditions"] == ["pay 400,000 from year 3"]
    assert types[-1] == "supervision.ended" and recorded[-1]["payload"] == {"rounds": 3}


async def test_a_high_agreement_wage_goes_to_the_head_and_a_failed_review_can_end_the_package(
    own_time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, engine_worker
) -> None:
    env = own_time_skipping_env
    app = application(package={"annual_amount_cny": "850000.00", "term_years": 4})
    async with engine_worker(env) as queue:
        handle = await start(env, queue, app)
        await decide(handle, "hr_review", HR)
        await vote(handle, Decision.approve, Decision.approve, Decision.approve, Decision.reject)
        view = await view_when(handle, lambda v: bool(open_tasks(v, "head_approval")))
        assert view.current_stages == ["head_approval"]
        await decide(handle, "head_approval", HEAD, Decision.approve_with_conditions, conditions=["payroll total"])
        await decide(handle, "decision", CHAIR)
        await view_when(handle, lambda v: v.status is CaseStatus.under_supervision)

        await review(env, handle, app, met=False)
        child = env.client.get_workflow_handle(f"talent-policy-adjustment:{handle.id.split(':', 1)[1]}.adj1")
        await decide(child, "package_adjustment", CHAIR, Decision.reject, comment="targets missed: the policy ends")
        result = await finished(env, handle)

    # the chair's decision is the outcome; the head's condition stays on record with the case's conditions
    assert result.status is CaseStatus.approved and result.conditions == ["payroll total"]
    recorded = await events(db_pool, handle.id)
    types = [row["type"] for row in recorded]
    assert "stage.skipped" not in types
    assert types.count("timer.fired") == 1  # ended after the first of four annual reviews
    assert recorded[-1]["type"] == "supervision.ended" and recorded[-1]["payload"]["ended_early"] is True
    ended = await db_pool.fetch("SELECT recipient FROM outbox WHERE case_id = $1 AND kind = 'policy.ended'", handle.id)
    assert len(ended) == 3


async def test_a_rejecting_vote_blocks_the_chairs_approval(
    time_skipping_env: WorkflowEnvironment, db_pool: asyncpg.Pool, engine_worker
) -> None:
    env = time_skipping_env
    async with engine_worker(env) as queue:
        handle = await start(env, queue, application())
        await decide(handle, "hr_review", HR)
        await vote(handle, Decision.reject, Decision.reject, Decision.approve, Decision.abstain)
        assert await denial(decide(handle, "decision", CHAIR)) == "APPROVAL_BLOCKED"
        await decide(handle, "decision", CHAIR, Decision.reject)
        result = await finished(env, handle)
        assert result.status is CaseStatus.rejected
    [notified] = await events(db_pool, handle.id, "case.notified")
    assert notified["payload"]["decision"] == "rejected"


async def test_hr_may_ask_for_supplementary_material(
    time_skipping_env: WorkflowEnvironment, db_pool, engine_worker
) -> None:
    from schemas.case import MissingItem, RequestSupplementRequest

    env = time_skipping_env
    async with engine_worker(env) as queue:
        handle = await start(env, queue, application())
        await view_when(handle, lambda v: bool(open_tasks(v, "hr_review")))
        await handle.execute_update(
            TalentPolicyWorkflow.request_supplement,
            RequestSupplementRequest(actor=HR, items=[MissingItem(item="draft agreement", reason="pay terms")]),
        )
        view = await handle.query(TalentPolicyWorkflow.view)
        assert view.status is CaseStatus.awaiting_supplement
        await wind_up(env, handle)
