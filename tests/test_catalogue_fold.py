"""The catalogue in force on a date (Art. 3, Art. 4) as a pure fold over recorded events: effective dates,
republication after an adjustment child case, withdrawal, a case withdrawn before publication, resets, a code
listed by two catalogues, local dates (UTC+8), and the difference between two dates.
The same fold over a real stack's audit log: tests/test_catalogue.py."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from approvals.audit.catalogue import fold_catalogue
from schemas.events import GENESIS_HASH, DomainEvent, seal_event
from schemas.principal import SYSTEM

CASE = "power-adjustment:PW-1"
OTHER = "power-adjustment:PW-2"
CHILD = "power-catalogue-adjustment:PW-1.adj1"
ROAD = {
    "code": "ALSK-XK-001",
    "name": "临时占用城市道路许可",
    "kind": "licensing",
    "mode": "entrust",
    "granting_authority": "alashankou_city_government",
    "legal_source": "《城市道路管理条例》 第三十一条",
}
SAFETY = {**ROAD, "code": "ALSK-JC-001", "name": "安全生产监督检查", "kind": "inspection"}


class Log:
    """Events of several cases, each case's numbered from 1."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    def add(self, case_id: str, type_: str, at: str, payload: dict[str, Any] | None = None, **fields: Any) -> None:
        seq = 1 + sum(1 for e in self.events if e.case_id == case_id)
        self.events.append(
            seal_event(
                case_id=case_id, seq=seq, type=type_, actor=SYSTEM, at=datetime.fromisoformat(at),
                legal_basis=fields.pop("legal_basis", "Art. 4; Art. 18"), payload=payload or {},
                prev_hash=GENESIS_HASH, **fields,
            )
        )  # fmt: skip

    def publish(self, case_id: str, at: str, effective: str, *items: dict[str, Any], **adjustment: Any) -> None:
        subject: dict[str, Any] = {"effective_date": effective, "items": list(items)}
        if adjustment:
            subject["adjustment"] = {"child_case_id": CHILD, "review_round": 1, "decision": "approved", **adjustment}
        self.add(case_id, "case.published", at, {"process": "power-adjustment", "subject": subject})


def codes(log: Log, day: str) -> list[str]:
    return [f.code for f in fold_catalogue(log.events, date.fromisoformat(day)).catalogue.functions]


def test_functions_are_in_force_from_the_published_effective_date_until_the_catalogue_is_withdrawn() -> None:
    log = Log()
    log.publish(CASE, "2026-03-02T02:00:00+00:00", "2026-04-01", ROAD, SAFETY)
    log.add(CASE, "case.withdrawn", "2027-05-10T03:00:00+00:00")
    assert codes(log, "2026-03-31") == []
    assert codes(log, "2026-04-01") == ["ALSK-JC-001", "ALSK-XK-001"]
    assert codes(log, "2027-05-09") == ["ALSK-JC-001", "ALSK-XK-001"]
    assert codes(log, "2027-05-10") == []  # withdrawn that day
    [road] = [f for f in fold_catalogue(log.events, date(2026, 5, 1)).catalogue.functions if f.code == "ALSK-XK-001"]
    assert (road.mode, road.granting_authority, road.legal_basis) == (
        "entrust",
        "alashankou_city_government",
        "《城市道路管理条例》 第三十一条",
    )
    assert road.case_id == road.put_there_by == CASE and road.effective_date == date(2026, 4, 1)
    assert road.publication.seq == 1 and road.publication.hash == log.events[0].hash


def test_a_withdrawal_is_dated_in_the_zone_local_time() -> None:
    log = Log()
    log.publish(CASE, "2026-03-02T02:00:00+00:00", "2026-03-02", ROAD)
    log.add(CASE, "case.withdrawn", "2026-06-30T17:30:00+00:00")  # 2026-07-01 01:30 in UTC+8
    assert codes(log, "2026-06-30") == ["ALSK-XK-001"]
    assert codes(log, "2026-07-01") == []


def test_a_case_withdrawn_before_publication_never_appears_and_other_processes_publish_nothing_here() -> None:
    log = Log()
    log.add(CASE, "case.withdrawn", "2026-03-02T02:00:00+00:00")
    log.add(OTHER, "case.published", "2026-03-02T02:00:00+00:00", {"process": "project-approval", "subject": {}})
    answer = fold_catalogue(log.events, date(2026, 12, 31), compare_to=date(2026, 1, 1))
    assert answer.catalogue.functions == []
    assert answer.difference is not None and not answer.difference.added


