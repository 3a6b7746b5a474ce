"""What office staff search cases by (``GET /v1/cases``, ``approvals cases``): every filter given must hold.

Text searches are substrings of at least two characters (Chinese included): the index finds a case through
the two-character pieces of the text (migration 0012), so a one-character search could only read the table.
Dates are the zone's local dates (UTC+8), both ends included.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from schemas.text import CleanModel

SEARCH_TEXT_MIN = 2
Substring = Annotated[
    str | None,
    Field(
        min_length=SEARCH_TEXT_MIN,
        max_length=200,
        pattern=r"^[^\x00-\x1f]+$",
        description="A substring of at least two characters, Chinese included; case-insensitive for Latin letters.",
    ),
]


class CaseSort(StrEnum):
    """The order of the list; ``-`` first: newest (or last) first. Ties are broken by case id, in the same
    direction; cases not decided come last when sorting by decision."""

    updated = "-updated_at"
    updated_oldest = "updated_at"
    received = "-started_at"
    received_oldest = "started_at"
    decided = "-decided_at"
    decided_oldest = "decided_at"
    business_key = "business_key"
    business_key_descending = "-business_key"


class CaseSearch(CleanModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    process: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{0,63}$")
    status: str | None = Field(None, pattern=r"^[a-z_]{1,40}$", description="in_review, approved, rejected, ...")
    stage: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,63}$", description="A stage the case is at now.")
    business_key: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", description="Exactly.")
    business_key_prefix: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", description="Business keys starting with it."
    )
    applicant_id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
    applicant_name: Substring = Field(
        None, description="A substring of the applying party's name (the enterprise or unit, else the applicant)."
    )
    credit_code: str | None = Field(
        None,
        pattern=r"^[0-9A-HJ-NP-RTUWXYa-hj-np-rtuwxy]{18}$",
        description="The unified social credit code (统一社会信用代码), 18 characters; case-insensitive.",
    )
    title: Substring = Field(None, description="A substring of the case title.")
    unit: str | None = Field(None, min_length=1, max_length=200, description="The applicant's unit, exactly.")
    received_from: date | None = Field(None, description="Received (started) on or after this local date.")
    received_to: date | None = Field(None, description="Received on or before this local date.")
    decided_from: date | None = Field(None, description="Decided on or after this local date.")
    decided_to: date | None = Field(None, description="Decided on or before this local date.")
    sort: CaseSort = Field(
        CaseSort.received, description="`-started_at` (latest received first, the default), `-updated_at`, ..."
    )
    limit: int = Field(50, ge=1, le=200, description="Page size.")
    offset: int = Field(0, ge=0, le=1_000_000, description="Cases to skip.")

    @field_validator("received_to", "decided_to")
    @classmethod
    def _after_its_start(cls, last: date | None, info: ValidationInfo) -> date | None:
        """A range that ends before it starts is refused naming its end."""
        start = info.field_name.replace("_to", "_from") if info.field_name else ""
        first = info.data.get(start)
        if first and last and first > last:
            raise ValueError(f"{start} {first} is after {info.field_name} {last}")
        return last
