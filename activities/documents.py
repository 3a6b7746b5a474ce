"""Official documents: numbered, rendered to PDF (WeasyPrint, GB/T 9704-2012), signed and stored, once.

Templates are data kept beside the processes (``workflows/templates/<kind>.html.j2``, Jinja2, on the shared
``_layout.html.j2``). :class:`DocumentRenderer` loads them with ``StrictUndefined`` and renders every kind
with a full sample context when the worker starts, so a template naming a missing field stops the worker
there, not at the first case that issues it.

The rendering is deterministic: the PDF's dates are the document's date, its identifier is derived from the
document id, and WeasyPrint writes nothing else that varies. The signature is not (its signing time and the
random second half of the signed revision's /ID are pyHanko's), so the signed bytes are made **once**: the
first bytes stored are the document, the digest recorded in ``document.issued`` is theirs, and a retried
activity returns them instead of signing again.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import asyncpg
import jinja2
from temporalio import activity

from activities.signing import OrganSigner
from activities.typesetting import write_pdf
from approvals.storage import documents as register
from schemas.documents import (
    KINDS,
    DocumentContext,
    DocumentKind,
    IssuedDocument,
    IssueRequest,
    Organ,
    document_number,
    sample_context,
    sha256_hex,
)

TEMPLATES = Path(__file__).resolve().parent.parent / "workflows" / "templates"
"""Beside the processes they belong to; read as data (the activities never import workflow code)."""


class TemplateError(ValueError):
    """A template cannot be rendered with the fields its context has; names the template and the field."""


class DocumentRenderer:
    def __init__(self, organ: Organ, templates: Path = TEMPLATES) -> None:
        self._organ = organ
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates),
            undefined=jinja2.StrictUndefined,
            autoescape=True,
            keep_trailing_newline=True,
        )
        self.check_templates()

    def check_templates(self) -> None:
        """Renders each kind's template with a full sample context; a missing template or field fails here."""
        for kind in DocumentKind:
            sample = sample_context(kind)
            self.html(sample, document_number(self._organ.prefix, KINDS[kind].series, 2026, 1))

    def html(self, context: DocumentContext, number: str) -> str:
        name = f"{context.kind.value}.html.j2"
        try:
            return self._env.get_template(name).render(
                context=context,
                organ=self._organ,
                number=number,
                title=KINDS[context.kind].title,
                issued_on=context.issued_on,
            )
        except jinja2.TemplateNotFound:
            raise TemplateError(f"no template {name} in {TEMPLATES} for documents of kind {context.kind}") from None
        except jinja2.UndefinedError as error:
            raise TemplateError(f"template {name}: {error.message} (a DocumentContext has no such field)") from None

    def pdf(self, context: DocumentContext, number: str, document_id: str) -> bytes:
        """The unsigned PDF: the same bytes for the same context, number and id."""
        identifier = hashlib.md5(document_id.encode(), usedforsecurity=False).digest()
        return write_pdf(self.html(context, number), pdf_identifier=identifier, uncompressed_pdf=False)


class DocumentActivities:
    def __init__(self, pool: asyncpg.Pool, organ: Organ, signer: OrganSigner) -> None:
        self._pool = pool
        self._organ = organ
        self._signer = signer
        self._renderer = DocumentRenderer(organ)

    @activity.defn(name="issue_document")
    async def issue_document(self, request: IssueRequest) -> IssuedDocument:
        """Numbers (in the register's transaction), renders, signs and stores the document; idempotent by key."""
        context, spec = request.context, KINDS[request.context.kind]
        registered = await register.register(
            self._pool,
            register.Registration(
                document_id=request.document_id,
                key=request.key,
                case_id=context.case_id,
                kind=context.kind,
                title=spec.title,
                organ=self._organ.name,
                prefix=self._organ.prefix,
                series=spec.series,
                legal_basis=context.legal_basis,
                issued_on=context.issued_on,
            ),
        )
        pdf = await register.stored_pdf(self._pool, registered.document_id)
        if pdf is None:
            signed = await asyncio.to_thread(self._signed, context, registered)
            pdf = await register.store_pdf(self._pool, registered.document_id, signed, sha256_hex(signed))
        return IssuedDocument(
            document_id=registered.document_id,
            kind=context.kind,
            title=spec.title,
            number=registered.number,
            sha256=sha256_hex(pdf),
            size=len(pdf),
            legal_basis=context.legal_basis,
            issued_on=context.issued_on,
        )

    def _signed(self, context: DocumentContext, registered: register.Registered) -> bytes:
        unsigned = self._renderer.pdf(context, registered.number, registered.document_id)
        reason = f"{registered.number} {KINDS[context.kind].title}"
        return self._signer.sign(unsigned, organ=self._organ.name, reason=reason)
