"""What people read says the zone's local time and never a missing value's placeholder.

Times shown to people are in UTC+8 and say so (the API's ``at``/``due_at`` stay ISO 8601 with their offset
for clients); a timeline row never prints ``None``, ``null``, ``?``, an empty pair of brackets or a dangling
colon where the event does not record a value: over every recorded history, over every event type with an
empty payload, and over the recorded payloads with every value null.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from temporalio.api.enums.v1 import EventType as HistoryEventType

from approvals.audit.history import history_events, history_from_json
from approvals.audit.timeline import TimelineRow, timeline
from approvals.cli.output import cases_table, tasks_table, timeline_table
from approvals.event_wording import local, local_due
from schemas.events import GENESIS_HASH, DomainEvent, EventType
from schemas.principal import Principal

HISTORIES = sorted((Path(__file__).parent / "histories").rglob("*.json"))
OFFICER = Principal(id="officer-1", name="王科员", roles=["one_window"], unit="政务服务中心")
AT = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
"""10:00 in the zone."""

PLACEHOLDER = re.compile(
    r"None|null|\(\s*\)|（\s*）|“\s*”|\[\s*\]|[:：]\s*$|[:：]\s*[,;，；。]|\S {2,}\S|(?<![A-Za-z])\?"
)
"""What a wording leaves when it prints a value the event does not record."""

HUMAN_FIELDS = ("action", "action_zh", "local_time", "stage_time", "stage_time_zh", "comment")


def _placeholders(rows: list[TimelineRow]) -> list[tuple[int, str, str, str]]:
    return [
        (row.seq, row.type, name, text)
        for row in rows
        for name in HUMAN_FIELDS
        if (text := getattr(row, name) or "") and PLACEHOLDER.search(text)
    ]


def _event(event_type: str, payload: dict[str, Any], *, stage_id: str | None = None) -> DomainEvent:
    return DomainEvent(
        case_id="generic:T-1", seq=1, type=event_type, actor=OFFICER, at=AT, legal_basis="Art. 1",
        stage_id=stage_id, task_id=None, payload=payload, prev_hash=GENESIS_HASH, hash="",
    )  # fmt: skip


def _recorded() -> list[list[DomainEvent]]:
    return [history_events(history_from_json(path.read_text(encoding="utf-8"))) for path in HISTORIES]


def test_the_placeholder_pattern_finds_what_a_missing_value_leaves() -> None:
    for text in ("stage “None” opened", "受理：?", "decision () notified to ", "容错认定（）", "for  x", "ended: "):
        assert PLACEHOLDER.search(text), text
    for text in ("stage “整改核查 (was it rectified promptly?)” opened", "受理：北京时间2026-03-02 10:00:00"):
        assert not PLACEHOLDER.search(text), text


@pytest.mark.parametrize("path", HISTORIES, ids=[str(path.relative_to(path.parents[1])) for path in HISTORIES])
def test_every_recorded_history_reads_without_a_placeholder(path: Path) -> None:
    history = history_from_json(path.read_text(encoding="utf-8"))
    if history.events[-1].event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        pytest.skip("a case refused at its start (invalid definition or application) recorded no event to read")
    rows = timeline(history_events(history))
    assert rows
    assert _placeholders(rows) == []


@pytest.mark.parametrize("event_type", list(EventType))
def test_an_event_with_an_empty_payload_reads_without_a_placeholder(event_type: EventType) -> None:
    """Missing values are left out or said in words (an unnamed stage, 未注明), in both languages."""
    rows = timeline([_event(event_type, {}), _event(event_type, {}, stage_id="unknown-stage")])
    assert _placeholders(rows) == []


def test_recorded_payloads_with_every_value_null_read_without_a_placeholder() -> None:
    """A payload that records a field as null (an older or a sparse recording) reads as one that omits it."""
    nulled = [
        _event(event.type, dict.fromkeys(event.payload), stage_id=event.stage_id)
        for events in _recorded()
        for event in events
    ]
    assert {event.type for event in nulled} >= {EventType.case_started, EventType.stage_started}
    assert _placeholders(timeline(nulled)) == []


def test_a_missing_value_the_sentence_needs_is_said_in_words() -> None:
    [row] = timeline([_event(EventType.task_transferred, {"to": "li"})])
    assert (row.action, row.action_zh) == (
        "王科员 transferred the task from (not stated) to li",
        "王科员将任务由（未注明）转办给li",
    )
    [row] = timeline([_event(EventType.stage_skipped, {})])
    assert row.action.startswith("an unnamed stage skipped") and row.action_zh.startswith("未注明的环节跳过")


def test_a_timeline_row_says_its_time_in_the_zone_and_names_the_zone() -> None:
    [row] = timeline([_event(EventType.case_accepted, {"accepted_at": AT.isoformat()})])
    assert row.at == AT  # the machine field: the instant, with its offset
    assert row.local_time == "2026-03-02 10:00:00 UTC+8"
    assert row.action == "accepted on 2026-03-02 10:00:00 UTC+8"
    assert row.action_zh == "受理：北京时间2026-03-02 10:00:00"
    assert "02:00" not in row.action + row.action_zh


def test_a_working_day_deadline_is_said_as_the_end_of_its_local_day() -> None:
    midnight = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 00:00 of 3 March in the zone
    assert (local_due(midnight), local_due(midnight, "zh")) == ("end of 2026-03-02 UTC+8", "北京时间2026-03-02 24时")
    assert local_due(midnight, labelled=False) == "end of 2026-03-02"
    assert local(AT, "zh") == "北京时间2026-03-02 10:00:00"
    [row] = timeline([_event(EventType.clock_started, {"working_days": 20, "due_at": midnight.isoformat()})])
    assert row.action == "statutory period started: 20 working days, due end of 2026-03-02 UTC+8"
    assert row.action_zh == "法定期限开始计算：20个工作日，至北京时间2026-03-02 24时"


def _printed(table: Any) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_the_cli_tables_show_local_times_under_a_header_naming_the_zone() -> None:
    """The API gives UTC instants; the inbox, case list and timeline show them in UTC+8 and say so."""
    task = {
        "task_id": "generic:T-1/review/1", "stage_title": "审查 Review", "status": "open",
        "candidate_roles": ["reviewer"], "due_at": "2026-03-02T16:00:00Z", "overdue": False, "version": 1,
    }  # fmt: skip
    inbox = _printed(tasks_table([task], "inbox"))
    assert "due (UTC+8)" in inbox and "end of 2026-03-02" in inbox and "16:00" not in inbox
    case = {
        "case_id": "generic:T-1", "title": "T", "status": "in_review", "applicant_id": "ent-1",
        "due_at": "2026-03-02T16:00:00+00:00", "updated_at": "2026-03-02T02:00:00+00:00",
    }  # fmt: skip
    cases = _printed(cases_table([case], "cases"))
    assert "due (UTC+8)" in cases and "updated (UTC+8)" in cases
    assert "end of 2026-03-02" in cases and "2026-03-02 10:00:00" in cases and "02:00" not in cases
    rows = timeline([_event(EventType.task_claimed, {})])
    for lang in ("en", "zh"):
        printed = _printed(timeline_table([row.model_dump(mode="json") for row in rows], "timeline", lang))
        assert "times in UTC+8" in printed and "10:00:00" in printed and "02:00:00" not in printed


def test_the_inbox_shows_which_years_of_a_due_date_were_assumed() -> None:
    task = {
        "task_id": "generic:T-1/review/1", "stage_title": "审查 Review", "status": "open", "version": 1,
        "due_at": "2027-01-05T16:00:00Z", "due_assumed_years": [2027],
    }  # fmt: skip
    assert "end of 2027-01-05 (holidays of 2027 assumed)" in _printed(tasks_table([task], "inbox"))
    assert "assumed" not in _printed(tasks_table([{**task, "due_assumed_years": []}], "inbox"))
