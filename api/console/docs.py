"""``/redoc`` served with its vendored script (the ``fastapi-offline`` package's copy of ReDoc) and a
Content-Security-Policy that keeps the page on this engine: ReDoc's own logo would otherwise be fetched from
its vendor's CDN. ``/docs`` (Swagger UI) needs nothing of the kind and is ``fastapi-offline``'s own."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse

OFFLINE_ASSETS = "/static-offline-docs"
"""Where ``fastapi_offline.FastAPIOffline`` mounts the vendored Swagger UI and ReDoc files."""
SAME_ORIGIN_ONLY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; connect-src 'self'"
)

router = APIRouter(include_in_schema=False)


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{OFFLINE_ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{OFFLINE_ASSETS}/favicon.png",
        with_google_fonts=False,
    )
    page.headers["Content-Security-Policy"] = SAME_ORIGIN_ONLY
    return page
