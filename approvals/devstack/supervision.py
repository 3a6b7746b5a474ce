"""How `approvals dev` keeps its servers up and how it makes sure it stops.

- A server that dies (PostgreSQL or Temporal, killed or crashed) is started again on the same data and
  port; the worker and the API reconnect on their own (the asyncpg pool replaces closed connections, the
  Temporal client and worker retry). A server that keeps dying is given up on: :class:`RestartBudget`.
- A stop request is honoured within :data:`STOP_DEADLINE_SECONDS` whatever state the stack is in, even
  with a server frozen or a request stuck on it: every step of the shutdown has a bound of its own
  (:func:`within`), and :class:`StopDeadline` kills what is left and ends the process should the steps
  together still overrun.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from approvals.devstack.embedded_pg import kill_process_tree

__all__ = ["STOP_DEADLINE_SECONDS", "RestartBudget", "StopDeadline", "within"]

log = structlog.get_logger(__name__)

STOP_DEADLINE_SECONDS = 9.0
"""Ctrl-C or SIGTERM ends `approvals dev` within this time (issue 14: "within 10 seconds in every state")."""


@dataclass
class RestartBudget:
    """A server may be restarted ``limit`` times within ``window_seconds``; one dying more often than that is
    broken (a corrupt data directory, a port taken by someone else) and restarting it would only hide it."""

    limit: int = 3
    window_seconds: float = 60.0
    _restarts: deque[float] = field(default_factory=deque)

    def allows_another(self) -> bool:
        """Records a restart and says whether it is within the budget."""
        now = time.monotonic()
        while self._restarts and now - self._restarts[0] > self.window_seconds:
            self._restarts.popleft()
        if len(self._restarts) >= self.limit:
            return False
        self._restarts.append(now)
        return True

    def exhausted(self) -> str:
        return f"it died {self.limit + 1} times within {self.window_seconds:g}s; not restarting it again"


async def within(seconds: float, task: asyncio.Future[Any], what: str) -> None:
    """Waits up to ``seconds`` for ``task`` to end, then cancels it: a stop step that hangs (a request
    waiting on a frozen database, say) must not hold up the steps after it. The step's own failure is
    not raised here: whoever started it reports it, and stopping goes on."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        log.warning("dev.stop_step_cancelled", step=what, after_seconds=seconds)
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)


class StopDeadline:
    """Once armed, SIGKILLs the servers with all their processes and ends this process after ``seconds``,
    unless disarmed first (the orderly stop finished in time)."""

    def __init__(self, seconds: float, process_groups: Callable[[], list[int]] = list) -> None:
        self.seconds = seconds
        self.process_groups = process_groups
        """The process groups to kill when the deadline passes, asked for then (servers may have restarted)."""
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self.seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        print(
            f"approvals dev: not stopped in order within {self.seconds:g}s; killing what is left",
            file=sys.stderr,
            flush=True,
        )
        for leader in self.process_groups():
            kill_process_tree(leader)
        os._exit(1)
