"""The archiver: copies closed workflow runs' histories into PostgreSQL before Temporal's retention deletes them.

A workflow cannot read its own closed history, so the archiver runs beside the worker: each pass asks
Temporal's visibility for the runs of the worker's task queue that closed since the last pass (completed,
failed, terminated, timed out, cancelled, or continued as new), fetches each history and stores it with
its SHA-256 (:mod:`~approvals.audit.archive`). ``approvals audit archive`` runs one pass, or archives the
closed runs of named cases (which needs no visibility).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import UTC, timedelta

import asyncpg
import structlog
from pydantic import BaseModel, ConfigDict
from temporalio.client import Client, WorkflowExecution, WorkflowHistory
from temporalio.service import RPCError

from approvals.audit.archive import quoted, to_archive
from approvals.audit.history import run_id as history_run_id
from approvals.audit.live import fetch_runs
from approvals.audit.periodic import periodically
from approvals.storage import archive as storage

log = structlog.get_logger(__name__)

VISIBILITY_LAG = timedelta(hours=1)
"""How far before the latest archived close each pass looks again: visibility records a closed run a little
after it closed, and a run whose fetch failed once is taken again by the next passes."""


class ArchivePass(BaseModel):
    """What one pass did: closed runs visibility listed, newly archived, archived before, not fetched."""

    model_config = ConfigDict(frozen=True)

    task_queue: str
    listed: int
    archived: int
    already: int
    failed: int


class HistoryArchiver:
    """Archives the closed runs of one task queue (the worker's) into PostgreSQL."""

    def __init__(self, client: Client, pool: asyncpg.Pool, task_queue: str) -> None:
        self.client = client
        self.pool = pool
        self.task_queue = task_queue

    async def _closed_runs(self, everything: bool) -> list[WorkflowExecution]:
        query = f"TaskQueue = {quoted(self.task_queue)} AND ExecutionStatus != 'Running'"
        since = None if everything else await storage.last_closed_at(self.pool, self.task_queue)
        if since is not None:
            query += f" AND CloseTime >= {quoted((since - VISIBILITY_LAG).astimezone(UTC).isoformat())}"
        return [execution async for execution in self.client.list_workflows(query)]

    async def archive_pass(self, *, everything: bool = False) -> ArchivePass:
        """Archives every closed run not archived yet (``everything``: looks at every closed run of the queue,
        not only those that closed since the last archived one). Idempotent: a second pass stores nothing."""
        closed = await self._closed_runs(everything)
        done = await storage.archived_among(self.pool, [(run.id, run.run_id) for run in closed])
        archived = failed = 0
        for run in closed:
            if (run.id, run.run_id) in done:
                continue
            try:
                history = await self.client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
            except RPCError as error:  # deleted meanwhile, or Temporal away: the next pass tries again
                log.warning("audit.archive_fetch_failed", workflow_id=run.id, run_id=run.run_id, error=str(error))
                failed += 1
                continue
            archived += await store(self.pool, history, run.run_id)
        result = ArchivePass(
            task_queue=self.task_queue,
            listed=len(closed),
            archived=archived,
            already=len(done),
            failed=failed,
        )
        if archived or failed:
            log.info("audit.histories_archived", **result.model_dump())
        return result

    def archiving(self, interval_seconds: float) -> AbstractAsyncContextManager[None]:
        """Runs a pass every ``interval_seconds`` while the block runs (the first at once); survives Temporal or
        PostgreSQL going away, like the checkpoint sealer."""
        return periodically(
            self.archive_pass, interval_seconds, name="history-archiver", unavailable="audit.archive_unavailable"
        )


async def archive_case(client: Client, pool: asyncpg.Pool, case_id: str) -> int:
    """Archives the closed runs of one case that Temporal still has (any task queue, no visibility needed);
    how many were not archived before."""
    runs = await fetch_runs(client, case_id)
    return sum([await store(pool, history, history_run_id(history) or "") for history in runs])


async def store(pool: asyncpg.Pool, history: WorkflowHistory, run_id: str) -> bool:
    """Archives one run's history if it is closed; False when it is open or was archived before."""
    archived = to_archive(history, run_id)
    return archived is not None and await storage.insert_history(pool, archived)
