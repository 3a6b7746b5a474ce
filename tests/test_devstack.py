"""`approvals dev` as a user runs it: one command up, health green, Ctrl-C/SIGTERM leaves nothing behind,
a restart finds the same data, a taken port is named with the setting that moves it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus

from activities.signing import DEV_CERTIFICATE_FILE, check_signature, load_certificate
from approvals.cli.demo import SETTLED_STATUSES
from approvals.devstack.dev import CHILD_POLL_SECONDS
from approvals.devstack.embedded_pg import kill_process_tree
from approvals.devstack.identities import DEMO_PRINCIPALS
from approvals.devstack.supervision import RestartBudget
from tests.report_fold import demo_reports_equal_the_fold
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

pytestmark = pytest.mark.devstack

APPROVALS = Path(sys.executable).parent / "approvals"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class DevRun:
    """One `approvals dev` subprocess and what it should listen on."""

    data_dir: Path
    api_port: int
    temporal_port: int
    ui_port: int
    postgres_port: int
    process: subprocess.Popen[bytes] | None = None
    output_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.output_path = self.data_dir.parent / f"{self.data_dir.name}-{uuid.uuid4().hex[:6]}.out"

    @property
    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key
            not in {"DATABASE_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "LOG_FORMAT", "DATA_DIR"}
            | {"DOCUMENT_SIGNING_CERTIFICATE_PATH", "DOCUMENT_SIGNING_KEY_PATH"}  # a new user's: made on first start
        }
        env.update(
            API_PORT=str(self.api_port),
            TEMPORAL_PORT=str(self.temporal_port),
            TEMPORAL_UI_PORT=str(self.ui_port),
            POSTGRES_PORT=str(self.postgres_port),
        )
        return env

    def start(self) -> None:
        with self.output_path.open("wb") as output:
            self.process = subprocess.Popen(
                [str(APPROVALS), "dev", "--data-dir", str(self.data_dir)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self.env,
            )

    @property
    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def pids(self) -> dict[str, int]:
        pids: dict[str, int] = json.loads((self.data_dir / "dev.pids").read_text())
        return pids

    async def wait_healthy(self) -> dict[str, Any]:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, f"approvals dev exited early:\n{self.output}"
                try:
                    response = await http.get(f"http://127.0.0.1:{self.api_port}/health")
                    if response.status_code == 200:
                        health: dict[str, Any] = response.json()
                        return health
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"no healthy API within {START_TIMEOUT_SECONDS}s:\n{self.output}")

    def wait_exit(self) -> int:
        assert self.process is not None
        return self.process.wait(STOP_TIMEOUT_SECONDS)

    def stop(self, signal_number: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(signal_number)
        return self.wait_exit()

    def kill_everything(self) -> None:
        """Test clean-up only: whatever this run left, however the test failed."""
        candidates = []
        if self.process is not None:
            candidates.append(self.process.pid)
        try:
            candidates += self.pids().values()
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        for pid in candidates:
            kill_process_tree(pid)  # PostgreSQL's backends are in sessions of their own
        for process in processes_mentioning(self.data_dir):
            process.kill()


def processes_mentioning(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(str(data_dir) in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # it may exit between any two calls
        return False


def assert_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if running(pid)]
        time.sleep(0.1)
    assert not alive, f"still running: {[psutil.Process(pid).cmdline() for pid in alive]}"


NewRun = Callable[..., DevRun]


@pytest.fixture
def new_run(tmp_path: Path) -> Iterator[NewRun]:
    """Makes `approvals dev` runs on free ports (the same ports for every run of a test)."""
    runs: list[DevRun] = []
    api_port, temporal_port, ui_port, postgres_port = free_ports(4)

    def make(data_dir: Path = tmp_path / "data") -> DevRun:
        run = DevRun(data_dir, api_port, temporal_port, ui_port, postgres_port)
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.kill_everything()


@asynccontextmanager
async def temporal(run: DevRun) -> AsyncIterator[Client]:
    yield await Client.connect(f"127.0.0.1:{run.temporal_port}")


async def test_dev_starts_everything_and_sigterm_leaves_no_process(new_run: NewRun) -> None:
    run = new_run()
    started = time.monotonic()
    run.start()

    health = await run.wait_healthy()
    print(f"approvals dev healthy after {time.monotonic() - started:.1f}s (first start, initdb included)")

    assert health["status"] == "ok" and health["temporal"]["ok"] and health["postgres"]["ok"]
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"http://127.0.0.1:{run.ui_port}/")).status_code == 200
        # Metrics need no Prometheus: the address is printed and answers at once.
        metrics = await http.get(f"http://127.0.0.1:{run.api_port}/metrics")
        assert metrics.status_code == 200 and "approvals_state_up 1.0" in metrics.text, metrics.text[-2000:]
    assert f"http://127.0.0.1:{run.api_port}/metrics" in run.output
    assert f"127.0.0.1:{run.temporal_port}" in run.output
    assert f"http://127.0.0.1:{run.ui_port}" in run.output
    assert f"postgresql://approvals_app@127.0.0.1:{run.postgres_port}/approvals" in run.output
    assert str(run.data_dir.resolve()) in run.output
    # As in production: worker and API connect as the app role; the migrations made the owner role own every table.
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{run.postgres_port}/approvals")
    try:
        sessions = await connection.fetch(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'approvals' AND pid <> pg_backend_pid()"
        )
        owners = await connection.fetch("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()
    assert [row["usename"] for row in sessions] == ["approvals_app"]
    assert [row["tableowner"] for row in owners] == ["approvals_owner"]

    tokens = json.loads((run.data_dir / "dev-tokens.json").read_text())
    assert {role for entry in tokens for role in entry["roles"]} == {
        role for principal in DEMO_PRINCIPALS for role in principal.roles
    }
    assert all(set(entry) == {"token", "id", "name", "unit", "roles"} for entry in tokens)
    assert len({entry["token"] for entry in tokens}) == len(tokens)
    assert sum("committee_member" in entry["roles"] for entry in tokens) == 3

    pids = run.pids()
    assert set(pids) == {"approvals_dev", "temporal", "postgres", "postgres_supervisor"}
    postgres_backends = [child.pid for child in psutil.Process(pids["postgres"]).children(recursive=True)]

    assert run.stop(signal.SIGTERM) == 0, run.output

    assert_gone([*pids.values(), *postgres_backends])
    assert processes_mentioning(run.data_dir) == []


async def test_demo_runs_a_case_of_every_process_to_its_end(new_run: NewRun) -> None:
    """`approvals demo` as a new user runs it against a dev stack on other ports and another data dir: found
    through the same variables, a case of every process settles (a supervised one may show
    under_supervision), exit 0; about ten seconds."""
    run = new_run()
    run.start()
    await run.wait_healthy()
    demo = await asyncio.to_thread(
        subprocess.run,
        [str(APPROVALS), "demo"],
        env={**run.env, "DATA_DIR": str(run.data_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    ended = dict(re.findall(r"^([a-z-]+):DEMO-[0-9a-f]+: (\w+)$", demo.stdout, flags=re.MULTILINE))
    assert set(ended) == {"generic", "project-approval", "power-adjustment", "error-tolerance", "talent-policy"}
    assert set(ended.values()) <= SETTLED_STATUSES, ended
    assert "refused 409 NOT_ASSIGNEE" in demo.stdout  # the one denial the demo shows
    await decided_cases_have_their_signed_documents(run, demo.stdout)
    [auditor] = [
        entry["token"]
        for entry in json.loads((run.data_dir / "dev-tokens.json").read_text())
        if "auditor" in entry["roles"]
    ]
    database = f"postgresql://postgres@127.0.0.1:{run.postgres_port}/approvals"
    await demo_reports_equal_the_fold(f"http://127.0.0.1:{run.api_port}", auditor, database)
    assert run.stop(signal.SIGTERM) == 0, run.output


async def decided_cases_have_their_signed_documents(run: DevRun, demo_output: str) -> None:
    """Each decided case has its documents; each PDF shows its number in Chinese text (pdftotext), carries the
    dev organ certificate's signature and has the digest its `document.issued` event recorded."""
    expected = {
        "generic": "补正材料通知书",
        "project-approval": "准予行政许可决定书",
        "power-adjustment": "公告",
        "error-tolerance": "容错免责（减轻责任）认定书",
        "talent-policy": "人才政策决定书",
    }
    cases = re.findall(r"^(([a-z-]+):DEMO-[0-9a-f]+): \w+$", demo_output, flags=re.MULTILINE)
    certificate = load_certificate(run.data_dir / DEV_CERTIFICATE_FILE, None)
    assert certificate is not None
    tokens = json.loads((run.data_dir / "dev-tokens.json").read_text())
    [auditor] = [entry["token"] for entry in tokens if "auditor" in entry["roles"]]
    checked: dict[str, str] = {}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{run.api_port}", headers={"Authorization": f"Bearer {auditor}"}, timeout=30
    ) as http:
        for case_id, process in cases:
            documents: list[dict[str, Any]] = []
            for _ in range(100):  # issued once the event that made it due is recorded: moments after the status
                documents = (await http.get(f"/v1/cases/{case_id}/documents")).json()
                if expected[process] in [document["title"] for document in documents]:
                    break
                await asyncio.sleep(0.2)
            assert expected[process] in [document["title"] for document in documents], (case_id, documents)
            for document in documents:
                response = await http.get(f"/v1/cases/{case_id}/documents/{document['document_id']}")
                assert response.headers["content-type"] == "application/pdf"
                assert hashlib.sha256(response.content).hexdigest() == document["sha256"]
                assert (await check_signature(response.content, certificate)).valid, document
                if shutil.which("pdftotext"):
                    text = subprocess.run(["pdftotext", "-", "-"], input=response.content, capture_output=True)
                    assert document["number"] in text.stdout.decode().replace(" ", ""), document
                checked[document["number"]] = document["sha256"]
    connection = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{run.postgres_port}/approvals")
    try:
        rows = await connection.fetch(
            "SELECT payload->>'number' AS number, payload->>'sha256' AS sha256 FROM audit_events "
            "WHERE type = 'document.issued'"
        )
    finally:
        await connection.close()
    assert checked.items() <= {row["number"]: row["sha256"] for row in rows}.items()  # as the events recorded


