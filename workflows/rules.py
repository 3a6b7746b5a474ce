"""Outcome rules: pure functions of the recorded decisions and the case data.

Nothing here touches Temporal, a clock or I/O, so each rule is unit-tested on its own and the workflow
only has to ask "is this stage decided, and how?".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.process import Condition, Decision, Parallel, ProcessDefinition, QuorumRule, RoutingMode, Stage


class StageOutcome:
    approved = "approved"
    approved_with_conditions = "approved_with_conditions"
    rejected = "rejected"
    returned = "returned"
    no_quorum = "no_quorum"
    abandoned = "abandoned"  # a parallel branch stopped because another branch returned the case


APPROVING = frozenset({Decision.approve, Decision.approve_with_conditions})
APPROVING_OUTCOMES = frozenset({StageOutcome.approved, StageOutcome.approved_with_conditions})


@dataclass(frozen=True)
class TaskFacts:
    """What the rules need of a task: whether it still counts, and what was decided."""

    counts: bool
    """False for cancelled tasks (a transferred-away or superseded task no longer votes)."""
    decided: Decision | None
    expired: bool = False


@dataclass(frozen=True)
class QuorumTally:
    approve: int
    reject: int
    abstain: int
    absent: int
    required: int
    attendance_met: bool
    outcome: str

    def as_dict(self) -> dict[str, int]:
        return {
            "approve": self.approve,
            "reject": self.reject,
            "abstain": self.abstain,
            "absent": self.absent,
            "required": self.required,
        }


def tally_votes(decisions: Sequence[Decision | None], rule: QuorumRule) -> QuorumTally:
    """Counts a closed vote. ``None`` is a member who did not vote (absent).

    Approved when approvals reach ceil(numerator / denominator * present); present includes abstentions,
    so abstaining makes approval harder, as in a committee that counts members present and voting.
    """
    approve = sum(1 for d in decisions if d in APPROVING)
    reject = sum(1 for d in decisions if d is Decision.reject)
    abstain = sum(1 for d in decisions if d is Decision.abstain)
    absent = sum(1 for d in decisions if d is None)
    present = approve + reject + abstain
    required = -(-present * rule.threshold_numerator // rule.threshold_denominator)  # ceiling division
    min_attendance = rule.min_attendance if rule.min_attendance is not None else len(decisions) // 2 + 1
    attendance_met = present >= min_attendance
    if not attendance_met:
        outcome = StageOutcome.no_quorum
    elif approve >= required and approve > 0:
        outcome = StageOutcome.approved
    else:
        outcome = StageOutcome.rejected
    return QuorumTally(approve, reject, abstain, absent, required, attendance_met, outcome)


def stage_outcome(mode: RoutingMode, tasks: Sequence[TaskFacts], quorum: QuorumRule | None = None) -> str | None:
    """The stage's outcome once it is decided, else None.

    - ``any`` (或签): the first decision wins.
    - ``single``, ``sequential``, ``all`` (会签): a reject or return by anyone decides at once; otherwise
      every counting task must approve; approval with conditions by any makes the whole conditional.
    - ``quorum``: decided when every member has voted or expired; then ``tally_votes``.
    """
    counting = [task for task in tasks if task.counts]
    decided = [task.decided for task in counting if task.decided is not None]
    if mode is RoutingMode.quorum:
        if quorum is None:
            raise ValueError("a quorum stage needs its quorum rule")
        if any(task.decided is None and not task.expired for task in counting):
            return None
        return tally_votes([task.decided for task in counting], quorum).outcome
    if mode is RoutingMode.any and decided:
        return _single_decision_outcome(decided[0])
    for decision in decided:
        if decision in (Decision.reject, Decision.return_):
            return _single_decision_outcome(decision)
    if counting and len(decided) == len(counting):
        if any(d is Decision.approve_with_conditions for d in decided):
            return StageOutcome.approved_with_conditions
        return StageOutcome.approved
    return None


def _single_decision_outcome(decision: Decision) -> str:
    return {
        Decision.approve: StageOutcome.approved,
        Decision.approve_with_conditions: StageOutcome.approved_with_conditions,
        Decision.reject: StageOutcome.rejected,
        Decision.return_: StageOutcome.returned,
    }[decision]


def case_outcome(final_stage_outcomes: Sequence[str]) -> str:
    """The case's outcome from the outcomes of its last step (one stage, or the branches' last stages)."""
    if any(outcome == StageOutcome.rejected for outcome in final_stage_outcomes):
        return StageOutcome.rejected
    if any(outcome == StageOutcome.approved_with_conditions for outcome in final_stage_outcomes):
        return StageOutcome.approved_with_conditions
    return StageOutcome.approved


def merge_conditions(conditions_by_stage: Sequence[Sequence[str]]) -> list[str]:
    """Every distinct condition once, in the order first imposed."""
    merged: list[str] = []
    for conditions in conditions_by_stage:
        merged.extend(condition for condition in conditions if condition not in merged)
    return merged


ConditionRule = Callable[[Mapping[str, Any]], bool]

CONDITION_RULES: dict[str, ConditionRule] = {}
"""Named pure rules a stage's ``when`` may refer to; processes register theirs with ``condition_rule``."""


