"""The determinism corpus covers every path a release could break (issue 20).

A change to the kernel is caught by replay only on a path some recorded history takes: a reminder-time change
went unnoticed while no history held a fired reminder. So every domain event type a workflow records, every
routing mode and every Workflow Update (each operation of the registry, and those the engine sends) must appear
in some history under ``tests/histories/``, and so must the new branch of every ``workflow.patched`` and a
handover (an administrator moving someone else's task). When one is missing, add a case that takes the path
(``tests/corpus_cases.py``) and record it (``.venv/bin/python -m tests.record_histories <name>``). Every case
there is recorded, and every file at the top of ``tests/histories/`` is some case's recording or is kept, with
its reason, as one today's code can no longer make.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from temporalio import workflow

from approvals.operations import OPERATIONS
from schemas.events import EventType
from schemas.process import RoutingMode
from tests.corpus_cases import CASES, NO_LONGER_RECORDED, recorded_files
from tests.corpus_coverage import HANDOVER_ROLE, HISTORIES, CorpusFacts, corpus_facts
from workflows.catalog import WORKFLOWS
from workflows.compatibility import NEWER_RELEASE_INPUT_PATCH
from workflows.kernel import guards
from workflows.rules import StageOutcome

WORKFLOW_SOURCES = Path(__file__).parent.parent / "workflows"

PATCHES_NO_HISTORY_CAN_HOLD: dict[str, str] = {
    NEWER_RELEASE_INPUT_PATCH: "its branch fails the workflow task (an older worker meets a field it does not know), "
    "so the marker is never committed; tests/test_rolling_deploy.py covers it",
}
"""Patches whose marker no recorded history can hold, with why."""


def patch_ids() -> set[str]:
    """Every id the workflow code passes to ``workflow.patched`` or ``workflow.deprecate_patch``, as a literal or as
    a module constant."""
    found: set[str] = set()
    for path in WORKFLOW_SOURCES.rglob("*.py"):
        module = ast.parse(path.read_text(encoding="utf-8"))
        constants = {
            target.id: node.value.value
            for node in module.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for call in ast.walk(module):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr in ("patched", "deprecate_patch")
                and call.args
            ):
                argument = call.args[0]
                found.add(argument.value if isinstance(argument, ast.Constant) else constants[argument.id])  # type: ignore[attr-defined]
    return found


@pytest.fixture(scope="module")
def facts() -> CorpusFacts:
    return corpus_facts()


def test_every_event_type_is_in_some_history(facts: CorpusFacts) -> None:
    """``case.cancelled`` too: the kernel records it when an operator cancels the workflow (``case.{status}``)."""
    assert sorted({t.value for t in EventType} - facts.event_types) == []


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


def test_no_refused_operation_lands_in_history_so_none_needs_recording(facts: CorpusFacts) -> None:
    """The kernel refuses in each update's validator: a refused request leaves no event in the history, so
    replay never meets one. Should a handler ever refuse after acceptance, this fails: record that path."""
    assert facts.refused_updates == set()


def failures_the_workflows_raise() -> set[str]:
    """The types of the ``ApplicationError`` a workflow raises to fail a case (an invalid definition or
    application), as written in ``workflows/``; the validators' refusals (``refusal.py``) fail no case."""
    found: set[str] = set()
    for path in WORKFLOW_SOURCES.rglob("*.py"):
        for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "ApplicationError":
                found |= {k.value.value for k in call.keywords if k.arg == "type" and isinstance(k.value, ast.Constant)}
    return found


def test_each_refusal_that_lands_in_history_is_in_some_history(facts: CorpusFacts) -> None:
    """A case refused at its start fails its workflow: that refusal is in the history, and replays."""
    expected = failures_the_workflows_raise()
    assert expected >= {"INVALID_DEFINITION", "INVALID_APPLICATION"}
    assert sorted(expected - facts.refused_cases) == []


def test_every_stage_outcome_is_in_some_history(facts: CorpusFacts) -> None:
    """Including a vote without quorum and a parallel branch abandoned by a return from the other."""
    outcomes = {value for name, value in vars(StageOutcome).items() if not name.startswith("_")}
    assert sorted(outcomes - facts.stage_outcomes) == []


def test_a_case_is_withdrawn_in_a_stage_of_each_routing_mode_and_while_awaiting_supplement(facts: CorpusFacts) -> None:
    expected = {mode.value for mode in RoutingMode} | {"awaiting_supplement"}
    assert sorted(expected - facts.withdrawn_in) == []


def test_a_supervised_case_continues_as_new_twice_and_starts_a_child_case(facts: CorpusFacts) -> None:
    assert [case for case, run in facts.runs.items() if run >= 3 and case in facts.with_children] != []


def test_every_workflow_is_recorded_to_its_end(facts: CorpusFacts) -> None:
    """Each statutory process (and the generic one) in a history that ends with the workflow completed."""
    names = {workflow._Definition.must_from_class(w).name for w in WORKFLOWS}
    assert sorted(names - facts.completed) == []


def test_the_new_branch_of_every_patch_is_in_some_history(facts: CorpusFacts) -> None:
    """A patch's new branch is what running cases take after the release: a change to it needs a history too."""
    expected = patch_ids() - set(PATCHES_NO_HISTORY_CAN_HOLD)
    assert len(expected) >= 9 and sorted(expected - facts.patches) == []


def test_a_patch_is_exempt_only_while_the_workflow_code_uses_it() -> None:
    assert sorted(set(PATCHES_NO_HISTORY_CAN_HOLD) - patch_ids()) == []


def test_a_handover_transfer_and_recall_are_in_some_history(facts: CorpusFacts) -> None:
    assert HANDOVER_ROLE == guards.HANDOVER_ROLE
    assert facts.handed_over == {"transfer", "recall"}


def test_every_case_is_recorded_and_every_recording_is_a_cases() -> None:
    """So the one recorder (``tests.record_histories``) can make every recording again with today's code, but
    for those it no longer can, each kept with its reason."""
    at_the_top = {path.name for path in HISTORIES.glob("*.json")}
    by_case = {name: {path.name for path in recorded_files(HISTORIES, name)} for name in CASES}
    kept = {f"{name}.json" for name in NO_LONGER_RECORDED}

    assert [name for name, files in by_case.items() if not files] == []
    assert sorted(at_the_top - set().union(*by_case.values()) - kept) == []
    assert sorted(kept - at_the_top) == []
    assert set(NO_LONGER_RECORDED).isdisjoint(CASES)