async def test_restart_on_the_same_data_dir_finds_rows_workflows_and_tokens(new_run: NewRun) -> None:
    first = new_run()
    first.start()
    await first.wait_healthy()
    database_url = f"postgresql://postgres@127.0.0.1:{first.postgres_port}/approvals"
    connection = await asyncpg.connect(database_url)
    await connection.execute("CREATE TABLE devstack_probe (note text); INSERT INTO devstack_probe VALUES ('run 1')")
    await connection.close()
    async with temporal(first) as client:
        # Nobody polls this queue: the workflow stays open, recorded only in Temporal's SQLite file.
        await client.start_workflow("DevstackProbe", id="devstack-probe", task_queue="devstack-probe")
    tokens_before = (first.data_dir / "dev-tokens.json").read_text()
    assert first.stop(signal.SIGINT) == 0, first.output

    second = new_run(first.data_dir)
    started = time.monotonic()
    second.start()
    await second.wait_healthy()
    print(f"approvals dev healthy after {time.monotonic() - started:.1f}s (restart)")

    connection = await asyncpg.connect(database_url)
    assert await connection.fetchval("SELECT note FROM devstack_probe") == "run 1"
    await connection.close()
    async with temporal(second) as client:
        described = await client.get_workflow_handle("devstack-probe").describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
        listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace="default"))
        assert {key.name for key in SEARCH_ATTRIBUTES} <= set(listed.custom_attributes)
    assert (second.data_dir / "dev-tokens.json").read_text() == tokens_before
    assert second.stop(signal.SIGTERM) == 0, second.output
    assert processes_mentioning(second.data_dir) == []


