"""The case state the kernel carries from run to run, and the event types it records; no Temporal needed."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.case import CaseState, CaseStatus, StageResult
from schemas.events import GENESIS_HASH, EventType, seal_event
from schemas.principal import SYSTEM

CARRIED_BEFORE_CASE_STATE = {
    "run": 1,
    "status": "under_supervision",
    "started_at": "2026-01-05T02:00:00Z",
    "last_seq": 41,
    "last_hash": "a" * 64,
    "results": [
        {"stage_id": "legal_review", "outcome": "approved", "round": 1, "decided_at": "2026-01-06T02:00:00Z"},
        {"stage_id": "executive_meeting", "outcome": "approved", "round": 2, "decided_at": "2026-01-08T02:00:00Z"},
    ],
    "rounds": {"legal_review": 1, "executive_meeting": 2},
    "task_numbers": {"legal_review": 1, "executive_meeting": 6},
    "observers": ["carol"],
    "warnings": [],
    "extended": False,
    "outcome": "approved",
    "supervision_round": 5,
    "next_review_at": "2031-01-05T02:00:00Z",
}
"""A continue-as-new input as runs recorded before ``CaseState`` carried it (``CarriedCase``)."""


def test_the_state_runs_carried_in_before_it_existed_still_loads() -> None:
    state = CaseState.model_validate(CARRIED_BEFORE_CASE_STATE)

    assert state.run == 1 and state.status is CaseStatus.under_supervision and state.supervision_round == 5
    assert list(state.results) == ["legal_review", "executive_meeting"]
    assert state.results["executive_meeting"].round == 2
    assert state.pending_supplement == [] and state.status_before_supplement is CaseStatus.in_review


def test_the_state_is_carried_in_the_same_shape() -> None:
    state = CaseState.model_validate(CARRIED_BEFORE_CASE_STATE)
    dumped = state.model_dump(mode="json")

    assert set(CARRIED_BEFORE_CASE_STATE) <= set(dumped)
    assert [result["stage_id"] for result in dumped["results"]] == ["legal_review", "executive_meeting"]
    assert (dumped["last_seq"], dumped["last_hash"]) == (41, "a" * 64)  # what the audit reads of a continued run
    assert CaseState.model_validate_json(state.model_dump_json()) == state


def test_a_first_run_starts_from_an_empty_chain() -> None:
    state = CaseState(started_at=datetime(2026, 1, 5, tzinfo=UTC))

    assert (state.run, state.last_seq, state.last_hash, state.status) == (0, 0, GENESIS_HASH, CaseStatus.in_review)
    state.results["review"] = StageResult(
        stage_id="review", outcome="approved", round=1, decided_at=datetime(2026, 1, 6, tzinfo=UTC)
    )
    assert state.model_dump(mode="json")["results"][0]["stage_id"] == "review"


def test_an_event_type_seals_exactly_as_its_string() -> None:
    fields = {
        "case_id": "generic:T-1",
        "seq": 1,
        "actor": SYSTEM,
        "at": datetime(2026, 1, 5, tzinfo=UTC),
        "legal_basis": "Art. 10",
        "payload": {"kind": EventType.task_urged},
        "prev_hash": GENESIS_HASH,
    }
    for event_type in EventType:
        as_enum = seal_event(type=event_type, **fields)
        as_string = seal_event(type=event_type.value, **{**fields, "payload": {"kind": "task.urged"}})
        assert as_enum.hash == as_string.hash
        assert as_enum.model_dump_json() == as_string.model_dump_json()
