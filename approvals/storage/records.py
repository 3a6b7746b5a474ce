"""Writes a workflow's new events, the case and task projections they lead to and the notifications they
cause, in one transaction.

Recording is idempotent, because Temporal retries the activity that calls it and a retry may follow a
write that committed: an event already stored with the same hash is skipped, projections only move forward
(``last_seq``), and an event stored with a *different* hash is a conflict that no retry can fix — the audit
log is never overwritten. A run that an operator reset (``temporal workflow reset``) meets such a conflict on
purpose: :func:`fork_of` tells where it left the stored chain, and the batch that carries its ``case.reset``
cancels the old run's tasks that the new run does not have.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from approvals.storage.outbox import enqueue
from schemas.events import GENESIS_HASH, EventType
from schemas.records import RecordBatch, TaskProjection


class AuditConflictError(Exception):
    """Events are stored under the batch's sequence numbers with other hashes; the stored ones are kept."""

    def __init__(self, case_id: str, seqs: list[int], stored_hash: str | None, incoming_hash: str) -> None:
        super().__init__(
            f"audit log conflict in case {case_id}: event seq {seqs[0]} is stored with hash {stored_hash} but the "
            f"workflow now records hash {incoming_hash}; the stored event is kept"
        )
        self.case_id = case_id
        self.seqs = seqs
        self.stored_hash = stored_hash
        self.incoming_hash = incoming_hash


# jsonb travels as text and is cast in SQL, so the statements work whatever codecs the pool installed.
_INSERT_EVENTS = """
INSERT INTO audit_events (
    case_id, seq, type, actor_id, actor_name, actor_roles, actor_unit, at, legal_basis,
    stage_id, task_id, payload, prev_hash, hash
)
SELECT case_id, seq, type, actor_id, actor_name, actor_roles, actor_unit, at, legal_basis,
       stage_id, task_id, payload, prev_hash, hash
FROM jsonb_to_recordset($1::text::jsonb) AS incoming(
    case_id text, seq integer, type text, actor_id text, actor_name text, actor_roles text[],
    actor_unit text, at timestamptz, legal_basis text, stage_id text, task_id text, payload jsonb,
    prev_hash text, hash text
)
ORDER BY seq
ON CONFLICT (case_id, seq) DO NOTHING
RETURNING seq
"""

_STORED_HASHES = "SELECT seq, hash FROM audit_events WHERE case_id = $1 AND seq = ANY($2::integer[])"

_UPSERT_CASE = """
INSERT INTO cases (
    case_id, process, business_key, title, status, current_stages, applicant_id, priority, clock_state,
    due_at, outcome, started_at, updated_at, summary, last_seq, started_by, observers
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text::jsonb, $15, $16, $17::text[])
ON CONFLICT (case_id) DO UPDATE SET
    process = EXCLUDED.process, business_key = EXCLUDED.business_key, title = EXCLUDED.title,
    status = EXCLUDED.status, current_stages = EXCLUDED.current_stages, applicant_id = EXCLUDED.applicant_id,
    priority = EXCLUDED.priority, clock_state = EXCLUDED.clock_state, due_at = EXCLUDED.due_at,
    outcome = EXCLUDED.outcome, started_at = EXCLUDED.started_at, updated_at = EXCLUDED.updated_at,
    summary = EXCLUDED.summary, last_seq = EXCLUDED.last_seq,
    started_by = coalesce(EXCLUDED.started_by, cases.started_by),
    observers = CASE WHEN $18::boolean THEN EXCLUDED.observers
                     ELSE cases.observers || array(SELECT o FROM unnest(EXCLUDED.observers) AS o
                                                   WHERE o <> ALL (cases.observers)) END
WHERE EXCLUDED.last_seq >= cases.last_seq
"""
"""$18: ``observers`` ($17) is the case's whole list; otherwise (a batch from before the projection carried
it) $17 holds only those the batch's ``case.cc`` events copied, added to the stored ones."""

