"""Recording events and projections in PostgreSQL, and the read queries the inbox and case views use."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.storage import AUDIT_CONFLICT, StorageActivities
from approvals.storage import queries
from schemas.events import GENESIS_HASH, DomainEvent, compute_hash, event_content, seal_event
from schemas.principal import Principal
from schemas.records import CaseProjection, RecordBatch, TaskProjection
from schemas.search import CaseSearch

T0 = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
REVIEWER = Principal(id="li.wei", name="李伟", unit="经济发展局", roles=("economic_reviewer",))


def unique(prefix: str) -> str:
    """Ids unique to one test, so tests sharing the session database never see each other's rows."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def events(case_id: str, count: int, *, start: int = 1, prev_hash: str = GENESIS_HASH) -> list[DomainEvent]:
    chain: list[DomainEvent] = []
    for seq in range(start, start + count):
        event = seal_event(
            case_id=case_id,
            seq=seq,
            type="task.decided" if seq > 1 else "case.started",
            actor=REVIEWER,
            at=T0 + timedelta(minutes=seq),
            legal_basis="Art. 10",
            stage_id="review",
            task_id=f"{case_id}/review/1",
            payload={"decision": "approve", "comment": "材料齐全，同意", "amount": 12.5},
            prev_hash=prev_hash,
        )
        chain.append(event)
        prev_hash = event.hash
    return chain


def case(
    case_id: str,
    last_seq: int,
    *,
    status: str = "in_review",
    process: str = "project_approval",
    started_by: str | None = "svc-portal",
    observers: list[str] | None = None,
) -> CaseProjection:
    return CaseProjection(
        case_id=case_id,
        process=process,
        business_key=case_id.split(":")[-1],
        title="阿拉山口综合保税区仓储项目",
        status=status,
        current_stages=["review"],
        applicant_id="enterprise-1",
        started_at=T0,
        updated_at=T0 + timedelta(minutes=last_seq),
        summary={"investment_wan_yuan": 5000},
        last_seq=last_seq,
        started_by=started_by,
        observers=[] if observers is None and started_by is not None else observers,
    )


def cc_event(case_id: str, seq: int, prev_hash: str, observers: list[str]) -> DomainEvent:
    return seal_event(
        case_id=case_id,
        seq=seq,
        type="case.cc",
        actor=REVIEWER,
        at=T0 + timedelta(minutes=seq),
        legal_basis="Art. 10",
        task_id=f"{case_id}/review/1",
        payload={"observers": observers, "comment": "请知悉"},
        prev_hash=prev_hash,
    )


def task(
    case_id: str,
    number: int,
    *,
    last_seq: int = 1,
    status: str = "open",
    assignee_id: str | None = None,
    candidate_roles: tuple[str, ...] = (),
    claimed_by: str | None = None,
    delegate_id: str | None = None,
    due_at: datetime | None = None,
    priority: bool = False,
    overdue: bool = False,
    process: str = "project_approval",
    stage_id: str = "review",
) -> TaskProjection:
    return TaskProjection(
        task_id=f"{case_id}/{stage_id}/{number}",
        case_id=case_id,
        process=process,
        stage_id=stage_id,
        stage_title="初审",
        legal_basis="Art. 10",
        status=status,
        assignee_id=assignee_id,
        candidate_roles=list(candidate_roles),
        claimed_by=claimed_by,
        delegate_id=delegate_id,
        priority=priority,
        due_at=due_at,
        overdue=overdue,
        version=last_seq,
        created_at=T0,
        updated_at=T0 + timedelta(minutes=last_seq),
        last_seq=last_seq,
    )


async def record(pool: asyncpg.Pool, batch: RecordBatch) -> int:
    return await ActivityEnvironment().run(StorageActivities(pool).record_events, batch)


async def test_records_a_batch_and_a_retry_writes_nothing_twice(db_pool: asyncpg.Pool) -> None:
    case_id = unique("project_approval:REC")
    batch = RecordBatch(
        case_id=case_id, events=events(case_id, 3), case=case(case_id, 3), tasks=[task(case_id, 1, last_seq=3)]
    )

    assert await record(db_pool, batch) == 3
    assert await record(db_pool, batch) == 0

    assert await db_pool.fetchval("SELECT count(*) FROM audit_events WHERE case_id = $1", case_id) == 3
    assert await db_pool.fetchval("SELECT count(*) FROM cases WHERE case_id = $1", case_id) == 1
    assert await db_pool.fetchval("SELECT count(*) FROM tasks WHERE case_id = $1", case_id) == 1


