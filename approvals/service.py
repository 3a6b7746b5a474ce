"""The one service layer behind the HTTP API and the CLI: who may do what, and how it reaches Temporal.

Rules live here once: which roles may start and read cases, how a start is made idempotent, how an
operation becomes a Workflow Update with the caller's principal as actor (never from the request body),
how a refusal by the workflow's validator is recorded (Temporal keeps no trace of a rejected update), and
how an aborted update is retried with the same update id so it is applied once.

Reads are answered from the PostgreSQL projections (plus, on request, the workflow's live ``view``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import asyncpg
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from approvals import units
from approvals.admission import AUDITOR, READ_ALL_ROLES, RateLimit, Refusal, start_refusal
from approvals.audit.attachments import referenced
from approvals.definitions import DefinitionRegistry
from approvals.errors import (
    CommitteeNotSeated,
    Conflict,
    Denied,
    Forbidden,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    Unavailable,
    as_unavailable,
    invalid,
    refused_field,
)
from approvals.event_wording import CHINA_TIME
from approvals.metrics import DENIED_ATTEMPTS, VERIFICATION_FAILURES
from approvals.operations import Operation, Scope
from approvals.processes import PROCESSES, GenericStartRequest, ProcessEntry
from approvals.settings import Settings
from approvals.storage import documents, queries
from schemas.case import AttachmentRef, CaseInput, CaseView, OperationResult
from schemas.case_state import CaseState
from schemas.committee import RosterError
from schemas.documents import IssuedDocument
from schemas.events import canonical_json
from schemas.principal import Principal
from schemas.records import StoredCase, TaskProjection
from schemas.search import CaseSearch

if TYPE_CHECKING:
    from approvals.audit.timeline import TimelineRow

__all__ = [
    "ApprovalsService",
    "CaseDetail",
    "StartedCase",
    "case_id_of_task",
]

log = structlog.get_logger(__name__)

T = TypeVar("T")


MEMO_PAYLOAD_SHA256 = "start_payload_sha256"
MEMO_STARTED_BY = "started_by"

UPDATE_DEADLINE_SECONDS = 30.0
"""Total time an operation may take, retries included, before the caller gets 503 (and retries with the
same Idempotency-Key, which the workflow applies at most once)."""
UPDATE_MAX_ATTEMPTS = 6
UPDATE_BACKOFF_FIRST_SECONDS = 0.2
UPDATE_BACKOFF_MAX_SECONDS = 3.0
READ_REFUSALS_RECORDED_PER_MINUTE = 10
"""Refused reads recorded per principal and minute in denied_attempts; the rest are logged only."""

# --- operations -----------------------------------------------------------------------------------------


def build_request(
    operation: Operation, scope: Scope, actor: Principal, target_id: str, body: Mapping[str, Any]
) -> BaseModel:
    """The kernel request: the body's fields, the target, and the actor from the token, never the body."""
    fields: dict[str, Any] = {**body, **operation.fixed}
    fields.pop("actor", None)
    if scope is Scope.task:
        fields["task_id"] = target_id
    fields["actor"] = actor
    try:
        return operation.request_model.model_validate(fields)
    except ValidationError as error:
        raise invalid(error, f"{operation.name} request") from None


BODY_DIGEST_HEX_CHARS = 16
"""Length of the body digest in an update id: 64 bits of SHA-256, enough to tell two bodies apart."""


def body_digest(request: BaseModel) -> str:
    """A short SHA-256 of the operation's canonical body (the kernel request without its actor)."""
    body = request.model_dump(mode="json", exclude={"actor"})
    return hashlib.sha256(canonical_json(body)).hexdigest()[:BODY_DIGEST_HEX_CHARS]


def operation_update_id(
    operation: Operation, target_id: str, principal: Principal, request: BaseModel, idempotency_key: str | None
) -> str:
    """The Workflow Update id of one operation, which Temporal applies at most once.

    Scoped to the operation, its target and the caller (a key reused elsewhere is a new operation) and bound
    to the body by its digest: the same Idempotency-Key with a different body is a different operation,
    never the silent replay of the first one's result. Without a key, every call is new.
    """
    key = idempotency_key or uuid.uuid4().hex
    return f"{operation.name}:{target_id}:{principal.id}:{key}:{body_digest(request)}"


