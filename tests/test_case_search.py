"""Case search for office staff (migration 0012): the applicant's name by a substring of two characters or
more (Chinese included), credit code, title, business key prefix, unit, received and decided local dates,
sorted and paged; what recording and the migration's backfill put in the search columns; and the plans, which
read the indexes. Over HTTP and the CLI: tests/test_api.py."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from pydantic import ValidationError

from approvals.event_wording import CHINA_TIME
from approvals.migrate import load_migrations, migrate
from approvals.storage import queries
from approvals.storage.records import record_batch
from schemas.events import GENESIS_HASH, seal_event
from schemas.principal import Principal
from schemas.records import CaseProjection, RecordBatch
from schemas.search import CaseSearch, CaseSort
from tests.fixtures.postgres import CreateDatabase

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
PORTAL = Principal(id="svc-portal", name="一窗受理平台", roles=("service",))
LOGISTICS = "新疆阿拉山口物流有限公司"
WOLFBERRY = "博州精河枸杞有限公司"
TRADING = "Alashankou Trading Co."
CODE = "91652700MA77XAMPL8"


async def started(
    pool: asyncpg.Pool,
    process: str,
    key: str,
    *,
    party: str,
    code: str | None = None,
    title: str = "仓储项目 Warehouse project",
    unit: str = "",
    at: datetime = T0,
    decided_at: datetime | None = None,
    party_field: str = "enterprise",
) -> str:
    """A case recorded as the engine records it: its ``case.started`` (and ``case.decided``) and its row."""
    case_id = f"{process}:{key}"
    applicant = {"id": "ent-1", "name": "企业用户", "unit": unit, "roles": ["applicant"]}
    data: dict[str, Any] = {party_field: {"name": party, "unified_social_credit_code": code}}
    chain = [
        seal_event(
            case_id=case_id, seq=1, type="case.started", actor=PORTAL, at=at, legal_basis="Art. 10",
            payload={"business_key": key, "title": title, "applicant": applicant, "data": data},
            prev_hash=GENESIS_HASH,
        )
    ]  # fmt: skip
    if decided_at is not None:
        chain.append(
            seal_event(
                case_id=case_id, seq=2, type="case.decided", actor=PORTAL, at=decided_at, legal_basis="Art. 10",
                payload={"status": "approved"}, prev_hash=chain[0].hash,
            )
        )  # fmt: skip
    projection = CaseProjection(
        case_id=case_id, process=process, business_key=key, title=title,
        status="approved" if decided_at else "in_review", applicant_id="ent-1", started_at=at,
        updated_at=decided_at or at, last_seq=len(chain), started_by=PORTAL.id, observers=[],
    )  # fmt: skip
    await record_batch(pool, RecordBatch(case_id=case_id, events=chain, case=projection))
    return case_id


async def found(pool: asyncpg.Pool, **search: Any) -> list[str]:
    return [c.case_id for c in await queries.list_cases(pool, CaseSearch(**search), zone=CHINA_TIME)]


def unique_process() -> str:
    return f"search-{uuid.uuid4().hex[:8]}"


async def test_a_chinese_substring_of_two_characters_or_more_finds_the_applicant(db_pool: asyncpg.Pool) -> None:
    process = unique_process()
    logistics = await started(db_pool, process, "K-1", party=LOGISTICS, code=CODE)
    wolfberry = await started(db_pool, process, "K-2", party=WOLFBERRY, at=T0 + timedelta(hours=1))
    trading = await started(db_pool, process, "K-3", party=TRADING, at=T0 + timedelta(hours=2))

    assert await found(db_pool, process=process, applicant_name="物流") == [logistics]
    assert await found(db_pool, process=process, applicant_name="山口物流有") == [logistics]
    assert await found(db_pool, process=process, applicant_name="有限公司", sort="started_at") == [logistics, wolfberry]
    assert await found(db_pool, process=process, applicant_name="流物") == []  # its bigram is nowhere
    assert await found(db_pool, process=process, applicant_name="限公有") == []  # bigrams found, substring not
    assert await found(db_pool, process=process, applicant_name="trading co") == [trading]  # Latin: any case
    with pytest.raises(ValidationError, match="at least 2 characters"):
        CaseSearch(applicant_name="流")


async def test_recording_fills_the_search_columns_from_case_started_and_case_decided(db_pool: asyncpg.Pool) -> None:
    process = unique_process()
    decided = T0 + timedelta(days=3)
    case_id = await started(
        db_pool, process, "U-1", party="阿拉山口市应急管理局", code=None, unit="应急管理局",
        party_field="applying_unit", decided_at=decided,
    )  # fmt: skip
    stored = await queries.get_case(db_pool, case_id)
    assert stored is not None
    assert (stored.applicant_name, stored.applicant_unit, stored.credit_code, stored.decided_at) == (
        "阿拉山口市应急管理局",
        "应急管理局",
        None,
        decided,
    )
    generic = await started(db_pool, process, "U-2", party="ignored", party_field="something_else")
    stored = await queries.get_case(db_pool, generic)
    assert stored is not None and stored.applicant_name == "企业用户"  # no party in the data: the applicant


async def test_credit_code_title_key_prefix_unit_and_local_dates(db_pool: asyncpg.Pool) -> None:
    process = unique_process()
    # 2026-03-01 17:30 UTC is 2026-03-02 01:30 in the zone: received on the 2nd, local time.
    late = await started(
        db_pool, process, "AB_1", party=LOGISTICS, code=CODE, title="保税仓库扩建 Bonded warehouse extension",
        unit="物流园区", at=datetime(2026, 3, 1, 17, 30, tzinfo=UTC), decided_at=datetime(2026, 3, 10, 15, 59, tzinfo=UTC),
    )  # fmt: skip
    other = await started(
        db_pool, process, "ABX1", party=WOLFBERRY, title="枸杞加工厂", unit="农业园区",
        at=datetime(2026, 3, 1, 15, 0, tzinfo=UTC), decided_at=datetime(2026, 3, 10, 16, 0, tzinfo=UTC),
    )  # fmt: skip

    assert await found(db_pool, process=process, credit_code=CODE.lower()) == [late]
    assert await found(db_pool, process=process, title="仓库扩建") == [late]
    assert await found(db_pool, process=process, title="WAREHOUSE") == [late]
    assert await found(db_pool, process=process, business_key_prefix="AB_") == [late]  # `_` is no wildcard
    by_key = await found(db_pool, process=process, business_key_prefix="AB", sort="business_key")
    assert set(by_key) == {late, other}  # in the database's collation:
    assert await found(db_pool, process=process, business_key_prefix="AB", sort="-business_key") == by_key[::-1]
    assert await found(db_pool, process=process, unit="农业园区") == [other]
    assert await found(db_pool, process=process, received_from=date(2026, 3, 2)) == [late]
    assert await found(db_pool, process=process, received_to=date(2026, 3, 1)) == [other]
    assert await found(db_pool, process=process, decided_to=date(2026, 3, 10)) == [late]  # 23:59 local
    assert await found(db_pool, process=process, decided_from=date(2026, 3, 11)) == [other]  # 00:00 local
    assert await found(db_pool, process=process, sort=CaseSort.decided) == [other, late]
    assert await found(db_pool, process=process, received_from=date.min, received_to=date.max, sort="started_at") == [
        other,
        late,
    ]  # the ends of the calendar leave the range open
    paged = await queries.list_cases(db_pool, CaseSearch(process=process, sort="started_at", limit=1, offset=1))
    assert [c.case_id for c in paged] == [late]
    with pytest.raises(ValidationError, match="received_from 2026-03-03 is after received_to 2026-03-02"):
        CaseSearch(received_from=date(2026, 3, 3), received_to=date(2026, 3, 2))
    with pytest.raises(ValidationError, match="credit_code"):
        CaseSearch(credit_code="91652700MA77XAMPLO")  # O is no credit-code character (GB 32100-2015)


SEARCH_INDEXES = {
    "applicant_name": ("4321枸", "cases_applicant_name_search_idx"),
    "title": ("目 4321", "cases_title_search_idx"),
    "credit_code": (CODE, "cases_credit_code_idx"),
    "business_key_prefix": ("K-12", "cases_business_key_prefix_idx"),
}


async def test_each_search_reads_its_index(create_database: CreateDatabase) -> None:
    url = await create_database()
    await migrate(url)
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            """
            INSERT INTO cases (case_id, process, business_key, title, status, applicant_id, started_at, updated_at,
                               last_seq, started_by, applicant_name, credit_code)
            SELECT 'generic:K-' || n, 'generic', 'K-' || n, '仓储项目 ' || n, 'in_review', 'ent-' || n,
                   now() - n * interval '1 minute', now(), 1, 'svc', '企业' || n || (ARRAY['物流', '枸杞', '商贸'])[n % 3 + 1],
                   CASE WHEN n % 10 = 0 THEN '91652700MA77X' || lpad(n::text, 5, '0') END
            FROM generate_series(1, 5000) AS n
            """
        )
        await connection.execute("ANALYZE cases")
        for field, (value, index) in SEARCH_INDEXES.items():
            sql, parameters = queries.case_search_sql(CaseSearch(**{field: value}), CHINA_TIME, None)
            async with connection.transaction():
                await connection.execute("SET LOCAL enable_seqscan = off")
                plan = "\n".join(row[0] for row in await connection.fetch("EXPLAIN " + sql, *parameters))
            assert index in plan, plan
        names = {f"企业{n}{['物流', '枸杞', '商贸'][n % 3]}" for n in range(1, 5001)}
        rows = await connection.fetch(*_search(CaseSearch(applicant_name="9物流", limit=200)))
        assert sorted(row["applicant_name"] for row in rows) == sorted(name for name in names if "9物流" in name)
    finally:
        await connection.close()


def _search(search: CaseSearch) -> tuple[Any, ...]:
    sql, parameters = queries.case_search_sql(search, CHINA_TIME, None)
    return (sql, *parameters)


V0012 = "0012_case_search"


async def test_0012_backfills_the_search_columns_from_the_audit_log(create_database: CreateDatabase) -> None:
    url = await create_database()
    before = [m for m in load_migrations() if m.version < V0012]
    await migrate(url, migrations=before)
    connection = await asyncpg.connect(url)
    try:
        started_payload = {
            "applicant": {"id": "ent-1", "name": "企业用户", "unit": "招商局"},
            "data": {"enterprise": {"name": LOGISTICS, "unified_social_credit_code": CODE}},
        }
        for seq, (kind, payload, at) in enumerate(
            [("case.started", started_payload, T0), ("case.decided", {}, T0 + timedelta(days=2))], start=1
        ):
            await connection.execute(
                "INSERT INTO audit_events (case_id, seq, type, actor_id, at, legal_basis, payload, prev_hash, hash) "
                "VALUES ('generic:OLD-1', $1, $2, 'svc', $3, 'Art. 10', $4::text::jsonb, 'p', 'h')",
                seq, kind, at, json.dumps(payload),
            )  # fmt: skip
        await connection.execute(
            "INSERT INTO cases (case_id, process, business_key, title, status, applicant_id, started_at, updated_at, "
            "last_seq, started_by) VALUES ('generic:OLD-1', 'generic', 'OLD-1', 'A', 'approved', 'ent-1', $1, $1, 2, "
            "'svc')",
            T0,
        )
        assert V0012 in await migrate(url)
        row = await connection.fetchrow(
            "SELECT applicant_name, applicant_unit, credit_code, decided_at FROM cases WHERE case_id = 'generic:OLD-1'"
        )
        assert dict(row) == {
            "applicant_name": LOGISTICS,
            "applicant_unit": "招商局",
            "credit_code": CODE,
            "decided_at": T0 + timedelta(days=2),
        }
    finally:
        await connection.close()


def test_the_backfill_and_recording_agree_on_who_the_applicant_is() -> None:
    from approvals.storage.records import applicant_facts

    payload: dict[str, Any] = {
        "applicant": {"name": "企业用户", "unit": "招商局"},
        "data": {"applying_unit": {"name": "X局"}},
    }
    assert applicant_facts(payload) == ("X局", "招商局", None)
    payload["data"] = {"unified_social_credit_code": CODE, "enterprise": None}
    assert applicant_facts(payload) == ("企业用户", "招商局", CODE)