async def test_a_batch_overlapping_what_is_stored_writes_only_the_new_events(db_pool: asyncpg.Pool) -> None:
    case_id = unique("project_approval:OVL")
    chain = events(case_id, 4)
    await record(db_pool, RecordBatch(case_id=case_id, events=chain[:2], case=case(case_id, 2)))

    assert await record(db_pool, RecordBatch(case_id=case_id, events=chain, case=case(case_id, 4))) == 2
    assert [event.seq for event in await queries.case_events(db_pool, case_id)] == [1, 2, 3, 4]


async def test_stored_events_read_back_identical_so_the_hash_chain_verifies(db_pool: asyncpg.Pool) -> None:
    case_id = unique("project_approval:RT")
    chain = events(case_id, 3)
    await record(db_pool, RecordBatch(case_id=case_id, events=chain, case=case(case_id, 3)))

    stored = await queries.case_events(db_pool, case_id)

    assert stored == chain
    assert all(compute_hash(event_content(event)) == event.hash for event in stored)


async def test_an_event_with_the_same_seq_and_another_hash_is_a_conflict_and_never_overwrites(
    db_pool: asyncpg.Pool, time_skipping_env: WorkflowEnvironment
) -> None:
    """The rewritten event links to the stored chain, as a reset run's would; but the run was not reset (its
    history, which the activity reads from Temporal, shows no reset), so nothing is recorded past it."""
    case_id = unique("project_approval:CONF")
    original = events(case_id, 2)
    await record(db_pool, RecordBatch(case_id=case_id, events=original, case=case(case_id, 2)))
    rewritten = seal_event(**{**original[1].model_dump(exclude={"hash"}), "payload": {"decision": "reject"}})

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment(client=time_skipping_env.client).run(
            StorageActivities(db_pool).record_events,
            RecordBatch(case_id=case_id, events=[rewritten], case=case(case_id, 2, status="rejected")),
        )

    assert raised.value.type == AUDIT_CONFLICT
    assert raised.value.non_retryable
    assert "seq 2" in str(raised.value)
    assert await queries.case_events(db_pool, case_id) == original
    stored_case = await queries.get_case(db_pool, case_id)
    assert stored_case is not None and stored_case.status == "in_review", "the conflicting batch is rolled back"


async def test_a_late_write_does_not_roll_projections_back(db_pool: asyncpg.Pool) -> None:
    case_id = unique("project_approval:LATE")
    chain = events(case_id, 5)
    await record(
        db_pool,
        RecordBatch(
            case_id=case_id,
            events=chain,
            case=case(case_id, 5, status="approved"),
            tasks=[task(case_id, 1, last_seq=5, status="completed")],
        ),
    )

    await record(
        db_pool,
        RecordBatch(
            case_id=case_id,
            events=chain[:3],
            case=case(case_id, 3, status="in_review"),
            tasks=[task(case_id, 1, last_seq=3, status="claimed")],
        ),
    )

    stored_case = await queries.get_case(db_pool, case_id)
    assert stored_case is not None
    assert (stored_case.status, stored_case.last_seq) == ("approved", 5)
    assert [(t.status, t.last_seq) for t in await queries.case_tasks(db_pool, case_id)] == [("completed", 5)]


async def test_a_projection_with_the_same_last_seq_is_rewritten(db_pool: asyncpg.Pool) -> None:
    """Equal last_seq means the same state; accepting it keeps a retry harmless."""
    case_id = unique("project_approval:EQ")
    chain = events(case_id, 1)
    await record(db_pool, RecordBatch(case_id=case_id, events=chain, case=case(case_id, 1), tasks=[task(case_id, 1)]))
    await record(
        db_pool,
        RecordBatch(
            case_id=case_id,
            events=chain,
            case=case(case_id, 1),
            tasks=[task(case_id, 1, claimed_by="li.wei", status="claimed")],
        ),
    )

    assert [t.claimed_by for t in await queries.case_tasks(db_pool, case_id)] == ["li.wei"]


