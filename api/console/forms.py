"""HTML forms derived from the operation registry: each operation's request model gives its fields, and a
submitted form becomes the same request body the HTTP API takes (the service layer then checks it).

The decision form is the one built by hand (:mod:`api.console.decision`): its fields follow the stage
(allowed decisions, criteria), not only the model.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from starlette.datastructures import FormData

from approvals.operations import Operation

NOT_FROM_FORMS = {"actor", "task_id", "expected_version"}
"""Fields the console sets itself: the actor from the session, the target from the URL, the version read."""
LONG_TEXT = {"comment", "reason", "text"}
LINE_SEPARATOR = ":"
"""A list of small records is typed one a line, its fields separated by a colon (``item: reason``)."""
REFERENCE_SEPARATOR = "|"
"""A list of references (documents: ``uri|sha256|size|name|media_type``) is typed one a line, its fields separated
by a bar, as on the command line: a URI holds colons."""


@dataclass(frozen=True)
class FormField:
    name: str
    kind: Literal["text", "textarea", "lines", "records", "references", "number", "checkbox", "choice"]
    required: bool
    choices: tuple[str, ...] = ()
    record_fields: tuple[str, ...] = ()


def _unwrapped(annotation: Any) -> Any:
    """``X | None`` → ``X``; ``Annotated[X, ...]`` → ``X``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrapped(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _unwrapped(options[0]) if len(options) == 1 else annotation
    return annotation


def _field(name: str, info: FieldInfo) -> FormField | None:
    """The form field of one request field; None when a form cannot give it (the operation is then not offered)."""
    annotation = _unwrapped(info.annotation)
    required = info.is_required()
    if typing.get_origin(annotation) is Literal:
        return FormField(name, "choice", required, tuple(str(a) for a in typing.get_args(annotation)))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return FormField(name, "choice", required, tuple(str(member.value) for member in annotation))
    if annotation is str:
        return FormField(name, "textarea" if name in LONG_TEXT else "text", required)
    if annotation is int:
        return FormField(name, "number", required)
    if annotation is bool:
        return FormField(name, "checkbox", False)
    if typing.get_origin(annotation) is list:
        [item] = typing.get_args(annotation)
        item = _unwrapped(item)
        if item is str:
            return FormField(name, "lines", required)
        if isinstance(item, type) and issubclass(item, BaseModel):
            names = tuple(item.model_fields)
            scalars = [_unwrapped(f.annotation) for f in item.model_fields.values()]
            if all(annotation is str for annotation in scalars):
                return FormField(name, "records", required, record_fields=names)
            if all(annotation in (str, int) for annotation in scalars):
                return FormField(name, "references", required, record_fields=names)
    return None


def form_fields(operation: Operation) -> list[FormField] | None:
    """The fields a person fills in for ``operation``; None when some field has no form (e.g. documents)."""
    fields = []
    for name, info in operation.request_model.model_fields.items():
        if name in NOT_FROM_FORMS or name in operation.fixed:
            continue
        field = _field(name, info)
        if field is None:
            return None
        fields.append(field)
    return fields


def body_from_form(fields: list[FormField], form: FormData) -> dict[str, Any]:
    """The request body a filled-in form stands for; empty optional fields are left out."""
    body: dict[str, Any] = {}
    for field in fields:
        raw = str(form.get(field.name, "") or "")
        if field.kind == "checkbox":
            body[field.name] = field.name in form
        elif field.kind == "lines":
            items = [line.strip() for line in raw.splitlines() if line.strip()]
            if items or field.required:
                body[field.name] = items
        elif field.kind in ("records", "references"):
            records = [_record(field, line) for line in raw.splitlines() if line.strip()]
            if records or field.required:
                body[field.name] = records
        elif raw.strip() or field.required:
            body[field.name] = raw.strip()
    return body


def references(names: tuple[str, ...], raw: str) -> list[dict[str, str]]:
    """Document references typed one a line, ``uri|sha256|size|name|media_type`` (the later fields optional)."""
    field = FormField("attachments", "references", False, record_fields=names)
    return [_record(field, line) for line in raw.splitlines() if line.strip()]


def _record(field: FormField, line: str) -> dict[str, str]:
    names = field.record_fields
    separator = REFERENCE_SEPARATOR if field.kind == "references" else LINE_SEPARATOR
    values = [part.strip() for part in line.split(separator, len(names) - 1)]
    if field.kind == "references":  # a field left empty is left out: the engine's default, not an empty value
        return {name: value for name, value in zip(names, values, strict=False) if value}
    return dict(zip(names, values, strict=False))