async def healthy_again(run: DevRun, server: str, old_pid: int) -> float:
    """Seconds until ``server`` runs under a new PID and the API reports everything up again."""
    killed = time.monotonic()
    deadline = killed + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        assert run.process is not None and run.process.poll() is None, f"approvals dev exited:\n{run.output}"
        with suppress(FileNotFoundError, json.JSONDecodeError, KeyError):
            if run.pids()[server] != old_pid:
                break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"{server} was not started again within {START_TIMEOUT_SECONDS}s:\n{run.output}")
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            with suppress(httpx.TransportError):
                if (await http.get(f"http://127.0.0.1:{run.api_port}/health")).status_code == 200:
                    return time.monotonic() - killed
            await asyncio.sleep(0.1)
    raise AssertionError(f"the API did not report {server} up again:\n{run.output}")


async def a_case_is_started_and_decided(run: DevRun) -> None:
    """Through the API, as the demo principals: the worker and the API work with the servers of now."""
    tokens = {entry["id"]: entry["token"] for entry in json.loads((run.data_dir / "dev-tokens.json").read_text())}
    body = {
        "business_key": f"DEVSTACK-{uuid.uuid4().hex[:8]}",
        "title": "Billboard at Border Road 7",
        "applicant": {"id": "ent-applicant", "name": "Metals Co.", "unit": "enterprise", "roles": ["applicant"]},
        "definition": {
            "process": "generic",
            "title": "Outdoor advertising permit",
            "legal_basis": "Art. 4",
            "steps": [
                {
                    "kind": "stage",
                    "id": "review",
                    "title": "审查 (review)",
                    "legal_basis": "Art. 10",
                    "assignees": ["reviewer-planning"],
                }
            ],
        },
        "data": {"site": "Border Road 7"},
    }
    reviewer = {"Authorization": f"Bearer {tokens['reviewer-planning']}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{run.api_port}", timeout=30) as http:
        started = await http.post(
            "/v1/cases/generic", json=body, headers={"Authorization": f"Bearer {tokens['svc-one-window-portal']}"}
        )
        assert started.status_code == 201, started.text
        case_id = started.json()["case_id"]
        deadline = time.monotonic() + 30
        tasks: list[str] = []
        while not tasks and time.monotonic() < deadline:
            inbox = await http.get("/v1/inbox", headers=reviewer)
            assert inbox.status_code == 200, inbox.text
            tasks = [task["task_id"] for task in inbox.json()["items"] if task["task_id"].startswith(case_id + "/")]
            await asyncio.sleep(0.2)
        assert tasks, f"no task of {case_id} reached the reviewer's inbox:\n{run.output}"
        decided = await http.post(
            f"/v1/tasks/{tasks[0]}/decide", json={"decision": "approve", "comment": "同意"}, headers=reviewer
        )
        assert decided.status_code == 200, decided.text
        status = ""
        while status != "approved" and time.monotonic() < deadline:  # the case closes after the decision
            await asyncio.sleep(0.2)
            status = (await http.get(f"/v1/cases/{case_id}", headers=reviewer)).json()["case"]["status"]
        assert status == "approved", f"{case_id} is {status}:\n{run.output}"


