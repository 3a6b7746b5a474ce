"""The notice of remedies every adverse decision carries (Administrative Licensing Law Art. 38): the applicant may
apply for administrative reconsideration (行政复议) or bring an administrative suit (行政诉讼), each within its
period and to its organ.

The periods are the laws' (《中华人民共和国行政复议法》 Art. 20: 60 days; 《中华人民共和国行政诉讼法》 Art. 46: 6
months, each from the day the applicant knew or should have known of the decision). The organs are data, set per
process: the defaults name them by their relation to the deciding organ, not by name, because which people's
government hears a reconsideration depends on where the deciding organ stands (行政复议法 Art. 24: a department's
decision goes to the people's government at its level, a dispatched organ's to the government that set it up),
and which court hears a suit on the court's jurisdiction (行政诉讼法 Art. 18). A deployment names its own.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field

from schemas.text import CleanModel


class RemedyKind(StrEnum):
    reconsideration = "administrative_reconsideration"  # 行政复议
    suit = "administrative_suit"  # 行政诉讼


class PeriodUnit(StrEnum):
    days = "days"  # 日 (calendar days: the reconsideration law does not count in working days)
    months = "months"  # 个月


class Remedy(CleanModel):
    """One remedy: where the applicant may turn, and within how long."""

    model_config = ConfigDict(frozen=True)

    kind: RemedyKind
    period: int = Field(ge=1, le=120, description="How many `unit`s from the day the applicant learns of it.")
    unit: PeriodUnit
    organ: str = Field(min_length=1, max_length=200, description="Where to apply, in Chinese.")
    organ_en: str = Field(min_length=1, max_length=300, description="The same in English.")
    legal_basis: str = Field(min_length=1, max_length=200)


RECONSIDERATION = Remedy(
    kind=RemedyKind.reconsideration,
    period=60,
    unit=PeriodUnit.days,
    organ="作出决定的行政机关的上一级人民政府",
    organ_en="the people's government one level above the deciding organ",
    legal_basis="Administrative Reconsideration Law Art. 20",
)
"""A neutral default: the organ that actually hears it depends on the deciding organ (Art. 24); set it per process."""

SUIT = Remedy(
    kind=RemedyKind.suit,
    period=6,
    unit=PeriodUnit.months,
    organ="作出决定的行政机关所在地有管辖权的人民法院",
    organ_en="the competent people's court where the deciding organ is located",
    legal_basis="Administrative Litigation Law Art. 46",
)


class Remedies(CleanModel):
    """What an adverse decision tells the applicant besides its reasons, and the article that requires it."""

    model_config = ConfigDict(frozen=True)

    legal_basis: str = Field("Administrative Licensing Law Art. 38", min_length=1, max_length=200)
    options: tuple[Remedy, ...] = Field((RECONSIDERATION, SUIT), min_length=1, max_length=8)
