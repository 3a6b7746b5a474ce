"""Official documents (公文): what a case issues, how each kind is numbered, and what its template is given.

A document is rendered from a template (``workflows/templates/<kind>.html.j2``) with a :class:`DocumentContext`;
the workflow builds the context from the event that made the document due, the activity numbers, renders,
signs and stores it, and the workflow records ``document.issued`` with the :class:`IssuedDocument`.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.remedies import RECONSIDERATION, SUIT, Remedy


class DocumentKind(StrEnum):
    acceptance = "acceptance"
    refusal_to_accept = "refusal_to_accept"
    supplement = "supplement"
    extension = "extension"
    special_procedure = "special_procedure"
    license_granted = "license_granted"
    license_refused = "license_refused"
    error_tolerance = "error_tolerance"
    talent_decision = "talent_decision"
    catalogue_notice = "catalogue_notice"


class KindSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str = Field(description="文种, the title's last part, e.g. 受理通知书.")
    title_en: str
    series: str = Field(description="代字 after the organ's prefix: each series is numbered 1, 2, 3 … a year.")


KINDS: dict[DocumentKind, KindSpec] = {
    DocumentKind.acceptance: KindSpec(title="受理通知书", title_en="Notice of acceptance", series="受"),
    DocumentKind.refusal_to_accept: KindSpec(title="不予受理决定书", title_en="Decision not to accept", series="不受"),
    DocumentKind.supplement: KindSpec(title="补正材料通知书", title_en="Notice to supplement", series="补"),
    DocumentKind.extension: KindSpec(title="延长期限告知书", title_en="Notice of extension", series="延"),
    DocumentKind.special_procedure: KindSpec(
        title="特别程序期间告知书", title_en="Notice of an excluded period", series="特"
    ),
    DocumentKind.license_granted: KindSpec(
        title="准予行政许可决定书", title_en="Decision granting the licence", series="许"
    ),
    DocumentKind.license_refused: KindSpec(
        title="不予行政许可决定书", title_en="Decision refusing the licence", series="许"
    ),
    DocumentKind.error_tolerance: KindSpec(
        title="容错免责（减轻责任）认定书", title_en="Error-tolerance determination", series="容"
    ),
    DocumentKind.talent_decision: KindSpec(title="人才政策决定书", title_en="Talent policy decision", series="才"),
    DocumentKind.catalogue_notice: KindSpec(title="公告", title_en="Notice of the power catalogue", series="公"),
}
"""A grant and a refusal of a licence share one series (行政许可决定书): one register of licensing decisions."""


def document_number(prefix: str, series: str, year: int, sequence: int) -> str:
    """发文字号 (GB/T 9704-2012 7.2.4): organ code, the year in full in 〔〕, the sequence without leading zeros."""
    return f"{prefix}{series}〔{year}〕{sequence}号"


def document_id_for(key: str) -> str:
    """The document's id, fixed by its idempotency key: a retried issue names the same document."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"approvals:document:{key}"))


class DocumentContext(BaseModel):
    """Everything a template may use; a template naming anything else fails at worker start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: DocumentKind
    case_id: str
    case_title: str = Field(description="事由: the matter, as the case is titled.")
    process: str
    addressee: str = Field(description="主送: the applicant (or the unit) the document is addressed to.")
    legal_basis: str
    issued_on: date = Field(description="成文日期: the zone's local date of the event that made it due.")
    received_on: date | None = None
    outcome: str | None = None
    reasons: list[str] = Field(default_factory=list)
    items: list[str] = Field(default_factory=list, description="补正: everything to supplement, at once.")
    conditions: list[str] = Field(default_factory=list)
    working_days: int | None = Field(None, description="Extension or excluded period, in working days.")
    due_on: date | None = None
    procedure: str | None = Field(None, description="Art. 45: hearing, expert review … (its kind).")
    remedies: list[Remedy] = Field(default_factory=list)
    details: dict[str, str] = Field(
        default_factory=dict, description="Named facts shown as a list (e.g. the catalogue's entries)."
    )


class Organ(BaseModel):
    """The issuing organ (DOCUMENT_ORGAN_NAME, DOCUMENT_NUMBER_PREFIX)."""

    model_config = ConfigDict(frozen=True)

    name: str
    prefix: str


class IssueRequest(BaseModel):
    """What the workflow asks of the ``issue_document`` activity."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="<workflow id>/<seq of the event that made it due>: one document per key.")
    context: DocumentContext

    @property
    def document_id(self) -> str:
        return document_id_for(self.key)


class IssuedDocument(BaseModel):
    """The stored document, as ``document.issued`` records it."""

    model_config = ConfigDict(frozen=True)

    document_id: str
    kind: DocumentKind
    title: str
    number: str
    sha256: str
    size: int
    legal_basis: str
    issued_on: date


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sample_context(kind: DocumentKind) -> DocumentContext:
    """A context with every field filled: each template is rendered with it at worker start."""
    fields: dict[str, Any] = {
        "kind": kind,
        "case_id": "project-approval:SAMPLE-1",
        "case_title": "示例项目备案",
        "process": "project-approval",
        "addressee": "示例企业有限公司",
        "legal_basis": "Art. 10",
        "issued_on": date(2026, 12, 7),
        "received_on": date(2026, 12, 1),
        "outcome": "approved",
        "reasons": ["示例理由"],
        "items": ["示例材料"],
        "conditions": ["示例条件"],
        "working_days": 10,
        "due_on": date(2026, 12, 21),
        "procedure": "hearing",
        "remedies": [RECONSIDERATION, SUIT],
        "details": {"示例": "内容"},
    }
    return DocumentContext(**fields)
