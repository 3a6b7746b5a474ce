"""A one-case-one-policy talent application (一事一议、一人一策, Art. 22, with the pay forms of Art. 7).

Art. 22 lets the Committee decide case by case, with a policy for each person, for urgently needed
high-level talents, high-skill leading talents and special talents in key industries, foreign trade and
foreign-affairs translation. Art. 7 names the pay forms: part-time with pay (兼职兼薪), annual salary (年薪制)
and agreement wage (协议工资制), with posts filled by appointment (岗位聘任制).

Validated when the case starts, so a bad application is refused with the field at fault before any
workflow exists. The application becomes case data, which is hashed into the immutable audit record: an
identity number therefore travels only masked or as a reference to the HR file, never in full, and
documents travel by reference (URI + SHA-256 + size), never inline.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.case import AttachmentRef
from schemas.committee import committee_from_recorded_input
from schemas.text import CleanModel

MAX_ANNUAL_PAY_CNY = Decimal("5000000")
"""Upper bound of the annual amount of any pay form. A larger figure is far more likely a unit error (fen
typed for yuan) than a package of the zone; a real exception is entered through a separate decision."""

MIN_FULL_TIME_ANNUAL_PAY_CNY = Decimal("30000")
"""Lower bound of an annual salary or agreement wage, which pay a full-time post for a year: a smaller
figure is almost always a monthly amount typed as annual. Part-time pay only has to be positive."""

MAX_TERM_YEARS = 5
"""The longest term of one policy; it is reviewed every year of it (annual reviews, Art. 21)."""


class TalentCategory(StrEnum):
    """The three kinds of talent Art. 22 names."""

    high_level = "high_level"  # 高层次人才
    high_skill_leading = "high_skill_leading"  # 高技能领军人才
    special = "special"  # 特殊人才


class TalentField(StrEnum):
    """The fields Art. 22 names; its list ends in 等, so another field is ``other``, named and reasoned in
    ``field_unlisted``."""

    key_industry = "key_industry"  # 重点产业
    foreign_trade = "foreign_trade"  # 对外贸易
    foreign_affairs_translation = "foreign_affairs_translation"  # 外事翻译
    other = "other"  # 等: see ``Unlisted``


class PayForm(StrEnum):
    """The distribution forms of Art. 7."""

    part_time_with_pay = "part_time_with_pay"  # 兼职兼薪
    annual_salary = "annual_salary"  # 年薪制
    agreement_wage = "agreement_wage"  # 协议工资制
    other = "other"  # 等多种分配方式: see ``Unlisted``


class MeasureKind(StrEnum):
    housing = "housing"  # 住房保障 / 安家补贴
    research_funds = "research_funds"  # 科研经费
    settlement_allowance = "settlement_allowance"  # 安家费
    family = "family"  # 配偶就业、子女入学
    training = "training"  # 培养、进修
    other = "other"


class DocumentKind(StrEnum):
    cv = "cv"  # 个人简历
    qualification = "qualification"  # 学历、职称、技能等级证书
    achievements = "achievements"  # 业绩成果
    recommendation = "recommendation"  # 推荐意见
    employer_consent = "employer_consent"  # 现工作单位同意兼职的证明 (part-time with pay)
    draft_agreement = "draft_agreement"  # 聘用协议草案
    other = "other"


MASKED_ID = re.compile(r"^[0-9A-Z]{1,6}\*{4,}[0-9A-Z]{1,4}$")
"""A masked identity-document number: at most 6 characters visible at the start and 4 at the end."""

PERSON_REF = re.compile(r"^[a-z][a-z0-9+.-]{0,31}:[A-Za-z0-9._:/-]{1,200}$")
"""A reference to the person's HR file, e.g. ``hr-file:TAL-2026-0007``."""

UserId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")]


