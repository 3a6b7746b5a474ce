"""Jinja2 pages in the reader's language, and the console's static assets (served by the engine itself)."""

from __future__ import annotations

import uuid
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.console import words
from api.console.i18n import LANGUAGES, language, local_time, translations
from api.console.session import BASE, LANGUAGE_COOKIE, csrf_token, remember_csrf
from approvals.admission import START_ROLES
from approvals.reports.summary import READER_ROLES

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@cache
def environment(lang: str) -> Environment:
    """One environment per language, its gettext bound to that language's catalogue."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "svg"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["local_time"] = local_time
    env.filters["path"] = lambda value: quote(str(value), safe="/:")
    env.globals.update(
        base=BASE,
        languages=LANGUAGES,
        words=words,
        start_roles=START_ROLES,
        report_roles=READER_ROLES,
        new_request_id=lambda: uuid.uuid4().hex,
    )
    return env


def request_language(request: Request) -> str:
    return language(request.cookies.get(LANGUAGE_COOKIE))


def gettext(request: Request, message: str, **values: Any) -> str:
    """``message`` in the reader's language (for texts built in Python, e.g. a refusal)."""
    text = translations(request_language(request)).gettext(message)
    return text % values if values else text


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    lang = request_language(request)
    # The language switch returns here: a page asked for with a query (a search, a period) comes back the same.
    here = request.url.path + (f"?{request.url.query}" if request.method == "GET" and request.url.query else "")
    html = (
        environment(lang)
        .get_template(template)
        .render(request=request, lang=lang, csrf=csrf_token(request), here=here, **context)
    )
    response = HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
    remember_csrf(request, response)
    return response
