"""Replaying histories through the current workflow code (Temporal's ``Replayer``, no server), in processes."""

from __future__ import annotations

import json
import os
import re
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import WorkflowHistory
from temporalio.worker import Interceptor, Replayer

from approvals.audit.bundle import HISTORY_FILE, MANIFEST_FILE, bundle_run_files, is_bundle
from approvals.audit.history import history_from_json, workflow_id_of
from schemas.converter import data_converter
from workflows.catalog import WORKFLOWS, workflow_runner


class ReplayVerdict(BaseModel):
    """Whether a history replays through the current workflow code."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="File, bundle or case the history came from.")
    workflow_id: str
    run_id: str | None
    ok: bool
    error_type: str | None = None
    message: str | None = None
    event_id: int | None = Field(None, description="History event where replay diverged, when the error says.")
    history_events: int = 0


_EVENT_ID = re.compile(r"HistoryEvent\(id: (\d+)|event[ _]?id[\s:=#]+(\d+)", re.IGNORECASE)
_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


_PATCH_ID = re.compile(r"patch marker encountered for change (\S+?),")


def _diverged_at(message: str, history: WorkflowHistory) -> int | None:
    """The history event where replay diverged: the id core names (``HistoryEvent(id: 35, ...)``), or, for
    a patch marker the code no longer asks for, the marker event recording that change id."""
    match = _EVENT_ID.search(message)
    if match:
        return int(match.group(1) or match.group(2))
    patch = _PATCH_ID.search(message)
    if patch:
        for event in history.events:
            if event.HasField("marker_recorded_event_attributes") and patch.group(1).encode() in (
                event.marker_recorded_event_attributes.SerializeToString()
            ):
                return event.event_id
    return None


def _short(message: str) -> str:
    """Core wraps the reason in a Debug dump of the failure; the quoted message is what a person reads."""
    match = _CORE_MESSAGE.search(message)
    return match.group(1) if match else message


HistorySource = WorkflowHistory | Path | str | tuple[str, WorkflowHistory]
"""A history, a history file, a bundle directory (every run in it), or ``(source name, history)``."""


def _load_histories(item: HistorySource) -> list[tuple[str, WorkflowHistory]]:
    """The runs ``item`` holds, each named for the verdicts: a bundle of a continued case holds several."""
    if isinstance(item, WorkflowHistory):
        if not item.workflow_id:
            item = WorkflowHistory(workflow_id_of(item) or "", item.events)
        return [(item.workflow_id, item)]
    if isinstance(item, tuple):
        return [item]
    path = Path(item)
    if is_bundle(path):
        manifest = json.loads((path / MANIFEST_FILE).read_text())
        workflow_id = manifest.get("workflow_id") or manifest["case_id"]
        names = bundle_run_files(manifest)
        return [
            (
                str(path) if len(names) == 1 else f"{path} (run {number} of {len(names)})",
                history_from_json((path / name).read_text(), workflow_id=workflow_id),
            )
            for number, name in enumerate(names, start=1)
        ]
    history = history_from_json(path.read_text())
    if not history.workflow_id:
        history = WorkflowHistory(path.stem, history.events)
    return [(str(path), history)]


def history_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Expands directories: bundles count once, other ``*.json`` files are histories."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if is_bundle(path) or path.is_file():
            found.append(path)
        elif path.is_dir():
            for child in sorted(path.rglob("*.json")):
                if is_bundle(child.parent):
                    if child.name == HISTORY_FILE:
                        found.append(child.parent)
                else:
                    found.append(child)
        else:
            raise FileNotFoundError(f"no such history file or bundle: {path}")
    return found


def make_replayer(
    workflows: Sequence[type] | None = None, *, sandbox: bool = True, interceptors: Sequence[Interceptor] = ()
) -> Replayer:
    """A replayer with the worker's workflows and converter, by default in the sandbox, as CI replays the corpus.

    ``sandbox=False`` runs the workflow code without the sandbox, as the worker runs it: the same
    command-by-command comparison against the history, without the sandbox's import restrictions (see
    :data:`SANDBOX_FOR_AUDIT` and ``workflows.catalog.WORKER_SANDBOXED``).
    """
    return Replayer(
        workflows=list(WORKFLOWS if workflows is None else workflows),
        data_converter=data_converter,
        workflow_runner=workflow_runner(sandboxed=sandbox),
        interceptors=interceptors,
    )


SANDBOX_FOR_AUDIT = False
"""Whether ``approvals audit replay`` runs the workflow code in the sandbox (``--sandbox`` forces it).

Why an audit replay may leave the sandbox out (measured: it costs ~3/4 of the replay time, because every
workflow run re-imports the workflow modules into a fresh sandbox and re-validates their classes):

- **What detects non-determinism is the same either way.** Temporal's core compares the commands the
  workflow code issues with the events in the history, command by command; the sandboxed and the
  unsandboxed runner drive the very same workflow instance code and hand core the same commands. A
  change made without ``workflow.patched`` fails with the same ``NondeterminismError`` at the same history
  event (``tests/test_replay.py`` replays the corpus and the unguarded change both ways).
