"""Runs the engine's Temporal worker (every workflow and activity, on TEMPORAL_TASK_QUEUE) and, beside it,
the outbox dispatcher that delivers notifications, the sealer of audit checkpoints
(``approvals.audit.sealing``, when AUDIT_SIGNING_KEY_PATH is set) and the archiver of closed runs' histories
(``approvals.audit.archive``).

Thin on purpose: what runs is declared in ``workflows.catalog.WORKFLOWS`` and ``activities.build_activities``;
this module only wires the clients, the logging interceptor and the shutdown.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import signal
import subprocess
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import timedelta
from pathlib import Path

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker._worker import load_default_build_id

from activities import build_activities
from activities.notifications import OutboxDispatcher
from activities.signing import OrganSigner, SigningSetupError
from approvals.audit.archiver import HistoryArchiver
from approvals.audit.checkpoint import load_signing_key
from approvals.audit.sealing import Notary
from approvals.logging import ActivityLogContextInterceptor
from approvals.settings import Settings, SettingsError
from workflows.catalog import WORKER_SANDBOXED, WORKFLOWS, worker_workflows, workflow_runner

__all__ = ["build_worker", "deployment_config", "organ_signer", "run_worker", "stop_on_signals", "worker_build_id"]

log = structlog.get_logger(__name__)

GRACEFUL_SHUTDOWN = timedelta(seconds=10)
"""How long running activities get to finish after a stop request before they are cancelled."""


class EngineWorker:
    """The Temporal worker and its background loops (the outbox dispatcher, the checkpoint sealer, the history
    archiver), run together with ``async with``.

    On exit the worker drains first (its last records may queue notifications), then the loops stop; whatever
    is still queued is delivered, sealed and archived by the next worker to start.
    """

    def __init__(
        self, worker: Worker, dispatcher: OutboxDispatcher, loops: Sequence[AbstractAsyncContextManager[None]]
    ) -> None:
        self.worker = worker
        self.dispatcher = dispatcher
        self.loops = loops
        self._running = AsyncExitStack()

    async def __aenter__(self) -> EngineWorker:
        async with AsyncExitStack() as starting:
            await starting.enter_async_context(self.dispatcher.running())
            for loop in self.loops:
                await starting.enter_async_context(loop)
            await starting.enter_async_context(self.worker)
            self._running = starting.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._running.aclose()


def organ_signer(settings: Settings) -> OrganSigner:
    """The organ's signer of official documents; a missing or unusable certificate stops the worker, naming
    the setting (DOCUMENT_SIGNING_CERTIFICATE_PATH, DOCUMENT_SIGNING_KEY_PATH)."""
    try:
        return OrganSigner.load(
            settings.document_signing_certificate_path,
            settings.document_signing_key_path,
            settings.document_signing_passphrase,
        )
    except SigningSetupError as error:
        raise SettingsError(str(error)) from None


SOURCE = Path(__file__).parent
"""Where the engine's code is: its git commit names the build."""


def worker_build_id(settings: Settings, checkout: Path = SOURCE) -> str:
    """WORKER_BUILD_ID, or the package version and the git commit of the code (``0.1.0+3f2c1ab9e0d4``); outside a
    git checkout (an image built without ``.git``), the SDK's hash of the loaded code instead: the same code
    gives the same id, so a restart never looks like a new build."""
    if settings.worker_build_id:
        return settings.worker_build_id
    try:
        version = importlib.metadata.version("alashankou-approvals")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=checkout, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+{commit or 'code.' + load_default_build_id()[:12]}"


def deployment_config(settings: Settings) -> WorkerDeploymentConfig:
    """The worker's Worker Deployment version, and whether the server routes tasks by it (WORKER_VERSIONING).

    With versioning on, a workflow type without its own behaviour auto-upgrades: supervision and policy cases run
    for years, and pinning them would keep every old build running as long; they move to the current build at
    their next task and rely on ``workflow.patched`` (the determinism corpus checks that). Project approval is
    pinned (``workflows.catalog.worker_workflows``): its cases run for weeks and finish on the build they started
    on. Without versioning no workflow names a behaviour: the server refuses one from an unversioned worker.
    """
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(settings.worker_deployment_name, worker_build_id(settings)),
        use_worker_versioning=settings.worker_versioning,
        default_versioning_behavior=(
            VersioningBehavior.AUTO_UPGRADE if settings.worker_versioning else VersioningBehavior.UNSPECIFIED
        ),
    )


