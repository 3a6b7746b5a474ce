"""What the route modules share: path/query patterns, body models derived from the kernel's requests."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Path
from pydantic import BaseModel, ConfigDict, create_model

from api.problems import PROBLEM_RESPONSES

CASE_ID_PATTERN = r"^[a-z][a-z0-9-]{0,63}:[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
TASK_ID_PATTERN = r"^[a-z][a-z0-9-]{0,63}:[A-Za-z0-9][A-Za-z0-9._:-]{0,127}/[a-z][a-z0-9_]{0,63}/[0-9]{1,9}$"

CaseId = Annotated[
    str, Path(pattern=CASE_ID_PATTERN, description="`<process>:<business key>`", examples=["generic:A-1"])
]
TaskId = Annotated[
    str,
    Path(
        pattern=TASK_ID_PATTERN,
        description="`<case id>/<stage>/<n>`; its slashes may be sent as is or as %2F.",
        examples=["generic:A-1/review/1"],
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Your request id: a retried call with the same key is applied once. "
        "Without it, every call is a new operation.",
    ),
]

ERRORS: dict[int | str, dict[str, Any]] = PROBLEM_RESPONSES


def body_model(name: str, kernel_model: type[BaseModel], *, without: tuple[str, ...] = ()) -> type[BaseModel]:
    """The request body clients send: the kernel request without ``actor`` (taken from the token) and
    the target id (taken from the path). Unknown fields are refused, so ``actor`` cannot be smuggled in."""
    excluded = {"actor", "task_id", *without}
    fields: dict[str, Any] = {
        field_name: (info.annotation, info)
        for field_name, info in kernel_model.model_fields.items()
        if field_name not in excluded
    }
    return create_model(  # type: ignore[call-overload,no-any-return]
        name, __config__=ConfigDict(extra="forbid"), __doc__=kernel_model.__doc__, **fields
    )
