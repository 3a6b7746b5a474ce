"""The Committee's catalogue of functions in force on a date (Art. 3, Art. 4): what ``approvals.audit.catalogue``
folds from the recorded events of the power-adjustment cases, and what the API and the CLI show.

Dates are the zone's local dates (UTC+8). Here, below the audit, so the API and the CLI can use the models.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class PublicationRef(BaseModel):
    """The recorded ``case.published`` event that put a function in the catalogue as it stands."""

    case_id: str
    seq: int
    hash: str = Field(description="The event's hash: the audit log proves the publication with it.")
    at: datetime = Field(description="When the notice was recorded (UTC).")
    legal_basis: str


class AdjustmentRef(BaseModel):
    """The adjustment child case (Art. 3, 动态调整) whose decision the publication carries."""

    child_case_id: str
    review_round: int | None = None
    decision: str
    conditions: list[str] = Field(default_factory=list, description="The new terms the adjustment set.")
    decided_at: datetime | None = Field(None, description="The child case's `case.decided` (UTC), when recorded.")
    legal_basis: str | None = Field(None, description="The legal basis of the child case's decision.")


class CatalogueFunction(BaseModel):
    """One management or service function in force, as its last publication states it."""

    code: str
    name: str
    kind: str = Field(description="licensing, penalty, inspection or other.")
    mode: str = Field(description="`authorize` (授权, in the Committee's name) or `entrust` (委托).")
    granting_authority: str = Field(description="prefecture_government or alashankou_city_government.")
    legal_basis: str = Field(description="The law and article the power comes from, as published.")
    effective_date: date = Field(
        description="Local date (UTC+8) from which the function is in force as stated here: the catalogue's "
        "published effective date, or for an adjusted catalogue the day of its republication."
    )
    case_id: str = Field(description="The power-adjustment case whose catalogue holds the function.")
    put_there_by: str = Field(description="The case that made this statement: the adjustment child case or `case_id`.")
    publication: PublicationRef
    adjustment: AdjustmentRef | None = None


class Catalogue(BaseModel):
    as_of: date = Field(description="Local date (UTC+8).")
    functions: list[CatalogueFunction] = Field(description="In force that day, by code.")


class CatalogueChange(BaseModel):
    code: str
    before: CatalogueFunction | None = Field(description="As it stood on `from_date` (none: added).")
    after: CatalogueFunction | None = Field(description="As it stands on `to_date` (none: withdrawn).")
    by_case_id: str = Field(description="The case whose record made the change.")


class CatalogueDiff(BaseModel):
    """What changed between two local dates, from the earlier to the later."""

    from_date: date
    to_date: date
    added: list[CatalogueChange]
    withdrawn: list[CatalogueChange]
    changed: list[CatalogueChange]


class CatalogueAnswer(BaseModel):
    """``GET /v1/catalogue``: the catalogue on ``as_of``, and with ``compare_to`` the difference."""

    catalogue: Catalogue
    difference: CatalogueDiff | None = None
