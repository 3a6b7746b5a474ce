"""The web console at ``/console/``: reviewers work their inbox, auditors read and verify cases, in Chinese
first (English available), as server-rendered pages that work without JavaScript.

Every action goes through the same operation registry (``approvals.operations``) and service layer
(``approvals.service``) as the HTTP API: the console is another face of the API, not a second way to act.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from api.console import pages, tasks
from api.console.rendering import gettext, render
from api.console.session import BASE, CsrfRejected, SignInRequired

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Adds the console's pages, and what a page does without a session or with a forged form."""
    app.include_router(pages.router)
    app.include_router(tasks.router)

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, error: SignInRequired) -> Response:
        if request.method == "GET" and not request.query_params.get("fragment"):
            return RedirectResponse(f"{BASE}/login", status_code=303)
        return Response(status_code=401)

    @app.exception_handler(CsrfRejected)
    async def forged(request: Request, error: CsrfRejected) -> Response:
        message = gettext(request, "The form has expired; open the page again and resend it.")
        return render(request, "message.html", status_code=403, message=message)