class Unlisted(CleanModel):
    """A field (Art. 22) or pay form (Art. 7) outside those the law lists: both lists end in 等 ("and others"),
    so one is allowed when the proposing unit names it and states why; the reason is recorded in the case."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        min_length=1, max_length=200, description="The field or pay form, e.g. 跨境电商 cross-border e-commerce."
    )
    reason: str = Field(
        min_length=10, max_length=4000, description="Why it is needed and comparable to the forms the law lists."
    )


def unlisted_stated(unlisted: Unlisted | None, chosen: StrEnum | None, what: str) -> Unlisted | None:
    """``unlisted`` is given exactly when ``chosen`` is ``other`` (``chosen`` None: it failed validation itself)."""
    if chosen is None:
        return unlisted
    if chosen.value == "other" and unlisted is None:
        raise ValueError(
            f"{what} is other (the law's list ends in 等): name it and state why in name and reason "
            f"(a reason of at least 10 characters)"
        )
    if chosen.value != "other" and unlisted is not None:
        raise ValueError(f"{what} is {chosen.value}, which the law lists: leave this out or choose other")
    return unlisted


class Employer(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    unified_social_credit_code: str | None = Field(None, max_length=18)


class Candidate(CleanModel):
    """The person the policy is for. Personal data is kept to what the decision needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    id_number_masked: str | None = Field(
        None, description="Identity-document number, masked: e.g. 652701********1234 (never in full)."
    )
    person_ref: str | None = Field(None, description="Reference to the HR file instead, e.g. hr-file:TAL-2026-0007.")
    current_employer: Employer | None = Field(None, description="None: not employed elsewhere.")
    portal_user_id: UserId | None = Field(
        None, description="The candidate's portal account, to which the decision is notified; None: through HR."
    )

    @field_validator("id_number_masked")
    @classmethod
    def _masked(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().upper()
        if not MASKED_ID.match(value):
            if re.fullmatch(r"[0-9]{17}[0-9X]|[0-9]{15}", value):
                raise ValueError(
                    "this is a full identity number: the case record is permanent, so send it masked "
                    "(e.g. 652701********1234) or give person_ref to the HR file instead"
                )
            raise ValueError(
                "a masked identity number shows at most 6 characters at the start and 4 at the end, the rest as * "
                "(e.g. 652701********1234)"
            )
        return value

    @field_validator("person_ref")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is not None and not PERSON_REF.match(value):
            raise ValueError("a person reference looks like scheme:identifier, e.g. hr-file:TAL-2026-0007")
        return value

    @model_validator(mode="after")
    def _identified(self) -> Candidate:
        if self.id_number_masked is None and self.person_ref is None:
            raise ValueError("identify the candidate by id_number_masked or person_ref (or both)")
        return self


class Post(CleanModel):
    """The post the candidate is appointed to (岗位聘任制, Art. 7)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    unit: str = Field(min_length=1, max_length=200, description="The department or company of the post.")
    duties: str = Field("", max_length=4000)


class SupportMeasure(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: MeasureKind
    description: str = Field(min_length=1, max_length=1000)
    value_cny: Decimal | None = Field(None, gt=0, le=MAX_ANNUAL_PAY_CNY, max_digits=12, decimal_places=2)


class EvaluationTarget(CleanModel):
    """What the annual review checks. The title is the criterion the reviewer gives a finding on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(min_length=1, max_length=120)
    measure: str = Field("", max_length=1000, description="How it is measured, e.g. the figure to reach.")


class PolicyPackage(CleanModel):
    """The policy for this one person (一人一策)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pay_form: PayForm
    pay_form_unlisted: Unlisted | None = Field(
        None, validate_default=True, description="With pay_form other: the pay form and why (Art. 7 ends in 等)."
    )
    annual_amount_cny: Decimal = Field(
        gt=0, le=MAX_ANNUAL_PAY_CNY, max_digits=12, decimal_places=2, description="CNY per year."
    )
    term_years: int = Field(ge=1, le=MAX_TERM_YEARS)
    measures: list[SupportMeasure] = Field(default_factory=list, max_length=10)
    evaluation_targets: list[EvaluationTarget] = Field(min_length=1, max_length=10)

    @field_validator("pay_form_unlisted")
    @classmethod
    def _pay_form_stated(cls, unlisted: Unlisted | None, info: ValidationInfo) -> Unlisted | None:
        return unlisted_stated(unlisted, info.data.get("pay_form"), "pay_form")

    @model_validator(mode="after")
    def _consistent(self) -> PolicyPackage:
        full_time = self.pay_form in (PayForm.annual_salary, PayForm.agreement_wage)
        if full_time and self.annual_amount_cny < MIN_FULL_TIME_ANNUAL_PAY_CNY:
            raise ValueError(
                f"an {self.pay_form.value} of {self.annual_amount_cny} CNY a year is below "
                f"{MIN_FULL_TIME_ANNUAL_PAY_CNY}: give the amount per year, not per month"
            )
        titles = [target.title for target in self.evaluation_targets]
        repeated = sorted({title for title in titles if titles.count(title) > 1})
        if repeated:
            raise ValueError(f"evaluation target titles must differ (each is reviewed on its own): {repeated}")
        return self


class TalentDocument(AttachmentRef):
    kind: DocumentKind


EXAMPLE_APPLICATION: dict[str, object] = {
    "candidate": {
        "name": "Aliya Nurlan",
        "id_number_masked": "652701********1234",
        "person_ref": "hr-file:TAL-2026-0007",
        "current_employer": {"name": "Xinjiang University"},
        "portal_user_id": "talent-aliya",
    },
    "category": "high_level",
    "field": "key_industry",
    "urgency": "The zone's copper-concentrate processing line (Art. 12) has no metallurgist able to lead its pilot.",
    "post": {"title": "Chief metallurgist", "unit": "Industry development bureau", "duties": "Lead the pilot line."},
    "package": {
        "pay_form": "agreement_wage",
        "annual_amount_cny": "480000.00",
        "term_years": 3,
        "measures": [{"kind": "housing", "description": "Talent apartment, 90 m2", "value_cny": "36000.00"}],
        "evaluation_targets": [
            {"title": "Pilot line running", "measure": "The bonded processing pilot line produces by year 2."},
            {"title": "Team trained", "measure": "Five local engineers qualified per year."},
        ],
    },
    "documents": [
        {"uri": "s3://hr/TAL-2026-0007/cv.pdf", "sha256": "b" * 64, "size": 204800, "name": "简历", "kind": "cv"}
    ],
}
"""A valid application: shown in the OpenAPI schema, used by `approvals demo` and the tests."""


class TalentPolicyApplication(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": [EXAMPLE_APPLICATION]})

    candidate: Candidate
    category: TalentCategory
    field: TalentField = Field(description="Art. 22 names these fields; other needs field_unlisted.")
    field_unlisted: Unlisted | None = Field(
        None, validate_default=True, description="With field other: the field and why (Art. 22 ends in 等)."
    )
    urgency: str = Field(min_length=10, max_length=4000, description="Why the talent is urgently needed (急需).")
    post: Post
    package: PolicyPackage
    committee: list[UserId] | None = Field(
        None,
        description="Not accepted: the organ's roster (COMMITTEE_ROSTERS) seats the committee. Read only from "
        "cases started before, whose proposing unit named it.",
    )
    documents: list[TalentDocument] = Field(default_factory=list, max_length=100)

    @field_validator("field_unlisted")
    @classmethod
    def _field_stated(cls, unlisted: Unlisted | None, info: ValidationInfo) -> Unlisted | None:
        return unlisted_stated(unlisted, info.data.get("field"), "field")

    @field_validator("committee")
    @classmethod
    def _roster_decides(cls, members: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return committee_from_recorded_input(members, info.context)

    @model_validator(mode="after")
    def _consent_for_part_time(self) -> TalentPolicyApplication:
        if self.package.pay_form is PayForm.part_time_with_pay:
            if self.candidate.current_employer is None:
                raise ValueError("part_time_with_pay (兼职兼薪) needs the candidate's current_employer")
            if not any(document.kind is DocumentKind.employer_consent for document in self.documents):
                raise ValueError(
                    "part_time_with_pay (兼职兼薪) needs a document of kind employer_consent: the consent of "
                    f"{self.candidate.current_employer.name}, the candidate's current employer"
                )
        return self

    @property
    def priority(self) -> bool:
        """Flagged in every inbox: Art. 22 applies only to urgently needed (急需) talent."""
        return True
