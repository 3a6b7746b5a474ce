"""发起办件: a service or admin principal starts a case from the console, as ``POST /v1/cases/{process}`` does.

The page shows the process's documented example application (the one its schema publishes) as people read it,
labelled by the schema, and starts it with one button under a fresh business key; the start request behind it is
JSON, to edit under "edit as JSON". The service layer checks it exactly as for the API, and a refusal or an
invalid field is shown with the text kept (and the JSON opened)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import service_of
from api.console import words
from api.console.casedata import Entry, application_model, entries
from api.console.rendering import gettext, render
from api.console.session import BASE, ConsolePrincipal, CsrfChecked, demo_principals
from approvals.admission import START_ROLES
from approvals.errors import InvalidRequest, ServiceError
from approvals.processes import PROCESSES
from schemas.principal import Principal

router = APIRouter(prefix=BASE, include_in_schema=False)

DEFAULT_PROCESS = "project-approval"
MAX_REQUEST_CHARS = 200_000


def example_request(request: Request, process: str) -> dict[str, Any]:
    """A start request of ``process`` to edit: a new business key, its schema's example application, and an
    applicant of the dev tokens file when there is one."""
    model = application_model(process)
    examples = ((model.model_config.get("json_schema_extra") or {}) if model else {}).get("examples") or [{}]
    applicant = next((d for d in demo_principals(request) if "applicant" in d.roles), None)
    return {
        "business_key": f"WEB-{uuid.uuid4().hex[:8]}",
        "title": PROCESSES[process].title,
        "applicant": {"id": applicant.id, "name": applicant.name, "unit": applicant.unit, "roles": ["applicant"]}
        if applicant
        else {"id": "", "name": "", "unit": "", "roles": ["applicant"]},
        "application": examples[0],
    }


@router.get("/start")
async def start_page(request: Request, principal: ConsolePrincipal, process: str = DEFAULT_PROCESS) -> Response:
    process = process if process in PROCESSES else DEFAULT_PROCESS
    text = json.dumps(example_request(request, process), ensure_ascii=False, indent=2, default=str)
    return _form(request, principal, process, text)


@router.post("/start", dependencies=[CsrfChecked])
async def start(
    request: Request,
    principal: ConsolePrincipal,
    process: Annotated[str, Form(max_length=64)],
    start_request: Annotated[str, Form(max_length=MAX_REQUEST_CHARS)],
) -> Response:
    try:
        body = json.loads(start_request)
    except ValueError as error:
        return _form(request, principal, process, start_request, [f"JSON: {error}"])
    try:
        started = await service_of(request).start_case(principal, process, body)
    except ServiceError as error:
        details = [f"{e.get('field', '')}: {e.get('message', '')}" for e in getattr(error, "errors", [])]
        reason = gettext(request, words.INVALID if isinstance(error, InvalidRequest) else words.REFUSED)
        return _form(request, principal, process, start_request, [reason, *details, f"{error.code}: {error}"])
    return RedirectResponse(f"{BASE}/cases/{started.case_id}", status_code=303)


def preview(process: str, text: str) -> list[Entry]:
    """The application of the start request ``text`` as people read it; nothing while the text is no such request."""
    try:
        application = json.loads(text).get("application")
    except (ValueError, AttributeError):
        return []
    return entries(application, application_model(process)) if isinstance(application, dict) else []


def _form(
    request: Request, principal: Principal, process: str, text: str, problems: list[str] | None = None
) -> Response:
    return render(
        request, "start.html", status_code=422 if problems else 200, principal=principal, process=process,
        processes=PROCESSES, text=text, problems=problems or [], may_start=principal.has_any_role(START_ROLES),
        application=preview(process, text),
    )  # fmt: skip
