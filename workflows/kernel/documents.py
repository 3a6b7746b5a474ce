"""Official documents (公文) the case issues: which event makes which document due, and issuing it.

:func:`due_document` is the rule, pure: acceptance (受理通知书), refusal to accept (不予受理决定书), a 补正 request
(补正材料通知书), an extension (延长期限告知书), an Art. 45 excluded period (特别程序期间告知书), a licensing decision
(准予 / 不予行政许可决定书, the refusal once its reasons and remedies are recorded), the error-tolerance
determination, the talent policy decision (with its package, as notified on record) and the published power
catalogue (公告).

:class:`Documents` watches the recorder: every emitted event the rule names is due, and once the batch that
holds it is recorded the ``issue_document`` activity numbers, renders, signs and stores the document
(idempotent by ``<workflow id>/<seq of the due event>``), then the case records ``document.issued`` (kind,
number, SHA-256, legal basis) and tells the applicant where to fetch it (the outbox carries the reference and
the digest, never the bytes). Cases recorded before this rule replay without it (``DOCUMENTS_PATCH``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.documents import DocumentActivities
    from schemas.calendar import WorkingCalendar
    from schemas.case import CaseInput, CaseState
    from schemas.documents import DocumentContext, DocumentKind, IssuedDocument, IssueRequest
    from schemas.events import DomainEvent, EventType
    from schemas.principal import SYSTEM
    from schemas.process import EXCLUDED_PERIOD_NAMES
    from schemas.remedies import Remedy
    from workflows import rules
    from workflows.kernel.recorder import RECORD_RETRY, Recorder
    from workflows.kernel.remedies import REFUSAL_TO_ACCEPT

DOCUMENTS_PATCH = "documents-issued"

LICENSING = frozenset({"project-approval"})
"""Processes whose decision is an administrative licence (准予 / 不予行政许可决定书). The others' decisions have
documents of their own (talent policy, error tolerance, the catalogue) or none (a generic approval described as
data); the procedural notices (acceptance, 补正, extension, Art. 45, refusal to accept) go wherever the step is."""


def due_document(process: str, event: DomainEvent) -> DocumentKind | None:
    """The document ``event`` makes due in a case of ``process``, if any."""
    licensing = process in LICENSING
    payload = event.payload
    match event.type:
        case EventType.case_accepted:
            return DocumentKind.acceptance
        case EventType.case_supplement_requested:
            return DocumentKind.supplement
        case EventType.case_extended:
            return DocumentKind.extension
        case EventType.clock_paused:
            return DocumentKind.special_procedure
        case EventType.case_remedies_notified:
            if (payload.get("concerns") or {}).get("kind") == REFUSAL_TO_ACCEPT:
                return DocumentKind.refusal_to_accept
            return DocumentKind.license_refused if licensing else None
        case EventType.case_notified if process == "talent-policy":  # the decision with its package, on record
            return DocumentKind.talent_decision
        case EventType.case_decided if licensing and payload.get("outcome") in rules.APPROVING_OUTCOMES:
            return DocumentKind.license_granted
        case EventType.error_tolerance_determined:
            return DocumentKind.error_tolerance
        case EventType.case_published if process == "power-adjustment":
            return DocumentKind.catalogue_notice
    return None


DETAILS: dict[DocumentKind, dict[str, str]] = {
    DocumentKind.error_tolerance: {
        "determination": "认定结果",
        "applying_unit": "申请单位",
        "persons_concerned": "相关人员",
        "liability_proceeding": "问责程序",
    },
    DocumentKind.talent_decision: {
        "decision": "决定",
        "pay_form": "薪酬形式",
        "annual_amount_cny": "年度金额（元）",
        "term_years": "期限（年）",
    },
    DocumentKind.catalogue_notice: {
        "proposing_unit": "提出单位",
        "granting_authorities": "授权机关",
        "effective_date": "施行日期",
        "items": "职能事项",
    },
}
"""The facts each of these documents lists, from its event's payload (the catalogue's from the notice's subject)."""

WORDS = {
    "exemption": "免责",
    "reduced_liability": "减轻责任",
    "not_applicable": "不予容错",
    "not_accepted": "不予受理",
    "approved": "同意",
    "approved_with_conditions": "有条件同意",
    "rejected": "不同意",
}


