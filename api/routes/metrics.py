"""``GET /metrics``: the API's Prometheus metrics (``approvals.metrics`` says which), for the scraper.

Unauthenticated like ``/health``: it carries counts by process, stage, role and channel, never a case, a
person or a token; keep it reachable from the monitoring network only (docs/deploy.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from approvals.metrics import scrape

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics: HTTP, refusals, 401s, verifications, cases, tasks, outbox",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    return Response(await scrape(request.app.state.pool), media_type=CONTENT_TYPE_LATEST)
