"""Attachments on acts, on the real stack: by reference only, refused with 422 naming the field when malformed
or oversize, shown in the timeline, the case's view and the export bundle, and checked again by verification
where the URI can be fetched (a changed document is an error; an internal address is never fetched)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.testing import WorkflowEnvironment

from approvals.audit.attachments import AttachmentFetching, attachment_findings
from approvals.audit.bundle import load_bundle
from approvals.audit.findings import FindingKind, Severity
from approvals.audit.live import export_case
from approvals.audit.sealing import Notary
from schemas.case import ATTACHMENT_MAX_BYTES, MAX_ATTACHMENTS
from tests.api_server import LiveApi, live_api_fixture
from tests.test_api import DEFINITION, act, problem, start, wait_for_task

api = live_api_fixture("attachments")


@pytest_asyncio.fixture
async def http(api: LiveApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
        yield client


def reference(path: Path, name: str, media_type: str) -> dict[str, Any]:
    data = path.read_bytes()
    return {
        "uri": path.as_uri(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "name": name,
        "media_type": media_type,
    }


async def test_attachments_on_a_decision_in_the_timeline_the_case_and_the_export(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool, dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    photo = tmp_path / "site-photo.jpg"
    photo.write_bytes(b"\xff\xd8 photo of Border Road 7")
    plan = {"uri": "s3://docs/site-plan.pdf", "sha256": "a" * 64, "size": 48213, "name": "site plan"}
    case_id = (await start(http, api))["case_id"]
    task_id = await wait_for_task(http, api, "officer", case_id, "acceptance")
    assert (await act(http, api, "officer", f"/v1/tasks/{task_id}/claim")).status_code == 200
    attachments = [reference(photo, "现场照片", "image/jpeg"), plan]
    decided = await act(
        http, api, "officer", f"/v1/tasks/{task_id}/decide", {"decision": "approve", "attachments": attachments}
    )
    assert decided.status_code == 200, decided.text
    commented = await act(
        http, api, "officer", f"/v1/cases/{case_id}/comment", {"text": "见附件", "attachments": [plan]}
    )
    assert commented.status_code == 200, commented.text

    timeline = (await http.get(f"/v1/cases/{case_id}/timeline", headers=api.headers("auditor"))).json()
    row = next(row for row in timeline if row["type"] == "task.decided")
    assert row["attachments"] == attachments and row["data"]["attachments"] == attachments
    assert "附件：现场照片" in row["action_zh"] and "attached: 现场照片" in row["action"]
    # an act without attachments records none (the payload as it always was)
    started = next(row for row in timeline if row["type"] == "case.started")
    assert "attachments" not in started["data"] and started["attachments"] == []

    case = (await http.get(f"/v1/cases/{case_id}", headers=api.headers("officer"))).json()
    assert [(a["task_id"], a["type"], a["name"]) for a in case["attachments"]] == [
        (task_id, "task.decided", "现场照片"),
        (task_id, "task.decided", "site plan"),
        (None, "case.commented", "site plan"),
    ]

    bundle = await export_case(
        dev_server_env.client, Notary(db_pool, Ed25519PrivateKey.generate()), case_id, tmp_path / "export"
    )
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert [(a["task_id"], a["name"], a["sha256"]) for a in manifest["attachments"]] == [
        (task_id, "现场照片", attachments[0]["sha256"]),
        (task_id, "site plan", "a" * 64),
        (None, "site plan", "a" * 64),
    ]
    events = load_bundle(bundle).events
    assert await attachment_findings(events, AttachmentFetching()) == []  # the photo is as referenced; s3 not fetched

    photo.write_bytes(b"\xff\xd8 another photo")
    [changed] = await attachment_findings(events, AttachmentFetching())
    assert changed.kind is FindingKind.attachment and changed.severity is Severity.error
    assert "现场照片" in changed.message and hashlib.sha256(photo.read_bytes()).hexdigest() in changed.message


async def test_an_internal_address_is_not_fetched_even_on_an_allowed_host(db_pool: asyncpg.Pool) -> None:
    from schemas.events import DomainEvent

    event = DomainEvent.model_construct(
        seq=3, payload={"attachments": [{"uri": "http://127.0.0.1:9/x.pdf", "sha256": "b" * 64, "size": 1}]}
    )
    [note] = await attachment_findings([event], AttachmentFetching(allowed_hosts="127.0.0.1"))
    assert note.severity is Severity.note and "not fetched" in note.message and "loopback" in note.message
    assert await attachment_findings([event], AttachmentFetching()) == []  # a host not listed: not even tried


async def test_malformed_or_oversize_references_are_422_naming_the_field(http: httpx.AsyncClient, api: LiveApi) -> None:
    case_id = (await start(http, api))["case_id"]
    good = {"uri": "s3://docs/a.pdf", "sha256": "c" * 64, "size": 10, "name": "a"}
    cases = {
        "attachments": [good] * (MAX_ATTACHMENTS + 1),
        "attachments.0.uri": [{**good, "uri": "data:application/pdf;base64,JVBERi0="}],
        "attachments.0.size": [{**good, "size": ATTACHMENT_MAX_BYTES + 1}],
        "attachments.0.sha256": [{**good, "sha256": "not-a-digest"}],
        "attachments.0.media_type": [{**good, "media_type": "pdf"}],
    }
    for field, attachments in cases.items():
        response = await act(
            http, api, "officer", f"/v1/cases/{case_id}/comment", {"text": "x", "attachments": attachments}
        )
        body = problem(response, 422, "VALIDATION_ERROR")
        assert field in [error["field"] for error in body["errors"]], (field, body["errors"])
    # the same on every act that carries documents: a return, a 补正 request and the material supplied
    task_id = await wait_for_task(http, api, "officer", case_id, "acceptance")
    acts = {
        f"/v1/tasks/{task_id}/return": ("attachments", {"comment": "x"}),
        f"/v1/cases/{case_id}/request-supplement": ("attachments", {"items": [{"item": "plan"}]}),
        f"/v1/cases/{case_id}/supplement": ("documents", {}),
    }
    for path, (name, rest) in acts.items():
        for field, attachments in cases.items():
            if name == "documents" and field == "attachments":
                continue  # up to 100 documents may be supplied at once
            response = await act(http, api, "officer", path, {**rest, name: attachments})
            body = problem(response, 422, "VALIDATION_ERROR")
            named = field.replace("attachments", name, 1)
            assert named in [error["field"] for error in body["errors"]], (path, named, body["errors"])


async def test_attachments_on_a_supplement_request_a_supplement_and_a_return_in_every_view(
    http: httpx.AsyncClient, api: LiveApi, db_pool: asyncpg.Pool, dev_server_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    notice = {"uri": "s3://docs/补正告知书.pdf", "sha256": "d" * 64, "size": 2048, "name": "补正告知书"}
    supplied = {"uri": "s3://portal/site-plan-signed.pdf", "sha256": "e" * 64, "size": 4096, "name": "signed plan"}
    memo = tmp_path / "return-memo.pdf"
    memo.write_bytes(b"%PDF-1.7 why the review goes back")
    returned = reference(memo, "退回说明", "application/pdf")
    # 补正 comes before acceptance (Art. 32): the period starts when the acceptance stage accepts
    accepting = {**DEFINITION, "deadline": {**DEFINITION["deadline"], "starts_after_stage": "acceptance"}}
    case_id = (await start(http, api, definition=accepting))["case_id"]
    acceptance = await wait_for_task(http, api, "officer", case_id, "acceptance")
    assert (await act(http, api, "officer", f"/v1/tasks/{acceptance}/claim")).status_code == 200
    asked = {"items": [{"item": "site plan", "reason": "not signed"}], "attachments": [notice]}
    requested = await act(http, api, "officer", f"/v1/cases/{case_id}/request-supplement", asked)
    assert requested.status_code == 200, requested.text
    answered = await act(http, api, "applicant", f"/v1/cases/{case_id}/supplement", {"documents": [supplied]})
    assert answered.status_code == 200, answered.text
    assert (
        await act(http, api, "officer", f"/v1/tasks/{acceptance}/decide", {"decision": "approve"})
    ).status_code == 200
    review = await wait_for_task(http, api, "alice", case_id, "review")
    back = {"comment": "选址说明不完整", "return_to": "acceptance", "attachments": [returned]}
    response = await act(http, api, "alice", f"/v1/tasks/{review}/return", back)
    assert response.status_code == 200, response.text

    expected = [
        ("case.supplement_requested", None, notice),
        ("case.supplemented", None, supplied),
        ("task.decided", review, returned),
    ]
    timeline = (await http.get(f"/v1/cases/{case_id}/timeline", headers=api.headers("auditor"))).json()
    rows = [row for row in timeline if row["attachments"]]
    assert [(row["type"], row["task_id"], row["attachments"]) for row in rows] == [
        (kind, task, [ref]) for kind, task, ref in expected
    ]
    assert all(f"附件：{ref['name']}" in row["action_zh"] for row, (_, _, ref) in zip(rows, expected, strict=True))
    assert rows[2]["data"]["decision"] == "return"
    event = await db_pool.fetchrow(
        "SELECT payload FROM audit_events WHERE case_id = $1 AND type = 'case.supplement_requested'", case_id
    )
    assert json.loads(event["payload"])["attachments"] == [notice]
    told = await db_pool.fetchval(
        "SELECT data::text FROM outbox WHERE case_id = $1 AND kind = 'case.supplement_requested' "
        "AND recipient = 'ent-001'",
        case_id,
    )
    assert json.loads(told)["attachments"] == [notice], told  # the applicant is told with the notice's reference

    # the task view: the task and the documents of every act on its case, for the reviewer who holds the next one
    again = await wait_for_task(http, api, "officer", case_id, "acceptance")
    view = await http.get(f"/v1/tasks/{again}", headers=api.headers("officer"))
    assert view.status_code == 200, view.text
    assert view.json()["task"]["task_id"] == again and view.json()["task"]["status"] == "open"
    recorded = [(a["type"], a["task_id"], a["name"], a["sha256"], a["size"]) for a in view.json()["attachments"]]
    assert recorded == [(kind, task, ref["name"], ref["sha256"], ref["size"]) for kind, task, ref in expected]
    encoded = await http.get(f"/v1/tasks/{again.replace('/', '%2F')}", headers=api.headers("officer"))
    assert encoded.status_code == 200 and encoded.json() == view.json()
    problem(await http.get(f"/v1/tasks/{case_id}/review/9", headers=api.headers("officer")), 404, "TASK_NOT_FOUND")
    problem(await http.get(f"/v1/tasks/{again}", headers=api.headers("nobody")), 403, "NOT_A_CASE_READER")

    bundle = await export_case(
        dev_server_env.client, Notary(db_pool, Ed25519PrivateKey.generate()), case_id, tmp_path / "export"
    )
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert [(a["task_id"], a["name"], a["sha256"]) for a in manifest["attachments"]] == [
        (task, ref["name"], ref["sha256"]) for _, task, ref in expected
    ]
    assert await attachment_findings(load_bundle(bundle).events, AttachmentFetching()) == []
    memo.write_bytes(b"%PDF-1.7 another memo")
    [changed] = await attachment_findings(load_bundle(bundle).events, AttachmentFetching())
    assert "退回说明" in changed.message and changed.severity is Severity.error
