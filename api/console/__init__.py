"""The web console at ``/console/``: reviewers work their inbox, auditors read and verify cases, in Chinese
first (English available), as server-rendered pages that work without JavaScript.

Every action goes through the same operation registry (``approvals.operations``) and service layer
(``approvals.service``) as the HTTP API: the console is another face of the API, not a second way to act.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from api.console import audit, dashboard, docs, pages, start, tasks, words
from api.console.rendering import gettext, render
from api.console.session import BASE, CsrfRejected, SignInRequired
from approvals.errors import ServiceError

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Adds the console's pages, and what a page shows without a session, with a forged form, or when the
    service layer refuses (the API's own errors stay problem+json)."""
    for module in (pages, tasks, audit, start, dashboard, docs):
        app.include_router(module.router)
    api_error = app.exception_handlers[ServiceError]

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, error: SignInRequired) -> Response:
        if request.method == "GET" and not request.query_params.get("fragment"):
            return RedirectResponse(f"{BASE}/login", status_code=303)
        return Response(status_code=401)

    @app.exception_handler(CsrfRejected)
    async def forged(request: Request, error: CsrfRejected) -> Response:
        message = gettext(request, "The form has expired; open the page again and resend it.")
        return render(request, "message.html", status_code=403, message=message)

    @app.exception_handler(ServiceError)
    async def refused(request: Request, error: ServiceError) -> Response:
        if not request.url.path.startswith(f"{BASE}/"):
            return await api_error(request, error)  # type: ignore[no-any-return]
        reason = gettext(request, words.REFUSALS.get(error.code, words.REFUSED))
        return render(request, "message.html", status_code=error.status, message=f"{reason} ({error.code}: {error})")