def case_id_of_task(task_id: str) -> str:
    """Task ids are ``<case id>/<stage>/<n>``."""
    parts = task_id.rsplit("/", 2)
    if len(parts) != 3 or not parts[0] or not parts[2].isdigit():
        raise NotFound(f"{task_id!r} is not a task id (expected <case id>/<stage>/<n>)", code="TASK_NOT_FOUND")
    return parts[0]


# --- results --------------------------------------------------------------------------------------------


class StartedCase(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: str
    process: str
    business_key: str
    run_id: str | None
    created: bool = Field(description="False: the business key was already used with this payload.")


class CaseDetail(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: str
    case: StoredCase | None = Field(description="The PostgreSQL projection (None just after the start).")
    tasks: list[TaskProjection] = Field(default_factory=list, description="Every task, open or finished.")
    live: CaseView | None = Field(None, description="The workflow's own view (with `live=true`).")
    attachments: list[RecordedAttachment] = Field(
        default_factory=list, description="Every document the case's acts referenced, by event and task."
    )


class RecordedAttachment(AttachmentRef):
    seq: int = Field(description="The event that recorded the reference.")
    type: str = Field(description="That event's type, e.g. `task.decided`.")
    task_id: str | None = Field(description="The task acted on (None: an act on the whole case).")
    actor_id: str


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; None on the last page.")


class Verification(BaseModel):
    ok: bool = Field(description="True when no finding is an error.")
    report: dict[str, Any] = Field(description="approvals.audit.crosscheck.VerifyReport: counts, last hash, findings.")


class DeniedAttempt(BaseModel):
    id: int
    at: Any
    actor_id: str
    actor_roles: list[str]
    case_id: str | None
    task_id: str | None
    operation: str
    reason_code: str
    message: str
    request: dict[str, Any]


def _page(items: list[T], limit: int, offset: int) -> Page[T]:
    return Page[T](items=items, limit=limit, offset=offset, next_offset=offset + limit if len(items) == limit else None)


DENIED_REQUEST_MAX_BYTES = 16 * 1024
"""Largest request JSON kept with a denied attempt; a longer one is kept as its head (valid JSON)."""


def denied_request_json(request: Mapping[str, Any]) -> str:
    """The JSON stored in ``denied_attempts.request``: the request as sent, or, when it is longer than
    :data:`DENIED_REQUEST_MAX_BYTES`, ``{"truncated": true, "bytes": <its size>, "head": "<its start>"}``
    (still valid JSON, and under the limit)."""
    text = json.dumps(_clean(dict(request)), ensure_ascii=False, default=str)
    size = len(text.encode())
    if size <= DENIED_REQUEST_MAX_BYTES:
        return text
    head = text.encode()[: DENIED_REQUEST_MAX_BYTES // 2].decode("utf-8", "ignore")
    while True:  # JSON escapes may lengthen the head: shorten until the whole record fits
        stored = json.dumps({"truncated": True, "bytes": size, "head": head}, ensure_ascii=False)
        if len(stored.encode()) <= DENIED_REQUEST_MAX_BYTES:
            return stored
        head = head[: len(head) * 3 // 4]


def _clean(value: Any) -> Any:
    """JSON PostgreSQL's jsonb accepts: no NUL characters, no lone surrogates."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, Mapping):
        return {_clean(str(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    return value


# --- the service ----------------------------------------------------------------------------------------


class ApprovalsService:
    """Starts cases, runs operations on them and reads them, for the API and the CLI.

    A start or an operation goes to Temporal without asking PostgreSQL first: what records it is the worker's
    recording, which retries until PostgreSQL answers (nothing accepted is lost or written twice, as the fault
    tests prove), not this process's pool, so a ``SELECT 1`` here would cost a round trip per operation and
    prove nothing about the write. While PostgreSQL is down an operation waits for its recording up to
    UPDATE_DEADLINE_SECONDS, then answers 503 to retry with the same Idempotency-Key; reads answer 503 at
    once; ``GET /health`` says which dependency is down.
    """

    def __init__(self, client: Client, pool: asyncpg.Pool, settings: Settings) -> None:
        self.client = client
        self.pool = pool
        self.settings = settings
        self.recorded_read_refusals = RateLimit(READ_REFUSALS_RECORDED_PER_MINUTE, 60)

    # ---------------------------------------------------------------- starting cases

    async def start_case(self, principal: Principal, process: str, body: Any) -> StartedCase:
        """Starts a case, or returns the one already started with the same business key and payload.

        The workflow id is ``<process>:<business key>``; a SHA-256 of the canonical start payload (and the
        starting principal) is kept in the workflow memo, so the same key with another payload is a 409.
        """
        entry = self._process(process)
        registered = isinstance(body, Mapping) and "definition_name" in body
        await self._admit(principal, process, None, body, registered=registered)
        try:
            request = entry.request_model.model_validate(body)
        except ValidationError as error:
            raise invalid(error, f"{process} start request") from None
        registered_definition = None
        if isinstance(request, GenericStartRequest) and request.definition_name is not None:
            definition, registered_definition = await DefinitionRegistry(self.pool).resolve(
                request.definition_name, request.definition_version
            )
        try:
            case_input = entry.to_case_input(
                request if registered_definition is None else request.model_copy(update={"definition": definition}),
                principal,
                self.settings.committee_rosters,
            ).model_copy(update={"registered_definition": registered_definition})
        except ValidationError as error:
            raise invalid(error, f"{process} application") from None
        except RosterError as error:  # the organ's configuration, not the request, is at fault
            raise CommitteeNotSeated(str(error)) from None
        except (ValueError, ApplicationError) as error:
            raise InvalidRequest(
                f"invalid {process} application: {error}",
                [{"field": "(body)", "location": "body", "message": str(error), "type": "value_error"}],
            ) from None
        await self._admit(principal, process, case_input, body, registered=registered)
        callback = case_input.callback_url
        refusal = None if callback is None else self.settings.callback_refusal(callback.host or "")
        if refusal is not None:
            raise InvalidRequest(
                f"callback_url refused: {refusal}",
                [{"field": "callback_url", "location": "body", "message": refusal, "type": "value_error"}],
            )
        digest = hashlib.sha256(
            canonical_json({"process": process, "started_by": principal.id, "request": request.model_dump(mode="json")})
        ).hexdigest()
        workflow_id = entry.workflow_id(request.business_key)
        created, run_id = False, None
        try:
            # FAIL, not USE_EXISTING: the SDK tells "started now" from "already there" only by this error
            # (the response's `started` flag is private), and a repeat is answered from the memo below.
            handle = await self.client.start_workflow(
                entry.workflow.run,  # type: ignore[attr-defined]
                case_input,
                id=workflow_id,
                task_queue=self.settings.temporal_task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                memo={MEMO_PAYLOAD_SHA256: digest, MEMO_STARTED_BY: principal.id},
            )
            created, run_id = True, handle.result_run_id
        except WorkflowAlreadyStartedError as error:  # running or ended: the same key started it before
            run_id = error.run_id
        except RPCError as error:
            raise as_unavailable(error) or error from None
        if not created:
            description = await self.client.get_workflow_handle(workflow_id).describe()
            memo = await description.memo()
            if memo.get(MEMO_PAYLOAD_SHA256) != digest:
                raise IdempotencyConflict(
                    f"business key {request.business_key!r} already started case {workflow_id} with a different "
                    "payload (or by another principal); use a new business key for a new case",
                )
            run_id = description.run_id
        log.info("case.start", case_id=workflow_id, created=created, by=principal.id)
        return StartedCase(
            case_id=workflow_id, process=process, business_key=request.business_key, run_id=run_id, created=created
        )

    async def _admit(
        self, principal: Principal, process: str, case: CaseInput | None, body: Any, *, registered: bool
    ) -> None:
        """Refuses (and records) a start the starter may not make: role, free-form definition, applicant."""
        refusal: Refusal | None = start_refusal(principal, process, case, self.settings, registered=registered)
        if refusal is None:
            return
        request = body if isinstance(body, Mapping) else {}
        await self._record_denial(principal, f"start:{process}", None, None, refusal.code, refusal.message, request)
        if refusal.status == 422:
            field = {"field": "definition", "location": "body", "message": refusal.message, "type": refusal.code}
            raise InvalidRequest(refusal.message, [field])
        raise Forbidden(refusal.message, code=refusal.code)

    def _process(self, process: str) -> ProcessEntry:
        entry = PROCESSES.get(process)
        if entry is None:
            raise NotFound(
                f"unknown process {process!r}; registered: {', '.join(sorted(PROCESSES))}", code="UNKNOWN_PROCESS"
            )
        return entry

    # ---------------------------------------------------------------- reading

    async def may_read(self, principal: Principal, case_id: str) -> bool:
        """Auditors and admins read every case; others read cases they started, applied for, hold or held a
        task in (by id or role), or were copied on."""
        if principal.has_any_role(READ_ALL_ROLES):
            return True
        return bool(
            await self.pool.fetchval(
                """
                SELECT EXISTS (SELECT 1 FROM cases WHERE case_id = $1
                               AND (started_by = $2 OR applicant_id = $2 OR observers @> ARRAY[$2]::text[]))
                    OR EXISTS (SELECT 1 FROM tasks WHERE case_id = $1
                               AND (assignee_id = $2 OR claimed_by = $2 OR delegate_id = $2
                                    OR candidate_roles && $3::text[]))
                """,
                case_id,
                principal.id,
                list(principal.roles),
            )
        )

    async def _readable(self, principal: Principal, case_id: str, what: str) -> StoredCase | None:
        """The projection of a case the principal may read; NotFound/Forbidden otherwise. None: the case
        runs but its first record is not written yet (only its starter may read it then)."""
        projection = await queries.get_case(self.pool, case_id)
        if projection is None:
            memo = await self._memo(case_id)
            if principal.has_any_role(READ_ALL_ROLES) or memo.get(MEMO_STARTED_BY) == principal.id:
                return None
            raise await self._refused_read(principal, case_id, what, "NOT_A_CASE_READER", "")
        if not await self.may_read(principal, case_id):
            reason = ": not its starter, applicant, reviewer or observer"
            raise await self._refused_read(principal, case_id, what, "NOT_A_CASE_READER", reason)
        return projection

    async def _auditor_only(self, principal: Principal, case_id: str, what: str) -> None:
        """The raw history, the verification and the denied attempts are for auditors and admins only."""
        if not principal.has_any_role(READ_ALL_ROLES):
            reason = f": the {what} is for auditors and admins"
            raise await self._refused_read(principal, case_id, what, "ROLE_REQUIRED", reason)

    async def _refused_read(self, principal: Principal, case_id: str, what: str, code: str, reason: str) -> Forbidden:
        """A refused read, recorded like a refused operation (at most a few a minute per principal)."""
        message = f"{principal.id} may not read the {what} of case {case_id}{reason}"
        if self.recorded_read_refusals.allow(principal.id):
            await self._record_denial(principal, f"read:{what}", case_id, None, code, message, {})
        else:  # counted all the same: the metric is what shows a principal probing many cases
            DENIED_ATTEMPTS.labels(operation=f"read:{what}", reason_code=code).inc()
            log.warning("read.denied.not_recorded", actor=principal.id, case_id=case_id, what=what, code=code)
        return Forbidden(message, code=code)

    async def _memo(self, case_id: str) -> Mapping[str, Any]:
        try:
            description = await self.client.get_workflow_handle(case_id).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"no case {case_id}", code="CASE_NOT_FOUND") from None
            raise as_unavailable(error) or error from None
        return await description.memo()

    async def get_case(self, principal: Principal, case_id: str, *, live: bool = False) -> CaseDetail:
        projection = await self._readable(principal, case_id, "case")
        tasks = await queries.case_tasks(self.pool, case_id)
        view = None
        if live or projection is None:
            try:
                view = await self.client.get_workflow_handle(case_id).query("view", result_type=CaseView)
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    raise NotFound(f"no case {case_id}", code="CASE_NOT_FOUND") from None
                raise as_unavailable(error) or error from None
        attachments = [
            RecordedAttachment.model_construct(  # as recorded: a reference of older rules is still shown
                seq=event.seq, type=event.type, task_id=event.task_id, actor_id=event.actor.id, **dict(ref)
            )
            for event in await queries.case_events(self.pool, case_id, with_documents=True)
            for ref in referenced(event.payload)
        ]
        return CaseDetail(case_id=case_id, case=projection, tasks=tasks, live=view, attachments=attachments)

    async def list_cases(self, principal: Principal, search: CaseSearch) -> Page[StoredCase]:
        """Cases the principal may read matching every filter of ``search`` (its dates local, UTC+8), in its order."""
        reader = None if principal.has_any_role(READ_ALL_ROLES) else principal
        items = await queries.list_cases(self.pool, search, zone=CHINA_TIME, reader=reader)
        return _page(items, search.limit, search.offset)

    async def inbox(
        self,
        principal: Principal,
        *,
        process: str | None = None,
        stage: str | None = None,
        priority: bool | None = None,
        overdue: bool | None = None,
        held: Literal["mine", "pool"] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[TaskProjection]:
        """Open tasks for the principal (``held``: only theirs, or only their roles' unclaimed pool)."""
        items = await queries.inbox(
            self.pool, principal.id, principal.roles, process=process, stage=stage, priority=priority,
            overdue=overdue, held=held, limit=limit, offset=offset,
        )  # fmt: skip
        return _page(items, limit, offset)

    async def headlines(self, tasks: list[TaskProjection]) -> dict[str, tuple[str, str]]:
        """Title and clock state of the cases of ``tasks`` (an inbox page the principal already reads)."""
        return await queries.case_headlines(self.pool, sorted({task.case_id for task in tasks}))

    async def handled(self, principal: Principal, *, limit: int = 50, offset: int = 0) -> Page[TaskProjection]:
        """已办: tasks the principal decided or handed on, most recent first."""
        return _page(await queries.handled_tasks(self.pool, principal.id, limit=limit, offset=offset), limit, offset)

    async def copied(self, principal: Principal, *, limit: int = 50, offset: int = 0) -> Page[StoredCase]:
        """抄送我的: cases the principal was copied on (every one of them readable by the principal)."""
        return _page(await queries.observed_cases(self.pool, principal.id, limit=limit, offset=offset), limit, offset)

    async def timeline(self, principal: Principal, case_id: str) -> list[TimelineRow]:
        """Every recorded event in plain language, with its actor, time, legal basis and data."""
        from approvals.audit.live import case_timeline

        await self._readable(principal, case_id, "timeline")
        return await case_timeline(self.pool, case_id)

    async def history_json(self, principal: Principal, case_id: str) -> tuple[str, str]:
        """The latest run's history, in the JSON ``temporal workflow show --output json`` prints, and where it was
        read (``temporal``, or ``archive`` once Temporal's retention deleted it): for auditors and admins only
        (it holds the callback URL, the definition and the workers' identities)."""
        from approvals.audit.live import latest_history

        await self._auditor_only(principal, case_id, "history")
        try:
            history, source = await latest_history(self.client, self.pool, case_id)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"no Temporal history for case {case_id}", code="CASE_NOT_FOUND") from None
            raise as_unavailable(error) or error from None
        return history.to_json(), source

    async def verification(self, principal: Principal, case_id: str) -> Verification:
        """The audit verdict: hash chain of the log, cross-check against the Temporal history (or its archived
        copy once Temporal no longer has it: ``report.history_source``), projections."""
        from approvals.audit.live import verify_case

        await self._auditor_only(principal, case_id, "verification")
        try:
            report = await verify_case(self.client, self.pool, case_id, self._organ_certificate())
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"no case {case_id}", code="CASE_NOT_FOUND") from None
            raise as_unavailable(error) or error from None
        if not report.ok:
            VERIFICATION_FAILURES.inc()
        return Verification(ok=report.ok, report=report.model_dump(mode="json"))

    async def state(self, principal: Principal, case_id: str, seq: int | None = None) -> CaseState:
        """The case as it stood after event ``seq`` (the latest without), folded from its recorded events as
        ``approvals audit state`` does: for auditors and admins."""
        from approvals.audit.state import state_at

        await self._auditor_only(principal, case_id, "state")
        events = await queries.case_events(self.pool, case_id)
        if not events:
            raise NotFound(f"no recorded case {case_id}", code="CASE_NOT_FOUND")
        if seq is not None and seq > events[-1].seq:
            raise NotFound(f"case {case_id} has no event {seq}: its last is {events[-1].seq}", code="EVENT_NOT_FOUND")
        return state_at(events, seq=seq)

    async def bundle_zip(self, principal: Principal, case_id: str) -> bytes:
        """The case's signed audit bundle (``approvals audit export``) as a zip: for auditors and admins."""
        from approvals.audit.checkpoint import load_signing_key
        from approvals.audit.live import export_case_zip
        from approvals.audit.sealing import Notary

        await self._auditor_only(principal, case_id, "bundle")
        path = self.settings.audit_signing_key_path
        if path is None:
            raise Unavailable("no AUDIT_SIGNING_KEY_PATH is set: bundles are signed with it, so none can be exported")
        notary = Notary(self.pool, load_signing_key(path))
        try:
            return await export_case_zip(self.client, notary, case_id)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"no case {case_id}", code="CASE_NOT_FOUND") from None
            raise as_unavailable(error) or error from None

    async def _party_or_auditor(self, principal: Principal, case_id: str, what: str) -> None:
        """A case's official documents are its parties' (the applicant, the service that applied for them) and
        the auditors' and admins'; reviewers and observers read the case, not the documents sent to the applicant."""
        projection = await self._readable(principal, case_id, what)
        if principal.has_any_role(READ_ALL_ROLES):
            return
        if projection is None or principal.id not in (projection.applicant_id, projection.started_by):
            reason = ": the documents are for the case's parties, auditors and admins"
            raise await self._refused_read(principal, case_id, what, "NOT_A_PARTY", reason)

    async def documents(self, principal: Principal, case_id: str) -> list[IssuedDocument]:
        await self._party_or_auditor(principal, case_id, "documents")
        return await documents.case_documents(self.pool, case_id)

    async def document_pdf(self, principal: Principal, case_id: str, document_id: str) -> bytes:
        """The signed PDF as stored: its SHA-256 is the one ``document.issued`` recorded."""
        await self._party_or_auditor(principal, case_id, "documents")
        pdf = await documents.case_document(self.pool, case_id, document_id)
        if pdf is None:
            raise NotFound(f"case {case_id} has no document {document_id}", code="DOCUMENT_NOT_FOUND")
        return pdf

    def _organ_certificate(self) -> Any:
        from activities.signing import load_certificate

        settings = self.settings
        return load_certificate(settings.document_signing_certificate_path, settings.document_signing_passphrase)

    async def denied_attempts(self, principal: Principal, case_id: str) -> list[DeniedAttempt]:
        await self._auditor_only(principal, case_id, "denied attempts")
        rows = await self.pool.fetch(
            "SELECT id, at, actor_id, actor_roles, case_id, task_id, operation, reason_code, message, "
            "request::text AS request FROM denied_attempts WHERE case_id = $1 ORDER BY at, id",
            case_id,
        )
        return [DeniedAttempt.model_validate({**dict(row), "request": json.loads(row["request"])}) for row in rows]

    # ---------------------------------------------------------------- operations

    async def act(
        self,
        principal: Principal,
        operation: Operation,
        scope: Scope,
        target_id: str,
        body: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> OperationResult:
        """Runs one operation on a task or a case as ``principal``; at most once per ``idempotency_key``."""
        case_id = case_id_of_task(target_id) if scope is Scope.task else target_id
        task_id = target_id if scope is Scope.task else None
        if not principal.roles or set(principal.roles) <= {AUDITOR}:
            reason = (
                f"{principal.id} has read-only access (roles {list(principal.roles)}); "
                f"{operation.name} changes the case"
            )
            await self._record_denial(principal, operation.name, case_id, task_id, "READ_ONLY", reason, body)
            raise Forbidden(reason, code="READ_ONLY")
        request = build_request(operation, scope, principal, target_id, body)
        update_id = operation_update_id(operation, target_id, principal, request, idempotency_key)
        if task_id and operation.name in units.UNIT_HEAD_MOVES and units.heads_a_unit_only(principal):
            try:  # the case does not know its reviewers' units: what a unit head may move is checked here
                pinned = await units.pinned_to_own_unit(self.pool, principal, operation.name, task_id, body)
            except (Forbidden, Conflict) as refusal:
                await self._record_denial(principal, operation.name, case_id, task_id, refusal.code, str(refusal), body)
                raise
            request = build_request(operation, scope, principal, target_id, pinned)  # the update id is the body's
        handle = self.client.get_workflow_handle(case_id)
        try:
            return await self._execute_update(handle, operation, request, update_id)
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            code = cause.type if isinstance(cause, ApplicationError) and cause.type else "REFUSED"
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            await self._record_denial(principal, operation.name, case_id, task_id, code, message, body)
            field = refused_field(cause)
            raise Denied(
                code, message, operation=operation.name, case_id=case_id, task_id=task_id, field=field
            ) from None
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND and "completed" in error.message.lower():
                message = f"case {case_id} has ended; nothing can change it now"
                await self._record_denial(principal, operation.name, case_id, task_id, "CASE_CLOSED", message, body)
                raise Denied(
                    "CASE_CLOSED", message, operation=operation.name, case_id=case_id, task_id=task_id
                ) from None
            if error.status == RPCStatusCode.NOT_FOUND:
                what = f"task {task_id}: no case {case_id}" if task_id else f"case {case_id}"
                raise NotFound(f"no {what}", code="TASK_NOT_FOUND" if task_id else "CASE_NOT_FOUND") from None
            raise as_unavailable(error) or error from None

    async def _execute_update(
        self, handle: WorkflowHandle[Any, Any], operation: Operation, request: BaseModel, update_id: str
    ) -> OperationResult:
        """Retries an aborted or timed-out update with the same id (applied once), with bounded backoff."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + UPDATE_DEADLINE_SECONDS
        delay = UPDATE_BACKOFF_FIRST_SECONDS
        last: BaseException | None = None
        for attempt in range(1, UPDATE_MAX_ATTEMPTS + 1):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                result: OperationResult = await handle.execute_update(
                    operation.update, request, id=update_id, rpc_timeout=timedelta(seconds=remaining)
                )
                return result
            except WorkflowUpdateRPCTimeoutOrCancelledError as error:
                last = error
            except RPCError as error:
                if not _retryable(error):
                    raise
                last = error
            log.warning(
                "update.retry", update=operation.update_name, update_id=update_id, attempt=attempt, error=str(last)
            )
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())) * (0.5 + random.random() / 2))
            delay = min(delay * 2, UPDATE_BACKOFF_MAX_SECONDS)
        raise Unavailable(
            f"the case did not complete {operation.update_name} in time ({last}); retry with the same "
            "Idempotency-Key, it is applied at most once"
        )

    async def _record_denial(
        self,
        principal: Principal,
        operation: str,
        case_id: str | None,
        task_id: str | None,
        code: str,
        message: str,
        request: Mapping[str, Any],
    ) -> None:
        """Who tried what, when, and why it was refused: Temporal history keeps no trace of a rejected update."""
        try:
            await self.pool.execute(
                "INSERT INTO denied_attempts (actor_id, actor_roles, case_id, task_id, operation, reason_code, "
                "message, request) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
                principal.id, list(principal.roles), _clean(case_id), _clean(task_id), operation, code,
                _clean(message), denied_request_json(request),
            )  # fmt: skip
        except Exception:  # noqa: BLE001 - the refusal stands even when its record cannot be written
            log.exception("denied_attempt.not_recorded", actor=principal.id, operation=operation, code=code)
        DENIED_ATTEMPTS.labels(operation=operation, reason_code=code).inc()
        log.info("operation.denied", actor=principal.id, operation=operation, case_id=case_id, code=code)


def _retryable(error: RPCError) -> bool:
    message = error.message.lower()
    return "aborted" in message or error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
