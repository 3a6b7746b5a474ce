"""Committees as the organ appoints them (COMMITTEE_ROSTERS), and who one case's committee seats.

A committee that votes on a case (容错认定委员会 for Art. 25, the talent committee for Art. 22) is the organ's,
appointed by its own act: the applying unit never names who decides on its own application. The roster is
configuration; when a case starts, the engine seats from it everyone who is not concerned by the case
(回避) and records in the case data which roster seated them, at which revision, with its digest, so the
record proves the committee was the organ's and not the applicant's choice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.events import canonical_json
from schemas.text import CleanModel

M = TypeVar("M", bound=BaseModel)

UserId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")]

MIN_SEATED = 3
"""Fewest members a vote is held with: two thirds of fewer than three is not a collective decision."""

SEAT_KEY = "committee_roster"
"""Case data key of the seat (the rest of the data is the application)."""


class CommitteeRoster(CleanModel):
    """One committee as appointed: its chair, its members, and the act of appointment it follows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    revision: str = Field(
        min_length=1, max_length=200, description="The appointment the roster follows, e.g. 阿综保管发〔2026〕3号."
    )
    chair: UserId = Field(description="Decides after the vote (主任).")
    members: list[UserId] = Field(min_length=MIN_SEATED, max_length=25, description="Deliberate and vote.")

    @field_validator("members")
    @classmethod
    def _distinct(cls, members: list[str]) -> list[str]:
        repeated = sorted({member for member in members if members.count(member) > 1})
        if repeated:
            raise ValueError(f"members {repeated} are listed more than once (one member, one vote)")
        return members

    def digest(self) -> str:
        """SHA-256 of the roster as canonical JSON: which exact roster seated a committee."""
        return hashlib.sha256(canonical_json(self.model_dump(mode="json"))).hexdigest()


class CommitteeSeat(CleanModel):
    """Who sits on one case's committee, as its data records it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(description="The roster's key in COMMITTEE_ROSTERS, e.g. `error-tolerance`.")
    revision: str
    digest: str = Field(description="SHA-256 of the roster that seated the committee.")
    chair: UserId
    members: list[UserId]
    recused: list[UserId] = Field(description="Roster members not seated: concerned by the case (回避).")


RECORDED_INPUT = "recorded_input"
"""Validation context flag: the data is a recorded case's, decoded as it was started, not a new request."""

APPLICANT_NAMES_NO_COMMITTEE = (
    "the organ's roster seats the committee (COMMITTEE_ROSTERS), not the applicant: leave committee out"
)


def committee_from_recorded_input(members: list[str] | None, context: object) -> list[str] | None:
    """``committee`` of an application: refused in a new request; kept when decoding a case recorded before
    the roster seated committees, whose applicant named it (its stages already hold those members)."""
    recorded = isinstance(context, dict) and context.get(RECORDED_INPUT, False)
    if members is not None and not recorded:
        raise ValueError(APPLICANT_NAMES_NO_COMMITTEE)
    return members


def recorded_application(model: type[M], data: Mapping[str, Any], *case_keys: str) -> M:
    """The application in a case's data: without the seat (and the process's own ``case_keys``), decoded as
    recorded input, so a case started when applicants still named the committee decodes as it was."""
    application = {key: value for key, value in data.items() if key not in (SEAT_KEY, *case_keys)}
    return model.model_validate(application, context={RECORDED_INPUT: True})


class RosterError(ValueError):
    """No committee can be seated: the roster is missing, or too many of it are concerned by the case."""


def seat_committee(kind: str, rosters: dict[str, CommitteeRoster], concerned: Iterable[str]) -> CommitteeSeat:
    """The committee of one case: the roster of ``kind`` without the persons concerned (and the applicant)."""
    roster = rosters.get(kind)
    if roster is None:
        raise RosterError(
            f"no committee roster {kind!r} is configured (COMMITTEE_ROSTERS): the organ appoints the committee, "
            "so a case that needs one cannot start without it"
        )
    excluded = set(concerned)
    if roster.chair in excluded:
        raise RosterError(
            f"the chair {roster.chair} of roster {kind!r} is concerned by this case and must recuse (回避): "
            "the organ names another chair in COMMITTEE_ROSTERS"
        )
    seated = [member for member in roster.members if member not in excluded]
    if len(seated) < MIN_SEATED:
        raise RosterError(
            f"roster {kind!r} leaves {len(seated)} members after recusal (回避), fewer than {MIN_SEATED}: the organ "
            "adds members in COMMITTEE_ROSTERS"
        )
    return CommitteeSeat(
        kind=kind,
        revision=roster.revision,
        digest=roster.digest(),
        chair=roster.chair,
        members=seated,
        recused=[member for member in roster.members if member in excluded],
    )