def condition_rule(name: str) -> Callable[[ConditionRule], ConditionRule]:
    def register(rule: ConditionRule) -> ConditionRule:
        # The workflow sandbox re-imports process modules, registering the same function again.
        existing = CONDITION_RULES.get(name)
        if existing is not None and (existing.__module__, existing.__qualname__) != (
            rule.__module__,
            rule.__qualname__,
        ):
            raise ValueError(f"condition rule {name!r} is already registered by {existing.__module__}")
        CONDITION_RULES[name] = rule
        return rule

    return register


def read_path(data: Mapping[str, Any], path: str) -> Any:
    """``a.b.c`` of nested mappings; a missing key reads as None."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def condition_holds(condition: Condition | None, data: Mapping[str, Any]) -> bool:
    if condition is None:
        return True
    if condition.rule is not None:
        try:
            rule = CONDITION_RULES[condition.rule]
        except KeyError:
            raise ValueError(f"unknown condition rule {condition.rule!r}; known: {sorted(CONDITION_RULES)}") from None
        return rule(data)
    assert condition.path is not None
    return read_path(data, condition.path) == condition.equals


def definition_problems(definition: ProcessDefinition, *, check_periods: bool = True) -> list[str]:
    """What would leave a case of this definition stuck or meaningless, for refusal before it starts.

    Kept out of the model validators on purpose: definitions of running cases are decoded again on every
    replay, and a stricter model would fail them. ``check_periods`` is false only for cases started before
    stage deadlines had to fit the statutory period (their histories replay as recorded).
    """
    problems: list[str] = period_problems(definition) if check_periods else []
    stages = definition.stages()
    if definition.supervision and definition.supervision.adjustment:
        stages = stages + definition.supervision.adjustment.stages()
    for stage in stages:
        if stage.when and stage.when.rule and stage.when.rule not in CONDITION_RULES:
            problems.append(
                f"stage {stage.id}: unknown condition rule {stage.when.rule!r}; known: {sorted(CONDITION_RULES)}"
            )
        if len(set(stage.assignees)) != len(stage.assignees):
            problems.append(f"stage {stage.id}: an assignee is listed twice")
        if stage.mode is RoutingMode.quorum:
            if stage.deadline is None:
                problems.append(f"stage {stage.id}: a vote needs a deadline, or a member who never votes blocks it")
            quorum = stage.quorum
            if quorum and quorum.min_attendance is not None and quorum.min_attendance > len(stage.assignees):
                members = len(stage.assignees)
                problems.append(
                    f"stage {stage.id}: min_attendance {quorum.min_attendance} exceeds the {members} members"
                )
    for step in definition.steps:
        if isinstance(step, Parallel) and any(not branch for branch in step.branches):
            problems.append(f"parallel step {step.id}: a branch has no stage")
    return problems


def period_problems(definition: ProcessDefinition) -> list[str]:
    """The stage deadlines inside the statutory period may not add up to more than the period: along the
    steps after the acceptance stage, each parallel step counting its longest branch, conditional stages
    included (a case may need them)."""
    profile = definition.deadline
    if profile is None:
        return []
    steps = list(definition.steps)
    if profile.starts_after_stage:
        accepting = next(i for i, step in enumerate(steps) if profile.starts_after_stage in _stage_ids(step))
        steps = steps[accepting + 1 :]
    path: list[Stage] = []
    for step in steps:
        branches = step.branches if isinstance(step, Parallel) else ((step,),)
        path.extend(max((_timed(branch) for branch in branches), key=_working_days))
    total = _working_days(path)
    if total <= profile.working_days:
        return []
    stages = " + ".join(f"{stage.id} {stage.deadline.working_days}" for stage in path if stage.deadline)
    return [
        f"the stage deadlines inside the {profile.working_days}-working-day period add up to {total} ({stages}), "
        f"more than the period ({profile.legal_basis}): shorten them"
    ]


def _stage_ids(step: Stage | Parallel) -> set[str]:
    return {step.id} if isinstance(step, Stage) else {stage.id for branch in step.branches for stage in branch}


def _timed(stages: Sequence[Stage]) -> list[Stage]:
    return [stage for stage in stages if stage.deadline]


def _working_days(stages: Sequence[Stage]) -> int:
    return sum(stage.deadline.working_days for stage in stages if stage.deadline)