async def test_the_inbox_row_says_which_years_of_its_due_date_were_assumed(db_pool: asyncpg.Pool) -> None:
    """A deadline counted into a year with no official holiday schedule may move: the reviewer sees which
    years; a later projection (the year published) says none."""
    case_id, reviewer = unique("project_approval:ASSUMED"), unique("reviewer")
    chain = events(case_id, 2)
    assumed = task(case_id, 1, assignee_id=reviewer, due_at=T0 + timedelta(days=40)).model_copy(
        update={"due_assumed_years": [2027]}
    )
    await record(db_pool, RecordBatch(case_id=case_id, events=chain[:1], case=case(case_id, 1), tasks=[assumed]))
    assert [t.due_assumed_years for t in await queries.inbox(db_pool, reviewer, [])] == [[2027]]

    official = assumed.model_copy(update={"due_assumed_years": [], "last_seq": 2})
    await record(db_pool, RecordBatch(case_id=case_id, events=chain, case=case(case_id, 2), tasks=[official]))
    assert [t.due_assumed_years for t in await queries.case_tasks(db_pool, case_id)] == [[]]


async def test_a_batch_mixing_cases_is_refused(db_pool: asyncpg.Pool) -> None:
    case_id = unique("project_approval:MIX")
    other = unique("project_approval:OTHER")

    with pytest.raises(ApplicationError, match=other) as raised:
        await record(db_pool, RecordBatch(case_id=case_id, events=events(other, 1), case=case(case_id, 1)))
    assert raised.value.non_retryable


@pytest.mark.parametrize(
    "tamper",
    [
        'UPDATE audit_events SET payload = \'{"decision": "reject"}\' WHERE case_id = $1',
        "DELETE FROM audit_events WHERE case_id = $1",
    ],
    ids=["update", "delete"],
)
async def test_the_audit_log_refuses_update_and_delete(
    db_pool: asyncpg.Pool, superuser_pool: asyncpg.Pool, tamper: str
) -> None:
    """Even for a role with every table right (the app role has none of these: tests/test_least_privilege.py)."""
    case_id = unique("project_approval:TAMPER")
    await record(db_pool, RecordBatch(case_id=case_id, events=events(case_id, 2), case=case(case_id, 2)))

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await superuser_pool.execute(tamper, case_id)

    assert await db_pool.fetchval("SELECT count(*) FROM audit_events WHERE case_id = $1", case_id) == 2


