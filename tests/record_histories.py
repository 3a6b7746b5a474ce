"""Records the determinism corpus: the Temporal histories of the representative cases of ``tests.corpus_cases``.

    .venv/bin/python -m tests.record_histories                    # every case not in tests/histories/ yet
    .venv/bin/python -m tests.record_histories NAME ...           # only the cases named
    .venv/bin/python -m tests.record_histories --out DIR [NAME ...]   # into DIR (e.g. every case, afresh)

Starts what the test fixtures start (an embedded PostgreSQL, unless DATABASE_URL names a server, in a database
of its own; the engine's worker, sandboxed), then the Temporal dev server for the cases of ``ON_DEV_SERVER`` and
the time-skipping test server for those of ``ON_TIME_SKIPPING_SERVER``; drives each case to where its driver
stops, saves its history (``<name>.json``; ``<name>-run<N>.json`` per run of a case that continued as new,
``<name>-child<N>...`` for a child case) and finally replays every file it wrote through the code at hand.

It never overwrites a history: a recording of an earlier version is what keeps cases started on that version
replaying (``tests/histories/README.md``). Without names it records the cases that have no file yet; a case named
whose file exists is refused. To see that every case still records with today's code, record into a new
directory with ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from approvals.audit.replay import history_paths, replay_all
from approvals.devstack.embedded_pg import EmbeddedPostgres
from approvals.devstack.roles import provision_database
from approvals.devstack.stack import free_port
from approvals.logging import configure_logging
from approvals.migrate import migrate
from approvals.settings import load_settings
from schemas.case import CaseStatus, CaseView
from tests.corpus_cases import CASES, NO_LONGER_RECORDED, ON_DEV_SERVER, ON_TIME_SKIPPING_SERVER, recorded_files
from tests.corpus_processes import Recorded
from tests.fixtures.documents import CERTIFICATE_PATH, KEY_PATH
from tests.fixtures.postgres import TEST_ROLES
from worker import build_worker
from workflows.kernel import ApprovalWorkflow
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

HISTORIES = Path(__file__).parent / "histories"
BIN = Path(sys.executable).parent


async def saved_runs(env: WorkflowEnvironment, handle: WorkflowHandle[Any, CaseView]) -> list[WorkflowHistory]:
    """Every run of the case, first to last: a run that continued as new names the run it continued."""
    runs = [await env.client.get_workflow_handle(handle.id).fetch_history()]
    while continued := runs[0].events[0].workflow_execution_started_event_attributes.continued_execution_run_id:
        runs.insert(0, await env.client.get_workflow_handle(handle.id, run_id=continued).fetch_history())
    return runs


async def settled(env: WorkflowEnvironment, handle: WorkflowHandle[Any, CaseView]) -> str:
    """How the case stands once its workflow ended, or once it is under supervision (which goes on for years; its
    status alone does not say: an approved case may still be on its way there)."""
    for _ in range(600):
        status = (await handle.describe()).status
        if status in (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.FAILED):
            try:
                with env.auto_time_skipping_disabled():  # on the test server: the result, without jumping the clock
                    view = await handle.result()
            except WorkflowFailureError as failure:  # a case refused at its start (an invalid definition)
                return f"failed {getattr(failure.cause, 'type', failure.cause)}"
        elif status is WorkflowExecutionStatus.RUNNING:
            view = await handle.query(ApprovalWorkflow.view)
            if view.status is not CaseStatus.under_supervision:
                await asyncio.sleep(0.05)
                continue
        else:  # cancelled by an operator: its state as it ended
            view = await handle.query(ApprovalWorkflow.view)
        return f"{view.status.value}, {view.last_seq} domain events"
    raise AssertionError(f"case {handle.id} neither ended nor went under supervision")


async def save(
    env: WorkflowEnvironment, out: Path, name: str, handles: list[WorkflowHandle[Any, CaseView]]
) -> list[Path]:
    """Writes ``<name>.json`` (``<name>-run<N>.json`` per run of a case that continued as new), and the same
    for each child case as ``<name>-child<N>``; a file that exists is never overwritten."""
    written: list[Path] = []
    for number, handle in enumerate(handles):
        standing = await settled(env, env.client.get_workflow_handle(handle.id, result_type=CaseView))
        runs = await saved_runs(env, handle)
        stem = name if number == 0 else f"{name}-child{number}"
        for run_number, history in enumerate(runs, start=1):
            path = out / (f"{stem}-run{run_number}.json" if len(runs) > 1 else f"{stem}.json")
            with path.open("x", encoding="utf-8") as file:
                file.write(history.to_json() + "\n")
            written.append(path)
        events = sum(len(history.events) for history in runs)
        print(f"{stem}: {standing}, {len(runs)} run(s), {events} history events")
    return written


async def time_skipping() -> WorkflowEnvironment:
    """The Java test server, where timers fire as soon as the workflow is idle (reminders, supervision rounds)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=str(BIN / "temporal-test-server")
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for key in SEARCH_ATTRIBUTES},
        )
    )
    return env


