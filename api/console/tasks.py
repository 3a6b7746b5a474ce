"""The task page: the case as the reviewer needs it, and every operation the reviewer may do, each through the
service layer exactly as ``POST /v1/tasks/{task_id}/<operation>`` does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from api.auth import service_of
from api.console import casedata, words
from api.console.clock import calendar, countdown
from api.console.decision import decision_body, decision_form
from api.console.forms import FormField, body_from_form, form_fields
from api.console.rendering import gettext, render
from api.console.session import BASE, ConsolePrincipal, CsrfChecked
from approvals.errors import Denied, InvalidRequest, ServiceError
from approvals.operations import Operation, Scope, operations
from approvals.service import case_id_of_task
from schemas.case import TaskView
from schemas.principal import Principal
from schemas.process import Decision, Stage

router = APIRouter(prefix=BASE, include_in_schema=False)

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
DECISION_OPERATIONS = {"decide", "return"}
"""Operations whose form is the stage's decision form, not the one derived from the request model."""


@dataclass(frozen=True)
class OfferedOperation:
    operation: Operation
    scope: Scope
    fields: list[FormField]

    @property
    def action(self) -> str:
        return self.operation.name


@router.get("/tasks/{task_id:path}")
async def task_page(request: Request, task_id: str, principal: ConsolePrincipal, done: str = "") -> Response:
    notice = gettext(request, words.DONE, operation=_operation_label(request, done)) if done else ""
    return await _page(request, principal, task_id, notice=notice)


@router.post("/tasks/{task_id:path}/{name}", dependencies=[CsrfChecked])
async def act_on_task(request: Request, task_id: str, name: str, principal: ConsolePrincipal) -> Response:
    return await _act(request, principal, task_id, name, Scope.task)


@router.post("/cases/{case_id}/{name}", dependencies=[CsrfChecked])
async def act_on_case(request: Request, case_id: str, name: str, principal: ConsolePrincipal) -> Response:
    """A case operation from a task page (``task`` in the form names the page to return to)."""
    form = await request.form()
    return await _act(request, principal, str(form.get("task", "")), name, Scope.case, target=case_id)


async def _act(
    request: Request, principal: Principal, task_id: str, name: str, scope: Scope, *, target: str | None = None
) -> Response:
    operation = operations(scope).get(name)
    if operation is None:
        return render(request, "message.html", status_code=404, message=gettext(request, words.REFUSED))
    form = await request.form()
    body = _body(operation, form)
    if scope is Scope.task and "expected_version" in operation.request_model.model_fields:
        version = str(form.get("expected_version", ""))
        body["expected_version"] = int(version) if version.isdigit() else None
    key = str(form.get("request_id", ""))  # one per form shown: a double click or a resend is applied once
    try:
        await service_of(request).act(
            principal, operation, scope, target or task_id, body, idempotency_key=key if REQUEST_ID.match(key) else None
        )
    except ServiceError as error:
        return await _page(request, principal, task_id, refusal=_refusal(request, error), kept={name: form})
    return RedirectResponse(f"{BASE}/tasks/{task_id}?done={name}", status_code=303)


def _body(operation: Operation, form: FormData) -> dict[str, Any]:
    if operation.name in DECISION_OPERATIONS:
        return decision_body(form)
    return body_from_form(form_fields(operation) or [], form)


@dataclass(frozen=True)
class Refusal:
    reason: str
    code: str
    detail: str
    fields: list[str]
    stale: bool


def _refusal(request: Request, error: ServiceError) -> Refusal:
    """The engine's reason in the reader's words, with its code and own text for the record."""
    code = getattr(error, "code", "") or ""
    if isinstance(error, InvalidRequest):
        fields = [f"{item.get('field', '')}: {item.get('message', '')}" for item in error.errors]
        return Refusal(gettext(request, words.INVALID), code, str(error), fields, stale=False)
    reason = gettext(request, words.REFUSALS.get(code, words.REFUSED))
    stale = isinstance(error, Denied) and code == "STALE_TASK_VERSION"
    return Refusal(reason, code, str(error), [], stale)


