"""Read-side SQL over the projections and the audit log, shared by the HTTP API, the CLI and the audit.

Reads never go through a workflow, so they are plain functions over a pool. jsonb columns are
selected as text and decoded here, so results are the same whatever codecs the caller's pool has.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import asyncpg

from schemas.events import DomainEvent
from schemas.principal import Principal
from schemas.records import StoredCase, TaskProjection
from schemas.search import CaseSearch, CaseSort

OPEN_TASK_STATUSES = ("open", "claimed")
"""Statuses of tasks waiting for someone; the inbox shows only these (and partial indexes cover them)."""

_OPEN_STATUSES_SQL = ", ".join(f"'{status}'" for status in OPEN_TASK_STATUSES)

_TASK_COLUMNS = """
    task_id, case_id, process, stage_id, stage_title, legal_basis, status, assignee_id, candidate_roles,
    claimed_by, delegate_id, priority, due_at, overdue, decision, version, created_at, updated_at, last_seq,
    due_assumed_years
"""

_CASE_COLUMNS = """
    case_id, process, business_key, title, status, current_stages, applicant_id, priority, clock_state,
    due_at, outcome, started_at, updated_at, summary::text AS summary, last_seq, started_by, observers,
    applicant_name, applicant_unit, credit_code, decided_at
"""

_EVENT_COLUMNS = """
    case_id, seq, type, actor_id, actor_name, actor_roles, actor_unit, at, legal_basis, stage_id, task_id,
    payload::text AS payload, prev_hash, hash
"""


def _task(row: asyncpg.Record) -> TaskProjection:
    return TaskProjection.model_validate(dict(row))


def _case(row: asyncpg.Record) -> StoredCase:
    return StoredCase.model_validate({**dict(row), "summary": json.loads(row["summary"])})


def _event(row: asyncpg.Record) -> DomainEvent:
    actor = Principal(id=row["actor_id"], name=row["actor_name"], unit=row["actor_unit"], roles=row["actor_roles"])
    fields: dict[str, Any] = {
        key: row[key]
        for key in ("case_id", "seq", "type", "at", "legal_basis", "stage_id", "task_id", "prev_hash", "hash")
    }
    return DomainEvent(**fields, actor=actor, payload=json.loads(row["payload"]))


INBOX_SQL = f"""
    SELECT {_TASK_COLUMNS}
    FROM tasks
    WHERE status IN ({_OPEN_STATUSES_SQL})
      AND (assignee_id = $1
           OR claimed_by = $1
           OR delegate_id = $1
           OR (status = 'open' AND candidate_roles && $2::text[]))
      AND ($3::text IS NULL OR process = $3)
      AND ($4::text IS NULL OR stage_id = $4)
      AND ($5::boolean IS NULL OR priority = $5)
      AND ($6::boolean IS NULL OR (overdue OR coalesce(due_at < now(), false)) = $6)
    ORDER BY due_at NULLS LAST, task_id
    LIMIT $7 OFFSET $8
"""
"""The inbox's definition, straight over ``tasks``: what :func:`inbox` returns, row for row and in the same
order (tests/test_inbox_query.py compares them on random principals and filters). Parameters: user id,
roles, process, stage, priority, overdue, limit, offset. It is not what :func:`inbox` runs: it finds a
principal's tasks through the partial indexes of migration 0003 (a BitmapOr) but cannot read them in due
order, so a reviewer whose roles hold thousands of open tasks paid for fetching and sorting all of them."""

_INBOX_FILTERS = {
    "process": "process = ${}",
    "stage": "stage_id = ${}",
    "priority": "priority = ${}",
    "overdue": "(overdue OR coalesce(due_at < now(), false)) = ${}",
}
"""The inbox's optional filters over ``inbox_entries``, which copies these columns of ``tasks``."""


