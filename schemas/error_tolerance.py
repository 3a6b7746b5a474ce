"""An application for error tolerance (容错, Art. 25): exemption from or reduction of liability.

A unit whose reform or innovation in the zone failed or missed its expected goal applies, for itself and the
persons concerned, in a liability proceeding that is under way. Validated when the case starts, so a bad
application is refused with the field at fault before any workflow exists. Documents travel by reference
(URI + SHA-256 + size), never inline.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.case import AttachmentRef
from schemas.committee import committee_from_recorded_input
from schemas.project import Contact, validate_uscc
from schemas.text import CleanModel

UserId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")]

CONDITIONS: tuple[tuple[str, str], ...] = (
    (
        "reform_direction",
        "符合国家和自治区确定的改革方向 Conforms to the reform direction set by the State and the Region",
    ),
    ("lawful_procedure", "决策程序符合法律法规规定 The decision procedure complied with laws and regulations"),
    ("no_dereliction", "未失职渎职 No dereliction of duty"),
    ("no_improper_benefit", "未牟取不正当利益 No improper benefit sought"),
    (
        "no_public_harm",
        "未损害国家利益、公共安全和社会公共利益 No harm to the national, public-safety or social interest",
    ),
)
"""Art. 25's five conditions, all of which must hold: (criterion id, what it means).

All five are read as required although the Chinese text joins the last with 或者 (…未牟取不正当利益，或者未损害
国家利益…): each condition is a negative (没有/未…) in one list of what a tolerated error must be free of, and
或者 there joins the items of that list rather than offering alternatives. Read as "any one suffices", a reform
that harmed the public interest would be excused merely because nobody took a bribe, which defeats the purpose
of 容错 (honest mistakes in a lawful reform, the 三个区分开来 policy it implements); exemption from liability is
an exception and is read narrowly. The zone's English summary of the regulation also says "if ALL of these
hold". So the investigation stage refuses to approve while any finding says a condition does not hold."""

CONDITION_IDS: tuple[str, ...] = tuple(criterion for criterion, _ in CONDITIONS)

RECTIFICATION_CRITERIA: tuple[str, ...] = ("rectification_completed", "completed_by_committee_deadline")
"""What the rectification check finds on: the measures were carried out, and by the deadline the committee set
at its decision (整改期限): prompt (及时) is the committee's bound, never only the date the applicant promised."""


class Determination(StrEnum):
    """What the case decided, in the words of Art. 25."""

    exemption = "exemption"  # 免责
    reduced_liability = "reduced_liability"  # 减轻责任
    not_applicable = "not_applicable"  # 不予容错: a condition does not hold, or the committee declined
    not_accepted = "not_accepted"  # 不予受理: the application was refused at acceptance


class RectificationEffect(StrEnum):
    """Art. 25, second sentence: prompt rectification protects assessment, awards, promotion, commendation."""

    no_effect = "no_effect_on_assessment_awards_promotion_commendation"
    protection_not_applicable = "art25_second_sentence_protection_not_applicable"


EFFECT_TEXT = {
    RectificationEffect.no_effect: (
        "及时予以整改纠正的，在绩效考核、评先评优、提拔晋升和表彰奖励等方面不受影响 "
        "Rectified promptly: not affected in performance assessment, selection as advanced or excellent, "
        "promotion, commendation and rewards and the like (Art. 25)"
    ),
    RectificationEffect.protection_not_applicable: (
        "未及时予以整改纠正，第二十五条第二句的保护不适用 "
        "Not rectified promptly: the protection of Art. 25, second sentence, does not apply"
    ),
}
"""The notice in the law's words (Art. 25, second sentence)."""

EFFECT_TEXT_BEFORE_ART_25_WORDING = {
    **EFFECT_TEXT,
    RectificationEffect.no_effect: (
        "及时予以整改纠正，不影响绩效考核、评奖评优、晋职晋级和表彰奖励 "
        "Rectified promptly: no effect on performance assessment, awards, promotion or commendation (Art. 25)"
    ),
}
"""The paraphrase cases decided before patch ``art-25-decision-rules`` recorded (kept so they replay)."""