_UPSERT_TASK = """
INSERT INTO tasks (
    task_id, case_id, process, stage_id, stage_title, legal_basis, status, assignee_id, candidate_roles,
    claimed_by, delegate_id, priority, due_at, overdue, decision, version, created_at, updated_at, last_seq,
    due_assumed_years
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
ON CONFLICT (task_id) DO UPDATE SET
    case_id = EXCLUDED.case_id, process = EXCLUDED.process, stage_id = EXCLUDED.stage_id,
    stage_title = EXCLUDED.stage_title, legal_basis = EXCLUDED.legal_basis, status = EXCLUDED.status,
    assignee_id = EXCLUDED.assignee_id, candidate_roles = EXCLUDED.candidate_roles,
    claimed_by = EXCLUDED.claimed_by, delegate_id = EXCLUDED.delegate_id, priority = EXCLUDED.priority,
    due_at = EXCLUDED.due_at, overdue = EXCLUDED.overdue, decision = EXCLUDED.decision,
    version = EXCLUDED.version, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
    last_seq = EXCLUDED.last_seq, due_assumed_years = EXCLUDED.due_assumed_years
WHERE EXCLUDED.last_seq >= tasks.last_seq
"""


_CANCEL_SUPERSEDED_TASKS = """
UPDATE tasks SET status = 'cancelled', last_seq = $3, updated_at = $4
WHERE case_id = $1 AND task_id <> ALL($2::text[]) AND last_seq BETWEEN $5 AND $3 - 1
"""
"""The tasks the old run opened or changed from the reset point on ($5) that the reset run does not have: out of
every inbox (the trigger of 0005), their rows kept."""

_STORED_FROM = """
SELECT seq, hash, type, payload->>'new_run_id' AS new_run_id FROM audit_events
WHERE case_id = $1 AND seq >= $2 ORDER BY seq
"""


@dataclass(frozen=True)
class StoredFork:
    """Where a batch leaves the stored chain: it agrees with every stored event before ``superseded_from``."""

    superseded_from: int
    stored_seq: int
    stored_hash: str
    reset_runs: frozenset[str]
    """The runs that recorded a ``case.reset`` from ``superseded_from`` on (a run forks from the log once)."""


async def fork_of(pool: asyncpg.Pool, batch: RecordBatch) -> StoredFork | None:
    """Where ``batch`` leaves the stored chain, if it continues it up to there; None when it does not link.

    A reset run seals the events from its reset point on again, linked to the events before it: its first
    batch agrees with the stored chain up to a seq that is stored with another hash. A batch that does not
    link to the stored chain at all is no reset but a workflow that lost its place: a plain conflict.
    """
    first = batch.events[0]
    rows = await pool.fetch(_STORED_FROM, batch.case_id, first.seq - 1)
    stored = {row["seq"]: row["hash"] for row in rows}
    if first.prev_hash != stored.get(first.seq - 1, GENESIS_HASH if first.seq == 1 else None):
        return None
    forked = next((event.seq for event in batch.events if stored.get(event.seq, event.hash) != event.hash), None)
    if forked is None:
        return None
    last = rows[-1]
    resets = frozenset(
        row["new_run_id"] for row in rows if row["seq"] >= forked and row["type"] == EventType.case_reset
    )
    return StoredFork(forked, last["seq"], last["hash"], resets)


def _event_rows(batch: RecordBatch) -> str:
    rows: list[dict[str, Any]] = []
    for event in batch.events:
        data = event.model_dump(mode="json")
        actor = data.pop("actor")
        rows.append(
            {
                **data,
                "actor_id": actor["id"],
                "actor_name": actor["name"],
                "actor_roles": actor["roles"],
                "actor_unit": actor["unit"],
            }
        )
    return json.dumps(rows, ensure_ascii=False)


def _case_args(batch: RecordBatch) -> tuple[Any, ...]:
    case = batch.case
    started_by, observers, observers_complete = _starter_and_observers(batch)
    return (
        case.case_id, case.process, case.business_key, case.title, case.status, case.current_stages,
        case.applicant_id, case.priority, case.clock_state, case.due_at, case.outcome, case.started_at,
        case.updated_at, json.dumps(case.summary, ensure_ascii=False, default=str), case.last_seq,
        started_by, observers, observers_complete,
    )  # fmt: skip


