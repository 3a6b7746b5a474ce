"""Webhooks never reach an internal address the operator did not allow (issue 14, SSRF).

Under production defaults (WEBHOOK_ALLOWED_NETWORKS empty) a callback to loopback, the unspecified address,
link-local (cloud metadata), private or multicast addresses, in any spelling, is refused by the dispatcher
before any connection: receivers on 127.0.0.1 and ::1 count the connections made to them, and an ordinary
HTTP client reaching the same URL shows each URL does lead to them. The refused row is ``failed`` with the
reason, no attempt counted, and is never tried again. Allowing loopback (as `approvals dev` does) delivers.
At start, what needs no lookup (IP literals, numeric forms, ``localhost``) is a 422 naming ``callback_url``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.destinations import LOOPBACK_NETWORKS
from activities.notifications import OutboxDispatcher, WebhookRetry
from approvals.settings import Settings, SettingsError, load_settings
from approvals.storage.outbox import enqueue
from schemas.notifications import Channel, Notification
from tests.api_server import LiveApi, live_api
from tests.cases import definition, stage
from tests.fixtures.webhooks import WebhookReceiver, listening

PRODUCTION = load_settings()  # WEBHOOK_ALLOWED_NETWORKS unset: public addresses only
DEV = load_settings(webhook_allowed_networks=LOOPBACK_NETWORKS)  # what `approvals dev` and the test stack use

# The spellings of an address on this machine that were accepted before; {v4} and {v6} are the ports of
# the receivers on 127.0.0.1 and ::1.
LOCAL_SPELLINGS = {
    "127.0.0.1": ("http://127.0.0.1:{v4}/hooks", "a loopback address"),
    "[::1]": ("http://[::1]:{v6}/hooks", "a loopback address"),
    "0.0.0.0": ("http://0.0.0.0:{v4}/hooks", "an unspecified address"),
    "localhost": ("http://localhost:{v4}/hooks", "a loopback address"),
    "decimal 2130706433": ("http://2130706433:{v4}/hooks", "a loopback address"),
    "hex 0x7f.1": ("http://0x7f.1:{v4}/hooks", "a loopback address"),
    "IPv4-mapped IPv6": ("http://[::ffff:127.0.0.1]:{v4}/hooks", "a loopback address"),
}


def notification(recipient: str) -> Notification:
    return Notification(
        idempotency_key=f"generic:SSRF/{uuid.uuid4().hex}/1/{recipient}",
        case_id=f"generic:SSRF-{uuid.uuid4().hex[:8]}",
        channel=Channel.webhook,
        kind="case.status_changed",
        recipient=recipient,
        subject="状态变更",
        data={"status": "approved"},
    )


@pytest_asyncio.fixture
async def receivers() -> AsyncIterator[tuple[WebhookReceiver, WebhookReceiver]]:
    async with listening("127.0.0.1") as v4, listening("::1") as v6:
        yield v4, v6


async def deliver_once(settings: Settings, pool: asyncpg.Pool, recipient: str) -> asyncpg.Record:
    """Queues one webhook, lets a dispatcher with ``settings`` make its passes, returns the row."""
    message = notification(recipient)
    await enqueue(pool, [message])
    dispatcher = OutboxDispatcher(
        pool,
        signing_secret="test-secret",
        timeout_seconds=2,
        destinations=settings.webhook_destinations(),
        retry=WebhookRetry(attempts=3, first_delay_seconds=0.0),
    )
    try:
        for _ in range(3):  # as many passes as a retried row could use
            await dispatcher.deliver_due()
    finally:
        await dispatcher.aclose()
    row = await pool.fetchrow("SELECT * FROM outbox WHERE idempotency_key = $1", message.idempotency_key)
    assert row is not None
    return row


@pytest.mark.parametrize("spelling", LOCAL_SPELLINGS)
async def test_every_spelling_of_this_machine_is_refused_without_a_connection(
    spelling: str, receivers: tuple[WebhookReceiver, WebhookReceiver], db_pool: asyncpg.Pool
) -> None:
    template, kind = LOCAL_SPELLINGS[spelling]
    v4, v6 = receivers
    url = template.format(v4=v4.port, v6=v6.port)
    async with httpx.AsyncClient() as unchecked:  # the URL does lead to a receiver here
        assert (await unchecked.post(url, content=b"{}")).status_code == 200
    reached = v4.connections + v6.connections
    assert reached == 1

    row = await deliver_once(PRODUCTION, db_pool, url)

    assert v4.connections + v6.connections == reached  # no connection made
    assert (row["status"], row["attempts"]) == ("failed", 0)
    assert row["last_error"].startswith(f"refused, nothing sent to {url}: ")
    assert f"is {kind}, not in WEBHOOK_ALLOWED_NETWORKS" in row["last_error"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
        ("http://[fe80::1]/hooks", "fe80::1 is a link-local address"),
        ("http://10.0.0.5/hooks", "10.0.0.5 is a private address"),
        ("http://[fd00::5]/hooks", "fd00::5 is a private address"),
        ("http://224.0.0.1/hooks", "224.0.0.1 is a multicast address"),
        ("http://240.0.0.1/hooks", "240.0.0.1 is a reserved address"),
        ("http://100.64.0.1/hooks", "100.64.0.1 is not a globally routable address"),
    ],
)
async def test_internal_networks_are_refused_with_the_reason(url: str, reason: str, db_pool: asyncpg.Pool) -> None:
    row = await deliver_once(PRODUCTION, db_pool, url)

    assert (row["status"], row["attempts"]) == ("failed", 0)
    assert reason in row["last_error"]


async def test_the_postgresql_port_is_refused(database_url: str, db_pool: asyncpg.Pool) -> None:
    postgres = urlsplit(database_url)
    url = f"http://{postgres.hostname}:{postgres.port}/"

    row = await deliver_once(PRODUCTION, db_pool, url)

    assert (row["status"], row["attempts"]) == ("failed", 0)
    assert "loopback address, not in WEBHOOK_ALLOWED_NETWORKS" in row["last_error"]


async def test_a_refused_row_is_never_tried_again(
    receivers: tuple[WebhookReceiver, WebhookReceiver], db_pool: asyncpg.Pool
) -> None:
    v4, _ = receivers
    row = await deliver_once(PRODUCTION, db_pool, v4.url)
    await db_pool.execute(  # even once its retry time would have come
        "UPDATE outbox SET next_attempt_at = now() - interval '1 hour' WHERE idempotency_key = $1",
        row["idempotency_key"],
    )

    dispatcher = OutboxDispatcher(
        db_pool, signing_secret="s", timeout_seconds=2, destinations=PRODUCTION.webhook_destinations()
    )
    await dispatcher.deliver_due()
    await dispatcher.aclose()
    again = await db_pool.fetchrow("SELECT * FROM outbox WHERE idempotency_key = $1", row["idempotency_key"])

    assert (again["status"], again["attempts"], again["last_error"]) == ("failed", 0, row["last_error"])
    assert v4.connections == 0


@pytest.mark.parametrize("spelling", ["127.0.0.1", "[::1]", "localhost", "IPv4-mapped IPv6"])
async def test_loopback_allowed_as_in_the_dev_stack_is_delivered_with_its_own_host_name(
    spelling: str, receivers: tuple[WebhookReceiver, WebhookReceiver], db_pool: asyncpg.Pool
) -> None:
    template, _ = LOCAL_SPELLINGS[spelling]
    v4, v6 = receivers
    url = template.format(v4=v4.port, v6=v6.port)

    row = await deliver_once(DEV, db_pool, url)

    assert (row["status"], row["attempts"], row["last_error"]) == ("delivered", 1, None)
    [request] = v4.received + v6.received
    assert request.headers["host"] == urlsplit(url).netloc  # connected to the checked address, named as given


async def test_allowing_one_network_allows_no_other(
    receivers: tuple[WebhookReceiver, WebhookReceiver], db_pool: asyncpg.Pool
) -> None:
    v4, v6 = receivers
    only_v4 = load_settings(webhook_allowed_networks="127.0.0.1/32")

    delivered = await deliver_once(only_v4, db_pool, v4.url)
    refused = await deliver_once(only_v4, db_pool, v6.url)

    assert delivered["status"] == "delivered" and len(v4.received) == 1
    assert refused["status"] == "failed" and v6.connections == 0
    assert "::1 is a loopback address" in refused["last_error"]


# --- settings ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["localhost", "10.0.0.1/8", "10.0.0.0/33"])
def test_a_malformed_network_is_named_at_start_up(value: str) -> None:
    with pytest.raises(SettingsError, match=f"WEBHOOK_ALLOWED_NETWORKS: .*{value}.* is not a network in CIDR form"):
        load_settings(webhook_allowed_networks=f"127.0.0.0/8, {value}")


def test_an_internal_publication_url_fails_at_start_up_unless_its_network_is_allowed() -> None:
    with pytest.raises(SettingsError, match="PUBLICATION_WEBHOOK_URL: .*10.1.2.3 is a private address"):
        load_settings(publication_webhook_url="https://10.1.2.3/disclosure")

    allowed = load_settings(
        publication_webhook_url="https://10.1.2.3/disclosure", webhook_allowed_networks="10.1.0.0/16"
    )
    assert allowed.publication_webhook_url == "https://10.1.2.3/disclosure"


# --- at start: what needs no lookup is refused before the case exists ------------------------------------


@pytest_asyncio.fixture(scope="module")
async def production_api(
    dev_server_env: WorkflowEnvironment,
    db_pool: asyncpg.Pool,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[LiveApi]:
    """The API with production's callback settings: any host name, no internal network allowed."""
    directory: Path = tmp_path_factory.mktemp("ssrf-api")
    async with live_api(
        dev_server_env, db_pool, database_url, f"ssrf-{uuid.uuid4().hex[:8]}", directory, callback_allowed_hosts=""
    ) as api:
        yield api