class DecisionProcedureStep(StrEnum):
    """The statutory steps of major administrative decision-making (重大行政决策程序暂行条例)."""

    public_participation = "public_participation"  # 公众参与
    expert_review = "expert_review"  # 专家论证
    risk_assessment = "risk_assessment"  # 风险评估
    legality_review = "legality_review"  # 合法性审查
    collective_decision = "collective_decision"  # 集体讨论决定


class ApplyingUnit(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    unified_social_credit_code: str | None = Field(
        None, description="The unit's 统一社会信用代码 (organs of state have one too), checked per GB 32100-2015."
    )
    contact: Contact

    @field_validator("unified_social_credit_code")
    @classmethod
    def _uscc(cls, code: str | None) -> str | None:
        return None if code is None else validate_uscc(code)


class PersonConcerned(CleanModel):
    """A person whose liability is at stake; may never act on the case (recusal, 回避)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UserId = Field(description="The person's user id in the engine.")
    name: str = Field(min_length=1, max_length=100)
    post: str = Field(min_length=1, max_length=200, description="职务 at the time of the measure.")
    unit: str = Field("", max_length=200, description="Empty: the applying unit.")


class ReformMeasure(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    description: str = Field(min_length=1, max_length=10_000)
    decision_date: date = Field(description="When the measure was decided.")
    procedure_followed: list[DecisionProcedureStep] = Field(
        min_length=1, max_length=5, description="The decision-making steps that were taken, each once."
    )
    procedure_description: str = Field(
        min_length=1, max_length=4000, description="How it was decided: meeting, minutes number, opinions obtained."
    )
    documents: list[AttachmentRef] = Field(
        min_length=1, max_length=100, description="The decision and its records, by reference (at least one)."
    )

    @field_validator("procedure_followed")
    @classmethod
    def _each_step_once(cls, steps: list[DecisionProcedureStep]) -> list[DecisionProcedureStep]:
        repeated = sorted({step.value for step in steps if steps.count(step) > 1})
        if repeated:
            raise ValueError(f"procedure steps {repeated} are listed more than once")
        return steps


class Shortfall(CleanModel):
    """What the measure was meant to achieve and how it failed or fell short."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expected_goal: str = Field(min_length=1, max_length=4000)
    what_happened: str = Field(min_length=1, max_length=10_000)
    identified_on: date = Field(description="When the failure or shortfall was identified.")


class LiabilityProceeding(CleanModel):
    """The accountability proceeding (问责) the application asks to be spared or lightened in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reference: str = Field(min_length=1, max_length=128, description="File number of the proceeding.")
    authority: str = Field(min_length=1, max_length=200, description="Who conducts it.")
    opened_on: date | None = None


class RectificationPlan(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    measures: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(min_length=1, max_length=50)
    promised_completion_date: date = Field(description="整改完成时限: checked after this day (Art. 25 promptness).")


EXAMPLE_APPLICATION: dict[str, object] = {
    "applying_unit": {
        "name": "阿拉山口综合保税区管委会 经济发展局",
        "unified_social_credit_code": None,
        "contact": {"name": "Liu Min", "phone": "+86 909 555 0201", "email": "liu.min@example.com"},
    },
    "persons_concerned": [
        {"id": "official-ma", "name": "马某", "post": "经济发展局局长 Director"},
        {"id": "official-he", "name": "何某", "post": "经济发展局副局长 Deputy director"},
    ],
    "measure": {
        "title": "Pilot of single-declaration bonded transit for rail freight",
        "description": "A pilot letting rail freight clear transit with one declaration at the zone gate.",
        "decision_date": "2026-02-10",
        "procedure_followed": ["expert_review", "risk_assessment", "legality_review", "collective_decision"],
        "procedure_description": "Decided at the 3rd director's meeting of 2026 (minutes 2026-03), after an expert "
        "hearing and a legality review by the legal office.",
        "documents": [{"uri": "s3://docs/minutes-2026-03.pdf", "sha256": "b" * 64, "size": 204800, "name": "会议纪要"}],
    },
    "shortfall": {
        "expected_goal": "Cut the average transit clearance time to 4 hours.",
        "what_happened": "The system integration failed; clearance times rose for six weeks and two shippers "
        "paid demurrage.",
        "identified_on": "2026-05-20",
    },
    "loss_cny": "350000.00",
    "liability_proceeding": {
        "reference": "阿纪问〔2026〕7号",
        "authority": "纪检监察工委",
        "opened_on": "2026-06-01",
    },
    "rectification_plan": {
        "measures": ["Roll back to the two-step declaration", "Compensate the demurrage through the insurer"],
        "promised_completion_date": "2026-09-30",
    },
}
"""A valid application: shown in the OpenAPI schema, used by `approvals demo` and the tests."""


class ErrorToleranceApplication(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": [EXAMPLE_APPLICATION]})

    applying_unit: ApplyingUnit
    persons_concerned: list[PersonConcerned] = Field(min_length=1, max_length=50)
    measure: ReformMeasure
    shortfall: Shortfall
    loss_cny: Decimal | None = Field(
        None, ge=0, max_digits=16, decimal_places=2, description="The loss caused, in CNY, when it can be stated."
    )
    liability_proceeding: LiabilityProceeding
    rectification_plan: RectificationPlan
    committee: list[UserId] | None = Field(
        None,
        description="Not accepted: the organ's roster (COMMITTEE_ROSTERS) seats the committee. Read only from "
        "cases started before, whose applicant named it.",
    )

    @field_validator("committee")
    @classmethod
    def _roster_decides(cls, members: list[str] | None, info: ValidationInfo) -> list[str] | None:
        return committee_from_recorded_input(members, info.context)

    @model_validator(mode="after")
    def _consistent(self) -> ErrorToleranceApplication:
        ids = [person.id for person in self.persons_concerned]
        repeated = sorted({person for person in ids if ids.count(person) > 1})
        if repeated:
            raise ValueError(f"persons_concerned lists {repeated} more than once")
        measure, shortfall, plan = self.measure, self.shortfall, self.rectification_plan
        if shortfall.identified_on < measure.decision_date:
            raise ValueError(
                f"shortfall.identified_on ({shortfall.identified_on}) is before the measure was decided "
                f"({measure.decision_date}): a measure cannot fall short before it exists"
            )
        if plan.promised_completion_date < shortfall.identified_on:
            raise ValueError(
                f"rectification_plan.promised_completion_date ({plan.promised_completion_date}) is before the "
                f"shortfall was identified ({shortfall.identified_on})"
            )
        opened = self.liability_proceeding.opened_on
        if opened is not None and opened < measure.decision_date:
            raise ValueError(
                f"liability_proceeding.opened_on ({opened}) is before the measure was decided ({measure.decision_date})"
            )
        return self

    @property
    def person_ids(self) -> list[str]:
        return [person.id for person in self.persons_concerned]


class RectificationOutcome(CleanModel):
    model_config = ConfigDict(frozen=True)

    promised_completion_date: date
    committee_deadline: date | None = Field(
        None,
        description="整改期限 the committee set at its decision; the check is due after it (None: decided before "
        "patch art-25-decision-rules, checked after the promised date).",
    )
    rectified_in_time: bool | None = Field(None, description="None until the rectification check has decided.")
    effect: RectificationEffect | None = None
    effect_text: str | None = None


class ErrorToleranceNotice(CleanModel):
    """The written outcome sent to the applying unit, the persons concerned and HR: the determination, the
    conditions of a reduction, and (after the follow-up) the effect of prompt rectification."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    title: str
    determination: Determination
    legal_basis: str = "Art. 25"
    conditions: list[str] = Field(default_factory=list, description="Conditions attached to reduced liability.")
    applying_unit: str
    persons_concerned: list[PersonConcerned]
    liability_proceeding: str = Field(description="Reference of the proceeding the determination applies to.")
    decided_at: str
    rectification: RectificationOutcome | None = Field(None, description="Only for exemption or reduced liability.")