def _starter_and_observers(batch: RecordBatch) -> tuple[str | None, list[str], bool]:
    """``started_by``, ``observers`` and whether that is the case's whole observer list.

    A projection made before it carried these fields (an activity task an older worker scheduled) leaves
    them None: the starter is then the actor of the batch's ``case.started`` event (None keeps the stored
    one), and the observers are those its ``case.cc`` events copied, to add to the stored ones.
    """
    case = batch.case
    started_by = case.started_by
    if started_by is None:
        started_by = next((event.actor.id for event in batch.events if event.type == "case.started"), None)
    if case.observers is not None:
        return started_by, list(case.observers), True
    copied = [
        str(observer)
        for event in batch.events
        if event.type == "case.cc" and isinstance(event.payload.get("observers"), list)
        for observer in event.payload["observers"]
    ]
    return started_by, list(dict.fromkeys(copied)), False


_SET_APPLICANT = "UPDATE cases SET applicant_name = $2, applicant_unit = $3, credit_code = $4 WHERE case_id = $1"
_SET_DECIDED = "UPDATE cases SET decided_at = $2 WHERE case_id = $1 AND (decided_at IS NULL OR decided_at > $2)"

PARTY_FIELDS = ("enterprise", "applying_unit")
"""Where a start request's data names the applying party (project approval, Art. 25 error tolerance)."""


def applicant_facts(started: dict[str, Any]) -> tuple[str, str, str | None]:
    """What case search reads of a ``case.started`` payload: the applying party's name (else the applicant's),
    the applicant's unit, and the unified social credit code. Migration 0012 backfills by the same rule."""
    applicant = started.get("applicant") or {}
    data = started.get("data") or {}
    party = next((data[field] for field in PARTY_FIELDS if isinstance(data.get(field), dict)), {})
    code = data.get("unified_social_credit_code") or party.get("unified_social_credit_code") or None
    return party.get("name") or applicant.get("name", ""), applicant.get("unit", ""), code


async def _searchable_facts(connection: asyncpg.Connection, batch: RecordBatch) -> None:
    """The case's search columns, from its ``case.started`` and first ``case.decided`` when the batch has them."""
    for event in batch.events:
        if event.type == EventType.case_started:
            await connection.execute(_SET_APPLICANT, batch.case_id, *applicant_facts(event.payload))
        elif event.type == EventType.case_decided:
            await connection.execute(_SET_DECIDED, batch.case_id, event.at)


def _task_args(task: TaskProjection) -> tuple[Any, ...]:
    return (
        task.task_id, task.case_id, task.process, task.stage_id, task.stage_title, task.legal_basis,
        task.status, task.assignee_id, task.candidate_roles, task.claimed_by, task.delegate_id,
        task.priority, task.due_at, task.overdue, task.decision, task.version, task.created_at,
        task.updated_at, task.last_seq, task.due_assumed_years,
    )  # fmt: skip


async def record_batch(pool: asyncpg.Pool, batch: RecordBatch) -> int:
    """Stores the batch's new events, upserts its case and task projections and queues its notifications.

    Returns:
        How many events were new (0 when a retry finds everything already stored).

    Raises:
        AuditConflictError: a stored event has the same sequence number but a different hash.
    """
    async with pool.acquire() as connection, connection.transaction():
        inserted = {row["seq"] for row in await connection.fetch(_INSERT_EVENTS, _event_rows(batch))}
        already_stored = [event for event in batch.events if event.seq not in inserted]
        if already_stored:
            stored_hashes = {
                row["seq"]: row["hash"]
                for row in await connection.fetch(
                    _STORED_HASHES, batch.case_id, [event.seq for event in already_stored]
                )
            }
            conflicts = [event for event in already_stored if stored_hashes.get(event.seq) != event.hash]
            if conflicts:
                first = conflicts[0]
                raise AuditConflictError(
                    batch.case_id, [event.seq for event in conflicts], stored_hashes.get(first.seq), first.hash
                )
        await connection.execute(_UPSERT_CASE, *_case_args(batch))
        await _searchable_facts(connection, batch)
        if batch.tasks:
            await connection.executemany(_UPSERT_TASK, [_task_args(task) for task in batch.tasks])
        reset = next((event for event in batch.events if event.type == EventType.case_reset), None)
        if reset is not None:  # the batch carries every task of the reset run
            await connection.execute(
                _CANCEL_SUPERSEDED_TASKS,
                batch.case_id,
                [task.task_id for task in batch.tasks],
                reset.seq,
                reset.at,
                int(reset.payload["superseded_from"]),
            )
        await enqueue(connection, batch.notifications)
    return len(inserted)
