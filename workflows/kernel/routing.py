"""Routing policies: how the tasks of a stage are laid out and when the stage is decided, one class per mode.

A new mode is one subclass of ``RoutingPolicy`` naming its ``RoutingMode``; it registers itself. The counting
rules themselves are pure functions in ``workflows.rules`` (unit-tested there); a policy only says which
apply and what a mode permits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from schemas.process import QuorumRule, RoutingMode, Stage
from workflows import rules


class RoutingPolicy:
    mode: ClassVar[RoutingMode]
    in_turn: ClassVar[bool] = False
    """Named assignees act one after the other: each task waits for the one before it."""
    accepts_added_signers: ClassVar[bool] = True
    """A holder may add a signer (加签) before or after themselves."""
    personal: ClassVar[bool] = False
    """A task cannot be transferred or delegated (a committee member's vote)."""
    closes_at_deadline: ClassVar[bool] = False
    """At the stage's deadline the tasks not acted on expire and the stage is decided without them."""
    second_decision: ClassVar[tuple[str, str] | None] = ("ALREADY_SIGNED", "has already signed at")
    """Reason code and wording refusing a second decision by the same person in one stage; None allows it."""

    _policies: ClassVar[dict[RoutingMode, RoutingPolicy]] = {}

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        RoutingPolicy._policies[cls.mode] = cls()

    @staticmethod
    def of(stage: Stage) -> RoutingPolicy:
        return RoutingPolicy._policies[stage.mode]

    def outcome(self, tasks: Sequence[rules.TaskFacts], quorum: QuorumRule | None) -> str | None:
        """The stage's outcome once decided, else None."""
        return rules.stage_outcome(self.mode, tasks, quorum)

    def tally(self, tasks: Sequence[rules.TaskFacts], quorum: QuorumRule | None) -> dict[str, int]:
        """The count recorded with the stage's result (empty unless votes are counted)."""
        return {}


class Single(RoutingPolicy):
    mode = RoutingMode.single


class All(RoutingPolicy):
    """会签: everyone signs."""

    mode = RoutingMode.all


class Sequential(RoutingPolicy):
    """依次: everyone signs, in the order named."""

    mode = RoutingMode.sequential
    in_turn = True


class AnyOf(RoutingPolicy):
    """或签: the first decision decides."""

    mode = RoutingMode.any
    accepts_added_signers = False
    second_decision = None


class Quorum(RoutingPolicy):
    """A committee vote with a threshold and minimum attendance."""

    mode = RoutingMode.quorum
    accepts_added_signers = False
    personal = True
    closes_at_deadline = True
    second_decision = ("DUPLICATE_VOTE", "has already voted in")

    def tally(self, tasks: Sequence[rules.TaskFacts], quorum: QuorumRule | None) -> dict[str, int]:
        if quorum is None:
            return {}
        return rules.tally_votes([task.decided for task in tasks if task.counts], quorum).as_dict()