def start_body(callback_url: str) -> dict[str, Any]:
    return {
        "business_key": f"SSRF-{uuid.uuid4().hex[:10]}",
        "title": "Billboard at Border Road 7",
        "applicant": {"id": "ent-001", "name": "Alashankou Metals Co.", "unit": "enterprise", "roles": ["applicant"]},
        "definition": definition(stage("review", assignees=("alice",))).model_dump(mode="json"),
        "data": {},
        "callback_url": callback_url,
    }


@pytest.mark.parametrize(
    ("callback_url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
        ("http://[::1]/hook", "::1 is a loopback address"),
        ("http://0.0.0.0/hook", "0.0.0.0 is an unspecified address"),
        ("http://localhost:8080/hook", "localhost is always a loopback address"),
        ("http://2130706433/hook", "127.0.0.1 is a loopback address"),
        ("http://0x7f.1/hook", "127.0.0.1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/hook", "::ffff:7f00:1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
        ("http://10.0.0.5:5432/", "10.0.0.5 is a private address"),
    ],
)
async def test_an_internal_callback_url_is_422_naming_the_field_at_start(
    callback_url: str, reason: str, production_api: LiveApi
) -> None:
    async with httpx.AsyncClient(base_url=production_api.url, timeout=30) as http:
        response = await http.post(
            "/v1/cases/generic", json=start_body(callback_url), headers=production_api.headers("service")
        )

    assert response.status_code == 422, response.text
    problem = response.json()
    [error] = [error for error in problem["errors"] if error["field"] == "callback_url"]
    assert reason in error["message"] and "WEBHOOK_ALLOWED_NETWORKS" in error["message"]
