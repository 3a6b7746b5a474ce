"""Structured logging for every process of the engine.

One pipeline for both structlog and the standard library: lines logged by temporalio, uvicorn, asyncpg
and our own code all leave through the same renderer, JSON in production (one object per line, for the
log collector) and colourised key=value in development. Context bound with
``structlog.contextvars.bind_contextvars`` appears on every line, whichever logger wrote it; the
:class:`ActivityLogContextInterceptor` uses that so each line written while an activity runs names the
case it belongs to.

Workflow code never logs through structlog (it is not replay-safe): it uses ``workflow.logger``, which
also ends up here.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from approvals.settings import LogFormat, Settings
from approvals.tracing import span_ids

__all__ = ["ActivityLogContextInterceptor", "activity_log_context", "configure_logging"]

_NOISY_LOGGERS = {
    # One line per HTTP request is the API's job (and the access log is off by default in production).
    "uvicorn.access": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "asyncio": logging.WARNING,
}
"""Third-party loggers whose INFO lines say nothing an operator needs."""


def _drop_color_message(
    _logger: Any, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """uvicorn passes an ANSI-coloured copy of each message as ``extra``; the renderer colours already."""
    event_dict.pop("color_message", None)
    return event_dict


def _add_trace_context(
    _logger: Any, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """``trace_id`` and ``span_id`` of the span in progress (when tracing is on): the problem response of a
    refused request names the same trace id, so its log lines are one search away."""
    for key, value in span_ids().items():
        event_dict.setdefault(key, value)
    return event_dict


def _shared_processors() -> list[structlog.typing.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_trace_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Routes structlog and standard-library logging to one handler on ``stream`` (stderr by default).

    Safe to call more than once (tests, ``approvals dev`` after reading its overrides): the root
    logger's handlers are replaced, not added to.
    """
    renderer: structlog.typing.Processor
    if settings.log_format is LogFormat.json:
        renderer = structlog.processors.JSONRenderer()
        exception_processors: list[structlog.typing.Processor] = [
            structlog.processors.dict_tracebacks,
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=(stream or sys.stderr).isatty(),
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False, max_frames=20),
        )
        exception_processors = []

    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a logger obtained at import time must follow a later reconfiguration.
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *exception_processors,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)

    # uvicorn and others install their own handlers; make them propagate to ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "temporalio", "asyncpg"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    # temporalio appends its info dict to the message text by default; here it is a structured field
    # (``temporal_activity`` / ``temporal_workflow``) already, so keep the message itself clean.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    for name, level in _NOISY_LOGGERS.items():
        logging.getLogger(name).setLevel(max(level, logging.getLevelName(settings.log_level)))


def activity_log_context(info: activity.Info) -> dict[str, Any]:
    """The keys bound on every log line written while the activity described by ``info`` runs.

    The case id *is* the workflow id in this engine (``<process>:<business key>``), so it is bound under
    both names: ``case_id`` is what people search the logs for, ``workflow_id`` what Temporal shows.
    """
    return {
        "case_id": info.workflow_id,
        "workflow_id": info.workflow_id,
        "run_id": info.workflow_run_id,
        "workflow_type": info.workflow_type,
        "activity_type": info.activity_type,
        "activity_id": info.activity_id,
        "attempt": info.attempt,
    }


class _BindActivityContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        tokens = structlog.contextvars.bind_contextvars(**activity_log_context(activity.info()))
        try:
            # Synchronous activities run in a thread; temporalio copies the context into it.
            return await self.next.execute_activity(input)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)


class ActivityLogContextInterceptor(Interceptor):
    """Worker interceptor: every log line written inside an activity carries its case and run.

    Binds ``case_id``, ``workflow_id``, ``run_id``, ``activity_type`` and ``attempt`` (see
    :func:`activity_log_context`) as structlog context variables for the duration of the activity and
    restores the previous values afterwards, so concurrent activities on one worker never mix them up
    (each runs in its own asyncio task, hence its own context).
    """

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindActivityContext(next)
