"""Which step issues which document, and what each says: the pure rule, and cases that accept, exclude a
period, extend and refuse to accept, read back from the stored PDFs as text."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from approvals.storage.documents import case_document
from schemas.case import ExcludePeriodRequest, ExtendRequest
from schemas.documents import DocumentKind
from schemas.events import GENESIS_HASH, EventType, seal_event
from schemas.principal import SYSTEM
from schemas.process import Deadline, Decision, ExcludedPeriodKind, licensing_law_period
from tests.cases import decide, definition, events, finished, open_tasks, person, stage, start_case, view_when
from workflows.kernel import ApprovalWorkflow
from workflows.kernel.documents import due_document

HEAD, ALICE, BOB = person("head-1", "head"), person("alice", "reviewer"), person("bob", "reviewer")


def event(type_: EventType, **payload: Any) -> Any:
    return seal_event(
        case_id="c", seq=1, prev_hash=GENESIS_HASH, type=type_, actor=SYSTEM, at=datetime(2026, 12, 7, tzinfo=UTC),
        legal_basis="Art. 10", payload=payload,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("process", "due", "kind"),
    [
        ("generic", event(EventType.case_accepted), DocumentKind.acceptance),
        ("generic", event(EventType.case_supplement_requested), DocumentKind.supplement),
        ("generic", event(EventType.case_extended), DocumentKind.extension),
        ("generic", event(EventType.clock_paused), DocumentKind.special_procedure),
        ("generic", event(EventType.case_remedies_notified, concerns={"kind": "refusal_to_accept"}),
         DocumentKind.refusal_to_accept),
        ("project-approval", event(EventType.case_remedies_notified, concerns={"kind": "refusal"}),
         DocumentKind.license_refused),
        ("generic", event(EventType.case_remedies_notified, concerns={"kind": "refusal"}), None),
        ("project-approval", event(EventType.case_decided, outcome="approved_with_conditions"),
         DocumentKind.license_granted),
        ("project-approval", event(EventType.case_decided, outcome="rejected"), None),  # its refusal notice issues it
        ("generic", event(EventType.case_decided, outcome="approved"), None),
        ("talent-policy", event(EventType.case_notified, decision="rejected"), DocumentKind.talent_decision),
        ("talent-policy", event(EventType.case_decided, outcome="approved"), None),
        ("error-tolerance", event(EventType.error_tolerance_determined), DocumentKind.error_tolerance),
        ("power-adjustment", event(EventType.case_published), DocumentKind.catalogue_notice),
        ("project-approval", event(EventType.case_published), None),
        ("generic", event(EventType.task_decided), None),
    ],
)  # fmt: skip
def test_each_step_issues_its_document(process: str, due: Any, kind: DocumentKind | None) -> None:
    assert due_document(process, due) is kind


async def documents_as_text(db_pool: asyncpg.Pool, case_id: str) -> dict[str, str]:
    """Each issued document's title and its stored PDF's text (pdftotext, spaces removed)."""
    texts: dict[str, str] = {}
    for issued in await events(db_pool, case_id, "document.issued"):
        pdf = await case_document(db_pool, case_id, issued["payload"]["document_id"])
        assert pdf is not None
        run = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
        texts[issued["payload"]["title"]] = run.stdout.decode().replace(" ", "").replace("\n", "")
    return texts


needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")


@needs_pdftotext
async def test_acceptance_excluded_period_and_extension_each_tell_the_applicant_in_a_document(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(
        stage("acceptance", assignees=("alice",), deadline=Deadline(working_days=5)),
        stage("review", assignees=("bob",), deadline=Deadline(working_days=10)),
        deadline=licensing_law_period(starts_after_stage="acceptance"),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        [acceptance] = open_tasks(await view_when(handle, open_tasks))
        await decide(handle, ALICE, acceptance)
        [review] = open_tasks(await view_when(handle, lambda v: bool(open_tasks(v, "review"))), "review")
        excluded = ExcludePeriodRequest(
            actor=HEAD, kind=ExcludedPeriodKind.expert_review, reason="环评专家评审", expected_working_days=5
        )
        await handle.execute_update(ApprovalWorkflow.exclude_period, excluded)
        await handle.execute_update(ApprovalWorkflow.extend, ExtendRequest(actor=HEAD, reason="专家评审意见尚未形成"))
        await decide(handle, BOB, review)
        await finished(time_skipping_env, handle)

    texts = await documents_as_text(db_pool, handle.id)
    assert set(texts) == {"受理通知书", "特别程序期间告知书", "延长期限告知书"}
    assert "决定予以受理" in texts["受理通知书"]
    assert "专家评审" in texts["特别程序期间告知书"] and "5个工作日" in texts["特别程序期间告知书"]
    assert "专家评审意见尚未形成" in texts["延长期限告知书"] and "10个工作日" in texts["延长期限告知书"]
    numbers = [e["payload"]["number"] for e in await events(db_pool, handle.id, "document.issued")]
    assert all(number in "".join(texts.values()) for number in numbers)


@needs_pdftotext
async def test_a_refusal_to_accept_gives_its_reasons_and_the_remedies_in_a_decision(
    time_skipping_env: WorkflowEnvironment, engine_worker, db_pool: asyncpg.Pool
) -> None:
    process = definition(
        stage("acceptance", assignees=("alice",), deadline=Deadline(working_days=5)),
        stage("review", assignees=("bob",)),
        deadline=licensing_law_period(starts_after_stage="acceptance"),
    )
    async with engine_worker(time_skipping_env) as queue:
        handle = await start_case(time_skipping_env.client, queue, process)
        [task] = open_tasks(await view_when(handle, open_tasks))
        await decide(handle, ALICE, task, Decision.reject, comment="不属于本机关职权范围")
        await finished(time_skipping_env, handle)

    texts = await documents_as_text(db_pool, handle.id)
    assert list(texts) == ["不予受理决定书"]
    refusal = texts["不予受理决定书"]
    assert "不属于本机关职权范围" in refusal
    assert "60日内" in refusal and "申请行政复议" in refusal and "6个月内" in refusal and "提起行政诉讼" in refusal
