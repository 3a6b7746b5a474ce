"""Sign-in, language, assets and the reviewer's lists: 待办 (inbox), 已办 (done), 抄送 (copied to me)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.auth import principal_of_token, service_of
from api.console.clock import calendar, countdown
from api.console.i18n import LANGUAGES
from api.console.rendering import STATIC, render
from api.console.session import (
    BASE,
    LANGUAGE_COOKIE,
    ConsolePrincipal,
    CsrfChecked,
    demo_principals,
    end_session,
    start_session,
)
from approvals.errors import InvalidRequest, Unauthenticated
from approvals.processes import PROCESSES
from schemas.case import CaseStatus
from schemas.search import CaseSearch

router = APIRouter(prefix=BASE, include_in_schema=False)

PAGE_SIZE = 50
REFRESH_SECONDS = 10
"""How often the inbox page's script asks for its list again (polling; a page without script stays as is)."""
# A filter form sends its empty fields as empty strings: empty means "any".
PROCESS_PATTERN = r"^([a-z][a-z0-9-]{0,63})?$"
STAGE_PATTERN = r"^([a-z][a-z0-9_]{0,63})?$"
DATE_PATTERN = r"^([0-9]{4}-[0-9]{2}-[0-9]{2})?$"


@router.get("/login")
async def login_page(request: Request) -> Response:
    return render(request, "login.html", demo=demo_principals(request))


@router.post("/login", dependencies=[CsrfChecked])
async def login(
    request: Request,
    principal_id: Annotated[str, Form(max_length=128)] = "",
    token: Annotated[str, Form(max_length=8192)] = "",
) -> Response:
    """Signs in as a demo principal of the dev tokens file, or with a pasted token or JWT."""
    if principal_id:
        token = next((d.token for d in demo_principals(request) if d.id == principal_id), "")
    token = token.strip()
    try:
        principal_of_token(request, token)
    except Unauthenticated as error:
        return render(request, "login.html", status_code=401, demo=demo_principals(request), error=str(error))
    return start_session(request, token)


@router.post("/logout", dependencies=[CsrfChecked])
async def logout() -> Response:
    return end_session()


@router.get("/language/{lang}")
async def switch_language(request: Request, lang: str, back: str = f"{BASE}/") -> Response:
    """Remembers the language and returns to the page (only a console page: no open redirect)."""
    target = back if back.startswith(f"{BASE}/") and "//" not in back else f"{BASE}/"
    response = RedirectResponse(target, status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, lang, samesite="strict", path=BASE, max_age=365 * 86400)
    return response


@router.get("/static/{name}")
async def static(name: str) -> Response:
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/")
async def inbox(
    request: Request,
    principal: ConsolePrincipal,
    process: Annotated[str | None, Query(pattern=PROCESS_PATTERN)] = None,
    stage: Annotated[str | None, Query(pattern=STAGE_PATTERN)] = None,
    overdue: bool | None = None,
    priority: bool | None = None,
    held: Literal["mine", "pool", ""] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    fragment: bool = False,
) -> Response:
    """待办: the principal's open tasks by due date, filtered, paged; ``fragment`` renders the list only
    (what the page's script fetches to refresh it)."""
    process, stage = process or None, stage or None
    page = await service_of(request).inbox(
        principal, process=process, stage=stage, overdue=overdue, priority=priority, held=held or None,
        limit=PAGE_SIZE, offset=offset,
    )  # fmt: skip
    cal = calendar(request.app.state.settings.calendar_path)
    cases = await service_of(request).headlines(page.items)
    rows = []
    for task in page.items:
        title, clock_state = cases.get(task.case_id, ("", "none"))
        paused = clock_state == "stopped"
        rows.append((task, title, countdown(cal, task.due_at, overdue=task.overdue, paused=paused)))
    filters = {"process": process, "stage": stage, "overdue": overdue, "priority": priority, "held": held}
    return render(
        request, "inbox_rows.html" if fragment else "inbox.html", principal=principal, page=page, rows=rows,
        filters={k: v for k, v in filters.items() if v}, processes=PROCESSES, refresh_seconds=REFRESH_SECONDS,
    )  # fmt: skip


@router.get("/done")
async def done(
    request: Request, principal: ConsolePrincipal, offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0
) -> Response:
    """已办: tasks the principal decided or handed on."""
    page = await service_of(request).handled(principal, limit=PAGE_SIZE, offset=offset)
    return render(request, "done.html", principal=principal, page=page, filters={})


@router.get("/copied")
async def copied(
    request: Request, principal: ConsolePrincipal, offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0
) -> Response:
    """抄送我的: cases the principal was copied on."""
    page = await service_of(request).copied(principal, limit=PAGE_SIZE, offset=offset)
    return render(request, "cases.html", principal=principal, page=page, filters={}, heading="copied")


CREDIT_CODE = re.compile(r"[0-9A-HJ-NP-RTUWXYa-hj-np-rtuwxy]{18}")
"""A unified social credit code (统一社会信用代码), as ``schemas.search.CaseSearch`` takes one."""


def _applicant_filter(text: str | None) -> dict[str, str]:
    """The console's one applicant box: a unified social credit code (18 characters) or a part of a name."""
    if not text:
        return {}
    return {"credit_code": text} if CREDIT_CODE.fullmatch(text) else {"applicant_name": text}


@router.get("/cases")
async def cases(
    request: Request,
    principal: ConsolePrincipal,
    process: Annotated[str | None, Query(pattern=PROCESS_PATTERN)] = None,
    status: Annotated[str | None, Query(pattern=r"^([a-z_]{1,40})?$")] = None,
    business_key: Annotated[str | None, Query(pattern=r"^([A-Za-z0-9][A-Za-z0-9._:-]{0,127})?$")] = None,
    applicant_id: Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00-\x1f]*$")] = None,
    applicant: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00-\x1f]*$")] = None,
    started_from: Annotated[str | None, Query(pattern=DATE_PATTERN)] = None,
    started_to: Annotated[str | None, Query(pattern=DATE_PATTERN)] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """办件查询: the cases the principal may read (auditors: every case), by process, status, key, applicant
    (id; or name or credit code), and the local dates (UTC+8) they started between, both included."""
    filters = {
        "process": process, "status": status, "business_key": business_key, "applicant_id": applicant_id,
        "applicant": applicant, "started_from": started_from, "started_to": started_to,
    }  # fmt: skip
    filters = {name: value for name, value in filters.items() if value}
    try:
        search = CaseSearch(
            process=process or None, status=status or None, business_key=business_key or None,
            applicant_id=applicant_id or None, received_from=started_from or None, received_to=started_to or None,
            limit=PAGE_SIZE, offset=offset, **_applicant_filter(applicant),
        )  # fmt: skip
    except ValidationError as error:  # e.g. a one-character name or a date that does not exist
        raise InvalidRequest(f"invalid search: {error.errors()[0]['msg']}") from None
    page = await service_of(request).list_cases(principal, search)
    return render(
        request, "cases.html", principal=principal, page=page, filters=filters, heading="search", processes=PROCESSES,
        case_statuses=[status.value for status in CaseStatus],
    )  # fmt: skip