@pytest.mark.fault
@pytest.mark.parametrize("server", ["postgres", "temporal"])
async def test_a_killed_server_is_started_again_and_cases_go_on(new_run: NewRun, server: str) -> None:
    """kill -9 of the PostgreSQL postmaster or of the Temporal dev server: `approvals dev` starts it again on
    the same data without a manual step, the worker and the API reconnect, and a new case runs to its decision."""
    run = new_run()
    run.start()
    await run.wait_healthy()
    await a_case_is_started_and_decided(run)
    old_pid = run.pids()[server]

    os.kill(old_pid, signal.SIGKILL)
    seconds = await healthy_again(run, server, old_pid)
    print(f"{server} killed: the stack is healthy again after {seconds:.1f}s")

    await a_case_is_started_and_decided(run)
    assert "starting it again" in run.output and "is back after" in run.output
    pids = run.pids()
    assert run.stop(signal.SIGTERM) == 0, run.output
    assert_gone(list(pids.values()))


def freeze(pid: int) -> list[psutil.Process]:
    """SIGSTOP to a server and all its processes: connections are accepted by the kernel and never answered."""
    frozen = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for process in frozen:
        process.suspend()
    return frozen


@pytest.mark.fault
@pytest.mark.parametrize("state", ["postgres frozen, a request stuck on it", "postgres being restarted"])
async def test_sigterm_stops_everything_within_ten_seconds_while_postgres_is_down(new_run: NewRun, state: str) -> None:
    """Stopping must not wait on a database that will not answer: uvicorn would wait for the stuck request
    without end, and the worker for its activities."""
    run = new_run()
    run.start()
    await run.wait_healthy()
    pids = run.pids()
    backends = [child.pid for child in psutil.Process(pids["postgres"]).children(recursive=True)]
    tokens = {entry["id"]: entry["token"] for entry in json.loads((run.data_dir / "dev-tokens.json").read_text())}
    async with httpx.AsyncClient(timeout=60) as http:
        if state.startswith("postgres frozen"):
            freeze(pids["postgres"])
            stuck = asyncio.ensure_future(
                http.get(
                    f"http://127.0.0.1:{run.api_port}/v1/inbox",
                    headers={"Authorization": f"Bearer {tokens['reviewer-planning']}"},
                )
            )
            await asyncio.sleep(1)
            assert not stuck.done(), "the inbox request should be waiting on the frozen database"
        else:
            os.kill(pids["postgres"], signal.SIGKILL)
            await asyncio.sleep(CHILD_POLL_SECONDS + 0.4)  # the stack has noticed and is starting it again
        with suppress(FileNotFoundError, json.JSONDecodeError):
            pids = {**pids, **{f"now {name}": pid for name, pid in run.pids().items()}}

        asked = time.monotonic()
        code = await asyncio.to_thread(run.stop, signal.SIGTERM)
        seconds = time.monotonic() - asked
        print(f"{state}: stopped {seconds:.1f}s after SIGTERM (exit status {code})")

    assert seconds < 10, run.output
    assert code == 0, run.output
    assert_gone([*pids.values(), *backends])
    assert processes_mentioning(run.data_dir) == []


