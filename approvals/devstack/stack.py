"""A disposable production-shaped stack in one directory, for fault tests and benchmarks.

Real servers and real processes, each of which can be killed, stopped and started again on its own:
an embedded PostgreSQL, the Temporal CLI dev server (SQLite persistence), any number of
``approvals worker`` processes and an ``approvals api`` process, all configured through the same
environment variables as in production. ``approvals dev`` runs worker and API inside one process; here
they are separate processes precisely so that one of them can die while the others go on.

    async with Stack.open(tmp_dir) as stack:
        worker = await stack.start_worker()
        await stack.start_api()
        ...
        stack.kill_worker(worker)            # SIGKILL, as the OOM killer would
        await stack.stop_postgres(); await stack.start_postgres()
        await stack.restart_temporal()

Every child dies with the process that started it (parent-death signal), so a crashed test leaves no
orphans behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from activities.destinations import LOOPBACK_NETWORKS
from approvals.devstack.dev import TemporalDevServer, _parent_death_signal
from approvals.devstack.embedded_pg import EmbeddedPostgres
from approvals.devstack.identities import DEV_ADMISSION, DemoPrincipal, write_dev_tokens
from approvals.devstack.keys import with_dev_keys
from approvals.devstack.roles import DEV_ROLES, provision_database
from approvals.migrate import migrate
from approvals.settings import Settings, load_settings

DATABASE = "approvals"
READY_TIMEOUT_SECONDS = 60.0
STACK_WEBHOOK_SECRET = "stack-webhook-secret-for-tests-and-benchmarks"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ChildProcess:
    """An ``approvals`` command running as our child, its output in ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    root: Path
    settings: Settings
    postgres: EmbeddedPostgres
    temporal: TemporalDevServer
    client: Client
    tokens: dict[str, str]
    """Bearer token of every demo principal (``approvals.devstack.identities.DEMO_PRINCIPALS``), by principal id."""
    workers: list[ChildProcess] = field(default_factory=list)
    api: ChildProcess | None = None

    # ------------------------------------------------------------------ life cycle

    @classmethod
    @asynccontextmanager
    async def open(
        cls, root: Path, *, principals: Sequence[DemoPrincipal] = (), **settings: Any
    ) -> AsyncIterator[Stack]:
        """Starts PostgreSQL (migrated) and Temporal in ``root``; stops every child on exit.

        The API knows the demo principals and ``principals`` (e.g. a benchmark's many reviewers), each with a
        token in :attr:`tokens`. ``settings`` override the defaults (e.g. ``log_level="INFO"``); ports are
        always free ones.
        """
        root.mkdir(parents=True, exist_ok=True)
        base = load_settings(
            **{
                "temporal_task_queue": f"stack-{uuid.uuid4().hex[:8]}",
                "temporal_port": free_port(),
                "temporal_ui_port": free_port(),
                "postgres_port": free_port(),
                "api_port": free_port(),
                "log_format": "json",
                "log_level": "WARNING",
                "webhook_signing_secret": STACK_WEBHOOK_SECRET,
                "auth_tokens_file": root / "tokens.json",
                **DEV_ADMISSION,
                "webhook_allowed_networks": LOOPBACK_NETWORKS,  # the tests' receivers listen on 127.0.0.1
                **settings,
            }
        )
        base = with_dev_keys(base, root)  # the worker signs official documents: the dev organ's certificate
        entries = write_dev_tokens(root / "tokens.json")
        entries += [
            {"token": secrets.token_urlsafe(24), **asdict(principal), "roles": list(principal.roles)}
            for principal in principals
        ]
        (root / "tokens.json").write_text(json.dumps(entries, ensure_ascii=False))
        tokens = {entry["id"]: entry["token"] for entry in entries}
        temporal = TemporalDevServer(base, root)
        temporal.start()
        postgres: EmbeddedPostgres | None = None
        stack: Stack | None = None
        try:
            postgres = await asyncio.to_thread(EmbeddedPostgres.start, root / "postgres", base.postgres_port)
            # As production: migrated by the owner role; workers and the API connect as the app role.
            provisioned = await provision_database(postgres.url, DATABASE)
            await migrate(provisioned.owner_url, app_role=DEV_ROLES.app)
            full = base.model_copy(
                update={
                    "database_url": provisioned.app_url,
                    "migration_database_url": provisioned.owner_url,
                    "temporal_address": temporal.address,
                }
            )
            client = await temporal.wait_ready(full)
            stack = cls(root=root, settings=full, postgres=postgres, temporal=temporal, client=client, tokens=tokens)
            yield stack
        finally:
            if stack is not None:
                for child in [*stack.workers, *([stack.api] if stack.api else [])]:
                    stack._terminate(child)
            await asyncio.to_thread(temporal.stop)
            if postgres is not None:
                await asyncio.to_thread((stack.postgres if stack else postgres).stop)

    def environment(self) -> dict[str, str]:
        """The environment an ``approvals`` process of this stack runs with (production variable names)."""
        s = self.settings
        return {
            **os.environ,
            "TEMPORAL_ADDRESS": s.temporal_address,
            "TEMPORAL_NAMESPACE": s.temporal_namespace,
            "TEMPORAL_TASK_QUEUE": s.temporal_task_queue,
            "DATABASE_URL": s.database_url or "",
            "API_HOST": "127.0.0.1",
            "API_PORT": str(s.api_port),
            "AUTH_TOKENS_FILE": str(s.auth_tokens_file),
            "WEBHOOK_SIGNING_SECRET": s.webhook_signing_secret,
            "CALLBACK_ALLOWED_HOSTS": s.callback_allowed_hosts,
            "FREEFORM_DEFINITIONS": str(s.freeform_definitions).lower(),
            "APPLICANTS_BY_STARTER": json.dumps(s.applicants_by_starter),
            "COMMITTEE_ROSTERS": json.dumps(
                {kind: roster.model_dump(mode="json") for kind, roster in s.committee_rosters.items()}
            ),
            "WEBHOOK_ALLOWED_NETWORKS": s.webhook_allowed_networks,
            **{
                name: str(path)
                for name, path in (
                    ("DOCUMENT_SIGNING_CERTIFICATE_PATH", s.document_signing_certificate_path),
                    ("DOCUMENT_SIGNING_KEY_PATH", s.document_signing_key_path),
                    ("AUDIT_SIGNING_KEY_PATH", s.audit_signing_key_path),
                )
                if path is not None
            },
            "LOG_FORMAT": s.log_format.value,
            "LOG_LEVEL": s.log_level,
            "PYTHONUNBUFFERED": "1",
        }

    def _spawn(self, name: str, *arguments: str) -> ChildProcess:
        log_path = self.root / f"{name}.log"
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "approvals.cli", *arguments],
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_parent_death_signal(),  # noqa: PLW1509 - no threads of ours touch the fork
            )
        return ChildProcess(name, process, log_path)

    @staticmethod
    def _terminate(child: ChildProcess, timeout_seconds: float = 15.0) -> None:
        if not child.alive():
            return
        child.process.send_signal(signal.SIGTERM)
        try:
            child.process.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()

    # ------------------------------------------------------------------ workers and API

    async def start_worker(self, name: str | None = None) -> ChildProcess:
        """An ``approvals worker`` process, returned once it polls the task queue."""
        child = self._spawn(name or f"worker-{len(self.workers) + 1}", "worker", "--no-migrate")
        self.workers.append(child)
        await self._until(lambda: self._polling(child), child, "poll the task queue")
        return child

    def kill_worker(self, child: ChildProcess) -> None:
        """SIGKILL: no graceful shutdown, activities in flight are simply lost to their timeouts."""
        child.process.kill()
        child.process.wait()

    async def stop_worker(self, child: ChildProcess) -> None:
        """SIGTERM: the worker drains (graceful shutdown) and exits."""
        await asyncio.to_thread(self._terminate, child, 60.0)

    async def start_api(self) -> ChildProcess:
        """The ``approvals api`` process, returned once ``GET /health`` answers."""
        self.api = self._spawn("api", "api")

        async def healthy() -> bool:
            async with httpx.AsyncClient(timeout=2) as http:
                try:
                    return (await http.get(f"{self.api_url}/health")).status_code == 200
                except httpx.TransportError:
                    return False

        await self._until(healthy, self.api, "answer GET /health")
        return self.api

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    def headers(self, principal_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[principal_id]}"}

    async def _polling(self, child: ChildProcess) -> bool:
        """Whether ``child`` is among the workflow pollers of the task queue (identity ``<pid>@<host>``)."""
        try:
            described = await self.client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=self.settings.temporal_namespace,
                    task_queue=TaskQueue(name=self.settings.temporal_task_queue),
                )
            )
        except Exception:  # the server may be restarting
            return False
        return any(poller.identity.startswith(f"{child.pid}@") for poller in described.pollers)

    async def _until(self, ready: Any, child: ChildProcess, what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not await ready():
            if not child.alive():
                raise RuntimeError(f"{child.name} exited (code {child.process.returncode}):\n{child.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.name} did not {what} in {READY_TIMEOUT_SECONDS:g}s:\n{child.log_tail()}")
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------------ servers

    async def stop_postgres(self) -> None:
        """A clean fast shutdown of PostgreSQL (open transactions rolled back); the data stays."""
        await asyncio.to_thread(self.postgres.stop)

    async def start_postgres(self) -> None:
        """PostgreSQL again on the same data directory and port."""
        self.postgres = await asyncio.to_thread(
            EmbeddedPostgres.start, self.root / "postgres", self.settings.postgres_port
        )

    async def restart_temporal(self, down_seconds: float = 0.0) -> None:
        """Stops the dev server (SIGTERM), waits ``down_seconds``, starts it again on the same SQLite file."""
        await asyncio.to_thread(self.temporal.stop)
        await asyncio.sleep(down_seconds)
        self.temporal.start()
        await self.temporal.wait_ready(self.settings)

    async def pool(self) -> asyncpg.Pool:
        """A new pool on the stack's database as the app role, which the workers and the API use (the caller
        closes it)."""
        return await asyncpg.create_pool(self.settings.database_url, min_size=1, max_size=5)
