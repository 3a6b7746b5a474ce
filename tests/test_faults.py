"""Fault tests (issue 7, 1–4): real servers and processes of an :class:`approvals.devstack.stack.Stack` are killed,
stopped and restarted while many cases are mid-flight, and every case must still complete with nothing lost
and nothing doubled.

Cases are driven only through the stack's HTTP API: a service starts them with business keys and a callback
URL on a local webhook receiver, and twenty concurrent desks work through them one decision at a time, round
robin, so that every case is somewhere in the middle when the fault hits. A call that fails during a fault
(503, timeout, connection refused) is retried with the same Idempotency-Key; a decision whose outcome the
client never saw is recognised afterwards (the retried update answers with the first result, or, once the
task is closed, the timeline shows who decided it). Afterwards every count is checked against what was
sent: Temporal's verdict and the ``cases`` projection, the audit log (seq 1..n, hash chain), one
``task.decided`` per decision a client was told succeeded, the tasks projection, the outbox and the webhook
deliveries per idempotency key.

Run them alone with ``pytest -m fault tests/test_faults.py``.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from approvals.audit.chain import verify_chain
from approvals.devstack.stack import Stack
from approvals.storage.queries import case_events

pytestmark = [pytest.mark.fault]

SERVICE = "svc-one-window-portal"
SIGNERS = ("reviewer-planning", "reviewer-environment", "reviewer-safety")
ROLE_HOLDER = {"one_window": "one-window-officer", "approving_official": "approving-official"}
DESKS = 20
DECISIONS_PER_CASE = 1 + len(SIGNERS) + 1
FINAL = {"approved", "approved_with_conditions", "rejected", "withdrawn", "cancelled"}
UNKNOWN_OUTCOME = {502, 503, 504}
REFUSED_AS_DONE = {"TASK_NOT_OPEN", "ALREADY_SIGNED", "CASE_CLOSED", "STALE_TASK_VERSION"}
LOAD_TIMEOUT_SECONDS = 600.0
"""Generous: a SIGKILLed worker's recording activities come back only after their 30-second start-to-close
timeout, and a machine running other work is slow."""

DEFINITION: dict[str, Any] = {
    "process": "generic",
    "title": "Bonded warehouse extension",
    "legal_basis": "Art. 4",
    "steps": [
        {
            "kind": "stage",
            "id": "acceptance",
            "title": "受理 (acceptance)",
            "legal_basis": "Art. 6",
            "candidate_roles": ["one_window"],
        },
        {
            "kind": "stage",
            "id": "joint_review",
            "title": "会签 (joint review)",
            "legal_basis": "Art. 10",
            "mode": "all",
            "assignees": list(SIGNERS),
        },
        {
            "kind": "stage",
            "id": "decision",
            "title": "决定 (decision)",
            "legal_basis": "Art. 12",
            "candidate_roles": ["approving_official"],
        },
    ],
    "deadline": {"working_days": 20, "extension_working_days": 10, "extension_role": "head"},
}


def expected_status(index: int) -> str:
    """Every tenth case is rejected by the approving official, the others approved."""
    return "rejected" if index % 10 == 0 else "approved"


# --- webhook receiver -----------------------------------------------------------------------------------


@dataclass
class Receiver:
    """Counts webhook deliveries per X-Approvals-Idempotency-Key, with the moment each arrived."""

    port: int = 0
    deliveries: list[tuple[str, float]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/approvals"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()
            headers: dict[str, str] = {}
            while (line := (await reader.readline()).decode().rstrip("\r\n")) != "":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            await reader.readexactly(int(headers.get("content-length", "0")))
            self.deliveries.append((headers.get("x-approvals-idempotency-key", "?"), time.monotonic()))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def counts(self) -> collections.Counter[str]:
        return collections.Counter(key for key, _ in self.deliveries)

    def received_before(self, moment: float) -> set[str]:
        return {key for key, at in self.deliveries if at <= moment}


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    async with server:
        yield found


# --- the load generator ---------------------------------------------------------------------------------


@dataclass
class Load:
    """Starts ``size`` cases and works them to their end through the HTTP API, DESKS at a time."""

    stack: Stack
    callback_url: str
    size: int
    prefix: str
    http: httpx.AsyncClient = field(init=False)
    cases: dict[str, int] = field(default_factory=dict)
    """case id -> index (its expected status)."""
    run_ids: dict[str, str] = field(default_factory=dict)
    decided: dict[str, str] = field(default_factory=dict)
    """task id -> principal, for every decision the client was told (or recognised) succeeded."""
    recognised: int = 0
    """Decisions whose first outcome was unknown and that a retry (same key) or the timeline confirmed."""
    answers: collections.Counter[str] = field(default_factory=collections.Counter)
    """Every answer the clients got: HTTP status, or the transport error's name."""
    failures: list[str] = field(default_factory=list)
    finished: set[str] = field(default_factory=set)
    started_at: float = field(default_factory=time.monotonic)

    async def __aenter__(self) -> Load:
        self.http = httpx.AsyncClient(
            base_url=self.stack.api_url,
            timeout=httpx.Timeout(45.0, connect=5.0),
            limits=httpx.Limits(max_connections=64),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    @property
    def decisions_made(self) -> int:
        return len(self.decided)

    async def call(
        self, method: str, path: str, who: str, *, body: Any = None, key: str | None = None
    ) -> httpx.Response:
        """One call, repeated (same key, same body) until the answer is not an infrastructure failure."""
        return (await self.call_counting(method, path, who, body=body, key=key))[0]

    async def call_counting(
        self, method: str, path: str, who: str, *, body: Any = None, key: str | None = None
    ) -> tuple[httpx.Response, int]:
        """:meth:`call`, also saying how many attempts before the answer had an unknown outcome."""
        headers = self.stack.headers(who)
        if key:
            headers["Idempotency-Key"] = key
        delay, unknown = 0.2, 0
        while True:
            try:
                response = await self.http.request(method, path, json=body, headers=headers)
            except httpx.TransportError as error:
                self.answers[type(error).__name__] += 1
            else:
                self.answers[str(response.status_code)] += 1
                if response.status_code == 500:
                    self.failures.append(f"500 on {method} {path}: {response.text[:300]}")
                if response.status_code not in UNKNOWN_OUTCOME and response.status_code != 500:
                    return response, unknown
            unknown += 1
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)

    # -- starting

    def start_body(self, index: int) -> dict[str, Any]:
        return {
            "business_key": f"{self.prefix}-{index:04d}",
            "title": f"Bonded warehouse extension #{index}",
            "applicant": {
                "id": "ent-001",
                "name": "Alashankou Metals Co.",
                "unit": "enterprise",
                "roles": ["applicant"],
            },
            "definition": DEFINITION,
            "data": {"site": f"Lot {index}"},
            "callback_url": self.callback_url,
        }

    async def start_case(self, index: int) -> str:
        response = await self.call("POST", "/v1/cases/generic", SERVICE, body=self.start_body(index))
        if response.status_code not in (200, 201):
            raise AssertionError(f"start {index}: {response.status_code} {response.text}")
        started = response.json()
        self.cases[started["case_id"]] = index
        self.run_ids[started["case_id"]] = started["run_id"]
        return str(started["case_id"])

    # -- deciding

    async def decide(self, case_id: str, task: dict[str, Any]) -> None:
        """Decides ``task`` once: retried with the same key until the answer says what happened."""
        task_id = task["task_id"]
        who = task["assignee_id"] or ROLE_HOLDER[task["candidate_roles"][0]]
        reject = task["stage_id"] == "decision" and expected_status(self.cases[case_id]) == "rejected"
        body = {"decision": "reject", "comment": "site plan incomplete"} if reject else {"decision": "approve"}
        response, unsure = await self.call_counting(
            "POST", f"/v1/tasks/{task_id}/decide", who, body=body, key=f"decide:{task_id}"
        )
        if response.status_code == 200:
            assert response.json()["task"]["decided_by"] == who, response.text
            self._decided(task_id, who)
            # A retry after an unknown outcome answered 200: Temporal applied the update id once.
            self.recognised += unsure > 0
            return
        code = response.json().get("code") if response.headers.get("content-type", "").endswith("json") else None
        if response.status_code == 409 and code in REFUSED_AS_DONE:
            timeline = await self.call("GET", f"/v1/cases/{case_id}/timeline", SERVICE)
            mine = [
                row
                for row in timeline.json()
                if row["type"] == "task.decided" and row["task_id"] == task_id and row["actor_id"] == who
            ]
            if mine:  # decided by this very request, whose answer was lost to the fault
                self._decided(task_id, who)
                self.recognised += 1
                return
        self.failures.append(f"decide {task_id} as {who}: {response.status_code} {response.text[:300]}")

    def _decided(self, task_id: str, who: str) -> None:
        if task_id in self.decided:
            self.failures.append(f"{task_id} reported decided twice")
        self.decided[task_id] = who

    async def advance(self, case_id: str) -> bool:
        """One step of a case: its first open task decided. True once the case has its final status."""
        response = await self.call("GET", f"/v1/cases/{case_id}", SERVICE)
        if response.status_code != 200:
            self.failures.append(f"GET {case_id}: {response.status_code} {response.text[:300]}")
            return True
        detail = response.json()
        if detail["case"] is not None and detail["case"]["status"] in FINAL:
            return True
        actionable = sorted(
            (t for t in detail["tasks"] if t["status"] in ("open", "claimed") and t["task_id"] not in self.decided),
            key=lambda t: t["task_id"],
        )
        if actionable:
            await self.decide(case_id, actionable[0])
        else:
            await asyncio.sleep(0.05)  # the next task is being recorded
        return False

    async def run(self, on_progress: Callable[[Load], Awaitable[None]] | None = None) -> None:
        """Starts every case, then the desks work through them round robin until each has its final status.

        ``on_progress`` runs concurrently (e.g. waits for a number of decisions, then injects the fault).
        """
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        async def starter(indexes: list[int]) -> None:
            for index in indexes:
                queue.put_nowait(await self.start_case(index))

        async def desk() -> None:
            while (case_id := await queue.get()) is not None:
                if self.failures:  # a case that cannot go on: fail now rather than at the timeout
                    raise AssertionError(f"{len(self.failures)} failures, e.g. {self.failures[:3]}")
                if await self.advance(case_id):
                    self.finished.add(case_id)
                    if len(self.finished) == self.size:
                        for _ in range(DESKS):
                            queue.put_nowait(None)
                else:
                    queue.put_nowait(case_id)

        jobs = [starter(list(range(self.size))[offset::DESKS]) for offset in range(DESKS)]
        jobs += [desk() for _ in range(DESKS)]
        if on_progress is not None:
            jobs.append(on_progress(self))
        progress = asyncio.create_task(self._progress())
        try:
            async with asyncio.timeout(LOAD_TIMEOUT_SECONDS):
                await asyncio.gather(*jobs)
        except TimeoutError:
            open_cases = sorted(set(self.cases) - self.finished)
            raise AssertionError(
                f"{len(open_cases)} cases not finished in {LOAD_TIMEOUT_SECONDS:g}s, e.g. {open_cases[:5]}; "
                f"answers {dict(self.answers)}; failures {self.failures[:5]}"
            ) from None
        finally:
            progress.cancel()

    async def _progress(self) -> None:
        """A line every 15 s (seen with ``pytest -s``): how far the load is."""
        while True:
            await asyncio.sleep(15)
            print(
                f"  [{time.monotonic() - self.started_at:5.0f}s] started {len(self.cases)} decided "
                f"{self.decisions_made} finished {len(self.finished)} answers {dict(self.answers)}",
                flush=True,
            )

    async def until_decisions(self, share: float) -> None:
        """Returns once ``share`` of every decision the load will make has been made."""
        target = int(self.size * DECISIONS_PER_CASE * share)
        while self.decisions_made < target:
            await asyncio.sleep(0.05)