async def test_sigterm_during_the_first_start_stops_within_ten_seconds(new_run: NewRun) -> None:
    """While PostgreSQL's data directory is being initialised: the start in progress is waited for only as
    long as the ten seconds allow, and nothing is left running."""
    run = new_run()
    run.start()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    started: dict[str, int] = {}
    while "temporal" not in started:  # Temporal is up, PostgreSQL's initdb runs
        assert time.monotonic() < deadline, run.output
        await asyncio.sleep(0.05)
        with suppress(FileNotFoundError, json.JSONDecodeError):
            started = run.pids()
    await asyncio.sleep(1)

    asked = time.monotonic()
    code = await asyncio.to_thread(run.stop, signal.SIGTERM)
    seconds = time.monotonic() - asked
    print(f"first start: stopped {seconds:.1f}s after SIGTERM (exit status {code})")

    assert seconds < 10, run.output
    assert code == 0, run.output
    deadline = time.monotonic() + 5
    while processes_mentioning(run.data_dir) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert processes_mentioning(run.data_dir) == []


async def test_a_server_that_cannot_be_started_again_stops_everything_with_its_log(new_run: NewRun) -> None:
    """The Temporal dev server is killed and its port taken before it is back: restarting it fails, and
    the stack stops with the server's log and a failure status instead of running half."""
    run = new_run()
    run.start()
    await run.wait_healthy()
    pids = run.pids()

    with closing(socket.socket()) as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        os.kill(pids["temporal"], signal.SIGKILL)
        deadline = time.monotonic() + 2
        while True:
            try:
                taken.bind(("127.0.0.1", run.temporal_port))
                break
            except OSError:
                assert time.monotonic() < deadline, "the killed server's port was not released"
                time.sleep(0.01)
        taken.listen()
        code = run.wait_exit()

    assert code != 0
    assert "the Temporal dev server exited while starting" in run.output
    assert "while restarting it" in run.output and "temporal.log" in run.output
    assert_gone(list(pids.values()))


