"""Console sign-in: a bearer token (a dev token picked by principal, or a pasted token or JWT) kept in an
HttpOnly, SameSite=Strict cookie, so a page's script never sees it; forms carry a CSRF token.

CSRF is the double-submit pattern: a random ``console_csrf`` cookie (set on the first page) that every form
repeats in a hidden field; a cross-site form cannot read the cookie, so it cannot repeat it. With SameSite=Strict
the session cookie is not even sent with such a request; the check holds without relying on that.

Behind a reverse proxy that does the organisation's single sign-on, the proxy sends ``Authorization: Bearer
<JWT>`` with every request; the console accepts that header as well as its cookie (docs/console.md).
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse

from api.auth import principal_of_token
from approvals.errors import Unauthenticated
from schemas.principal import Principal

SESSION_COOKIE = "console_session"
CSRF_COOKIE = "console_csrf"
LANGUAGE_COOKIE = "console_lang"
BASE = "/console"


class SignInRequired(Exception):
    """No session, or its token no longer stands for anyone: the page answers with the sign-in page."""


class CsrfRejected(Exception):
    """A form came without the CSRF token of this browser."""


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(SESSION_COOKIE) or None


def signed_in(request: Request) -> Principal:
    """The principal of this browser's session (or of a proxy's bearer header)."""
    token = bearer_token(request)
    if token is None:
        raise SignInRequired()
    try:
        return principal_of_token(request, token)
    except Unauthenticated as error:
        raise SignInRequired(str(error)) from None


ConsolePrincipal = Annotated[Principal, Depends(signed_in)]


def csrf_token(request: Request) -> str:
    """This browser's CSRF token: its cookie, or a new one the response sets (see :func:`remember_csrf`)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token:
        token = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(24)
        request.state.new_csrf = token
    return token


def remember_csrf(request: Request, response: Any) -> None:
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", path=BASE, secure=_secure(request))


async def checked_form(request: Request, csrf: Annotated[str, Form()] = "") -> None:
    """Every form posts ``csrf``; it must equal this browser's CSRF cookie."""
    expected = request.cookies.get(CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf.encode()):
        raise CsrfRejected()


CsrfChecked = Depends(checked_form)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def start_session(request: Request, token: str) -> RedirectResponse:
    response = RedirectResponse(f"{BASE}/", status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path=BASE, secure=_secure(request))
    return response


def end_session() -> RedirectResponse:
    response = RedirectResponse(f"{BASE}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=BASE)
    return response


@dataclass(frozen=True)
class DemoSignIn:
    """A principal of the dev tokens file whose plain token is there, offered on the sign-in page."""

    id: str
    name: str
    unit: str
    roles: tuple[str, ...]
    token: str


def demo_principals(request: Request) -> list[DemoSignIn]:
    """The dev tokens file's entries that carry their token (``approvals dev`` writes them so); none in
    production, where AUTH_TOKENS_FILE is unset or holds digests only."""
    path = request.app.state.settings.auth_tokens_file
    if path is None:
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [
        DemoSignIn(str(e["id"]), str(e.get("name", "")), str(e.get("unit", "")), tuple(e.get("roles", ())), e["token"])
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("token"), str) and "id" in e
    ]
