"""Outcome rules as pure functions: routing outcomes, quorum tallies, the case outcome, conditions.

No Temporal, no clock, no database: each rule is a function of the recorded decisions and the case data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from schemas.process import Condition, Decision, ProcessDefinition, QuorumRule, RoutingMode, Stage
from workflows import rules
from workflows.rules import (
    StageOutcome,
    TaskFacts,
    case_outcome,
    condition_holds,
    definition_problems,
    merge_conditions,
    stage_outcome,
    tally_votes,
)

A = Decision.approve
R = Decision.reject
C = Decision.approve_with_conditions
RET = Decision.return_
ABS = Decision.abstain

TWO_THIRDS = QuorumRule(threshold_numerator=2, threshold_denominator=3, min_attendance=3)


def tasks(*decisions: Decision | None, cancelled: int = 0, expired: int = 0) -> list[TaskFacts]:
    """Counting tasks with the given decisions, plus ``cancelled`` tasks that no longer count."""
    made = [TaskFacts(counts=True, decided=d) for d in decisions]
    made += [TaskFacts(counts=True, decided=None, expired=True) for _ in range(expired)]
    made += [TaskFacts(counts=False, decided=None) for _ in range(cancelled)]
    return made


# ---------------------------------------------------------------- single


@pytest.mark.parametrize(
    ("decision", "outcome"),
    [
        (A, StageOutcome.approved),
        (C, StageOutcome.approved_with_conditions),
        (R, StageOutcome.rejected),
        (RET, StageOutcome.returned),
    ],
)
def test_single_mode_the_one_decision_is_the_outcome(decision: Decision, outcome: str) -> None:
    assert stage_outcome(RoutingMode.single, tasks(decision)) == outcome


def test_single_mode_is_undecided_while_the_task_is_open() -> None:
    assert stage_outcome(RoutingMode.single, tasks(None)) is None


def test_a_transferred_away_task_no_longer_counts() -> None:
    assert stage_outcome(RoutingMode.single, tasks(A, cancelled=1)) == StageOutcome.approved


def test_a_stage_with_only_cancelled_tasks_is_never_decided() -> None:
    assert stage_outcome(RoutingMode.all, tasks(cancelled=2)) is None


# ---------------------------------------------------------------- all (会签)


def test_all_mode_needs_every_assignee_to_approve() -> None:
    assert stage_outcome(RoutingMode.all, tasks(A, A, None)) is None
    assert stage_outcome(RoutingMode.all, tasks(A, A, A)) == StageOutcome.approved


def test_all_mode_one_reject_rejects_at_once_even_with_others_open() -> None:
    assert stage_outcome(RoutingMode.all, tasks(A, R, None)) == StageOutcome.rejected
    assert stage_outcome(RoutingMode.all, tasks(None, None, R)) == StageOutcome.rejected


def test_all_mode_one_return_returns_at_once() -> None:
    assert stage_outcome(RoutingMode.all, tasks(None, RET, None)) == StageOutcome.returned


def test_all_mode_one_approval_with_conditions_makes_the_whole_stage_conditional() -> None:
    assert stage_outcome(RoutingMode.all, tasks(A, C, A)) == StageOutcome.approved_with_conditions


def test_all_mode_the_first_blocking_decision_decides() -> None:
    assert stage_outcome(RoutingMode.all, tasks(RET, R)) == StageOutcome.returned
    assert stage_outcome(RoutingMode.all, tasks(R, RET)) == StageOutcome.rejected


# ---------------------------------------------------------------- any (或签)


@pytest.mark.parametrize(
    ("decisions", "outcome"),
    [
        ((None, A, None), StageOutcome.approved),
        ((None, R, None), StageOutcome.rejected),
        ((C, None), StageOutcome.approved_with_conditions),
        ((RET, None), StageOutcome.returned),
    ],
)
def test_any_mode_the_first_decision_wins(decisions: tuple[Decision | None, ...], outcome: str) -> None:
    assert stage_outcome(RoutingMode.any, tasks(*decisions)) == outcome


def test_any_mode_is_undecided_until_someone_decides() -> None:
    assert stage_outcome(RoutingMode.any, tasks(None, None)) is None


# ---------------------------------------------------------------- sequential (依次)


def test_sequential_mode_needs_every_signer_in_turn() -> None:
    assert stage_outcome(RoutingMode.sequential, tasks(A, None)) is None
    assert stage_outcome(RoutingMode.sequential, tasks(A, A)) == StageOutcome.approved


def test_sequential_mode_a_later_reject_rejects() -> None:
    assert stage_outcome(RoutingMode.sequential, tasks(A, R)) == StageOutcome.rejected


def test_sequential_mode_a_first_reject_ends_the_stage_before_the_second_signer() -> None:
    assert stage_outcome(RoutingMode.sequential, tasks(R, None)) == StageOutcome.rejected


# ---------------------------------------------------------------- quorum (vote)


def test_quorum_without_its_rule_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="quorum rule"):
        stage_outcome(RoutingMode.quorum, tasks(A))


def test_quorum_is_undecided_while_any_member_may_still_vote() -> None:
    assert stage_outcome(RoutingMode.quorum, tasks(A, A, A, None), TWO_THIRDS) is None


def test_quorum_a_reject_does_not_close_the_vote_early() -> None:
    assert stage_outcome(RoutingMode.quorum, tasks(R, None, None), TWO_THIRDS) is None


def test_quorum_decides_once_every_member_voted_or_expired() -> None:
    assert stage_outcome(RoutingMode.quorum, tasks(A, A, A, expired=1), TWO_THIRDS) == StageOutcome.approved


def test_quorum_two_thirds_of_present_counting_abstentions_as_present() -> None:
    # 5 present (3 approve, 1 reject, 1 abstain): ceil(2/3 * 5) = 4 approvals needed; 3 is not enough.
    tally = tally_votes([A, A, A, R, ABS], TWO_THIRDS)
    assert (tally.approve, tally.reject, tally.abstain, tally.absent) == (3, 1, 1, 0)
    assert tally.required == 4
    assert tally.attendance_met
    assert tally.outcome == StageOutcome.rejected


def test_quorum_abstaining_makes_approval_harder_than_being_absent() -> None:
    # Same approvals, the fifth member absent instead of abstaining: ceil(2/3 * 4) = 3, so approved.
    tally = tally_votes([A, A, A, R, None], TWO_THIRDS)
    assert (tally.required, tally.absent, tally.outcome) == (3, 1, StageOutcome.approved)


def test_quorum_approval_with_conditions_counts_as_an_approval() -> None:
    tally = tally_votes([A, C, R], TWO_THIRDS)
    assert (tally.approve, tally.required, tally.outcome) == (2, 2, StageOutcome.approved)


def test_quorum_minimum_attendance_not_met_is_no_quorum_whatever_the_votes() -> None:
    tally = tally_votes([A, A, None, None, None], TWO_THIRDS)
    assert not tally.attendance_met
    assert tally.outcome == StageOutcome.no_quorum
    assert stage_outcome(RoutingMode.quorum, tasks(A, A, expired=3), TWO_THIRDS) == StageOutcome.no_quorum


def test_quorum_abstentions_count_toward_attendance() -> None:
    tally = tally_votes([A, ABS, ABS, None], TWO_THIRDS)
    assert tally.attendance_met
    assert (tally.required, tally.outcome) == (2, StageOutcome.rejected)


def test_quorum_all_abstaining_is_rejected_not_approved() -> None:
    tally = tally_votes([ABS, ABS, ABS], TWO_THIRDS)
    assert (tally.attendance_met, tally.required) == (True, 2)
    assert tally.outcome == StageOutcome.rejected


def test_quorum_a_zero_requirement_still_needs_one_approval() -> None:
    # A lone abstention under a tiny threshold: ceil(1/100 * 1) = 1; with nobody present it would be 0.
    rule = QuorumRule(threshold_numerator=1, threshold_denominator=100, min_attendance=1)
    assert tally_votes([ABS], rule).outcome == StageOutcome.rejected


@pytest.mark.parametrize(
    ("present", "numerator", "denominator", "required"),
    [
        (3, 2, 3, 2),  # exactly 2
        (4, 2, 3, 3),  # 2.67 -> 3
        (5, 2, 3, 4),  # 3.33 -> 4
        (6, 2, 3, 4),  # exactly 4
        (7, 2, 3, 5),  # 4.67 -> 5
        (4, 1, 2, 2),  # simple majority of an even number: half is enough
        (5, 1, 2, 3),  # 2.5 -> 3
        (3, 1, 1, 3),  # unanimity
    ],
)
def test_quorum_threshold_is_the_ceiling_of_the_fraction_of_present(
    present: int, numerator: int, denominator: int, required: int
) -> None:
    rule = QuorumRule(threshold_numerator=numerator, threshold_denominator=denominator, min_attendance=1)
    just_enough = [A] * required + [R] * (present - required)
    one_short = [A] * (required - 1) + [R] * (present - required + 1)
    assert tally_votes(just_enough, rule).required == required
    assert tally_votes(just_enough, rule).outcome == StageOutcome.approved
    assert tally_votes(one_short, rule).outcome == StageOutcome.rejected


def test_quorum_tally_as_dict_is_what_the_stage_records() -> None:
    assert tally_votes([A, R, ABS, None], TWO_THIRDS).as_dict() == {
        "approve": 1, "reject": 1, "abstain": 1, "absent": 1, "required": 2,
    }  # fmt: skip


def test_quorum_rule_refuses_a_threshold_above_one() -> None:
    with pytest.raises(ValueError, match="numerator"):
        QuorumRule(threshold_numerator=4, threshold_denominator=3)


# ---------------------------------------------------------------- case outcome


@pytest.mark.parametrize(
    ("final", "outcome"),
    [
        ([StageOutcome.approved], StageOutcome.approved),
        ([StageOutcome.approved, StageOutcome.approved], StageOutcome.approved),
        ([StageOutcome.approved, StageOutcome.approved_with_conditions], StageOutcome.approved_with_conditions),
        ([StageOutcome.approved_with_conditions, StageOutcome.rejected], StageOutcome.rejected),
        ([StageOutcome.rejected, StageOutcome.approved], StageOutcome.rejected),
        ([], StageOutcome.approved),  # every final stage skipped by its condition: nothing stands against
    ],
)
def test_case_outcome_rejected_beats_conditional_beats_approved(final: list[str], outcome: str) -> None:
    assert case_outcome(final) == outcome


# ---------------------------------------------------------------- conditions of approval


def test_merge_conditions_keeps_the_order_first_imposed_and_each_condition_once() -> None:
    merged = merge_conditions([["report quarterly", "hire locally"], [], ["hire locally", "keep emissions low"]])
    assert merged == ["report quarterly", "hire locally", "keep emissions low"]


def test_merge_conditions_dedupes_within_one_stage_too() -> None:
    assert merge_conditions([["a", "a", "b"], ["b", "a"]]) == ["a", "b"]


def test_merge_conditions_of_nothing_is_empty() -> None:
    assert merge_conditions([]) == []


# ---------------------------------------------------------------- conditional stages (when)


def test_no_condition_always_holds() -> None:
    assert condition_holds(None, {})


def test_a_path_condition_compares_a_nested_field() -> None:
    condition = Condition(path="project.sector", equals="energy")
    assert condition_holds(condition, {"project": {"sector": "energy"}})
    assert not condition_holds(condition, {"project": {"sector": "logistics"}})


def test_a_path_through_a_missing_or_non_mapping_value_reads_as_none() -> None:
    assert not condition_holds(Condition(path="project.sector", equals="energy"), {})
    assert not condition_holds(Condition(path="project.sector", equals="energy"), {"project": "energy"})
    assert condition_holds(Condition(path="project.sector", equals=None), {"project": 7})


def test_a_path_condition_compares_numbers_and_booleans_exactly() -> None:
    assert condition_holds(Condition(path="foreign", equals=True), {"foreign": True})
    assert not condition_holds(Condition(path="foreign", equals=True), {"foreign": "yes"})
    assert condition_holds(Condition(path="a.b.c", equals=3), {"a": {"b": {"c": 3}}})


@rules.condition_rule("test_rules.large_investment")
def _large_investment(data: Mapping[str, Any]) -> bool:
    return float(data.get("investment_wan_yuan", 0)) >= 5000


def test_a_registered_rule_decides_the_condition() -> None:
    condition = Condition(rule="test_rules.large_investment")
    assert condition_holds(condition, {"investment_wan_yuan": 8000})
    assert not condition_holds(condition, {"investment_wan_yuan": 100})
    assert not condition_holds(condition, {})


def test_registering_the_same_function_again_is_harmless() -> None:
    assert rules.condition_rule("test_rules.large_investment")(_large_investment) is _large_investment


def test_registering_another_function_under_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        rules.condition_rule("test_rules.large_investment")(lambda data: True)


def test_an_unknown_rule_is_an_error_naming_it_never_a_silent_false() -> None:
    with pytest.raises(ValueError, match="no_such_rule"):
        condition_holds(Condition(rule="no_such_rule"), {})


def test_a_condition_gives_exactly_one_of_rule_or_path() -> None:
    with pytest.raises(ValueError):
        Condition()
    with pytest.raises(ValueError):
        Condition(rule="x", path="y")


def test_without_a_stated_minimum_a_majority_of_the_members_must_vote() -> None:
    majority = QuorumRule(threshold_numerator=2, threshold_denominator=3)
    one_of_nine = [Decision.approve] + [None] * 8
    assert tally_votes(one_of_nine, majority).outcome == StageOutcome.no_quorum
    five_of_nine = [Decision.approve] * 4 + [Decision.reject] + [None] * 4
    assert tally_votes(five_of_nine, majority).outcome == StageOutcome.approved


def test_definition_problems_name_what_would_leave_a_case_stuck() -> None:
    fine = ProcessDefinition(
        process="generic", title="t", legal_basis="Art. 4",
        steps=(Stage(id="a", title="A", legal_basis="Art. 4", assignees=("alice",)),),
    )  # fmt: skip
    assert definition_problems(fine) == []
    vote = Stage(
        id="vote", title="Vote", legal_basis="Art. 22", mode=RoutingMode.quorum, assignees=("m1", "m2"),
        quorum=QuorumRule(min_attendance=3), allowed_decisions=(Decision.approve, Decision.reject),
    )  # fmt: skip
    problems = definition_problems(fine.model_copy(update={"steps": (vote,)}))
    assert len(problems) == 2 and "needs a deadline" in problems[0] and "exceeds the 2 members" in problems[1]
