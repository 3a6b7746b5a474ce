"""The determinism corpus covers every path a release could break (issue 20).

A change to the kernel is caught by replay only on a path some recorded history takes: a reminder-time change
went unnoticed while no history held a fired reminder. So every domain event type a workflow records, every
routing mode and every Workflow Update (each operation of the registry, and those the engine sends) must appear
in some history under ``tests/histories/``. When one is missing, record a history that takes the path
(``tests/corpus_cases.py``, ``.venv/bin/python -m tests.record_histories <name>``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow

from approvals.operations import OPERATIONS
from schemas.events import EventType
from schemas.process import RoutingMode
from tests.corpus_coverage import CorpusFacts, corpus_facts
from workflows.catalog import WORKFLOWS

WORKFLOW_SOURCES = Path(__file__).parent.parent / "workflows"

NOT_RECORDED_BY_ANY_WORKFLOW: dict[EventType, str] = {
    EventType.case_cancelled: "kept for events stored before withdrawal replaced cancellation; no workflow emits it",
}
"""Event types the corpus need not hold, with why: only those no workflow code records (checked below)."""


@pytest.fixture(scope="module")
def facts() -> CorpusFacts:
    return corpus_facts()


def test_every_event_type_a_workflow_records_is_in_some_history(facts: CorpusFacts) -> None:
    expected = set(EventType) - set(NOT_RECORDED_BY_ANY_WORKFLOW)
    assert sorted(expected - facts.event_types) == []


def test_an_event_type_is_exempt_only_while_no_workflow_records_it() -> None:
    sources = "\n".join(path.read_text(encoding="utf-8") for path in WORKFLOW_SOURCES.rglob("*.py"))
    recorded = [
        t for t in NOT_RECORDED_BY_ANY_WORKFLOW if f"EventType.{t.name}" in sources or f'"{t.value}"' in sources
    ]
    assert recorded == [], "a workflow records these now: record a history that does, and drop the exemption"


def test_every_routing_mode_is_in_some_history(facts: CorpusFacts) -> None:
    assert sorted({mode.value for mode in RoutingMode} - facts.routing_modes) == []


def test_every_operation_is_in_some_history(facts: CorpusFacts) -> None:
    def recorded_as(name: str, update_name: str) -> str:
        return "return" if name == "return" else update_name

    missing = [op.name for op in OPERATIONS if recorded_as(op.name, op.update_name) not in facts.updates]
    assert missing == []


def test_every_workflow_update_of_every_workflow_is_in_some_history(facts: CorpusFacts) -> None:
    """Including those the engine sends itself (``adopt_calendar`` when a calendar year is published)."""
    declared = {
        name
        for definition in (workflow._Definition.must_from_class(w) for w in WORKFLOWS)
        for name in definition.updates
    }
    assert sorted(declared - facts.updates) == []


def test_no_refusal_lands_in_history_so_none_needs_recording(facts: CorpusFacts) -> None:
    """The kernel refuses in each update's validator: a refused request leaves no event in the history, so
    replay never meets one. Should a handler ever refuse after acceptance, this fails: record that path."""
    assert facts.refused_updates == set()