# --- verification ---------------------------------------------------------------------------------------


@dataclass
class Verdict:
    cases: int
    events: int
    decided_events: int
    tasks: int
    outbox_rows: int
    webhook_keys: int
    webhook_deliveries: int
    duplicated_keys: list[str]
    recognised: int
    answers: dict[str, int]

    def summary(self) -> str:
        return json.dumps(self.__dict__, default=str, sort_keys=True)


async def verify(
    stack: Stack, load: Load, hooks: Receiver, *, may_duplicate: set[str] | frozenset[str] = frozenset()
) -> Verdict:
    """Every count against what was sent; ``may_duplicate``: webhook keys whose delivery a fault interrupted
    between the receiver's 200 and the outbox row being marked delivered (at-least-once)."""
    assert load.failures == [], load.failures[:10]
    assert len(load.cases) == load.size and load.finished == set(load.cases)

    # Temporal: every workflow completed, its result agreeing with the projection and the expectation.
    async def result(case_id: str) -> tuple[str, Any, str]:
        handle = stack.client.get_workflow_handle(case_id)
        view = await asyncio.wait_for(handle.result(), timeout=LOAD_TIMEOUT_SECONDS)
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.COMPLETED, (case_id, description.status)
        return case_id, view, description.run_id

    limiter = asyncio.Semaphore(20)

    async def limited(case_id: str) -> tuple[str, Any, str]:
        async with limiter:
            return await result(case_id)

    results = await asyncio.gather(*(limited(case_id) for case_id in load.cases))
    pool = await stack.pool()
    try:
        projections = {row["case_id"]: row for row in await pool.fetch("SELECT case_id, status FROM cases")}
        assert set(projections) == set(load.cases), "a case is missing from (or extra in) the projection"
        for case_id, view, run_id in results:
            expected = expected_status(load.cases[case_id])
            status = view["status"] if isinstance(view, dict) else view.status
            assert status == expected == projections[case_id]["status"], (case_id, status, expected)
            assert run_id == load.run_ids[case_id], f"{case_id} did not resume its run: {run_id}"

        # The audit log: per case seq 1..n, an intact hash chain, one start; the same story per outcome.
        events = 0
        decided_events: dict[str, str] = {}
        shapes: dict[str, set[tuple[str, ...]]] = collections.defaultdict(set)
        created: collections.Counter[str] = collections.Counter()
        for case_id in load.cases:
            stored = await case_events(pool, case_id)
            events += len(stored)
            assert [event.seq for event in stored] == list(range(1, len(stored) + 1)), f"{case_id}: seq gap/duplicate"
            assert verify_chain(stored) == [], f"{case_id}: hash chain broken"
            types = tuple(event.type for event in stored)
            assert types.count("case.started") == 1, case_id
            shapes[expected_status(load.cases[case_id])].add(types)
            created[case_id] = types.count("task.created")
            for event in stored:
                if event.type == "task.decided":
                    assert event.task_id not in decided_events, f"{event.task_id} decided twice"
                    decided_events[str(event.task_id)] = event.actor.id
        assert all(len(variants) == 1 for variants in shapes.values()), {k: len(v) for k, v in shapes.items()}
        # No decision lost, none doubled: exactly the decisions the clients were told succeeded.
        assert decided_events == load.decided
        assert len(decided_events) == load.size * DECISIONS_PER_CASE

        # Tasks: one row per task.created event, none left open.
        task_rows = await pool.fetch("SELECT case_id, status, decision FROM tasks")
        assert collections.Counter(row["case_id"] for row in task_rows) == created
        assert {row["status"] for row in task_rows} <= {"completed", "cancelled"}
        assert sum(row["status"] == "completed" for row in task_rows) == len(load.decided)

        # Outbox: one row per key (the primary key), all delivered, the same keys for every case of an outcome.
        outbox = await pool.fetch("SELECT idempotency_key, case_id, channel, status FROM outbox")
        assert {row["case_id"] for row in outbox} == set(load.cases)
        assert [row for row in outbox if row["status"] != "delivered"] == []
        suffixes: dict[str, set[frozenset[str]]] = collections.defaultdict(set)
        by_case: dict[str, set[str]] = collections.defaultdict(set)
        for row in outbox:
            by_case[row["case_id"]].add(row["idempotency_key"].removeprefix(row["case_id"]))
        for case_id, keys in by_case.items():
            suffixes[expected_status(load.cases[case_id])].add(frozenset(keys))
        assert all(len(variants) == 1 for variants in suffixes.values()), "cases of one outcome notified differently"

        # Webhooks: every callback key delivered, none twice unless a fault cut its delivery short.
        webhook_keys = {row["idempotency_key"] for row in outbox if row["channel"] == "webhook"}
        counts = hooks.counts()
        assert set(counts) == webhook_keys, (len(set(counts)), len(webhook_keys))
        duplicated = sorted(key for key, count in counts.items() if count > 1)
        assert set(duplicated) <= may_duplicate, sorted(set(duplicated) - may_duplicate)
        assert all(count <= 2 for count in counts.values())
        return Verdict(
            cases=len(load.cases),
            events=events,
            decided_events=len(decided_events),
            tasks=len(task_rows),
            outbox_rows=len(outbox),
            webhook_keys=len(webhook_keys),
            webhook_deliveries=len(hooks.deliveries),
            duplicated_keys=duplicated,
            recognised=load.recognised,
            answers=dict(load.answers),
        )
    finally:
        await pool.close()


