"""What the service layer answers when it cannot do what was asked: one exception per kind of answer, each with
its HTTP status and machine-readable code (``api.problems`` turns them into RFC 9457 problem responses)."""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

UNPROCESSABLE_REASONS = frozenset(
    {
        "COMMENT_REQUIRED",
        "DECISION_NOT_ALLOWED",
        "INVALID_RETURN_TARGET",
        "INVALID_TARGET",
        "DUPLICATE_SIGNER",
        "ADD_SIGNER_NOT_ALLOWED",
        "FINDINGS_INCOMPLETE",
        "FINDINGS_CONTRADICT_APPROVAL",
        "FINDINGS_WITHOUT_EVIDENCE",
        "DUE_DATE_REQUIRED",
        "DUE_DATE_NOT_ASKED",
        "UNKNOWN_DEADLINE_PROFILE",
        "EXCLUDED_TOO_LONG",
        "NOTHING_SUPPLIED",
        "NOT_EXCLUDABLE",
    }
)
"""Refusals about the request's content (422); every other refusal is about the case's state (409)."""


class ServiceError(Exception):
    status = 500
    code = "ERROR"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class Unauthenticated(ServiceError):
    status, code = 401, "UNAUTHENTICATED"


class Forbidden(ServiceError):
    status, code = 403, "FORBIDDEN"


class NotFound(ServiceError):
    status, code = 404, "NOT_FOUND"


class IdempotencyConflict(ServiceError):
    status, code = 409, "IDEMPOTENCY_CONFLICT"


class Conflict(ServiceError):
    """The request is well formed but what it names is not in a state that allows it (e.g. a retired version)."""

    status, code = 409, "CONFLICT"


class InvalidRequest(ServiceError):
    status, code = 422, "VALIDATION_ERROR"

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.errors = errors


class CommitteeNotSeated(ServiceError):
    """The organ's roster cannot seat the committee a case needs (missing, or too many concerned by it)."""

    status, code = 409, "COMMITTEE_NOT_SEATED"


class Denied(ServiceError):
    """The case's rules refused the operation (the workflow validator's reason code); it was recorded."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        operation: str,
        case_id: str | None,
        task_id: str | None,
        field: str | None = None,
    ) -> None:
        super().__init__(detail, code=code)
        self.status = 422 if code in UNPROCESSABLE_REASONS else 409
        self.operation = operation
        self.case_id = case_id
        self.task_id = task_id
        self.field = field
        """The request field the refusal is about (e.g. ``comment`` for COMMENT_REQUIRED), when the rule names one."""


def refused_field(cause: BaseException | None) -> str | None:
    """The request field a workflow's refusal names (``deny(..., field=)`` in the kernel), if it names one."""
    if not isinstance(cause, ApplicationError) or not cause.details:
        return None
    details = cause.details[0]
    return details.get("field") if isinstance(details, dict) else None


class Unavailable(ServiceError):
    status, code = 503, "UNAVAILABLE"

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


_UNAVAILABLE_RPC = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}


def as_unavailable(error: BaseException) -> Unavailable | None:
    """The 503 for an error meaning Temporal or PostgreSQL cannot be reached, else None."""
    if isinstance(error, Unavailable):
        return error
    if isinstance(error, RPCError) and error.status in _UNAVAILABLE_RPC:
        return Unavailable(f"Temporal is unavailable ({error.status.name}: {error.message}); retry later")
    if isinstance(error, RPCError) and error.status == RPCStatusCode.CANCELLED and "timeout" in error.message.lower():
        # The call's own deadline passed (the client reports CANCELLED "Timeout expired"): e.g. a query of a case
        # no worker answers for now (its worker restarting, its first workflow task not run yet).
        return Unavailable(f"Temporal did not answer in time ({error.message}); retry later")
    if isinstance(error, RuntimeError) and "failed client connect" in str(error).lower():
        return Unavailable(f"Temporal is unavailable ({' '.join(str(error).split())[:300]}); retry later")
    if isinstance(
        error,
        (
            OSError,
            TimeoutError,
            asyncpg.InterfaceError,
            # A connection the server dropped in the middle of a query: asyncpg reports its protocol's
            # broken state this way (seen with PostgreSQL stopped under load); the next attempt reconnects.
            asyncpg.InternalClientError,
            asyncpg.CannotConnectNowError,
            asyncpg.TooManyConnectionsError,
            asyncpg.PostgresConnectionError,
        ),
    ):
        return Unavailable(f"PostgreSQL is unavailable ({type(error).__name__}: {error}); retry later")
    return None


def _validation_errors(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join(str(part) for part in item["loc"]) or "(body)",
            "location": "body",
            "message": item["msg"],
            "type": item["type"],
        }
        for item in error.errors()
    ]


def invalid(error: ValidationError, what: str) -> InvalidRequest:
    errors = _validation_errors(error)
    first = errors[0] if errors else {"field": "(body)", "message": str(error)}
    return InvalidRequest(f"invalid {what}: {first['field']}: {first['message']}", errors)
