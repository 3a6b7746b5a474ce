"""A case's application data as people read it: labelled by its process's schema, documents listed apart, and the
documents its acts referenced, each with the act."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from api.console.words import APPLICATION_FIELDS, NO, YES
from approvals.audit.timeline import TimelineRow
from approvals.operations import OPERATIONS
from approvals.processes import PROCESSES
from approvals.service import RecordedAttachment
from schemas.process import ProcessDefinition, Stage

DOCUMENT_KEYS = {"uri", "sha256", "size"}
"""A mapping with these keys is a document reference (``schemas.case.AttachmentRef``)."""
FETCHABLE_SCHEMES = ("https://", "http://")


@dataclass(frozen=True)
class Entry:
    """One labelled value; ``children`` for a nested record or a list of records. Labels, and values that are
    words of the catalogue (yes, no), are translated when shown."""

    label: str
    hint: str = ""
    value: str = ""
    children: list[Entry] = field(default_factory=list)
    value_is_message: bool = False


@dataclass(frozen=True)
class Document:
    name: str
    size: int
    sha256: str
    uri: str

    @property
    def fetchable(self) -> bool:
        return self.uri.startswith(FETCHABLE_SCHEMES)


@dataclass(frozen=True)
class ActDocument:
    """A document an act on the case referenced: which act (its event's seq, the operation), by whom, when."""

    seq: int
    operation: str
    """The registry's operation name (``return`` for a decision to return), or the event type of another act."""
    by: str
    local_time: str
    document: Document


RECORDED_BY = {operation.recorded_event.value: operation.name for operation in reversed(OPERATIONS)}
"""The operation that records each event type (the first declared: ``decide`` rather than ``return``)."""


def act_documents(recorded: list[RecordedAttachment], timeline: list[TimelineRow]) -> list[ActDocument]:
    """The documents the acts on the case referenced, in the order of the acts."""
    rows = {row.seq: row for row in timeline}
    found = []
    for ref in recorded:
        row = rows.get(ref.seq)
        operation = RECORDED_BY.get(ref.type, ref.type)
        if operation == "decide" and row is not None and row.data.get("decision") == "return":
            operation = "return"
        by = (row.actor_name or row.actor_id) if row else ref.actor_id
        document = Document(ref.name, ref.size, ref.sha256, ref.uri)
        found.append(ActDocument(ref.seq, operation, by, row.local_time if row else "", document))
    return found


def application_model(process: str) -> type[BaseModel] | None:
    """The model of a process's application (its start request's ``application`` field), if it has one."""
    entry = PROCESSES.get(process)
    info = entry.request_model.model_fields.get("application") if entry else None
    annotation = info.annotation if info else None
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def entries(data: Any, model: type[BaseModel] | None) -> list[Entry]:
    """``data`` as labelled entries: a field's title and description from ``model`` where it declares them."""
    if not isinstance(data, dict):
        return [Entry(label="", value=_text(data))]
    found = []
    for key, value in data.items():
        if _is_document(value) or (isinstance(value, list) and value and all(_is_document(v) for v in value)):
            continue  # listed as documents
        info = model.model_fields.get(key) if model else None
        label = APPLICATION_FIELDS.get(key) or (
            info.title if info and info.title else key.replace("_", " ").capitalize()
        )
        hint = info.description or "" if info else ""
        nested = _nested_model(info.annotation) if info else None
        if isinstance(value, dict):
            found.append(Entry(label, hint, children=entries(value, nested)))
        elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
            children = [Entry(f"{index}", children=entries(item, nested)) for index, item in enumerate(value, 1)]
            found.append(Entry(label, hint, children=children))
        else:
            found.append(Entry(label, hint, value=_text(value), value_is_message=isinstance(value, bool)))
    return found


def documents(*sources: Any) -> list[Document]:
    """Every document reference found in ``sources`` (application data, event payloads), each once."""
    found: dict[str, Document] = {}

    def walk(value: Any) -> None:
        if _is_document(value):
            document = Document(str(value.get("name", "")), int(value["size"]), str(value["sha256"]), str(value["uri"]))
            found.setdefault(document.sha256 + document.uri, document)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for source in sources:
        walk(source)
    return list(found.values())


def stage_of(definition: dict[str, Any] | None, stage_id: str) -> Stage | None:
    """The stage ``stage_id`` of a recorded definition (``case.started``), in a step or a parallel branch."""
    if not definition:
        return None
    parsed = ProcessDefinition.model_validate(definition)
    for step in parsed.steps:
        stages = [step] if isinstance(step, Stage) else [stage for branch in step.branches for stage in branch]
        for stage in stages:
            if stage.id == stage_id:
                return stage
    return None


def _is_document(value: Any) -> bool:
    return isinstance(value, dict) and DOCUMENT_KEYS <= value.keys()


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value)
    return "" if value is None else str(value)