async def delivered_keys(stack: Stack) -> set[str]:
    connection = await asyncpg.connect(stack.settings.database_url)
    try:
        rows = await connection.fetch("SELECT idempotency_key FROM outbox WHERE status = 'delivered'")
    finally:
        await connection.close()
    return {row["idempotency_key"] for row in rows}


def report(name: str, verdict: Verdict, **extra: Any) -> None:
    print(f"\n[{name}] {verdict.summary()} {json.dumps(extra, default=str, sort_keys=True)}")


# --- the tests ------------------------------------------------------------------------------------------


async def test_worker_sigkill_mid_flight_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """1. SIGKILL the only worker while 200 cases are mid-flight, start a new one: everything completes."""
    async with receiver() as hooks, Stack.open(tmp_path / "stack", callback_allowed_hosts="127.0.0.1") as stack:
        worker = await stack.start_worker()
        await stack.start_api()
        async with Load(stack, hooks.url, size=200, prefix="KILL") as load:
            # The API process got CALLBACK_ALLOWED_HOSTS: a callback elsewhere is refused at the edge.
            refused = await load.http.post(
                "/v1/cases/generic",
                json={**load.start_body(9999), "callback_url": "http://example.org/hook"},
                headers=stack.headers(SERVICE),
            )
            assert refused.status_code == 422 and "CALLBACK_ALLOWED_HOSTS" in refused.text, refused.text
            window: set[str] = set()
            facts: dict[str, Any] = {}

            async def fault(load: Load) -> None:
                await load.until_decisions(0.35)
                facts["decisions_before_kill"] = load.decisions_made
                facts["cases_finished_before_kill"] = len(load.finished)
                stack.kill_worker(worker)
                killed_at = time.monotonic()
                # Deliveries the receiver acknowledged that the dead worker never marked: the only ones an
                # at-least-once retry may send again.
                window.update(hooks.received_before(killed_at) - await delivered_keys(stack))
                await asyncio.sleep(2)  # let clients notice: updates now wait on a worker that is gone
                await stack.start_worker("worker-2")

            await load.run(fault)
            verdict = await verify(stack, load, hooks, may_duplicate=window)
            assert facts["cases_finished_before_kill"] < load.size // 2
            report("sigkill", verdict, in_flight_webhooks=len(window), **facts)


