"""The decision form of a task, built from its stage: the decisions the stage allows, one finding (holds or not, a
note, an evidence reference) for each statutory criterion the stage declares, and the documents attached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from api.console.forms import references
from schemas.case import AttachmentRef, TaskView
from schemas.process import Decision, Stage

EVIDENCE_FIELDS = ("uri", "sha256", "size", "name")
ATTACHMENT_FIELDS = tuple(AttachmentRef.model_fields)


@dataclass(frozen=True)
class DecisionForm:
    decisions: tuple[str, ...]
    """Offered on the decide form; ``return`` has its own form (the registry's ``return`` operation)."""
    criteria: tuple[str, ...]


def decision_form(task: TaskView, stage: Stage | None) -> DecisionForm:
    allowed = stage.allowed_decisions if stage else (Decision.approve, Decision.reject)
    criteria = tuple(stage.criteria) if stage else tuple(task.criteria)
    return DecisionForm(tuple(d.value for d in allowed if d is not Decision.return_), criteria)


def decision_body(form: FormData) -> dict[str, Any]:
    """The ``decide`` body of a submitted decision form (``return`` fixes its own decision over this one)."""
    body: dict[str, Any] = {"decision": str(form.get("decision", "")), "comment": str(form.get("comment", "")).strip()}
    conditions = [line.strip() for line in str(form.get("conditions", "")).splitlines() if line.strip()]
    if conditions:
        body["conditions"] = conditions
    return_to = str(form.get("return_to", "")).strip()
    if return_to:
        body["return_to"] = return_to
    findings = [finding for index in range(len(form.getlist("criterion"))) if (finding := _finding(form, index))]
    if findings:
        body["findings"] = findings
    attachments = references(ATTACHMENT_FIELDS, str(form.get("attachments", "")))
    if attachments:
        body["attachments"] = attachments
    return body


def _finding(form: FormData, index: int) -> dict[str, Any] | None:
    holds = str(form.get(f"holds-{index}", ""))
    if holds not in ("yes", "no"):
        return None
    finding: dict[str, Any] = {
        "criterion": form.getlist("criterion")[index],
        "holds": holds == "yes",
        "note": str(form.get(f"note-{index}", "")).strip(),
    }
    evidence = {name: str(form.get(f"evidence-{name}-{index}", "")).strip() for name in EVIDENCE_FIELDS}
    if evidence["uri"]:
        finding["evidence"] = [{k: v for k, v in evidence.items() if v}]
    return finding
