"""Art. 38: every refusal states its reasons and tells the applicant of administrative reconsideration and an
administrative suit, with their periods and organs; a refusal without reasons is refused."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from approvals.event_wording import SYSTEM_WORDING, WordingContext
from schemas.case import CaseStatus
from schemas.events import GENESIS_HASH, EventType, seal_event
from schemas.principal import SYSTEM
from schemas.process import Deadline, Decision, OnReject, QuorumRule, RoutingMode, licensing_law_period
from schemas.remedies import PeriodUnit, Remedies, Remedy, RemedyKind
from tests.api_server import LiveApi, live_api_fixture
from tests.cases import (
    APPLICANT,
    decide,
    definition,
    events,
    finished,
    open_tasks,
    outbox_when,
    person,
    stage,
    start_case,
    view_when,
    wind_up,
)

ART_38 = "Administrative Licensing Law Art. 38"
OFFICER = person("officer-1", "one_window")
ALICE, BOB = person("alice", "reviewer"), person("bob", "reviewer")
DEFAULT_REMEDIES = [
    {
        "kind": "administrative_reconsideration",
        "period": 60,
        "unit": "days",
        "organ": "作出决定的行政机关的上一级人民政府",
        "organ_en": "the people's government one level above the deciding organ",
        "legal_basis": "Administrative Reconsideration Law Art. 20",
    },
    {
        "kind": "administrative_suit",
        "period": 6,
        "unit": "months",
        "organ": "作出决定的行政机关所在地有管辖权的人民法院",
        "organ_en": "the competent people's court where the deciding organ is located",
        "legal_basis": "Administrative Litigation Law Art. 46",
    },
]

api = live_api_fixture("remedies-api")


async def notice_of(db_pool: asyncpg.Pool, case_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The case's one ``case.remedies_notified`` event and the event just before it (the decision)."""
    recorded = await events(db_pool, case_id)
    [notice] = [event for event in recorded if event["type"] == "case.remedies_notified"]
    return notice, recorded[notice["seq"] - 2]