async def test_postgres_down_20_seconds(tmp_path: Path) -> None:
    """2. PostgreSQL stopped for 20 s mid-run: 503s with problem bodies, then recovery without restarts."""
    async with receiver() as hooks, Stack.open(tmp_path / "stack", callback_allowed_hosts="127.0.0.1") as stack:
        worker = await stack.start_worker()
        api = await stack.start_api()
        async with Load(stack, hooks.url, size=100, prefix="PG") as load:
            window: set[str] = set()
            facts: dict[str, Any] = {}

            async def fault(load: Load) -> None:
                await load.until_decisions(0.3)
                facts["decisions_before_stop"] = load.decisions_made
                marked = await delivered_keys(stack)
                await stack.stop_postgres()
                stopped_at = time.monotonic()
                async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as probe:
                    health = await probe.get("/health")
                    assert health.status_code == 503, health.text
                    assert health.headers["retry-after"]
                    body = health.json()
                    assert body["status"] == "unavailable" and body["postgres"]["ok"] is False, body
                    assert body["temporal"]["ok"] is True, body
                    inbox = await probe.get("/v1/inbox", headers=stack.headers("one-window-officer"))
                    assert inbox.status_code == 503, inbox.text
                    assert inbox.headers["content-type"].startswith("application/problem+json")
                    problem = inbox.json()
                    assert problem["status"] == 503 and problem["code"] == "UNAVAILABLE", problem
                    assert "PostgreSQL" in problem["detail"]
                    await asyncio.sleep(max(0.0, 20 - (time.monotonic() - stopped_at)))
                    await stack.start_postgres()
                    window.update(hooks.received_before(time.monotonic()) - marked)
                    # Recovers by itself: same API and worker processes, no restart.
                    async with asyncio.timeout(120):
                        while (await probe.get("/health")).status_code != 200:
                            await asyncio.sleep(0.5)
                    facts["recovered_after_s"] = round(time.monotonic() - stopped_at - 20, 1)

            await load.run(fault)
            assert worker.alive() and api.alive() and len(stack.workers) == 1
            verdict = await verify(stack, load, hooks, may_duplicate=window)
            report("postgres", verdict, window=len(window), **facts)