def build_worker(
    client: Client, settings: Settings, *, pool: asyncpg.Pool, sandboxed: bool = WORKER_SANDBOXED
) -> EngineWorker:
    """The worker for all of the engine's workflows and activities, on TEMPORAL_TASK_QUEUE, with the
    dispatcher delivering the outbox where WEBHOOK_ALLOWED_NETWORKS allows. ``sandboxed=True`` runs the
    workflow code in the sandbox, as the test suite's workers do (``workflows.catalog.WORKER_SANDBOXED``)."""
    worker = Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=worker_workflows(versioned=settings.worker_versioning),
        activities=build_activities(
            pool,
            publication_webhook_url=settings.publication_webhook_url,
            calendar_path=settings.calendar_path,
            organ=settings.document_organ(),
            signer=organ_signer(settings),
        ),
        workflow_runner=workflow_runner(sandboxed=sandboxed),
        interceptors=[ActivityLogContextInterceptor()],
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        max_cached_workflows=settings.worker_max_cached_workflows,
        deployment_config=deployment_config(settings),
    )
    dispatcher = OutboxDispatcher(
        pool,
        signing_secret=settings.webhook_signing_secret,
        timeout_seconds=settings.webhook_timeout_seconds,
        destinations=settings.webhook_destinations(),
    )
    archiver = HistoryArchiver(client, pool, settings.temporal_task_queue)
    loops = [archiver.archiving(settings.history_archive_interval_seconds)]
    if settings.audit_signing_key_path is not None:
        notary = Notary(pool, load_signing_key(settings.audit_signing_key_path))
        loops.append(notary.sealing(settings.audit_checkpoint_interval_seconds))
    else:
        log.warning("audit.checkpoints_disabled", reason="AUDIT_SIGNING_KEY_PATH is not set")
    return EngineWorker(worker, dispatcher, loops)


async def run_worker(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    client: Client | None = None,
    pool: asyncpg.Pool | None = None,
    apply_migrations: bool = False,
) -> None:
    """Polls TEMPORAL_TASK_QUEUE until ``stop`` is set, then shuts down gracefully.

    Args:
        stop: Set it to stop; when ``None``, SIGTERM and SIGINT stop the worker.
        client: Reuse this Temporal client (``approvals dev``); otherwise connect with the settings, serving
            metrics on WORKER_METRICS_ADDRESS when set.
        pool: Reuse this PostgreSQL pool; otherwise create one from DATABASE_URL (closed on exit).
        apply_migrations: Apply pending migrations first (advisory-locked: safe with several workers).

    Raises:
        SettingsError, TemporalUnreachableError, DatabaseUnreachableError: at start, naming the setting.
    """
    from approvals import db, temporal

    async with AsyncExitStack() as stack:
        if stop is None:
            stop = stack.enter_context(stop_on_signals())
        if pool is None:
            settings.require_database_url()  # a missing setting is reported before any network wait
        if client is None:
            client = await temporal.connect(settings, metrics_address=settings.worker_metrics_address)
        if pool is None:
            pool = await db.create_pool(settings)
            stack.push_async_callback(pool.close)
        if apply_migrations:
            from approvals.migrate import migrate

            applied = await migrate(pool)
            log.info("migrations.applied", versions=applied)
        worker = build_worker(client, settings, pool=pool)
        version = worker.worker.config()["deployment_config"]
        log.info(
            "worker.started",
            task_queue=settings.temporal_task_queue,
            deployment=version.version.deployment_name if version else None,
            build_id=version.version.build_id if version else None,
            versioning=settings.worker_versioning,
            namespace=settings.temporal_namespace,
            workflows=[w.__name__ for w in WORKFLOWS],
            metrics=f"http://{settings.worker_metrics_address}/metrics" if settings.worker_metrics_address else None,
        )
        async with worker:
            await stop.wait()
            log.info("worker.stopping")
        log.info("worker.stopped")


class stop_on_signals:  # used like a function: `with stop_on_signals() as stop:`
    """Context manager: an event set by SIGTERM or SIGINT (handlers restored on exit)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __enter__(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        for number in self.SIGNALS:
            loop.add_signal_handler(number, self._received, number)
        return self.event

    def _received(self, number: int) -> None:
        log.info("signal.received", signal=signal.Signals(number).name)
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for number in self.SIGNALS:
            loop.remove_signal_handler(number)


if __name__ == "__main__":  # `python worker.py`: the worker alone, configured like `approvals worker`
    from approvals.logging import configure_logging
    from approvals.settings import load_settings
    from approvals.tracing import configure_tracing

    worker_settings = load_settings()
    configure_logging(worker_settings)
    configure_tracing(worker_settings, service="approvals-worker")
    worker_settings.require_webhook_signing_secret()
    asyncio.run(run_worker(worker_settings, apply_migrations=True))
