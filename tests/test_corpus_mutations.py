"""The corpus catches an unpatched change to the kernel's paths that matter for running cases (issue 20).

Each mutation below is a change someone could ship: reminders at 09:00 local time, 或签 waiting for everyone,
补正 no longer stopping the clock, the supervision handing over to a new run a review later. Applied to the
kernel in this process (unsandboxed replay runs the kernel's own modules, see
``approvals.audit.replay.SANDBOX_FOR_AUDIT``), the corpus replay must fail on the histories that took that path;
the same change behind ``workflow.patched`` must replay every history cleanly, because a history recorded
before the change has no marker for it and so takes the old path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow

from approvals.audit.history import history_from_json
from approvals.audit.replay import ReplayVerdict, replay_all
from schemas.process import RoutingMode
from workflows import rules
from workflows.kernel.clocks import Clock, Clocks
from workflows.kernel.routing import AnyOf
from workflows.kernel.supervision import Supervisor

HISTORIES = Path(__file__).parent / "histories"
CST = timezone(timedelta(hours=8))

Change = Callable[..., Any]


def reminder_at_nine(original: Change) -> Change:
    """The rehearsal's change: a reminder at 09:00 local time of the day it falls on."""

    def changed(self: Clocks, clock: Clock) -> datetime | None:
        at = original(self, clock)
        return at and at.astimezone(CST).replace(hour=9, minute=0, second=0, microsecond=0).astimezone(UTC)

    return changed


def any_waits_for_everyone(original: Change) -> Change:
    """或签 decided like 会签: the first decision no longer decides the stage."""
    return lambda self, tasks, quorum: rules.stage_outcome(RoutingMode.all, tasks, quorum)


def supplement_keeps_the_clock_running(original: Change) -> Change:
    """补正 (and excluded time) no longer stops the deadlines."""
    return lambda self, now: None


def hand_over_a_review_later(original: Change) -> Change:
    """The supervision continues as new one review later than the run's rounds allow."""

    async def changed(self: Supervisor) -> None:
        return None

    return changed


MUTATIONS: dict[str, tuple[type, str, Callable[[Change], Change], str]] = {
    "reminder-time": (Clocks, "_reminder_time", reminder_at_nine, "kernel-reminder-escalation-no-quorum"),
    "routing-mode": (AnyOf, "outcome", any_waits_for_everyone, "kernel-any-and-sequential"),
    "supplement-clock": (Clocks, "pause", supplement_keeps_the_clock_running, "kernel-supplement-then-approve"),
    "continue-as-new": (Supervisor, "_continue_as_new", hand_over_a_review_later, "supervision-two-continuations"),
}
"""name -> (class, method, the change, a history that must fail with it)."""


def patched(name: str, original: Change, change: Change) -> Change:
    """``change`` done right: only runs that recorded the patch marker (those started after it) take it."""
    changed = change(original)

    def guarded(*args: Any) -> Any:
        return changed(*args) if workflow.patched(f"corpus-mutation-{name}") else original(*args)

    return guarded


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, Any]]:
    return [
        (str(path.relative_to(HISTORIES)), history_from_json(path.read_text(encoding="utf-8")))
        for path in sorted(HISTORIES.rglob("*.json"))
    ]


async def replayed(corpus: list[tuple[str, Any]]) -> list[ReplayVerdict]:
    return await replay_all(corpus, sandbox=False)


@pytest.mark.parametrize("name", MUTATIONS)
async def test_an_unpatched_change_fails_the_corpus_replay(
    name: str, corpus: list[tuple[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, method, change, witness = MUTATIONS[name]
    monkeypatch.setattr(owner, method, change(getattr(owner, method)))

    failed = [v for v in await replayed(corpus) if not v.ok]

    assert any(witness in v.source for v in failed), [v.source for v in failed]
    assert {v.error_type for v in failed} == {"NondeterminismError"}, [v.message for v in failed]


@pytest.mark.parametrize("name", MUTATIONS)
async def test_the_same_change_behind_workflow_patched_replays_cleanly(
    name: str, corpus: list[tuple[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, method, change, _ = MUTATIONS[name]
    monkeypatch.setattr(owner, method, patched(name, getattr(owner, method), change))

    verdicts = await replayed(corpus)

    assert [v.source for v in verdicts if not v.ok] == []