async def test_a_sigkilled_dev_leaves_no_child_running(new_run: NewRun) -> None:
    """No chance to stop anything in order: Temporal gets its parent-death signal, PostgreSQL's supervisor
    sees its parent gone and shuts the server down; nothing may keep the ports or the data directory."""
    run = new_run()
    run.start()
    await run.wait_healthy()
    pids = run.pids()
    assert set(pids) == {"approvals_dev", "temporal", "postgres", "postgres_supervisor"}
    # Neither child is in our process group, so a Ctrl-C in a terminal reaches only `approvals dev`.
    dev_group = os.getpgid(pids["approvals_dev"])
    assert all(os.getpgid(pids[name]) != dev_group for name in ("temporal", "postgres", "postgres_supervisor"))
    postgres_backends = [child.pid for child in psutil.Process(pids["postgres"]).children(recursive=True)]

    os.kill(pids["approvals_dev"], signal.SIGKILL)
    assert run.wait_exit() == -signal.SIGKILL

    assert_gone([*pids.values(), *postgres_backends])
    assert processes_mentioning(run.data_dir) == []


def test_a_port_in_use_is_named_with_its_setting_and_nothing_starts(new_run: NewRun) -> None:
    run = new_run()
    with closing(socket.socket()) as taken:
        taken.bind(("127.0.0.1", run.api_port))
        taken.listen()
        run.start()
        code = run.wait_exit()

    assert code != 0
    assert f"port {run.api_port} is already in use (API_PORT)" in run.output
    assert "set API_PORT to another port" in run.output
    assert processes_mentioning(run.data_dir) == []
    assert not (run.data_dir / "dev.pids").exists()


def test_a_server_that_keeps_dying_is_restarted_three_times_a_minute_at_most() -> None:
    budget = RestartBudget()
    assert [budget.allows_another() for _ in range(4)] == [True, True, True, False]
    assert "4 times within 60s" in budget.exhausted()

    short = RestartBudget(limit=1, window_seconds=0.2)
    assert short.allows_another() and not short.allows_another()
    time.sleep(0.3)  # the earlier death has left the window
    assert short.allows_another()


class _Temporal:
    """Stands in for a Temporal client whose frontend answers (or not)."""

    def __init__(self, serving: bool | Exception) -> None:
        self.service_client = self
        self.serving = serving

    async def check_health(self, *, timeout: object = None) -> bool:
        if isinstance(self.serving, Exception):
            raise self.serving
        return self.serving


class _Pool:
    def __init__(self, answers: bool) -> None:
        self.answers = answers

    async def fetchval(self, query: str) -> int:
        if not self.answers:
            await asyncio.sleep(60)  # a database that hangs must not hang the health check
        return 1


@pytest.mark.parametrize(
    ("temporal_serving", "postgres_answers", "down"),
    [
        (True, True, set()),
        (RuntimeError("connection refused"), True, {"temporal"}),
        (False, True, {"temporal"}),
        (True, False, {"postgres"}),
        (RuntimeError("connection refused"), False, {"temporal", "postgres"}),
    ],
)
async def test_health_is_503_naming_what_is_down(
    monkeypatch: pytest.MonkeyPatch, temporal_serving: bool | Exception, postgres_answers: bool, down: set[str]
) -> None:
    import api.app
    from approvals.settings import load_settings

    monkeypatch.setattr(api.app, "HEALTH_TIMEOUT_SECONDS", 0.2)
    app = api.app.create_app(
        load_settings(),
        pool=_Pool(postgres_answers),
        temporal_client=_Temporal(temporal_serving),  # type: ignore[arg-type]
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            response = await http.get("/health")

    body = response.json()
    assert response.status_code == (503 if down else 200)
    assert body["status"] == ("unavailable" if down else "ok")
    assert {name for name in ("temporal", "postgres") if not body[name]["ok"]} == down
    for name in down:
        assert body[name]["error"]
    # A 503 tells load balancers and clients when to ask again, as the API's other 503s do.
    assert response.headers.get("Retry-After") == ("5" if down else None)