def _shown(value: Any) -> str:
    """A payload value as a document states it: lists and records joined, known codes in Chinese."""
    if isinstance(value, list):
        return "；".join(_shown(item) for item in value)
    if isinstance(value, dict):
        return "，".join(_shown(item) for item in value.values() if item not in (None, "", [], {}))
    return WORDS.get(str(value), str(value))


class Documents:
    def __init__(
        self,
        case: CaseInput,
        case_id: str,
        state: CaseState,
        recorder: Recorder,
        calendar: Callable[[], WorkingCalendar | None],
    ) -> None:
        self._case = case
        self._case_id = case_id
        self._state = state
        self._recorder = recorder
        self._calendar = calendar
        self._due: list[tuple[DomainEvent, DocumentKind]] = []
        self._issuing: bool | None = None
        """Whether this run issues documents (``DOCUMENTS_PATCH``), asked at the first document due."""
        recorder.watch(self._observe, self._issue_due)

    def _observe(self, event: DomainEvent) -> None:
        kind = due_document(self._case.definition.process, event)
        if kind is None:
            return
        if self._issuing is None:
            self._issuing = workflow.patched(DOCUMENTS_PATCH)
        if self._issuing:
            self._due.append((event, kind))

    async def _issue_due(self) -> None:
        """Issues the documents whose events are recorded, one at a time, in order."""
        while self._due:
            event, kind = self._due.pop(0)
            request = IssueRequest(key=f"{self._case_id}/{event.seq}", context=self._context(kind, event))
            issued: IssuedDocument = await workflow.execute_activity_method(
                DocumentActivities.issue_document,
                request,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RECORD_RETRY,
            )
            data = issued.model_dump(mode="json")
            recorded = self._recorder.emit(
                EventType.document_issued,
                actor=SYSTEM,
                legal_basis=event.legal_basis,
                payload={**data, "concerns": {"event": event.type, "seq": event.seq}},
            )
            reference = {
                "document_id": issued.document_id,
                "number": issued.number,
                "title": issued.title,
                "sha256": issued.sha256,
                "href": f"/v1/cases/{self._case_id}/documents/{issued.document_id}",
            }
            subject = f"{issued.title} {issued.number}: {self._case.title}"
            self._recorder.notify(recorded, self._case.applicant.id, "document.issued", subject, reference)
            await self._recorder.record()

    def _local(self, moment: datetime | str | None) -> date | None:
        if moment is None:
            return None
        instant = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
        calendar = self._calendar()
        return instant.astimezone(calendar.tzinfo).date() if calendar else instant.date()

    def _context(self, kind: DocumentKind, event: DomainEvent) -> DocumentContext:
        """The document's facts: the event's, the case's and its applicant's; its date the event's, in the zone."""
        p, case = event.payload, self._case
        reasons = [r.get("comment") or "" for r in p.get("reasons") or []] + [p.get("reason") or ""]
        facts = (p.get("subject") or {}) if kind is DocumentKind.catalogue_notice else p
        labels = DETAILS.get(kind, {})
        details = {label: _shown(facts[key]) for key, label in labels.items() if facts.get(key) not in (None, [], {})}
        return DocumentContext(
            kind=kind,
            case_id=self._case_id,
            case_title=case.title,
            process=case.definition.process,
            addressee=case.applicant.name or case.applicant.unit or case.applicant.id,
            legal_basis=event.legal_basis,
            issued_on=self._local(event.at) or event.at.date(),
            received_on=self._local(self._state.started_at),
            outcome=p.get("outcome"),
            reasons=[reason for reason in reasons if reason],
            items=[f"{i['item']}：{i['reason']}" if i.get("reason") else i["item"] for i in p.get("items") or []],
            conditions=[str(condition) for condition in p.get("conditions") or []],
            working_days=p.get("working_days") or p.get("expected_working_days"),
            due_on=self._local(p.get("due_at") or p.get("resumes_at")),
            procedure=EXCLUDED_PERIOD_NAMES.get(p.get("kind") or "", None)
            if event.type == EventType.clock_paused
            else None,
            remedies=[Remedy.model_validate(remedy) for remedy in p.get("remedies") or []],
            details=details,
        )
