"""The official documents of a case, checked against its record: each ``document.issued`` event's document is
stored, its bytes have the SHA-256 the event recorded, and it carries one intact signature of the organ's
certificate over the whole file. A stored document changed after it was issued fails, named by its number."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from asn1crypto import x509

from activities.signing import check_signature
from approvals.audit.findings import Finding, FindingKind, Severity, finding
from approvals.storage.documents import stored_pdf
from schemas.documents import sha256_hex
from schemas.events import DomainEvent, EventType, in_force


async def check_documents(
    pool: asyncpg.Pool, events: Sequence[DomainEvent], organ_certificate: x509.Certificate | None
) -> list[Finding]:
    """Findings about the documents ``events`` record as issued; signatures are checked when the organ's
    certificate is given (DOCUMENT_SIGNING_CERTIFICATE_PATH), digests always."""
    findings: list[Finding] = []
    issued = [event for event in in_force(events) if event.type == EventType.document_issued]
    for event in issued:
        document_id, number = event.payload.get("document_id"), event.payload.get("number")
        named = f"document {number} ({document_id})"
        pdf = await stored_pdf(pool, str(document_id))
        if pdf is None:
            findings.append(finding(event.seq, FindingKind.document, f"{named} is not stored"))
            continue
        digest = sha256_hex(pdf)
        if digest != event.payload.get("sha256"):
            message = f"{named} has SHA-256 {digest}, not the {event.payload.get('sha256')} recorded when issued"
            findings.append(finding(event.seq, FindingKind.document, message))
        if organ_certificate is not None:
            check = await check_signature(pdf, organ_certificate)
            if not check.valid:
                findings.append(finding(event.seq, FindingKind.document, f"{named}: signature: {check.problem}"))
    if issued and organ_certificate is None:
        message = "documents' signatures not checked: no organ certificate (DOCUMENT_SIGNING_CERTIFICATE_PATH)"
        findings.append(finding(None, FindingKind.document, message, Severity.note))
    return findings