async def test_a_refusal_to_accept_is_recorded_and_sent_to_the_applicant_with_reasons_and_remedies(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(
        stage("acceptance", assignees=("officer-1",), deadline=Deadline(working_days=5)),
        stage("review", assignees=("alice",)),
        deadline=licensing_law_period(starts_after_stage="acceptance"),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        [task] = open_tasks(await view_when(handle, open_tasks))
        await decide(handle, OFFICER, task, Decision.reject, comment="不属于本机关职权范围")
        result = await finished(time_skipping_env, handle)
        outbox = await outbox_when(db_pool, handle.id, bool, kind="case.remedies_notified")

    assert result.status is CaseStatus.rejected
    notice, decision = await notice_of(db_pool, handle.id)
    assert decision["type"] == "case.rejected"
    assert (notice["actor_id"], notice["legal_basis"]) == ("system", ART_38)
    assert notice["payload"] == {
        "concerns": {"event": "case.rejected", "seq": decision["seq"], "kind": "refusal_to_accept",
                     "stage_ids": ["acceptance"]},
        "reasons": [{"stage_id": "acceptance", "task_id": task.task_id, "decided_by": "officer-1",
                     "comment": "不属于本机关职权范围"}],
        "votes": {},
        "remedies": DEFAULT_REMEDIES,
    }  # fmt: skip
    [row] = outbox
    assert row["recipient"] == APPLICANT.id and row["subject"].startswith("不予受理决定")
    sent = json.loads(row["data"]) if isinstance(row["data"], str) else row["data"]
    assert sent["remedies"] == DEFAULT_REMEDIES and sent["reasons"] == notice["payload"]["reasons"]


async def test_a_case_decided_rejected_names_the_organs_its_definition_configures(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    organs = Remedies(
        options=(
            Remedy(kind=RemedyKind.reconsideration, period=60, unit=PeriodUnit.days, organ="博州人民政府",
                   organ_en="the Bortala Prefecture People's Government",
                   legal_basis="Administrative Reconsideration Law Art. 20"),
            Remedy(kind=RemedyKind.suit, period=6, unit=PeriodUnit.months, organ="博乐市人民法院",
                   organ_en="the Bole City People's Court", legal_basis="Administrative Litigation Law Art. 46"),
        )
    )  # fmt: skip
    process = definition(stage("review", assignees=("alice",), on_reject=OnReject.continue_), remedies=organs)
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        [task] = open_tasks(await view_when(handle, open_tasks))
        await decide(handle, ALICE, task, Decision.reject, comment="用地性质不符")
        result = await finished(time_skipping_env, handle)
        [row] = await outbox_when(db_pool, handle.id, bool, kind="case.remedies_notified")

    assert result.status is CaseStatus.rejected
    notice, decision = await notice_of(db_pool, handle.id)
    assert (decision["type"], decision["payload"]["outcome"]) == ("case.decided", "rejected")
    assert notice["payload"]["concerns"]["kind"] == "refusal"
    assert [r["organ"] for r in notice["payload"]["remedies"]] == ["博州人民政府", "博乐市人民法院"]
    assert [r["comment"] for r in notice["payload"]["reasons"]] == ["用地性质不符"]
    assert row["subject"].startswith("不予行政许可决定")


async def test_a_lost_vote_gives_the_rejecting_members_comments_and_the_tally_as_its_reasons(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    members = [person(f"member-{n}", "committee") for n in range(1, 4)]
    vote = stage(
        "vote", mode=RoutingMode.quorum, assignees=tuple(m.id for m in members),
        quorum=QuorumRule(threshold_numerator=1, threshold_denominator=2, min_attendance=3),
        allowed_decisions=(Decision.approve, Decision.reject, Decision.abstain), deadline=Deadline(working_days=5),
    )  # fmt: skip
    votes = [(Decision.reject, "投资强度不足"), (Decision.abstain, ""), (Decision.approve, "")]
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, definition(vote))
        view = await view_when(handle, lambda v: len(open_tasks(v)) == 3)
        tasks = {t.assignee_id: t.task_id for t in open_tasks(view)}
        for member, (decision, comment) in zip(members, votes, strict=True):
            await decide(handle, member, tasks[member.id], decision, comment=comment)
        assert (await finished(time_skipping_env, handle)).status is CaseStatus.rejected

    notice, _ = await notice_of(db_pool, handle.id)
    assert [(r["decided_by"], r["comment"]) for r in notice["payload"]["reasons"]] == [("member-1", "投资强度不足")]
    assert notice["payload"]["votes"] == {"vote": {"approve": 1, "reject": 1, "abstain": 1, "absent": 0, "required": 2}}


async def test_an_approval_or_a_withdrawal_carries_no_notice_of_remedies(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    async with engine_worker(time_skipping_env) as queue:
        approved = await start_case(time_skipping_env.client, queue, definition(stage("review", assignees=("alice",))))
        await decide(approved, ALICE, open_tasks(await view_when(approved, open_tasks))[0])
        withdrawn = await start_case(time_skipping_env.client, queue, definition(stage("review", assignees=("bob",))))
        await view_when(withdrawn, open_tasks)
        await wind_up(time_skipping_env, withdrawn)
        assert (await finished(time_skipping_env, approved)).status is CaseStatus.approved

    for handle in (approved, withdrawn):
        assert "case.remedies_notified" not in [e["type"] for e in await events(db_pool, handle.id)]


# ---------------------------------------------------------------- through the API


@pytest_asyncio.fixture
async def http(api: LiveApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        yield client


async def test_a_refusal_without_reasons_is_refused_422_naming_the_comment_field(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    review = {"kind": "stage", "id": "review", "title": "Review", "legal_basis": "Art. 10", "assignees": ["alice"]}
    body = {
        "business_key": f"REMEDIES-{uuid.uuid4().hex[:10]}",
        "title": "A permit",
        "applicant": {"id": APPLICANT.id, "name": APPLICANT.name, "unit": "enterprise", "roles": ["applicant"]},
        "definition": {"process": "generic", "title": "Permit", "legal_basis": "Art. 4", "steps": [review]},
    }
    started = await http.post("/v1/cases/generic", json=body, headers=api.headers("service"))
    assert started.status_code == 201, started.text
    case_id = started.json()["case_id"]
    for _ in range(100):  # the case opens its task asynchronously
        if (await http.get(f"/v1/cases/{case_id}", headers=api.headers("alice"))).status_code == 200:
            break
        await asyncio.sleep(0.05)
    task_url = f"/v1/tasks/{case_id}/review/1/decide"
    for comment in (None, "", "   "):
        reject = {"decision": "reject"} | ({} if comment is None else {"comment": comment})
        refused = await http.post(task_url, json=reject, headers=api.headers("alice"))
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["code"] == "COMMENT_REQUIRED"
        assert [(e["field"], e["location"]) for e in problem["errors"]] == [("comment", "body")]
        assert "Art. 38" in problem["detail"]

    decided = await http.post(
        task_url, json={"decision": "reject", "comment": "不符合产业准入目录"}, headers=api.headers("alice")
    )
    assert decided.status_code == 200, decided.text
    [row] = await outbox_when(db_pool, case_id, bool, kind="case.remedies_notified")
    assert row["recipient"] == APPLICANT.id


def test_the_timeline_words_the_notice_with_reasons_periods_and_organs_in_both_languages() -> None:
    payload = {
        "concerns": {"event": "case.rejected", "seq": 6, "kind": "refusal_to_accept", "stage_ids": ["acceptance"]},
        "reasons": [{"stage_id": "acceptance", "task_id": "t", "decided_by": "officer-1", "comment": "材料不齐"}],
        "votes": {},
        "remedies": DEFAULT_REMEDIES,
    }
    event = seal_event(
        case_id="generic:T-1", seq=7, type=EventType.case_remedies_notified, actor=SYSTEM, at=datetime.now(UTC),
        legal_basis=ART_38, payload=payload, prev_hash=GENESIS_HASH,
    )  # fmt: skip
    wording = SYSTEM_WORDING[EventType.case_remedies_notified]
    assert wording.describe(event, WordingContext(), "zh") == (
        "告知不予受理的理由及救济途径：材料不齐；可自知道该决定之日起60日内向作出决定的行政机关的上一级人民政府"
        "申请行政复议，或6个月内向作出决定的行政机关所在地有管辖权的人民法院提起行政诉讼"
    )
    english = wording.describe(event, WordingContext(), "en")
    assert english.startswith("refusal to accept notified with reasons (材料不齐)")
    assert "administrative reconsideration within 60 days" in english and "suit within 6 months" in english