def test_an_adjustment_restates_the_functions_from_its_republication_and_the_difference_names_the_child_case() -> None:
    log = Log()
    log.publish(CASE, "2026-03-02T02:00:00+00:00", "2026-03-02", ROAD, SAFETY)
    log.add(CHILD, "case.decided", "2027-03-05T02:00:00+00:00", legal_basis="Art. 3")
    log.publish(CASE, "2027-03-05T20:00:00+00:00", "2027-03-06", ROAD, SAFETY, conditions=["每季度报告"])
    before, after = date(2026, 5, 1), date(2027, 3, 6)
    assert fold_catalogue(log.events, date(2027, 3, 5)).catalogue.functions[0].adjustment is None
    answer = fold_catalogue(log.events, after, compare_to=before)
    [road] = [f for f in answer.catalogue.functions if f.code == "ALSK-XK-001"]
    assert road.effective_date == after and road.put_there_by == CHILD and road.case_id == CASE
    assert road.adjustment is not None and road.adjustment.conditions == ["每季度报告"]
    assert road.adjustment.legal_basis == "Art. 3" and road.adjustment.decided_at == log.events[1].at
    diff = answer.difference
    assert diff is not None and (diff.from_date, diff.to_date) == (before, after)
    assert not diff.added and not diff.withdrawn
    assert [(c.code, c.by_case_id) for c in diff.changed] == [("ALSK-JC-001", CHILD), ("ALSK-XK-001", CHILD)]
    assert diff.changed[0].before is not None and diff.changed[0].before.adjustment is None


def test_an_adjustment_never_brings_a_future_catalogue_into_force_early() -> None:
    log = Log()
    log.publish(CASE, "2026-03-02T02:00:00+00:00", "2028-01-01", ROAD)
    log.publish(CASE, "2027-03-05T02:00:00+00:00", "2028-01-01", ROAD, conditions=[])
    assert codes(log, "2027-12-31") == []
    [road] = fold_catalogue(log.events, date(2028, 1, 1)).catalogue.functions
    assert road.put_there_by == CHILD and road.effective_date == date(2028, 1, 1)


def test_two_catalogues_with_one_code_the_later_holds_and_the_earlier_returns_when_it_ends() -> None:
    log = Log()
    log.publish(CASE, "2026-03-02T02:00:00+00:00", "2026-03-02", ROAD, SAFETY)
    log.publish(OTHER, "2026-06-01T02:00:00+00:00", "2026-07-01", {**ROAD, "mode": "authorize"})
    log.add(OTHER, "case.cancelled", "2026-09-01T02:00:00+00:00")
    log.add(CASE, "case.withdrawn", "2026-10-01T02:00:00+00:00")
    modes = {f.code: (f.mode, f.case_id) for f in fold_catalogue(log.events, date(2026, 8, 1)).catalogue.functions}
    assert modes == {"ALSK-XK-001": ("authorize", OTHER), "ALSK-JC-001": ("entrust", CASE)}
    diff = fold_catalogue(log.events, date(2026, 8, 1), compare_to=date(2026, 9, 1)).difference
    assert diff is not None and [(c.code, c.by_case_id) for c in diff.changed] == [("ALSK-XK-001", CASE)]
    diff = fold_catalogue(log.events, date(2026, 10, 1), compare_to=date(2026, 9, 30)).difference
    assert diff is not None and [(c.code, c.by_case_id) for c in diff.withdrawn] == [
        ("ALSK-JC-001", CASE),
        ("ALSK-XK-001", CASE),
    ]
    diff = fold_catalogue(log.events, date(2026, 7, 1), compare_to=date(2026, 1, 1)).difference
    assert diff is not None and [(c.code, c.by_case_id) for c in diff.added] == [
        ("ALSK-JC-001", CASE),
        ("ALSK-XK-001", OTHER),
    ]


def test_a_publication_a_reset_superseded_counts_for_nothing() -> None:
    log = Log()
    log.add(CASE, "case.started", "2026-03-01T02:00:00+00:00")
    log.publish(CASE, "2026-03-02T02:00:00+00:00", "2026-03-02", ROAD)
    log.add(CASE, "case.reset", "2026-03-03T02:00:00+00:00", {"superseded_from": 2, "superseded_to": 2})
    assert codes(log, "2026-04-01") == []
    log.publish(CASE, "2026-03-04T02:00:00+00:00", "2026-03-04", SAFETY)
    assert codes(log, "2026-04-01") == ["ALSK-JC-001"]


def test_the_fold_does_not_depend_on_the_order_the_cases_come_in() -> None:
    log = Log()
    log.publish(CASE, "2026-03-02T02:00:00+00:00", "2026-03-02", ROAD)
    log.publish(OTHER, "2026-03-03T02:00:00+00:00", "2026-03-03", SAFETY)
    day = date(2026, 4, 1)
    assert fold_catalogue(log.events, day) == fold_catalogue(list(reversed(log.events)), day)