async def _page(
    request: Request,
    principal: Principal,
    task_id: str,
    *,
    notice: str = "",
    refusal: Refusal | None = None,
    kept: dict[str, FormData] | None = None,
) -> Response:
    service = service_of(request)
    case_id = case_id_of_task(task_id)
    detail = await service.get_case(principal, case_id, live=True)
    timeline = await service.timeline(principal, case_id)
    view = detail.live
    task = next((t for t in view.tasks if t.task_id == task_id), None) if view else None
    if view is None or task is None:
        return render(request, "message.html", status_code=404, message=gettext(request, words.REFUSED))
    started = next((row for row in timeline if row.type == "case.started"), None)
    recorded = started.data if started else {}
    stage = casedata.stage_of(recorded.get("definition"), task.stage_id)
    paused = view.clock_state == "stopped"
    cal = calendar(request.app.state.settings.calendar_path)
    data = recorded.get("data", {})
    return render(
        request,
        "task.html",
        status_code=409 if refusal else 200,
        principal=principal,
        case=view,
        projection=detail.case,
        task=task,
        clock=countdown(cal, task.due_at, overdue=task.overdue, paused=paused),
        stage=stage,
        stage_tasks=[t for t in view.tasks if t.stage_id == task.stage_id],
        results=[r for r in view.stage_results if r.stage_id == task.stage_id],
        application=casedata.entries(data, casedata.application_model(view.process)),
        documents=casedata.documents(data),
        act_documents=casedata.act_documents(detail.attachments, timeline),
        timeline=timeline,
        offered=_offered(principal, task, stage, view.applicant_id, _extension_role(recorded.get("definition"))),
        decision=decision_form(task, stage),
        notice=notice,
        refusal=refusal,
        kept=kept or {},
        operation_label=lambda name: _operation_label(request, name),
    )


def _operation_label(request: Request, name: str) -> str:
    return gettext(request, words.OPERATIONS[name]) if name in words.OPERATIONS else name


def _extension_role(definition: dict[str, Any] | None) -> str | None:
    return ((definition or {}).get("deadline") or {}).get("extension_role")


def _offered(
    principal: Principal, task: TaskView, stage: Stage | None, applicant_id: str, extension_role: str | None
) -> list[OfferedOperation]:
    """The operations this principal may sensibly try on this task now; the engine still decides."""
    open_ = task.status.value in ("open", "claimed")
    holder = task.delegate_id or task.claimed_by or task.assignee_id
    holds = open_ and (holder == principal.id or (holder is None and principal.has_any_role(task.candidate_roles)))
    supervisor = stage.deadline.escalate_to_role if stage and stage.deadline else None
    allowed = set(stage.allowed_decisions) if stage else {Decision.approve, Decision.reject}
    wanted = {
        "claim": open_ and holder is None and principal.has_any_role(task.candidate_roles),
        "unclaim": open_ and task.claimed_by == principal.id,
        "recall": open_ and bool(task.claimed_by) and supervisor is not None and supervisor in principal.roles,
        "decide": holds,
        "return": holds and Decision.return_ in allowed,
        "transfer": holds and not task.delegate_id,
        "delegate": holds and not task.delegate_id,
        "add-signer": holds,
        "urge": open_ and not holds,
        "comment": True,
        "cc": True,
        "request-supplement": holds and bool(stage and stage.may_request_supplement),
        "withdraw": principal.id == applicant_id,
        "extend": open_ and extension_role is not None and extension_role in principal.roles,
    }
    offered = []
    for scope in (Scope.task, Scope.case):
        for name, operation in operations(scope).items():
            if not wanted.get(name) or any(o.action == name for o in offered):
                continue
            fields = [] if name in DECISION_OPERATIONS else form_fields(operation)
            if fields is not None:
                offered.append(OfferedOperation(operation, scope, fields))
    return offered
