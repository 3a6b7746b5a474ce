"""Inputs of a newer release met by an older worker during a rolling deploy (issue 20).

Every application model forbids unknown fields (``extra="forbid"``), inside the worker as at the API: a worker
that dropped a field it does not know would decide the case without data the applicant gave, and record the
case as if that data were not there. So an older worker must not run such a case, and must not fail it either:
the case is the newer release's, and a worker of that release will run it. It raises :class:`NewerReleaseInput`,
which is not a Temporal failure, so Temporal fails the workflow task only and retries it (with backoff) until a
worker that knows the field takes it. With Worker Versioning (WORKER_VERSIONING) a new case goes to the current
build anyway; this covers the deploy without it and the ramp, when both builds poll.

Any other invalid application still fails the case at once, as ``parse_application`` says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.kernel import parse_application

T = TypeVar("T")

NEWER_RELEASE_INPUT_PATCH = "unknown-fields-wait-for-a-newer-build"
"""Before it, a case whose application had an unknown field failed with INVALID_APPLICATION; such a history keeps
replaying that way."""


class NewerReleaseInput(Exception):
    """The input has fields this build does not know: a workflow task failure, retried, never a failed case."""


def application_or_wait(parse: Callable[[Any], T], data: Any, what: str) -> T:
    """The case data as the process's application (``parse_application``), unless it holds fields this build does
    not know: then the workflow task fails and is retried until a worker of a newer build takes the case."""
    try:
        return parse(data)
    except ValidationError as error:
        unknown = [".".join(map(str, e["loc"])) for e in error.errors() if e["type"] == "extra_forbidden"]
        if unknown and workflow.patched(NEWER_RELEASE_INPUT_PATCH):
            raise NewerReleaseInput(
                f"{what} has fields this build does not know: {', '.join(unknown)}; a worker of the newer build "
                "will run the case (this task is retried until one does)"
            ) from None
    return parse_application(parse, data, what)
