"""Publication and the law's open lists: what a disclosure withholds (Art. 18, Regulations on Open Government
Information Art. 15), the effective date in the zone's local time (Art. 4), and a talent field or pay form
outside the lists that end in 等 (Art. 22, Art. 7), refused over HTTP without a stated reason."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from pydantic import ValidationError

from schemas.disclosure import COMMERCIAL_SECRET, PARTY_OF_A_REFUSAL, PERSONAL_DATA, DisclosureRules, redact
from schemas.notifications import DisclosureNotice
from schemas.talent import EXAMPLE_APPLICATION, PayForm, TalentField, TalentPolicyApplication
from tests.api_server import LiveApi, live_api_fixture
from tests.cases import CALENDAR, events
from tests.test_api import problem
from workflows.power_adjustment import effective_date
from workflows.project_approval import DISCLOSURE_RULES
from workflows.talent_policy import talent_package_needs_head_approval

api = live_api_fixture("publication")

FIELD_REASON = {
    "name": "跨境电商 cross-border e-commerce",
    "reason": "The zone's bonded e-commerce warehouse opens in 2026 and has no customs-data lead.",
}


def notice(decision: str, **subject: Any) -> DisclosureNotice:
    return DisclosureNotice(
        idempotency_key="case/9/disclosure",
        case_id="project-approval:P-1",
        process="project-approval",
        title="Copper line (Alashankou Metals Co.)",
        decision=decision,
        legal_basis="Art. 10",
        decided_at="2026-03-02T09:00:00+00:00",
        subject=subject,
    )


PROJECT_SUBJECT = {
    "project_name": "Copper line",
    "enterprise": "Alashankou Metals Co.",
    "unified_social_credit_code": "91350100M000100Y43",
    "plot_id": "ALSK-B-07",
    "priority": True,
}


# ---------------------------------------------------------------- redaction (pure)


def test_a_grant_is_published_with_the_enterprise_and_its_credit_code() -> None:
    published = redact(notice("approved", **PROJECT_SUBJECT), DISCLOSURE_RULES)
    assert published.subject == PROJECT_SUBJECT
    assert published.title == "Copper line (Alashankou Metals Co.)" and published.withheld == {}


def test_a_refusal_is_published_without_the_party() -> None:
    published = redact(notice("rejected", **PROJECT_SUBJECT), DISCLOSURE_RULES)
    assert published.subject == {"priority": True}
    assert "Alashankou" not in published.model_dump_json()
    assert "91350100M000100Y43" not in published.model_dump_json()
    assert published.title == DISCLOSURE_RULES.refusal_title
    assert published.withheld == {key: PARTY_OF_A_REFUSAL for key in PROJECT_SUBJECT if key != "priority"}


def test_personal_data_and_commercial_secrets_are_never_published() -> None:
    rules = DisclosureRules(
        refusal_title="refused", personal_data=("contact",), commercial_secrets=("investment_cny",), party=("name",)
    )
    subject = {"name": "Metals Co.", "contact": {"phone": "+86 909 555 0101"}, "investment_cny": "9", "plot": "B"}
    for decision in ("approved", "approved_with_conditions", "rejected"):
        published = redact(notice(decision, **subject), rules)
        assert "contact" not in published.subject and "investment_cny" not in published.subject
        assert published.withheld is not None
        assert published.withheld["contact"] == PERSONAL_DATA
        assert published.withheld["investment_cny"] == COMMERCIAL_SECRET
        assert published.subject["plot"] == "B"
    assert redact(notice("approved", **subject), rules).subject["name"] == "Metals Co."


def test_redaction_lists_only_what_the_notice_held_and_leaves_the_notice_given_unchanged() -> None:
    original = notice("rejected", project_name="Copper line")
    published = redact(original, DISCLOSURE_RULES)
    assert published.withheld == {"project_name": PARTY_OF_A_REFUSAL}
    assert original.subject == {"project_name": "Copper line"} and original.withheld is None


def test_a_notice_of_an_earlier_case_dumps_as_it_was_sealed() -> None:
    assert "withheld" not in notice("approved").model_dump(mode="json", exclude_none=True)
    assert "publication_due_at" not in notice("approved").model_dump(mode="json", exclude_none=True)


# ---------------------------------------------------------------- the effective date (Art. 4)


def test_the_effective_date_is_the_zones_local_date_across_midnight() -> None:
    zone = CALENDAR.tzinfo
    assert zone.utcoffset(None) == timedelta(hours=8)
    decided_at = datetime(2026, 3, 2, 16, 30, tzinfo=UTC)  # 00:30 on 3 March in Alashankou
    assert effective_date(None, decided_at, zone) == date(2026, 3, 3)
    assert effective_date(None, datetime(2026, 3, 2, 15, 59, tzinfo=UTC), zone) == date(2026, 3, 2)
    assert effective_date(None, decided_at, None) == date(2026, 3, 2)  # cases started before the rule
    assert effective_date(date(2026, 6, 1), decided_at, zone) == date(2026, 6, 1)  # a proposed date stands


# ---------------------------------------------------------------- lists that end in 等 (Art. 22, Art. 7)


def talent(**changes: Any) -> dict[str, Any]:
    package = {**EXAMPLE_APPLICATION["package"], **changes.pop("package", {})}  # type: ignore[dict-item]
    return {**EXAMPLE_APPLICATION, "package": package, **changes}


def test_a_field_outside_art_22_is_allowed_with_a_stated_reason() -> None:
    application = TalentPolicyApplication.model_validate(talent(field="other", field_unlisted=FIELD_REASON))
    assert application.field is TalentField.other
    assert application.field_unlisted is not None and application.field_unlisted.reason == FIELD_REASON["reason"]
    assert application.model_dump(mode="json")["field_unlisted"] == FIELD_REASON  # it travels in the case data


@pytest.mark.parametrize(
    ("changes", "location", "message"),
    [
        ({"field": "other"}, ("field_unlisted",), "state why"),
        (
            {"field": "other", "field_unlisted": {**FIELD_REASON, "reason": "needed"}},
            ("field_unlisted", "reason"),
            "10",
        ),
        ({"field_unlisted": FIELD_REASON}, ("field_unlisted",), "which the law lists"),
        ({"package": {"pay_form": "other"}}, ("package", "pay_form_unlisted"), "state why"),
    ],
)
def test_an_unlisted_field_or_pay_form_without_a_reason_is_refused_naming_the_field(
    changes: dict[str, Any], location: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        TalentPolicyApplication.model_validate(talent(**changes))
    [error] = refused.value.errors()
    assert error["loc"] == location and message in error["msg"]


def test_a_pay_form_outside_art_7_always_goes_to_the_head() -> None:
    unlisted = {"pay_form": "other", "pay_form_unlisted": {**FIELD_REASON, "name": "项目分红 project dividend"}}
    application = TalentPolicyApplication.model_validate(talent(package=unlisted))
    assert application.package.pay_form is PayForm.other
    assert talent_package_needs_head_approval(application.model_dump(mode="json"))


@pytest_asyncio.fixture
async def http(api: LiveApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        yield client


def start_body(application: dict[str, Any]) -> dict[str, Any]:
    return {
        "business_key": f"TAL-{uuid.uuid4().hex[:10]}",
        "title": "一人一策 unlisted field",
        "applicant": {"id": "ent-001", "name": "Industry bureau", "unit": "enterprise", "roles": ["applicant"]},
        "application": application,
    }


async def test_over_http_an_unlisted_field_is_422_without_a_reason_and_recorded_with_one(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool
) -> None:
    service = api.headers("service")
    refused = await http.post("/v1/cases/talent-policy", json=start_body(talent(field="other")), headers=service)
    body = problem(refused, 422, "VALIDATION_ERROR")
    assert {error["field"] for error in body["errors"]} == {"application.field_unlisted"}

    accepted = await http.post(
        "/v1/cases/talent-policy", json=start_body(talent(field="other", field_unlisted=FIELD_REASON)), headers=service
    )
    assert accepted.status_code == 201, accepted.text
    case_id = accepted.json()["case_id"]
    for _ in range(200):  # recorded by the workflow's first activity, just after the start is accepted
        started = await events(db_pool, case_id, "case.started")
        if started:
            break
        await asyncio.sleep(0.05)
    [data] = [row["payload"]["data"] for row in started]
    assert data["field"] == "other" and data["field_unlisted"] == FIELD_REASON