async def test_temporal_restart_cases_resume(tmp_path: Path) -> None:
    """3. The Temporal dev server (SQLite) restarted mid-run: every case resumes in its own run."""
    async with receiver() as hooks, Stack.open(tmp_path / "stack", callback_allowed_hosts="127.0.0.1") as stack:
        worker = await stack.start_worker()
        api = await stack.start_api()
        async with Load(stack, hooks.url, size=100, prefix="TMP") as load:
            facts: dict[str, Any] = {}

            async def fault(load: Load) -> None:
                await load.until_decisions(0.3)
                facts["decisions_before_restart"] = load.decisions_made
                facts["cases_finished_before_restart"] = len(load.finished)
                await stack.restart_temporal(down_seconds=3)

            await load.run(fault)
            assert worker.alive() and api.alive()
            # A completed notification is never re-sent: no webhook key may arrive twice.
            verdict = await verify(stack, load, hooks)
            assert facts["cases_finished_before_restart"] < load.size // 2
            report("temporal", verdict, **facts)


def _identities(history: Any) -> collections.Counter[str]:
    """Who did the work: the identity (``<pid>@<host>``) of completed workflow tasks and started activities."""
    found: collections.Counter[str] = collections.Counter()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            found[event.workflow_task_completed_event_attributes.identity.split("@")[0]] += 1
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            found[event.activity_task_started_event_attributes.identity.split("@")[0]] += 1
    return found


