"""Every saved history of a representative run (kernel and processes) replays against the current workflow code.

A change to the workflows that would make a running case non-deterministic fails here. The histories are
recorded by ``.venv/bin/python -m tests.record_histories``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows import WORKFLOWS, workflow_runner

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def workflow_id_of(history: dict) -> str:
    """The case id the kernel recorded (it is the workflow id): replay must run under the same id, since
    task ids in the recorded update requests are derived from it."""
    for event in history["events"]:
        attributes = event.get("activityTaskScheduledEventAttributes")
        if attributes and attributes["activityType"]["name"] == "record_events":
            batch = json.loads(base64.b64decode(attributes["input"]["payloads"][0]["data"]))
            return str(batch["case_id"])
    raise AssertionError("no record_events activity in the history")


def test_the_representative_runs_are_recorded() -> None:
    names = {path.stem for path in HISTORIES}
    assert {
        "kernel-single-approve", "kernel-all-with-reject", "kernel-quorum-vote",
        "kernel-supplement-then-approve", "kernel-return-and-rereview", "project-approval-full",
    } <= names  # fmt: skip


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_history_replays_without_non_determinism(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    history = WorkflowHistory.from_json(workflow_id_of(json.loads(text)), text)
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=workflow_runner())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