def _inbox_sql(filters: tuple[str, ...]) -> str:
    """The inbox over ``inbox_entries`` (migration 0005) with the given filters (names of _INBOX_FILTERS).

    $1 holders ('user:<id>', 'role:<role>' ...), $2 limit, $3 offset, then one parameter per filter. For
    each holder, the first offset + limit of its entries that pass the filters, in due order (an index
    range scan that stops there); the page is the union of those, without duplicates (a task can reach the
    same principal twice, e.g. delegated to them and open to their role), sorted and cut; only then are the
    page's tasks read. The union holds the true page: a task among the first offset + limit of the whole
    inbox is among the first offset + limit of every holder that sees it.

    Only the filters that are set are in the text (not ``$n IS NULL OR ...``), so each combination is its
    own prepared statement whose plan does not depend on parameter values: a generic plan is the right one
    (the per-holder scan is planned for an average holder either way; it is an index-only range scan while
    inbox_entries' visibility map is current, which is why 0005 has it vacuumed early).
    """
    conditions = "".join(
        f"\n              AND {_INBOX_FILTERS[name].format(number)}" for number, name in enumerate(filters, start=4)
    )
    return f"""
    WITH page AS (
        SELECT entry.task_id, entry.due_at
        FROM unnest($1::text[]) AS holders(holder)
        CROSS JOIN LATERAL (
            SELECT task_id, due_at
            FROM inbox_entries
            WHERE holder = holders.holder{conditions}
            ORDER BY due_at, task_id
            LIMIT $2::bigint + $3::bigint
        ) AS entry
        GROUP BY entry.task_id, entry.due_at
        ORDER BY entry.due_at, entry.task_id
        LIMIT $2 OFFSET $3
    )
    SELECT {", ".join(f"tasks.{column.strip()}" for column in _TASK_COLUMNS.split(","))}
    FROM page JOIN tasks ON tasks.task_id = page.task_id
    ORDER BY page.due_at, page.task_id
"""


INBOX_QUERIES = {
    filters: _inbox_sql(filters)
    for filters in itertools.chain.from_iterable(
        itertools.combinations(_INBOX_FILTERS, count) for count in range(len(_INBOX_FILTERS) + 1)
    )
}
"""One statement per combination of filters (16)."""


def inbox_holders(user_id: str, roles: list[str] | tuple[str, ...], held: str | None = None) -> list[str]:
    """The ``inbox_entries.holder`` keys of a principal: their id, then each of their roles. ``held="mine"``
    keeps only their id (tasks assigned, claimed or delegated to them), ``held="pool"`` only their roles
    (pool tasks nobody has claimed)."""
    mine = [] if held == "pool" else [f"user:{user_id}"]
    pool = [] if held == "mine" else [f"role:{role}" for role in dict.fromkeys(roles)]
    return mine + pool