async def dev_server() -> WorkflowEnvironment:
    """The dev server: the real Temporal server, so the histories are what production writes."""
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=["--sqlite-pragma", "journal_mode=WAL"],
    )


async def record_on(
    start: Callable[[], Awaitable[WorkflowEnvironment]], cases: dict[str, Recorded], pool: asyncpg.Pool, out: Path
) -> list[Path]:
    if not cases:
        return []
    written: list[Path] = []
    env = await start()
    try:
        settings = load_settings(
            temporal_task_queue=f"histories-{uuid.uuid4().hex[:8]}",
            webhook_timeout_seconds=2,
            document_signing_certificate_path=CERTIFICATE_PATH,  # the organ's certificate, as the tests' workers
            document_signing_key_path=KEY_PATH,
        )
        async with build_worker(env.client, settings, pool=pool, sandboxed=True):  # as the test suite's workers run
            for name, run in cases.items():
                began = time.monotonic()
                written += await save(env, out, name, await run(env, settings.temporal_task_queue))
                print(f"  ({time.monotonic() - began:.1f} s)")
    finally:
        await env.shutdown()
    return written


async def record(database_url: str, chosen: list[str], out: Path) -> list[Path]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=5)
    try:
        on_dev = {name: ON_DEV_SERVER[name] for name in chosen if name in ON_DEV_SERVER}
        timed = {name: ON_TIME_SKIPPING_SERVER[name] for name in chosen if name in ON_TIME_SKIPPING_SERVER}
        return await record_on(dev_server, on_dev, pool, out) + await record_on(time_skipping, timed, pool, out)
    finally:
        await pool.close()


async def with_database(server_url: str, chosen: list[str], out: Path) -> list[Path]:
    """A database of its own, set up as production's: migrated by the owner role, recorded by a worker
    connected as the app role (``server_url`` connects as a superuser, which creates both)."""
    name = f"approvals_histories_{uuid.uuid4().hex[:8]}"
    try:
        provisioned = await provision_database(server_url, name, TEST_ROLES, password=secrets.token_hex(16))
        await migrate(provisioned.owner_url, app_role=TEST_ROLES.app)
        return await record(provisioned.app_url, chosen, out)
    finally:
        admin = await asyncpg.connect(server_url)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def chosen_cases(names: list[str], out: Path) -> list[str]:
    """The cases to record: those named, else every case with no file in ``out`` yet; exits on a name it does
    not know or whose recording is there (histories are never overwritten)."""
    retired = {name: NO_LONGER_RECORDED[name] for name in names if name in NO_LONGER_RECORDED}
    if retired:
        raise SystemExit(f"no longer recorded: {retired}")
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        raise SystemExit(f"unknown case names {unknown}; known: {sorted(CASES)}")
    present = {name: [path.name for path in recorded_files(out, name)] for name in names or CASES}
    if names and any(present[name] for name in names):
        found = {name: files for name, files in present.items() if files}
        raise SystemExit(
            f"already recorded in {out}: {found}. A history is never overwritten: cases started on the code that "
            "recorded it replay through it. Record into a new directory (--out), or name a new case whose driver "
            "takes the changed path (tests/histories/README.md, 'Record')."
        )
    skipped = [name for name in CASES if not names and present[name]]
    if skipped:
        print(f"already recorded in {out}, left as they are: {len(skipped)} cases")
    return [name for name in (names or CASES) if not present[name]]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.record_histories", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="cases to record (default: every case not recorded yet)")
    parser.add_argument("--out", type=Path, default=HISTORIES, help="directory to write into (default: %(default)s)")
    args = parser.parse_args()
    configure_logging(load_settings(log_level="WARNING"))  # the worker's warnings and errors, on stderr
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  # progress shows as it happens
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = chosen_cases(args.names, args.out)
    if not chosen:
        print("nothing to record")
        return
    began = time.monotonic()
    configured = os.environ.get("DATABASE_URL")
    if configured:
        written = asyncio.run(with_database(configured, chosen, args.out))
    else:
        with tempfile.TemporaryDirectory() as directory, EmbeddedPostgres.start(Path(directory), free_port()) as pg:
            written = asyncio.run(with_database(pg.url, chosen, args.out))
    print(f"recorded {len(chosen)} cases, {len(written)} files, in {time.monotonic() - began:.0f} s")
    verdicts = asyncio.run(replay_all(history_paths(written)))
    failed = [verdict for verdict in verdicts if not verdict.ok]
    for verdict in failed:
        print(f"✘ {verdict.source} at history event {verdict.event_id}: {verdict.error_type}: {verdict.message}")
    print(f"replayed {len(verdicts)} histories through the code at hand: {len(failed)} failed")
    if failed:
        raise SystemExit(3)


if __name__ == "__main__":
    main()
