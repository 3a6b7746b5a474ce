"""What the determinism corpus (``tests/histories/``) exercises.

    .venv/bin/python -m tests.corpus_coverage            # the kernel's lines and branches the replay runs
    .venv/bin/python -m tests.corpus_coverage --missing  # ... with the line numbers it never runs

Two views: :func:`corpus_facts` reads which domain event types, routing modes and Workflow Updates the recorded
histories hold (``tests/test_corpus_coverage.py`` fails when one is in none); the command replays every history
through the workflow code under coverage.py and prints which lines and branches of ``workflows/kernel/`` ran, so
a path no history takes is visible before a release changes it.
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HISTORIES = Path(__file__).parent / "histories"
KERNEL = Path(__file__).parent.parent / "workflows" / "kernel"
VALIDATORS = ("guards.py", "refusal.py")
"""Left out of the report: the Workflow Update validators, which replay never runs (an accepted update is in the
history; a refused one left nothing there), so no history can exercise them. Their tests are the kernel's."""
HANDOVER_ROLE = "admin"
"""``workflows.kernel.guards.HANDOVER_ROLE``, spelt out: :func:`measure` imports no kernel module before coverage.py
starts tracing (``tests/test_corpus_coverage.py`` checks the two agree)."""


@dataclass
class CorpusFacts:
    event_types: set[str] = field(default_factory=set)
    """Types of the domain events the histories record (the ``record_events`` activity inputs)."""
    routing_modes: set[str] = field(default_factory=set)
    """Modes of the stages that started (``stage.started`` payloads)."""
    updates: set[str] = field(default_factory=set)
    """Workflow Updates the histories accepted; a ``decide`` with decision ``return`` also counts as ``return``."""
    refused_updates: set[str] = field(default_factory=set)
    """Workflow Updates accepted and then failed (a refusal in the handler, after the validator let it in)."""
    patches: set[str] = field(default_factory=set)
    """Ids of the ``workflow.patched`` markers the histories recorded: the patched branches they took."""
    handed_over: set[str] = field(default_factory=set)
    """Workflow Updates sent by an administrator handing over someone else's task (``POST /v1/handovers``)."""
    stage_outcomes: set[str] = field(default_factory=set)
    """Outcomes of the stages that ended (``stage.completed``; ``abandoned`` for ``stage.abandoned``)."""
    withdrawn_in: set[str] = field(default_factory=set)
    """Routing modes of the stages open when a case was withdrawn; ``awaiting_supplement`` if it waited for 补正."""
    runs: dict[str, int] = field(default_factory=dict)
    """Each case that continued as new, with the highest run its histories reach (``case.continued``)."""
    with_children: set[str] = field(default_factory=set)
    """Cases that started a child case (``case.child_started``)."""
    completed: set[str] = field(default_factory=set)
    """Workflow types of the histories that end with the workflow completed: cases recorded to their end."""
    refused_cases: set[str] = field(default_factory=set)
    """Failure types of the histories that end with the workflow failed: a case its workflow refused to run."""


@dataclass
class _OpenStages:
    """What one history's case has open as its events go by: the routing mode of each stage, a 补正 request."""

    modes: dict[str, str] = field(default_factory=dict)
    awaiting_supplement: bool = False

    def follow(self, recorded: dict[str, Any], facts: CorpusFacts) -> None:
        kind, payload = recorded["type"], recorded["payload"]
        if kind == "stage.started":
            self.modes[recorded["stage_id"]] = payload["mode"]
        elif kind in ("stage.completed", "stage.abandoned"):
            self.modes.pop(recorded["stage_id"], None)
            facts.stage_outcomes.add(payload["outcome"] if kind == "stage.completed" else "abandoned")
        elif kind in ("case.supplement_requested", "case.supplemented"):
            self.awaiting_supplement = kind == "case.supplement_requested"
        elif kind == "case.withdrawn":
            facts.withdrawn_in |= set(self.modes.values())
            if self.awaiting_supplement:
                facts.withdrawn_in.add("awaiting_supplement")
        elif kind == "case.continued":
            facts.runs[recorded["case_id"]] = max(payload["run"], facts.runs.get(recorded["case_id"], 0))
        elif kind == "case.child_started":
            facts.with_children.add(recorded["case_id"])