async def inbox(
    pool: asyncpg.Pool,
    user_id: str,
    roles: list[str] | tuple[str, ...],
    *,
    process: str | None = None,
    stage: str | None = None,
    priority: bool | None = None,
    overdue: bool | None = None,
    held: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[TaskProjection]:
    """Tasks waiting for ``user_id``: assigned, claimed or delegated to them, or open to one of ``roles``.

    A claimed task belongs to its claimer: it stays in the claimer's, assignee's and delegate's inbox but
    leaves the inbox of everyone who merely holds a candidate role. ``overdue`` counts a task as overdue
    when the workflow flagged it or its due time has passed. Ordered by due time (none last), then task id.

    Exactly :data:`INBOX_SQL`'s rows, read through ``inbox_entries`` (see :func:`_inbox_sql`): one
    statement, one round trip, whatever the size of the principal's inbox.
    """
    values = {"process": process, "stage": stage, "priority": priority, "overdue": overdue}
    filters = tuple(name for name, value in values.items() if value is not None)
    rows = await pool.fetch(
        INBOX_QUERIES[filters],
        inbox_holders(user_id, roles, held),
        limit,
        offset,
        *(values[name] for name in filters),
    )
    return [_task(row) for row in rows]


async def case_tasks(pool: asyncpg.Pool, case_id: str) -> list[TaskProjection]:
    """Every task of a case, open or finished, in the order they were created."""
    rows = await pool.fetch(
        f"SELECT {_TASK_COLUMNS} FROM tasks WHERE case_id = $1 ORDER BY created_at, task_id", case_id
    )
    return [_task(row) for row in rows]


async def tasks_held(pool: asyncpg.Pool, user_id: str) -> list[TaskProjection]:
    """The open or claimed tasks ``user_id`` holds (as delegate, claimant or named assignee), oldest first."""
    rows = await pool.fetch(
        f"SELECT {_TASK_COLUMNS} FROM tasks WHERE status IN ('open', 'claimed') "
        "AND coalesce(delegate_id, claimed_by, assignee_id) = $1 ORDER BY created_at, task_id",
        user_id,
    )
    return [_task(row) for row in rows]


async def get_task(pool: asyncpg.Pool, task_id: str) -> TaskProjection | None:
    row = await pool.fetchrow(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE task_id = $1", task_id)
    return None if row is None else _task(row)


async def recorded_unit(pool: asyncpg.Pool, user_id: str) -> str | None:
    """The unit recorded with ``user_id``'s latest act (their own token named it then); None: they never acted."""
    return await pool.fetchval(
        "SELECT actor_unit FROM audit_events WHERE actor_id = $1 ORDER BY at DESC LIMIT 1", user_id
    )


async def recorded_definition(pool: asyncpg.Pool, case_id: str) -> dict[str, Any] | None:
    """The process definition the case started with, as its ``case.started`` recorded it."""
    found = await pool.fetchval(
        "SELECT payload->'definition' FROM audit_events WHERE case_id = $1 AND type = 'case.started'", case_id
    )
    return None if found is None else json.loads(found)


async def get_case(pool: asyncpg.Pool, case_id: str) -> StoredCase | None:
    row = await pool.fetchrow(f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = $1", case_id)
    return None if row is None else _case(row)


def _substring(column: str) -> str:
    """``{0}`` occurs in ``column``: found through its bigrams (the generated column and index of migration 0012),
    then checked."""
    return f"{column}_bigrams @> search_bigrams({{0}}) AND strpos(lower({column}), lower({{0}})) > 0"


_SEARCH_CONDITIONS = {
    "process": "process = {0}",
    "status": "status = {0}",
    "stage": "{0} = ANY(current_stages)",
    "business_key": "business_key = {0}",
    # A LIKE of a constant prefix (the search is planned with its values): the index of 0012 serves it whatever
    # the collation, and the planner estimates it from the keys' histogram (a ~>=~ / ~<~ range gets a fixed guess).
    "business_key_prefix": "business_key LIKE {0}",
    "applicant_id": "applicant_id = {0}",
    "applicant_name": _substring("applicant_name"),
    "credit_code": "credit_code = {0}",
    "title": _substring("title"),
    "unit": "applicant_unit = {0}",
    "received_from": "started_at >= {0}",
    "received_to": "started_at < {0}",
    "decided_from": "decided_at >= {0}",
    "decided_to": "decided_at < {0}",
}
"""Each search filter over ``cases`` (migration 0012 indexes the text ones by their bigrams); only the filters
given are in the statement's text, so each combination is planned for what it asks."""

_READER_CONDITION = """(applicant_id = {0} OR started_by = {0} OR observers @> ARRAY[{0}]::text[]
       OR EXISTS (SELECT 1 FROM tasks t WHERE t.case_id = c.case_id
                  AND (t.assignee_id = {0} OR t.claimed_by = {0} OR t.delegate_id = {0}
                       OR t.candidate_roles && {1}::text[])))"""


CASE_ORDERS = {
    CaseSort.updated: "updated_at DESC, case_id DESC",
    CaseSort.updated_oldest: "updated_at, case_id",
    CaseSort.received: "started_at DESC, case_id DESC",
    CaseSort.received_oldest: "started_at, case_id",
    CaseSort.decided: "decided_at DESC NULLS LAST, case_id DESC",
    CaseSort.decided_oldest: "decided_at NULLS LAST, case_id",
    CaseSort.business_key: "business_key, case_id",
    CaseSort.business_key_descending: "business_key DESC, case_id DESC",
}
"""Each order with its tie-break in the same direction, so one index (0012) read forward or backward gives it;
the cases not decided come last in either order by decision."""


def _search_values(search: CaseSearch, zone: tzinfo) -> dict[str, Any]:
    """The value of each filter given, as the statement compares it: local dates become instants in ``zone``
    (an end date counts up to the next midnight), a prefix a LIKE pattern, a credit code upper case."""

    def midnight(day: date | None, *, after: bool = False) -> datetime | None:
        if day is None:
            return None
        try:
            return (datetime.combine(day, time(), zone) + timedelta(days=after)).astimezone(UTC)
        except OverflowError:  # the first or last day a datetime can hold: the range is open at that end
            return None

    values: dict[str, Any] = search.model_dump(exclude={"sort", "limit", "offset"}, exclude_none=True)
    for name in ("received_from", "decided_from"):
        values[name] = midnight(values.get(name))
    for name in ("received_to", "decided_to"):
        values[name] = midnight(values.get(name), after=True)
    if search.credit_code is not None:
        values["credit_code"] = search.credit_code.upper()
    if search.business_key_prefix is not None:  # its pattern allows `_`, a LIKE wildcard, no `%` or backslash
        values["business_key_prefix"] = search.business_key_prefix.replace("_", "\\_") + "%"
    return {name: value for name, value in values.items() if value is not None}


CUSTOM_PLAN = "SET LOCAL plan_cache_mode = force_custom_plan"
"""A search is planned with its values: a bigram found in one case in 30,000 is read through its index and the
matches sorted, one found in every ninth case is better served by reading the cases in order until the page is
full; a prepared statement's generic plan, made once for any value, would pick one way for both."""


def case_search_sql(search: CaseSearch, zone: tzinfo, reader: Principal | None) -> tuple[str, list[Any]]:
    """The statement of a search and its parameters, the page's limit and offset last."""
    values = _search_values(search, zone)
    parameters = list(values.values())
    conditions = [_SEARCH_CONDITIONS[name].format(f"${n}") for n, name in enumerate(values, start=1)]
    if reader is not None:
        conditions.append(_READER_CONDITION.format(f"${len(parameters) + 1}", f"${len(parameters) + 2}"))
        parameters += [reader.id, list(reader.roles)]
    where = "\n          AND ".join(conditions) or "true"
    sql = f"""
        SELECT {_CASE_COLUMNS}
        FROM cases c
        WHERE {where}
        ORDER BY {CASE_ORDERS[search.sort]}
        LIMIT ${len(parameters) + 1} OFFSET ${len(parameters) + 2}
        """
    return sql, [*parameters, search.limit, search.offset]


async def list_cases(
    pool: asyncpg.Pool,
    search: CaseSearch,
    *,
    zone: tzinfo = UTC,
    reader: Principal | None = None,
) -> list[StoredCase]:
    """The page of cases matching every filter of ``search``, in its order; its local dates are dates in ``zone``.

    With ``reader``, only the cases they may read: they started it, applied for it, were copied on it, or
    hold or held one of its tasks (assigned, claimed, delegated, or open to one of their roles).
    """
    sql, parameters = case_search_sql(search, zone, reader)
    async with pool.acquire() as connection, connection.transaction(readonly=True):
        await connection.execute(CUSTOM_PLAN)
        rows = await connection.fetch(sql, *parameters)
    return [_case(row) for row in rows]


HANDLING_EVENTS = ("task.decided", "task.transferred", "task.delegated", "task.signer_added")
"""What makes a task one a person has handled (已办): they decided it, or handed it on."""


async def handled_tasks(pool: asyncpg.Pool, user_id: str, *, limit: int = 50, offset: int = 0) -> list[TaskProjection]:
    """已办: the tasks ``user_id`` decided, transferred, delegated or added a signer to, most recent first
    (read through ``audit_events_actor_at_idx``)."""
    rows = await pool.fetch(
        f"""
        SELECT {", ".join(f"t.{column.strip()}" for column in _TASK_COLUMNS.split(","))}
        FROM (SELECT task_id, max(at) AS at FROM audit_events
              WHERE actor_id = $1 AND task_id IS NOT NULL AND type = ANY($2::text[])
              GROUP BY task_id) AS handled
        JOIN tasks t ON t.task_id = handled.task_id
        ORDER BY handled.at DESC, t.task_id
        LIMIT $3 OFFSET $4
        """,
        user_id,
        list(HANDLING_EVENTS),
        limit,
        offset,
    )
    return [_task(row) for row in rows]


async def observed_cases(pool: asyncpg.Pool, user_id: str, *, limit: int = 50, offset: int = 0) -> list[StoredCase]:
    """抄送我的: the cases ``user_id`` was copied on, most recently updated first (``cases_observers_idx``)."""
    rows = await pool.fetch(
        f"""
        SELECT {_CASE_COLUMNS} FROM cases WHERE observers @> ARRAY[$1]::text[]
        ORDER BY updated_at DESC, case_id LIMIT $2 OFFSET $3
        """,
        user_id,
        limit,
        offset,
    )
    return [_case(row) for row in rows]


async def case_headlines(pool: asyncpg.Pool, case_ids: list[str]) -> dict[str, tuple[str, str]]:
    """The title and clock state (``running``, ``stopped`` for 补正 or an Art. 45 period, ``none``) of each
    of ``case_ids``, in one query."""
    rows = await pool.fetch("SELECT case_id, title, clock_state FROM cases WHERE case_id = ANY($1::text[])", case_ids)
    return {row["case_id"]: (row["title"], row["clock_state"]) for row in rows}


async def case_events(pool: asyncpg.Pool, case_id: str, *, with_documents: bool = False) -> list[DomainEvent]:
    """The stored audit trail of a case in sequence order, rebuilt as events whose hashes can be checked;
    ``with_documents``: only the events that reference documents (attachments, supplied documents, findings)."""
    only = " AND payload ?| array['attachments', 'documents', 'findings']" if with_documents else ""
    sql = f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE case_id = $1{only} ORDER BY seq"
    return [_event(row) for row in await pool.fetch(sql, case_id)]


CATALOGUE_EVENT_TYPES = ("case.published", "case.withdrawn", "case.cancelled", "case.decided", "case.reset")
"""What the catalogue in force is folded from (``approvals.audit.catalogue``): publications, the ends of
catalogue cases, the adjustment child cases' decisions, and resets (which may supersede any of them)."""


async def catalogue_events(pool: asyncpg.Pool, processes: tuple[str, ...]) -> list[DomainEvent]:
    """The events of :data:`CATALOGUE_EVENT_TYPES` of every case of ``processes``, by case and sequence.

    ``cases`` only says which case ids belong to the processes (a case's process never changes); what the
    catalogue holds comes from the audit log alone."""
    rows = await pool.fetch(
        f"""
        SELECT {_EVENT_COLUMNS}
        FROM audit_events
        WHERE case_id IN (SELECT case_id FROM cases WHERE process = ANY($1::text[]))
          AND type = ANY($2::text[])
        ORDER BY case_id, seq
        """,
        list(processes),
        list(CATALOGUE_EVENT_TYPES),
    )
    return [_event(row) for row in rows]
