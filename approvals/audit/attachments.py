"""Are the documents a case's acts referenced still the ones recorded? Each attachment (a decision's, a
comment's, a 补正's supplied documents, a finding's evidence) was recorded with its SHA-256; where its URI can be
fetched, ``approvals audit verify`` computes the digest again and reports one that changed.

Fetchable means a ``file://`` URI readable on this machine, or an ``http(s)://`` URI whose host is in
ATTACHMENT_FETCH_HOSTS, reached only at addresses the webhook rules allow (WEBHOOK_ALLOWED_NETWORKS: no internal
address unless its network is allowed), without redirects. Nothing else is fetched (``s3://`` and the like are
the storage's to check); a reference that is fetchable but cannot be read is a note, not an error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from activities.destinations import DestinationPolicy, RefusedDestination, host_listed, webhook_client
from approvals.audit.findings import Finding, FindingKind, Severity, finding
from approvals.audit.timeline import attachments_of
from schemas.case import AttachmentRef
from schemas.events import DomainEvent

__all__ = ["AttachmentFetching", "attachment_findings", "referenced"]

CHUNK_BYTES = 1 << 16
FETCH_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class AttachmentFetching:
    """Where verification may fetch referenced documents from."""

    allowed_hosts: str = ""
    """ATTACHMENT_FETCH_HOSTS: host names (exact, or `.example.com`) whose http(s) URIs are fetched."""
    destinations: DestinationPolicy = DestinationPolicy()


def referenced(payload: Mapping[str, Any]) -> Iterator[AttachmentRef]:
    """Every document an event's payload references: attachments, supplied documents, findings' evidence."""
    yield from attachments_of(payload)
    for recorded in payload.get("findings") or ():
        for evidence in recorded.get("evidence") or ():
            yield AttachmentRef.model_construct(**evidence)


async def attachment_findings(events: Sequence[DomainEvent], fetching: AttachmentFetching) -> list[Finding]:
    """A finding for each fetchable referenced document whose SHA-256 (or size) is not the recorded one."""
    found: list[Finding] = []
    async with webhook_client(fetching.destinations) as client:
        for event in events:
            for ref in referenced(event.payload):
                problem = await _problem(ref, fetching, client)
                if problem is not None:
                    found.append(problem_finding(event.seq, ref, *problem))
    return found


def problem_finding(seq: int, ref: AttachmentRef, message: str, severity: Severity) -> Finding:
    return finding(seq, FindingKind.attachment, f"attachment {ref.name or ref.uri} ({ref.uri}): {message}", severity)


async def _problem(
    ref: AttachmentRef, fetching: AttachmentFetching, client: httpx.AsyncClient
) -> tuple[str, Severity] | None:
    parts = urlsplit(ref.uri)
    scheme = parts.scheme.lower()
    digest = hashlib.sha256()
    size = 0
    try:
        if scheme == "file":
            with Path(unquote(parts.path)).open("rb") as document:
                while chunk := document.read(CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
        elif scheme in {"http", "https"} and host_listed(parts.hostname or "", fetching.allowed_hosts):
            async with client.stream("GET", ref.uri, timeout=FETCH_TIMEOUT_SECONDS) as response:
                if response.status_code != 200:
                    return f"not fetched: HTTP {response.status_code}", Severity.note
                async for chunk in response.aiter_bytes(CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
        else:
            return None
    except (OSError, httpx.HTTPError, RefusedDestination) as error:
        return f"not fetched: {error}", Severity.note
    if digest.hexdigest() != ref.sha256:
        return (
            f"its SHA-256 is now {digest.hexdigest()} ({size} bytes), not the {ref.sha256} ({ref.size} bytes) "
            "recorded: the document changed since it was referenced",
            Severity.error,
        )
    return None
