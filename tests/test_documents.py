"""Official documents: gapless numbers, the GB/T 9704-2012 layout measured from the PDF, deterministic rendering,
the organ's signature, storing once, and templates checked when the worker starts."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import uuid
from datetime import date
from pathlib import Path

import asyncpg
import pdfplumber
import pytest
from weasyprint import HTML

from activities.documents import TEMPLATES, DocumentActivities, DocumentRenderer, TemplateError
from activities.signing import check_signature
from approvals.settings import SettingsError, load_settings
from approvals.storage import documents as register
from schemas.documents import KINDS, DocumentKind, IssueRequest, Organ, sample_context
from tests.fixtures.documents import organ_signer
from worker import organ_signer as configured_signer

ORGAN = Organ(name="阿拉山口综合保税区管理委员会", prefix="阿综保管")
MM = 72 / 25.4
"""PDF points per millimetre."""


def is_red(color: tuple[float, ...]) -> bool:
    red, green, blue = color
    return red > 0.8 and green < 0.1 and blue < 0.1


def registration(case_id: str, key: str, organ: str) -> register.Registration:
    return register.Registration(
        document_id=str(uuid.uuid4()),
        key=key,
        case_id=case_id,
        kind=DocumentKind.acceptance,
        title="受理通知书",
        organ=organ,
        prefix=ORGAN.prefix,
        series="受",
        legal_basis="Art. 10",
        issued_on=date(2026, 12, 7),
    )


async def test_concurrent_issues_across_50_cases_number_without_gap_or_duplicate(db_pool: asyncpg.Pool) -> None:
    organ = f"organ-{uuid.uuid4().hex[:8]}"  # a register of its own: other tests' documents do not count
    entries = [registration(f"project-approval:C-{n}", f"project-approval:C-{n}/7", organ) for n in range(50)]
    retries = entries[:10]  # the same keys again, racing: a retried activity
    results = await asyncio.gather(*(register.register(db_pool, entry) for entry in entries + retries))
    first, again = results[:50], results[50:]
    numbers = sorted(int(r.number.split("〕")[1].removesuffix("号")) for r in first)
    assert numbers == list(range(1, 51))
    assert [r.number for r in again] == [r.number for r in first[:10]]
    assert first[0].number.startswith("阿综保管受〔2026〕")
    stored = await db_pool.fetchval("SELECT last_number FROM document_counters WHERE organ = $1", organ)
    assert stored == 50


async def test_the_register_is_append_only_for_the_app_role(db_pool: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.PostgresError):
        await db_pool.execute("UPDATE documents SET number = 'x'")
    with pytest.raises(asyncpg.PostgresError):
        await db_pool.execute("DELETE FROM document_files")


def test_a_retried_render_yields_the_same_bytes() -> None:
    renderer = DocumentRenderer(ORGAN)
    context = sample_context(DocumentKind.license_refused)
    first = renderer.pdf(context, "阿综保管许〔2026〕15号", "doc-1")
    assert renderer.pdf(context, "阿综保管许〔2026〕15号", "doc-1") == first
    assert renderer.pdf(context, "阿综保管许〔2026〕16号", "doc-1") != first


def test_the_shared_font_configuration_writes_the_bytes_a_fresh_one_writes() -> None:
    """Documents of other kinds rendered first change nothing: a retry in another worker process matches."""
    renderer = DocumentRenderer(ORGAN)
    for kind in DocumentKind:
        renderer.pdf(sample_context(kind), "阿综保管许〔2026〕1号", f"doc-{kind}")
    context = sample_context(DocumentKind.license_refused)
    identifier = hashlib.md5(b"doc-1", usedforsecurity=False).digest()
    fresh = HTML(string=renderer.html(context, "阿综保管许〔2026〕15号")).write_pdf(
        pdf_identifier=identifier, uncompressed_pdf=False
    )
    assert renderer.pdf(context, "阿综保管许〔2026〕15号", "doc-1") == fresh


def test_issuing_documents_does_not_grow_the_worker_by_each_one() -> None:
    """Each document used to keep about 20 MiB of fontconfig's memory until a rare garbage collection."""
    renderer = DocumentRenderer(ORGAN)
    context = sample_context(DocumentKind.license_refused)
    for warm_up in range(2):
        renderer.pdf(context, f"阿综保管许〔2026〕{warm_up}号", "doc-warm")
    before = resident_mib()
    for n in range(10):
        renderer.pdf(context, f"阿综保管许〔2026〕{n + 10}号", f"doc-{n}")
    assert resident_mib() - before < 100  # ten documents grew it by ~200 MiB before


