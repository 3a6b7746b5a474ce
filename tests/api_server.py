"""A live API for tests: the real app served by uvicorn on a free port, against the dev server,
real PostgreSQL and the engine's worker, with a tokens file of test principals.

A test module gets it as its ``api`` fixture with ``api = live_api_fixture("<temp dir name>")``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from temporalio.testing import WorkflowEnvironment

from api.app import ApiServer, create_app
from approvals.audit.checkpoint import DEV_SIGNING_KEY_FILE, generate_signing_key
from approvals.devstack.identities import DEV_ADMISSION
from approvals.devstack.stack import free_port
from approvals.settings import Settings, load_settings
from tests.fixtures.temporal import EngineWorker

PEOPLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "service": ("svc-portal", ("service",)),
    "other_service": ("svc-other", ("service",)),
    "applicant": ("ent-001", ("applicant",)),
    "officer": ("officer-1", ("one_window",)),
    "officer2": ("officer-2", ("one_window",)),
    "absent_officer": ("officer-absent", ("one_window",)),  # claims only in tests/test_handover.py
    "alice": ("alice", ("reviewer",)),
    "bob": ("bob", ("reviewer",)),
    "head": ("head-1", ("head",)),
    "auditor": ("auditor-1", ("auditor",)),
    "admin": ("admin-1", ("admin",)),
    "nobody": ("nobody", ("visitor",)),
    "planning_head": ("head-planning", ("unit_head",)),  # heads 规划建设局: tests/test_handover.py
    "planner": ("planner-1", ("planner",)),
    "surveyor": ("surveyor-1", ("surveyor",)),
}
UNITS = {"planning_head": "规划建设局", "planner": "规划建设局", "surveyor": "生态环境分局"}
"""The unit each principal's token names, where it is not ``test``."""
JWT_SECRET = "test-hs256-secret-of-at-least-32-bytes!"
JWT_ISSUER = "https://sso.example.test"
JWT_AUDIENCE = "approvals"


@dataclass
class LiveApi:
    url: str
    tokens: dict[str, str]
    settings: Settings
    task_queue: str
    rsa_private_pem: bytes

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}


def write_tokens_file(path: Path) -> dict[str, str]:
    """Half the entries carry the plain token (as `approvals dev` writes them), half only its SHA-256."""
    tokens, entries = {}, []
    for index, (who, (user_id, roles)) in enumerate(PEOPLE.items()):
        token = f"tok-{who}-{uuid.uuid4().hex}"
        tokens[who] = token
        unit = UNITS.get(who, "test")
        entry: dict[str, Any] = {"id": user_id, "name": user_id.title(), "unit": unit, "roles": list(roles)}
        if index % 2:
            entry["token_sha256"] = hashlib.sha256(token.encode()).hexdigest()
        else:
            entry["token"] = token
        entries.append(entry)
    path.write_text(json.dumps(entries))
    return tokens


@asynccontextmanager
async def live_api(
    env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    database_url: str,
    task_queue: str,
    directory: Path,
    **settings_overrides: Any,
) -> AsyncIterator[LiveApi]:
    """The live API; ``settings_overrides`` replace the test settings (e.g. ``callback_allowed_hosts=""``)."""
    tokens = write_tokens_file(directory / "tokens.json")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (directory / "jwt.pub.pem").write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signing_key = directory / DEV_SIGNING_KEY_FILE
    generate_signing_key(signing_key)
    settings = load_settings(
        database_url=database_url,
        temporal_task_queue=task_queue,
        api_host="127.0.0.1",
        api_port=free_port(),
        auth_tokens_file=directory / "tokens.json",
        jwt_hs256_secret=JWT_SECRET,
        jwt_rs256_public_key_path=directory / "jwt.pub.pem",
        jwt_issuer=JWT_ISSUER,
        jwt_audience=JWT_AUDIENCE,
        **{
            "callback_allowed_hosts": ".example.test",
            "audit_signing_key_path": signing_key,  # as `approvals dev` has one: the console's bundle download
            **DEV_ADMISSION,
            **settings_overrides,
        },
    )
    server = ApiServer(create_app(settings, pool=pool, temporal_client=env.client), settings)
    stop = asyncio.Event()
    serving = asyncio.create_task(server.serve_until(stop))
    for _ in range(200):
        if server.started or serving.done():
            break
        await asyncio.sleep(0.05)
    if serving.done():
        serving.result()
    try:
        yield LiveApi(f"http://127.0.0.1:{settings.api_port}", tokens, settings, task_queue, private_pem)
    finally:
        stop.set()
        await serving


def live_api_fixture(directory: str, **settings_overrides: Any) -> Callable[..., AsyncIterator[LiveApi]]:
    """A module-scoped ``api`` fixture: one live API (and engine worker on its own task queue) per module,
    its tokens and keys in a temporary directory named ``directory``; ``settings_overrides`` as ``live_api``."""

    @pytest_asyncio.fixture(scope="module")
    async def api(
        dev_server_env: WorkflowEnvironment,
        engine_worker: EngineWorker,
        db_pool: asyncpg.Pool,
        database_url: str,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> AsyncIterator[LiveApi]:
        async with engine_worker(dev_server_env) as task_queue:
            async with live_api(
                dev_server_env,
                db_pool,
                database_url,
                task_queue,
                tmp_path_factory.mktemp(directory),
                **settings_overrides,
            ) as live:
                yield live

    return api
