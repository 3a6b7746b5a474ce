"""The Committee's catalogue of functions in force on a date (Art. 3, Art. 4), folded from the audit log.

Nothing keeps the catalogue in a table that could be edited: it is what the recorded events of the
power-adjustment cases, and of their adjustment child cases, say, folded by the pure functions here.

- A catalogue case's ``case.published`` puts its functions in force from the published ``effective_date``
  (Art. 4: approved by statutory procedure, then published). Notices recorded before the
  ``publication-deadline-local-date-and-republication`` patch state the decision's UTC date; the catalogue
  reports the date each notice published.
- A later ``case.published`` of the same case carrying an ``adjustment`` (Art. 3, 动态调整: an adjustment
  child case approved) restates the functions from the day of that republication (never before the
  catalogue's own effective date), with the child case, its decision, conditions and legal basis.
- ``case.withdrawn`` or ``case.cancelled`` of a published catalogue ends its functions from that day on; a
  case withdrawn before publication never appears. Events a ``case.reset`` superseded count for nothing.
- Two catalogues listing the same code: the statement that took effect later holds (then the later
  publication); when that catalogue ends, the earlier one's statement holds again.

Days are the zone's local dates (UTC+8): a function is in force on day D when its statement took effect on or
before D and its catalogue was not ended on or before D.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from typing import Any

import asyncpg

from approvals.event_wording import CHINA_TIME
from approvals.storage.queries import catalogue_events
from schemas.catalogue import (
    AdjustmentRef,
    Catalogue,
    CatalogueAnswer,
    CatalogueChange,
    CatalogueDiff,
    CatalogueFunction,
    PublicationRef,
)
from schemas.events import DomainEvent, EventType, in_force
from workflows.power_adjustment import ADJUSTMENT_PROCESS, PROCESS

CATALOGUE_PROCESSES = (PROCESS, ADJUSTMENT_PROCESS)
ENDING_EVENTS = (EventType.case_withdrawn, EventType.case_cancelled)


@dataclass
class Statement:
    """One publication of a catalogue case: its functions as they stand from ``since`` until ``until``."""

    since: date
    functions: dict[str, CatalogueFunction]
    until: date | None = None
    ended_by: str | None = None

    def in_force(self, day: date) -> bool:
        return self.since <= day and (self.until is None or day < self.until)


def local_date(at: datetime) -> date:
    return at.astimezone(CHINA_TIME).date()


def statements(events: Iterable[DomainEvent]) -> list[Statement]:
    """Every statement of every catalogue case, in the order the cases recorded them."""
    by_case = {case_id: in_force(group) for case_id, group in groupby(events, key=lambda e: e.case_id)}
    decisions = {
        case_id: next((e for e in reversed(case_events) if e.type == EventType.case_decided), None)
        for case_id, case_events in by_case.items()
    }
    found: list[Statement] = []
    for case_events in by_case.values():
        found.extend(_case_statements(case_events, decisions))
    return found


def _case_statements(events: Sequence[DomainEvent], decisions: dict[str, DomainEvent | None]) -> list[Statement]:
    """The statements of one case: each publication of a catalogue, the last one ended by a withdrawal."""
    made: list[Statement] = []
    for event in events:
        if event.type == EventType.case_published and event.payload.get("process") == PROCESS:
            statement = _statement(event, decisions, made[0].since if made else None)
            if made and made[-1].until is None:
                made[-1].until = max(statement.since, made[-1].since)
            made.append(statement)
        elif event.type in ENDING_EVENTS and made and made[-1].until is None:
            made[-1].until, made[-1].ended_by = max(local_date(event.at), made[-1].since), event.case_id
    return made


def _statement(event: DomainEvent, decisions: dict[str, DomainEvent | None], first: date | None) -> Statement:
    subject: dict[str, Any] = event.payload.get("subject", {})
    adjustment = _adjustment(subject.get("adjustment"), decisions)
    since = date.fromisoformat(subject["effective_date"])
    if adjustment is not None and first is not None:
        since = max(local_date(event.at), first)
    publication = PublicationRef(
        case_id=event.case_id, seq=event.seq, hash=event.hash, at=event.at, legal_basis=event.legal_basis
    )
    functions = {
        item["code"]: CatalogueFunction(
            code=item["code"],
            name=item["name"],
            kind=item["kind"],
            mode=item["mode"],
            granting_authority=item["granting_authority"],
            legal_basis=item["legal_source"],
            effective_date=since,
            case_id=event.case_id,
            put_there_by=adjustment.child_case_id if adjustment else event.case_id,
            publication=publication,
            adjustment=adjustment,
        )
        for item in subject.get("items", [])
    }
    return Statement(since=since, functions=functions)


def _adjustment(recorded: dict[str, Any] | None, decisions: dict[str, DomainEvent | None]) -> AdjustmentRef | None:
    if recorded is None:
        return None
    decided = decisions.get(recorded["child_case_id"])
    return AdjustmentRef(
        child_case_id=recorded["child_case_id"],
        review_round=recorded.get("review_round"),
        decision=recorded["decision"],
        conditions=recorded.get("conditions", []),
        decided_at=decided.at if decided else None,
        legal_basis=decided.legal_basis if decided else None,
    )


def _holding(found: Sequence[Statement], day: date) -> dict[str, tuple[CatalogueFunction, Statement]]:
    """Per code, the function in force on ``day`` and the statement it comes from."""
    holding: dict[str, tuple[CatalogueFunction, Statement]] = {}
    for statement in found:
        if not statement.in_force(day):
            continue
        for code, function in statement.functions.items():
            held = holding.get(code)
            if held is None or (function.effective_date, function.publication.at) > (
                held[0].effective_date,
                held[0].publication.at,
            ):
                holding[code] = (function, statement)
    return holding


def catalogue_on(found: Sequence[Statement], day: date) -> Catalogue:
    holding = _holding(found, day)
    return Catalogue(as_of=day, functions=[holding[code][0] for code in sorted(holding)])


def difference(found: Sequence[Statement], one: date, other: date) -> CatalogueDiff:
    """What changed from the earlier of the two days to the later, and by which case."""
    start, end = sorted((one, other))
    before, after = _holding(found, start), _holding(found, end)
    added, withdrawn, changed = [], [], []
    for code in sorted(before.keys() | after.keys()):
        was, now = before.get(code), after.get(code)
        if was is None and now is not None:
            added.append(CatalogueChange(code=code, before=None, after=now[0], by_case_id=now[0].put_there_by))
        elif was is not None and now is None:
            by = was[1].ended_by or was[0].case_id
            withdrawn.append(CatalogueChange(code=code, before=was[0], after=None, by_case_id=by))
        elif was is not None and now is not None and was[0] != now[0]:
            changed.append(CatalogueChange(code=code, before=was[0], after=now[0], by_case_id=now[0].put_there_by))
    return CatalogueDiff(from_date=start, to_date=end, added=added, withdrawn=withdrawn, changed=changed)


def fold_catalogue(events: Iterable[DomainEvent], as_of: date, compare_to: date | None = None) -> CatalogueAnswer:
    """The catalogue in force on ``as_of`` and, with ``compare_to``, what changed between the two days:
    a pure fold over the catalogue cases' events (any order of cases; each case's events by sequence)."""
    found = statements(sorted(events, key=lambda e: (e.case_id, e.seq)))
    return CatalogueAnswer(
        catalogue=catalogue_on(found, as_of),
        difference=None if compare_to is None else difference(found, as_of, compare_to),
    )


async def read_catalogue(pool: asyncpg.Pool, as_of: date, compare_to: date | None = None) -> CatalogueAnswer:
    """:func:`fold_catalogue` over the audit log, read in one query."""
    return fold_catalogue(await catalogue_events(pool, CATALOGUE_PROCESSES), as_of, compare_to)