- **What the sandbox adds is a check of the code, not of the history.** It makes a call that is not
  deterministic (``datetime.now()``, ``random``, I/O, ...) or a module-level side effect fail the workflow
  task. That is a property of the workflow code, and the code is held to it where it is exercised: CI
  replays the determinism corpus in the sandbox (``tests/test_replay.py``, ``tests/test_determinism_corpus``,
  through :func:`make_replayer` and :func:`replay`, whose default stays ``sandbox=True``), and the test
  suite's workers run every workflow the tests run in it. The worker itself runs without it, for the same
  reasons (``workflows.catalog.WORKER_SANDBOXED``).
- **Isolation between runs** (fresh module globals per replayed history) matters only to code that
  keeps mutable module-level state; ``workflows/`` keeps none (module globals are constant stage
  definitions), and ``schemas`` is passed through the sandbox anyway.

What is given up, then: an audit replay of code that calls a forbidden API on a path a history
exercises reports that history clean when its commands match, where the sandbox would report the failed
workflow task. Use ``approvals audit replay --sandbox`` to replay as CI does (e.g. to audit a workflow code
change before it ships).
"""


async def replay(
    histories: Iterable[HistorySource] | AsyncIterable[HistorySource],
    *,
    workflows: Sequence[type] | None = None,
    sandbox: bool = True,
) -> AsyncIterator[ReplayVerdict]:
    """Replays each history through the workflow code (no server needed), yielding one verdict each.

    Each workflow run is a replay of its own: a bundle of a case that continued as new yields one verdict
    per run (a continued run's history starts with the run it continued and the state it carried in).
    Histories are read lazily, one at a time, so thousands of files stream through in constant memory.
    An unreadable file is a failed verdict, not an exception. One replayer (one core worker) replays them
    all; ``sandbox=False``: see :data:`SANDBOX_FOR_AUDIT`.
    """
    replayer = make_replayer(workflows, sandbox=sandbox)
    sources: deque[tuple[str, int]] = deque()  # the replayer works through histories one at a time, in order
    broken: list[ReplayVerdict] = []

    async def items() -> AsyncIterator[HistorySource]:
        if isinstance(histories, AsyncIterable):
            async for item in histories:
                yield item
        else:
            for item in histories:
                yield item

    async def loaded() -> AsyncIterator[WorkflowHistory]:
        async for item in items():
            try:
                loaded_runs = _load_histories(item)
                for _, history in loaded_runs:
                    history.run_id  # noqa: B018 - raises when the history has no start event
            except Exception as error:  # noqa: BLE001 - reported as a verdict
                broken.append(
                    ReplayVerdict(
                        source=str(item),
                        workflow_id="",
                        run_id=None,
                        ok=False,
                        error_type=type(error).__name__,
                        message=str(error),
                    )
                )
                continue
            for source, history in loaded_runs:
                sources.append((source, len(history.events)))
                yield history

    async with replayer.workflow_replay_iterator(loaded()) as results:
        async for result in results:
            while broken:
                yield broken.pop(0)
            history = result.history
            source, count = sources.popleft() if sources else (history.workflow_id, len(history.events))
            failure = result.replay_failure
            yield ReplayVerdict(
                source=source,
                workflow_id=history.workflow_id,
                run_id=history.run_id,
                ok=failure is None,
                error_type=type(failure).__name__ if failure else None,
                message=_short(str(failure)) if failure else None,
                event_id=_diverged_at(str(failure), history) if failure else None,
                history_events=count,
            )
    for verdict in broken:
        yield verdict


async def replay_all(
    histories: Iterable[HistorySource] | AsyncIterable[HistorySource],
    *,
    workflows: Sequence[type] | None = None,
    sandbox: bool = True,
) -> list[ReplayVerdict]:
    return [verdict async for verdict in replay(histories, workflows=workflows, sandbox=sandbox)]


def _replay_chunk(paths: list[str], sandbox: bool = True) -> list[dict[str, Any]]:
    """Runs in a worker process: replays a chunk of files, returns JSON-ready verdicts."""
    import asyncio

    async def run() -> list[dict[str, Any]]:
        return [v.model_dump(mode="json") for v in await replay_all(paths, sandbox=sandbox)]

    return asyncio.run(run())


def replay_jobs(files: int, jobs: int | None = None) -> int:
    """Processes worth starting for ``files`` history files: ``jobs`` if given, else one per CPU, but one
    per :data:`FILES_PER_PROCESS` files at most (starting a process and importing the engine costs about
    as much as replaying that many histories), and never more than there are files."""
    if jobs is not None and jobs > 0:
        return max(1, min(jobs, files))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, files // FILES_PER_PROCESS))


FILES_PER_PROCESS = 40


def replay_parallel(paths: Sequence[Path | str], *, jobs: int, sandbox: bool = True) -> Iterable[ReplayVerdict]:
    """Replays files in ``jobs`` processes (replay is CPU-bound Python; one process uses one core).

    Each process keeps one replayer for every chunk it gets and reads its files itself (the parent sends
    paths, not histories); chunks are small enough that the processes finish together.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    chunk = max(1, min(200, len(paths) // (jobs * 4) or 1))
    chunks = [[str(p) for p in paths[i : i + chunk]] for i in range(0, len(paths), chunk)]
    # spawn, not fork: the parent may already run Temporal's core runtime threads, which fork does not copy.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_replay_chunk, c, sandbox) for c in chunks]
        for future in as_completed(futures):
            for item in future.result():
                yield ReplayVerdict.model_validate(item)