def _decoded(payloads: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(payloads["payloads"][0]["data"]))


def history_facts(history: dict[str, Any], facts: CorpusFacts) -> None:
    """Adds what one history (``temporal workflow show --output json``) holds to ``facts``."""
    accepted: dict[str, str] = {}
    stages = _OpenStages()
    if history["events"][-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED":
        started = history["events"][0]["workflowExecutionStartedEventAttributes"]
        facts.completed.add(started["workflowType"]["name"])
    failed = history["events"][-1].get("workflowExecutionFailedEventAttributes")
    if failed:
        facts.refused_cases.add(failed["failure"].get("applicationFailureInfo", {}).get("type", "?"))
    for event in history["events"]:
        marker = event.get("markerRecordedEventAttributes")
        if marker and marker.get("markerName") == "core_patch":
            facts.patches.add(_decoded(marker["details"]["patch-data"])["id"])
        scheduled = event.get("activityTaskScheduledEventAttributes")
        if scheduled and scheduled["activityType"]["name"] == "record_events":
            for recorded in _decoded(scheduled["input"])["events"]:
                facts.event_types.add(recorded["type"])
                if recorded["type"] == "stage.started":
                    facts.routing_modes.add(recorded["payload"]["mode"])
                stages.follow(recorded, facts)
        update = event.get("workflowExecutionUpdateAcceptedEventAttributes", {}).get("acceptedRequest")
        if update:
            name = update["input"]["name"]
            facts.updates.add(name)
            accepted[update["meta"]["updateId"]] = name
            request = _decoded(update["input"]["args"])
            if name == "decide" and request.get("decision") == "return":
                facts.updates.add("return")
            if name in ("transfer", "recall") and HANDOVER_ROLE in request["actor"]["roles"]:
                facts.handed_over.add(name)
        completed = event.get("workflowExecutionUpdateCompletedEventAttributes")
        if completed and "failure" in completed.get("outcome", {}):
            facts.refused_updates.add(accepted.get(completed["meta"]["updateId"], "?"))


def corpus_facts(root: Path = HISTORIES) -> CorpusFacts:
    facts = CorpusFacts()
    for path in sorted(root.rglob("*.json")):
        history_facts(json.loads(path.read_text(encoding="utf-8")), facts)
    return facts


def measure(show_missing: bool) -> float:
    """Replays the corpus under coverage.py (without the sandbox, so the kernel's own modules are the ones
    traced), prints the kernel's report and returns its total percentage."""
    import asyncio

    import coverage

    measured = coverage.Coverage(
        branch=True, include=[str(KERNEL / "*.py")], omit=[str(KERNEL / name) for name in VALIDATORS], data_file=None
    )
    measured.start()
    try:
        from approvals.audit.replay import history_paths, replay_all

        verdicts = asyncio.run(replay_all(history_paths([HISTORIES]), sandbox=False))
    finally:
        measured.stop()
    failed = [v for v in verdicts if not v.ok]
    print(f"{len(verdicts)} histories replayed, {len(failed)} failed")
    for verdict in failed:
        print(f"  {verdict.source}: {verdict.error_type}: {verdict.message}")
    facts = corpus_facts()
    print(f"event types: {len(facts.event_types)}, routing modes: {sorted(facts.routing_modes)}")
    print(f"workflow updates: {sorted(facts.updates)}, handovers: {sorted(facts.handed_over)}")
    print(f"stage outcomes: {sorted(facts.stage_outcomes)}, withdrawn in: {sorted(facts.withdrawn_in)}")
    print(f"patched branches: {sorted(facts.patches)}; completed: {sorted(facts.completed)}")
    print(f"cases refused at their start: {sorted(facts.refused_cases)}")
    return measured.report(show_missing=show_missing, skip_empty=True, file=sys.stdout)


if __name__ == "__main__":
    measure(show_missing="--missing" in sys.argv[1:])