async def test_two_workers_share_the_load_and_survive_one_dying(tmp_path: Path) -> None:
    """4. Two workers on one task queue both get work; SIGKILL one mid-run, the other finishes every case."""
    async with receiver() as hooks, Stack.open(tmp_path / "stack", callback_allowed_hosts="127.0.0.1") as stack:
        first = await stack.start_worker("worker-a")
        second = await stack.start_worker("worker-b")
        await stack.start_api()
        async with Load(stack, hooks.url, size=100, prefix="TWO") as load:
            window: set[str] = set()
            facts: dict[str, Any] = {}

            async def fault(load: Load) -> None:
                await load.until_decisions(0.35)
                facts["decisions_before_kill"] = load.decisions_made
                stack.kill_worker(first)
                killed_at = time.monotonic()
                window.update(hooks.received_before(killed_at) - await delivered_keys(stack))

            await load.run(fault)
            assert second.alive() and not first.alive()
            verdict = await verify(stack, load, hooks, may_duplicate=window)
            work: collections.Counter[str] = collections.Counter()
            for case_id in load.cases:
                work += _identities(await stack.client.get_workflow_handle(case_id).fetch_history())
            per_worker = {"worker-a": work[str(first.pid)], "worker-b": work[str(second.pid)]}
            assert set(work) == {str(first.pid), str(second.pid)}, work
            assert per_worker["worker-a"] > 0 and per_worker["worker-b"] > 0, per_worker
            report("two-workers", verdict, work=per_worker, in_flight_webhooks=len(window), **facts)
