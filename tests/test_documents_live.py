"""A project-approval case on the real stack issues its documents: served to its parties and auditors as signed
PDFs whose text is Chinese with their numbers, whose digest is the one `document.issued` recorded, and whose
tampering fails the audit verification naming the document."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from activities.signing import check_signature
from schemas.documents import sha256_hex
from schemas.process import Decision
from tests.api_server import LiveApi, live_api_fixture
from tests.cases import events, outbox_when
from tests.fixtures.documents import organ_signer
from tests.project_cases import OFFICER, OFFICIAL, decide, review_all, start

api = live_api_fixture("documents-api")


async def issued_events(db_pool: asyncpg.Pool, case_id: str, count: int) -> list[dict[str, Any]]:
    """The case's ``document.issued`` events, once there are ``count`` of them."""
    for _ in range(300):
        if len(issued := await events(db_pool, case_id, "document.issued")) >= count:
            return issued
        await asyncio.sleep(0.1)
    raise AssertionError(f"{case_id} issued {len(issued)} documents, expected {count}")


@pytest.fixture(scope="module")
async def decided_case(api: LiveApi, dev_server_env: WorkflowEnvironment, db_pool: asyncpg.Pool) -> str:
    handle = await start(dev_server_env, api.task_queue)
    await decide(handle, "acceptance", OFFICER)
    await review_all(handle)
    await decide(handle, "decision", OFFICIAL, Decision.approve)
    await issued_events(db_pool, handle.id, 2)
    return handle.id


async def test_a_decided_case_serves_its_signed_documents_to_its_applicant(
    api: LiveApi, decided_case: str, db_pool: asyncpg.Pool
) -> None:
    events = await issued_events(db_pool, decided_case, 2)
    async with httpx.AsyncClient(base_url=api.url) as http:
        listed = (await http.get(f"/v1/cases/{decided_case}/documents", headers=api.headers("applicant"))).json()
        assert [d["title"] for d in listed] == ["受理通知书", "准予行政许可决定书"]
        assert [d["sha256"] for d in listed] == [e["payload"]["sha256"] for e in events]
        assert [d["number"] for d in listed] == [e["payload"]["number"] for e in events]
        for document in listed:
            response = await http.get(
                f"/v1/cases/{decided_case}/documents/{document['document_id']}", headers=api.headers("applicant")
            )
            assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
            pdf = response.content
            assert sha256_hex(pdf) == document["sha256"]
            assert (await check_signature(pdf, organ_signer().certificate)).valid
            if shutil.which("pdftotext"):
                text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout
                plain = text.decode().replace(" ", "")
                assert document["number"] in plain and document["title"] in plain
                assert "阿拉山口综合保税区管理委员会" in plain
    told = await outbox_when(db_pool, decided_case, lambda rows: len(rows) == 2, kind="document.issued")
    sent = [json.loads(row["data"]) if isinstance(row["data"], str) else row["data"] for row in told]
    assert [row["recipient"] for row in told] == ["ent-001", "ent-001"]  # the applicant
    assert [(d["number"], d["sha256"]) for d in sent] == [
        (e["payload"]["number"], e["payload"]["sha256"]) for e in events
    ]
    assert all(d["href"] == f"/v1/cases/{decided_case}/documents/{d['document_id']}" for d in sent)  # never the bytes
    assert events[1]["legal_basis"] == "Art. 10"
    assert events[1]["payload"]["concerns"]["event"] == "case.decided"


async def test_documents_are_for_the_parties_and_auditors_only(api: LiveApi, decided_case: str) -> None:
    async with httpx.AsyncClient(base_url=api.url) as http:
        for who, status in (("auditor", 200), ("service", 200), ("alice", 403), ("nobody", 403)):
            response = await http.get(f"/v1/cases/{decided_case}/documents", headers=api.headers(who))
            assert response.status_code == status, (who, response.text)
        missing = await http.get(
            f"/v1/cases/{decided_case}/documents/00000000-0000-0000-0000-000000000000", headers=api.headers("auditor")
        )
        assert missing.status_code == 404


async def test_a_tampered_document_fails_verification_naming_it(
    api: LiveApi,
    decided_case: str,
    db_pool: asyncpg.Pool,
    superuser_pool: asyncpg.Pool,
    dev_server_env: WorkflowEnvironment,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
        before = (await http.get(f"/v1/cases/{decided_case}/verification", headers=api.headers("auditor"))).json()
        assert before["ok"], before
        [_, licence] = await issued_events(db_pool, decided_case, 2)
        document_id = licence["payload"]["document_id"]
        async with superuser_pool.acquire() as owner:  # what only the schema's owner could do
            await owner.execute("ALTER TABLE document_files DISABLE TRIGGER document_files_append_only")
            await owner.execute(
                "UPDATE document_files SET pdf = pdf || '\\x0a'::bytea WHERE document_id = $1",
                document_id,
            )
            await owner.execute("ALTER TABLE document_files ENABLE TRIGGER document_files_append_only")
        after = (await http.get(f"/v1/cases/{decided_case}/verification", headers=api.headers("auditor"))).json()
    assert not after["ok"]
    messages = [f["message"] for f in after["report"]["findings"] if f["kind"] == "document"]
    assert any(licence["payload"]["number"] in message and "SHA-256" in message for message in messages)
    assert any("signature" in message for message in messages)
    # `approvals audit verify`, as an operator runs it (the organ's certificate from the environment)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server_env.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", dev_server_env.client.namespace)
    from approvals.cli import app

    runner = CliRunner(env={"COLUMNS": "250"})
    result = await asyncio.to_thread(runner.invoke, app, ["audit", "verify", decided_case], catch_exceptions=False)
    assert result.exit_code == 3, result.output
    assert licence["payload"]["number"] in result.output
