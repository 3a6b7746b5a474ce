"""统计报表: the Committee's statistics for auditors, admins and the head, as ``GET /v1/reports/summary`` gives them:
a period picker (a GET form, no script needed), the figures as tables, the report's three charts as inline SVG drawn
by the server (``approvals.reports.charts``), and the CSV, XLSX and PDF files through the same service.

The files are served here, not linked to the API route: the console's session cookie is scoped to ``/console``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.auth import service_of
from api.console import words
from api.console.i18n import LOCAL_TIME
from api.console.rendering import gettext, render
from api.console.session import BASE, ConsolePrincipal
from approvals.errors import InvalidRequest
from approvals.processes import PROCESSES
from approvals.reports.service import Reports
from approvals.reports.summary import InvalidPeriod, ReportRequest, report_request
from approvals.reports.tables import BREAKDOWNS, COLUMNS
from schemas.principal import Principal
from schemas.reports import GroupBy, ReportFormat

router = APIRouter(prefix=BASE, include_in_schema=False)

PERIOD_FIELDS = ("from", "to", "group_by")
TYPED = Annotated[str | None, Query(max_length=40, pattern=r"^[^\x00-\x1f]*$")]
"""What the form sends, taken as typed so a bad value can be shown back as it was."""
SVG_PROLOGUE = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
SVG_IDS = re.compile(r'(\bid="|url\(#|href="#)')


@dataclass(frozen=True)
class Period:
    """The picker's fields as typed, the errors beside them, and the request they make when there is none."""

    typed: dict[str, str]
    errors: dict[str, str]
    request: ReportRequest | None


def default_period(today: date) -> dict[str, str]:
    """The year so far, by process."""
    return {"from": today.replace(month=1, day=1).isoformat(), "to": today.isoformat(), "group_by": "process"}


def period(request: Request, typed: dict[str, str | None], format_: ReportFormat = ReportFormat.json) -> Period:
    """The period the picker asks for; each bad field gets its error in the reader's words, the engine's after it."""
    today = datetime.now(LOCAL_TIME).date()
    values = {name: (typed.get(name) or "").strip() or fallback for name, fallback in default_period(today).items()}
    errors: dict[str, str] = {}
    dates: dict[str, date] = {}
    for name in ("from", "to"):
        try:
            dates[name] = date.fromisoformat(values[name])
        except ValueError:
            errors[name] = gettext(request, words.NOT_A_DATE, typed=values[name])
    if values["group_by"] not in GroupBy.__members__:
        errors["group_by"] = gettext(request, words.UNKNOWN_GROUPING, typed=values["group_by"])
    if errors:
        return Period(values, errors, None)
    try:
        checked = report_request(dates["from"], dates["to"], GroupBy(values["group_by"]), format_)
    except InvalidPeriod as error:
        field = error.errors[0]["field"]
        reason = words.STARTS_AFTER_END if field == "from" else words.PERIOD_TOO_LONG
        return Period(values, {field: f"{gettext(request, reason)} ({error.errors[0]['message']})"}, None)
    return Period(values, {}, checked)


def inline_svg(svg: str, prefix: str, labelled_by: str) -> str:
    """A chart's SVG file as an element of the page: without its XML prologue, its ids made unique in the page
    (the three charts share a few), and named by the figure's caption for screen readers."""
    element = SVG_IDS.sub(lambda found: f"{found.group(1)}{prefix}-", SVG_PROLOGUE.sub("", svg, count=1))
    return element.replace("<svg ", f'<svg role="img" aria-labelledby="{labelled_by}" ', 1)


def group_label(group_by: GroupBy, key: str) -> str:
    """A process by its title; any other group by its key (units and months read as they are)."""
    return PROCESSES[key].title if group_by is GroupBy.process and key in PROCESSES else key


@router.get("/reports")
async def dashboard(
    request: Request,
    principal: ConsolePrincipal,
    from_: Annotated[str | None, Query(alias="from", max_length=40, pattern=r"^[^\x00-\x1f]*$")] = None,
    to: TYPED = None,
    group_by: TYPED = None,
) -> Response:
    """The figures of the period picked (the year so far at first), the charts, and links to the files."""
    chosen = period(request, {"from": from_, "to": to, "group_by": group_by})
    reports = Reports(service_of(request))
    if chosen.request is None:
        await reports.require_reader(principal, chosen.typed)
        return _page(request, principal, chosen, status_code=422)
    charted = await reports.charted(principal, chosen.request)
    svgs = await asyncio.to_thread(charted.charts)  # matplotlib takes a while: the API serves others meanwhile
    charts = [
        (title, inline_svg(svg, f"chart{index}", f"chart{index}-caption"))
        for index, (title, svg) in enumerate(zip(words.REPORT_CHARTS, svgs, strict=True))
    ]
    return _page(request, principal, chosen, figures=charted.figures, charts=charts)


@router.get("/reports/summary.{file_format}")
async def report_file(
    request: Request,
    principal: ConsolePrincipal,
    file_format: ReportFormat,
    from_: Annotated[str | None, Query(alias="from", max_length=40, pattern=r"^[^\x00-\x1f]*$")] = None,
    to: TYPED = None,
    group_by: TYPED = None,
) -> Response:
    """The CSV, XLSX or PDF report of the period, as ``GET /v1/reports/summary?format=…`` gives it."""
    chosen = period(request, {"from": from_, "to": to, "group_by": group_by}, file_format)
    if chosen.request is None or file_format is ReportFormat.json:
        problems = [{"field": name, "location": "query", "message": text} for name, text in chosen.errors.items()]
        raise InvalidRequest(f"invalid report period: {'; '.join(chosen.errors.values())}", problems)
    file = await Reports(service_of(request)).file(principal, chosen.request)
    headers = {"Content-Disposition": f'attachment; filename="{file.filename}"'}
    return Response(file.content, media_type=file.media_type, headers=headers)


def _page(request: Request, principal: Principal, chosen: Period, status_code: int = 200, **shown: object) -> Response:
    return render(
        request, "dashboard.html", status_code=status_code, principal=principal, period=chosen,
        groupings=[grouping.value for grouping in GroupBy], columns=[name for name, _ in COLUMNS],
        breakdowns=[field for field, _, _ in BREAKDOWNS], files=[f.value for f in ReportFormat if f.value != "json"],
        group_label=group_label, **{"figures": None, "charts": [], **shown},
    )  # fmt: skip
