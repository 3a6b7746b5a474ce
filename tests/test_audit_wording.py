"""Every event type is worded in English and Chinese and folded (or declared stateless); the recorded histories
hold no other types; the light audit modules load no workflow code; the audit imports nothing above it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from approvals.audit.history import history_events, history_from_json
from approvals.audit.timeline import timeline
from approvals.event_folding import SYSTEM_FOLDS, unchanged
from approvals.event_wording import LANGS, SYSTEM_WORDING, WordingContext
from approvals.operations import OPERATIONS, _declared, event_folds, event_wording
from schemas.events import GENESIS_HASH, DomainEvent, EventType
from schemas.principal import SYSTEM, Principal

ROOT = Path(__file__).parent.parent
HISTORIES = sorted((ROOT / "tests" / "histories").rglob("*.json"))
OFFICER = Principal(id="officer-1", name="王科员", roles=["one_window"], unit="政务服务中心")


def _event(event_type: str, payload: dict[str, Any] | None = None, actor: Principal = OFFICER) -> DomainEvent:
    return DomainEvent(
        case_id="generic:T-1", seq=1, type=event_type, actor=actor, at=datetime(2026, 3, 2, 2, tzinfo=UTC),
        legal_basis="Art. 1", stage_id="acceptance", task_id="generic:T-1/acceptance/1", payload=payload or {},
        prev_hash=GENESIS_HASH, hash="",
    )  # fmt: skip


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= character <= "\u9fff" for character in text)


def test_every_event_type_is_worded_in_english_and_chinese() -> None:
    wording = event_wording()
    assert set(wording) == set(EventType), f"not worded: {set(EventType) - set(wording)}"
    for event_type, worded in wording.items():
        for payload in ({}, {"comment": "同意", "round": 1, "outcome": "approved", "decision": "approve"}):
            said = {lang: worded.describe(_event(event_type, payload), WordingContext(), lang) for lang in LANGS}
            assert said["en"] and said["zh"] and said["en"] != said["zh"], event_type
            assert _has_chinese(said["zh"]), f"{event_type}: {said['zh']!r}"


def test_an_operation_words_the_event_it_records_and_the_system_table_the_rest() -> None:
    by_operations = {event_type for operation in OPERATIONS for event_type in operation.wording}
    assert not by_operations & set(SYSTEM_WORDING)
    for operation in OPERATIONS:
        assert operation.recorded_event in by_operations, operation.name
        assert set(operation.wording) <= set(operation.events), operation.name


@pytest.mark.parametrize(
    ("event_type", "payload", "term"),
    [
        (EventType.task_claimed, {}, "签收"),
        (EventType.task_transferred, {"from": "a", "to": "b"}, "转办"),
        (EventType.task_delegated, {"delegate": "b"}, "委托"),
        (EventType.task_signer_added, {"signer": "b", "position": "before"}, "前加签"),
        (EventType.task_signer_added, {"signer": "b", "position": "after"}, "后加签"),
        (EventType.task_urged, {}, "催办"),
        (EventType.case_cc, {"observers": ["a", "b"]}, "抄送a、b"),
        (EventType.case_supplement_requested, {"items": [{"item": "营业执照"}]}, "补正材料：营业执照"),
        (EventType.case_withdrawn, {}, "撤回"),
        (EventType.task_decided, {"decision": "return", "return_to": "acceptance"}, "退回"),
        (EventType.task_decided, {"decision": "approve_with_conditions", "conditions": ["x"]}, "附条件同意"),
        (EventType.stage_started, {"round": 1, "mode": "all"}, "会签"),
        (EventType.stage_started, {"round": 1, "mode": "any"}, "或签"),
        (
            EventType.case_extended,
            {"working_days": 10, "due_at": "2026-04-01T16:00:00Z"},
            "延期：法定期限延长10个工作日",
        ),
        (EventType.clock_started, {"working_days": 20}, "法定期限开始计算：20个工作日"),
    ],
)
def test_chinese_wording_uses_the_office_terms(event_type: EventType, payload: dict[str, Any], term: str) -> None:
    [row] = timeline([_event(event_type, payload)])
    assert term in row.action_zh


def test_a_timeline_row_keeps_its_english_fields_and_adds_the_chinese() -> None:
    [row] = timeline([_event(EventType.case_published, {"decision": "approved"}, actor=SYSTEM)])
    assert (row.action, row.action_zh) == ("decision published: approved", "审批决定已依法公开：同意")
    assert set(row.model_dump()) >= {"action", "action_zh", "comment", "stage_time", "stage_time_zh", "data"}


def test_the_recorded_histories_hold_only_known_event_types() -> None:
    """A type the workflows emit must be an EventType member, or it would go unworded and unfolded."""
    assert HISTORIES
    recorded = {event.type for path in HISTORIES for event in history_events(history_from_json(path.read_text()))}
    assert recorded
    assert recorded <= set(EventType), f"unknown event types in tests/histories: {recorded - set(EventType)}"


def test_every_event_type_says_how_it_changes_the_state() -> None:
    """Folded by the operation that records it or by the system table (``unchanged`` when it changes nothing)."""
    folds = event_folds()
    assert set(folds) == set(EventType), f"no fold: {set(EventType) - set(folds)}"


def test_an_event_type_is_declared_once() -> None:
    """Two declarations of one type would make the timeline or the fold depend on declaration order."""
    clash = {**SYSTEM_FOLDS, EventType.task_claimed: unchanged}  # the claim operation folds it already
    with pytest.raises(ValueError, match="task.claimed is declared twice in folds"):
        _declared("folds", clash)


def test_timeline_and_state_load_no_workflow_code() -> None:
    """The API serialises TimelineRow: importing it must not load the workflows, Temporal's worker or replayer."""
    probe = (
        "import json, sys; import approvals.audit.timeline, approvals.audit.state; "
        "print(json.dumps(sorted(m for m in sys.modules if m == 'workflows' or m.startswith(("
        "'workflows.', 'temporalio.worker', 'approvals.audit.replay', 'approvals.operations', 'approvals.settings')))))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(loaded.stdout) == []