async def test_the_audit_log_refuses_truncate(superuser_pool: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await superuser_pool.execute("TRUNCATE audit_events")


async def test_get_case_and_list_cases(db_pool: asyncpg.Pool) -> None:
    process = unique("process")
    first, second = unique(f"{process}:A"), unique(f"{process}:B")
    await record(db_pool, RecordBatch(case_id=first, events=events(first, 1), case=case(first, 1, process=process)))
    await record(
        db_pool,
        RecordBatch(case_id=second, events=events(second, 2), case=case(second, 2, process=process, status="approved")),
    )

    fetched = await queries.get_case(db_pool, first)
    assert fetched is not None and fetched.summary == {"investment_wan_yuan": 5000}
    assert await queries.get_case(db_pool, unique("missing")) is None
    assert [c.case_id for c in await queries.list_cases(db_pool, CaseSearch(process=process))] == [second, first]
    assert [c.case_id for c in await queries.list_cases(db_pool, CaseSearch(process=process, status="approved"))] == [
        second
    ]
    assert [
        c.case_id
        for c in await queries.list_cases(db_pool, CaseSearch(process=process, stage="review", limit=1, offset=1))
    ] == [first]


async def test_the_case_row_carries_its_starter_and_observers(db_pool: asyncpg.Pool) -> None:
    case_id = unique("project_approval:WHO")
    chain = events(case_id, 1)
    chain.append(cc_event(case_id, 2, chain[-1].hash, ["head-1", "clerk-2"]))
    await record(
        db_pool,
        RecordBatch(case_id=case_id, events=chain, case=case(case_id, 2, observers=["head-1", "clerk-2"])),
    )

    stored = await queries.get_case(db_pool, case_id)
    assert stored is not None
    assert (stored.started_by, stored.observers) == ("svc-portal", ["head-1", "clerk-2"])
    [listed] = await queries.list_cases(db_pool, CaseSearch(business_key=case_id.split(":")[-1]))
    assert (listed.started_by, listed.observers) == ("svc-portal", ["head-1", "clerk-2"])
    # A late write does not roll the observers back either.
    await record(db_pool, RecordBatch(case_id=case_id, events=chain[:1], case=case(case_id, 1)))
    stored = await queries.get_case(db_pool, case_id)
    assert stored is not None and stored.observers == ["head-1", "clerk-2"]


async def test_a_batch_from_before_the_projection_carried_them_derives_starter_and_observers(
    db_pool: asyncpg.Pool,
) -> None:
    """An activity task scheduled by an older worker (or a recorded history) has neither field: the starter
    is the actor of its case.started event, its case.cc events add observers, and nothing is lost."""
    case_id = unique("project_approval:OLD")
    chain = events(case_id, 1)
    chain.append(cc_event(case_id, 2, chain[-1].hash, ["head-1", "clerk-2", "head-1"]))
    chain.append(cc_event(case_id, 3, chain[-1].hash, ["clerk-2", "auditor-3"]))
    legacy = {"started_by": None, "observers": None}

    await record(db_pool, RecordBatch(case_id=case_id, events=chain[:2], case=case(case_id, 2, **legacy)))
    stored = await queries.get_case(db_pool, case_id)
    assert stored is not None and (stored.started_by, stored.observers) == (REVIEWER.id, ["head-1", "clerk-2"])

    await record(db_pool, RecordBatch(case_id=case_id, events=chain, case=case(case_id, 3, **legacy)))
    await record(db_pool, RecordBatch(case_id=case_id, events=chain, case=case(case_id, 3, **legacy)))  # a retry
    stored = await queries.get_case(db_pool, case_id)
    assert stored is not None
    assert (stored.started_by, stored.observers) == (REVIEWER.id, ["head-1", "clerk-2", "auditor-3"])

    # The next batch of a current worker carries the whole list.
    await record(
        db_pool,
        RecordBatch(case_id=case_id, events=chain, case=case(case_id, 3, started_by=REVIEWER.id, observers=["head-1"])),
    )
    stored = await queries.get_case(db_pool, case_id)
    assert stored is not None and stored.observers == ["head-1"]


async def test_readers_by_starter_and_observer_can_use_the_case_indexes(db_pool: asyncpg.Pool) -> None:
    async with db_pool.acquire() as connection, connection.transaction():
        await connection.execute("SET LOCAL enable_seqscan = off")
        plans = {
            index: "\n".join(
                row[0] for row in await connection.fetch(f"EXPLAIN SELECT case_id FROM cases WHERE {where}", "u-1")
            )
            for index, where in {
                "cases_started_by_idx": "started_by = $1",
                "cases_observers_idx": "observers @> ARRAY[$1]::text[]",
            }.items()
        }
    for index, plan in plans.items():
        assert index in plan, plan


class TestInbox:
    """Who sees which task: by assignment, claim, delegation or candidate role; filtered and ordered by due date."""

    @pytest.fixture
    def names(self) -> dict[str, str]:
        return {name: unique(name) for name in ("user", "other", "delegate", "role", "other_role", "process")}

    @pytest.fixture
    async def tasks(self, db_pool: asyncpg.Pool, names: dict[str, str]) -> dict[str, TaskProjection]:
        case_id = f"{names['process']}:INBOX"
        now = datetime.now(UTC)
        past, soon, later, far_future = (now + timedelta(days=days) for days in (-1, 1, 5, 30))
        made = {
            "assigned": task(case_id, 1, assignee_id=names["user"], due_at=later, process=names["process"]),
            "by_role": task(case_id, 2, candidate_roles=(names["role"], "x"), due_at=soon, process=names["process"]),
            "claimed_by_user": task(
                case_id, 3, status="claimed", candidate_roles=(names["role"],), claimed_by=names["user"],
                due_at=None, process=names["process"], stage_id="decision",
            ),
            "claimed_by_other": task(
                case_id, 4, status="claimed", candidate_roles=(names["role"],), claimed_by=names["other"],
                due_at=soon, process=names["process"],
            ),
            "delegated": task(
                case_id, 5, assignee_id=names["other"], delegate_id=names["delegate"], due_at=far_future,
                process=names["process"], priority=True,
            ),
            "completed": task(
                case_id, 6, status="completed", assignee_id=names["user"], due_at=soon, process=names["process"],
            ),
            "other_role": task(
                case_id, 7, candidate_roles=(names["other_role"],), due_at=soon, process=names["process"],
            ),
            "overdue": task(
                case_id, 8, assignee_id=names["user"], due_at=past, process=names["process"], priority=True,
            ),
        }  # fmt: skip
        await record(
            db_pool,
            RecordBatch(case_id=case_id, events=events(case_id, 1), case=case(case_id, 1), tasks=list(made.values())),
        )
        return made

    @staticmethod
    def ids(found: list[TaskProjection], made: dict[str, TaskProjection]) -> list[str]:
        by_id = {t.task_id: name for name, t in made.items()}
        return [by_id[t.task_id] for t in found]

    async def test_by_user_id_ordered_by_due_date_with_undated_last(
        self, db_pool: asyncpg.Pool, names: dict[str, str], tasks: dict[str, TaskProjection]
    ) -> None:
        found = await queries.inbox(db_pool, names["user"], [])
        assert self.ids(found, tasks) == ["overdue", "assigned", "claimed_by_user"]

    async def test_by_role_shows_open_tasks_but_not_those_claimed_by_someone_else(
        self, db_pool: asyncpg.Pool, names: dict[str, str], tasks: dict[str, TaskProjection]
    ) -> None:
        found = await queries.inbox(db_pool, unique("nobody"), [names["role"]])
        assert self.ids(found, tasks) == ["by_role"]

    async def test_by_delegate(
        self, db_pool: asyncpg.Pool, names: dict[str, str], tasks: dict[str, TaskProjection]
    ) -> None:
        assert self.ids(await queries.inbox(db_pool, names["delegate"], []), tasks) == ["delegated"]
        assert self.ids(await queries.inbox(db_pool, names["other"], []), tasks) == [
            "claimed_by_other", "delegated"
        ]  # fmt: skip

    async def test_user_and_role_together(
        self, db_pool: asyncpg.Pool, names: dict[str, str], tasks: dict[str, TaskProjection]
    ) -> None:
        found = await queries.inbox(db_pool, names["user"], [names["role"], names["other_role"]])
        # by_role and other_role share a due time: the task id breaks the tie.
        assert self.ids(found, tasks) == ["overdue", "by_role", "other_role", "assigned", "claimed_by_user"]

    async def test_filters(
        self, db_pool: asyncpg.Pool, names: dict[str, str], tasks: dict[str, TaskProjection]
    ) -> None:
        user, roles = names["user"], [names["role"]]
        assert self.ids(await queries.inbox(db_pool, user, roles, stage="decision"), tasks) == ["claimed_by_user"]
        assert self.ids(await queries.inbox(db_pool, user, roles, priority=True), tasks) == ["overdue"]
        assert self.ids(await queries.inbox(db_pool, user, roles, overdue=True), tasks) == ["overdue"]
        assert "overdue" not in self.ids(await queries.inbox(db_pool, user, roles, overdue=False), tasks)
        assert await queries.inbox(db_pool, user, roles, process=unique("no_such_process")) == []
        assert len(await queries.inbox(db_pool, user, roles, process=names["process"])) == 4
        paged = await queries.inbox(db_pool, user, roles, limit=2, offset=1)
        assert paged == (await queries.inbox(db_pool, user, roles))[1:3]

    async def test_the_query_can_use_the_inbox_indexes(
        self, db_pool: asyncpg.Pool, names: dict[str, str], tasks: dict[str, TaskProjection]
    ) -> None:
        """With sequential scans discouraged (the test table is tiny) the planner finds an index path."""
        async with db_pool.acquire() as connection, connection.transaction():
            await connection.execute("SET LOCAL enable_seqscan = off")
            plan = "\n".join(
                row[0]
                for row in await connection.fetch(
                    """
                    EXPLAIN SELECT task_id FROM tasks
                    WHERE status = ANY($3::text[])
                      AND (assignee_id = $1 OR claimed_by = $1 OR delegate_id = $1
                           OR (status = 'open' AND candidate_roles && $2::text[]))
                    ORDER BY due_at NULLS LAST, task_id
                    """,
                    names["user"],
                    [names["role"]],
                    ["open", "claimed"],
                )
            )
        assert "Seq Scan" not in plan, plan
        assert "tasks_" in plan, plan