def resident_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_a_template_naming_a_missing_field_fails_when_the_renderer_starts(tmp_path: Path) -> None:
    for template in TEMPLATES.glob("*.j2"):
        (tmp_path / template.name).write_text(template.read_text())
    (tmp_path / "extension.html.j2").write_text(
        '{% extends "_layout.html.j2" %}{% block body %}<p>{{ context.extension_reason }}</p>{% endblock %}'
    )
    with pytest.raises(TemplateError, match=r"extension\.html\.j2.*extension_reason"):
        DocumentRenderer(ORGAN, templates=tmp_path)


def test_the_layout_follows_gb_t_9704_2012() -> None:
    context = sample_context(DocumentKind.license_refused)
    pdf = DocumentRenderer(ORGAN).pdf(context, "阿综保管许〔2026〕15号", "doc-1")
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        first = document.pages[0]
        assert (round(first.width / MM), round(first.height / MM)) == (210, 297)  # A4
        chars = first.chars
        body = [c for c in chars if round(c["size"]) == 16]
        number = [c for c in chars if round(c["size"]) == 14 and c["top"] > 250 * MM]
        text_top = min(c["top"] for c in chars)
        left = min(c["x0"] for c in body)
        right = max(c["x1"] for c in body)
        bottom = max(c["bottom"] for c in chars if c["top"] < 262 * MM)
        assert abs(text_top / MM - 37) <= 1, "top margin (天头) 37 mm ± 1"
        assert abs(left / MM - 28) <= 1, "left margin (订口) 28 mm ± 1"
        assert right / MM <= 28 + 156 + 1, "type area 156 mm wide"
        assert bottom / MM <= 37 + 225 + 1, "type area 225 mm high"
        assert {c["fontname"].split("+")[1] for c in body} <= {"Noto-Serif-CJK-SC", "FangSong"}
        organ_mark = [c for c in chars if c["text"] in ORGAN.name and round(c["size"]) == 26]
        assert organ_mark and all(is_red(c["non_stroking_color"]) for c in organ_mark)
        assert {round(c["size"]) for c in chars if c["text"] in "决定书"} >= {22}  # title 2号
        assert "".join(c["text"] for c in number).replace(" ", "") == "—1—"
        assert all(c["top"] / MM > 37 + 225 for c in number), "page number below the type area"
        lines = first.extract_text()
        assert "阿综保管许〔2026〕15号" in lines
        assert "示例企业有限公司：" in lines
    assert "2026年12月7日" in "".join(page.extract_text() for page in pdfplumber.open(io.BytesIO(pdf)).pages)


async def test_issuing_numbers_signs_and_stores_once(db_pool: asyncpg.Pool) -> None:
    signer = organ_signer()
    organ = Organ(name=f"测试机关{uuid.uuid4().hex[:6]}", prefix="测试")
    activities = DocumentActivities(db_pool, organ, signer)
    context = sample_context(DocumentKind.license_granted).model_copy(update={"case_id": f"c-{uuid.uuid4().hex}"})
    request = IssueRequest(key=f"{context.case_id}/12", context=context)
    issued = await activities.issue_document(request)
    again = await activities.issue_document(request)
    assert again == issued
    assert issued.number == f"测试{KINDS[DocumentKind.license_granted].series}〔2026〕1号"
    pdf = await register.case_document(db_pool, context.case_id, issued.document_id)
    assert pdf is not None and (await check_signature(pdf, signer.certificate)).valid
    listed = await register.case_documents(db_pool, context.case_id)
    assert listed == [issued]


def test_a_worker_without_the_organ_certificate_stops_naming_the_setting() -> None:
    settings = load_settings(document_signing_certificate_path=None)
    with pytest.raises(SettingsError, match="DOCUMENT_SIGNING_CERTIFICATE_PATH is not set"):
        configured_signer(settings)
