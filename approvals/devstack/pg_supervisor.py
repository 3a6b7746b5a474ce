"""Runs the embedded PostgreSQL server and stops it when the process that started us dies.

``approvals.devstack.embedded_pg`` starts this script (``python -I pg_supervisor.py --parent-pid P [--uid U --gid G]
-- postgres ...``) in a session of its own, so a Ctrl-C in the terminal never reaches PostgreSQL directly;
the engine stops it itself, in order, by signalling this process. Why not ``prctl(PR_SET_PDEATHSIG)`` on
the server itself: ``approvals dev`` starts PostgreSQL from a worker thread, and the parent-death signal
fires when the *thread* that forked the child ends, not the process; nor does a ``preexec_fn`` mix well
with threads. This process is single-threaded, so it can use both for its own child.

- SIGINT, SIGTERM, SIGQUIT and SIGHUP are passed on to the server (PostgreSQL's fast, smart and immediate
  shutdown and its reload); we exit when the server does, with its status (a signal death is re-raised).
- When the parent process is gone (our parent PID changed: we were re-parented), the server gets SIGINT
  (fast shutdown), SIGQUIT after a grace period, SIGKILL at last.
- Should this process itself be killed, the server gets SIGINT from the kernel (parent-death signal, set
  in the server from this single-threaded process).

Standard library only, run with ``-I``: the interpreter must not need the project's virtual environment
to be importable by the user the server runs as.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from types import FrameType

POLL_SECONDS = 0.2
FAST_SHUTDOWN_GRACE_SECONDS = 20.0
IMMEDIATE_SHUTDOWN_GRACE_SECONDS = 5.0
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP)


def _say(message: str) -> None:
    """A line in the server log (our stdout is the log file), marked as ours."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} [pg_supervisor {os.getpid()}] {message}", file=sys.stderr, flush=True)


def _parent_death_signal(signal_number: int) -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def set_in_child() -> None:
        prctl(pr_set_pdeathsig, signal_number)

    return set_in_child


def _stop(server: subprocess.Popen[bytes]) -> int:
    """Fast shutdown, then immediate shutdown, then SIGKILL; returns the server's exit status."""
    for signal_number, grace in (
        (signal.SIGINT, FAST_SHUTDOWN_GRACE_SECONDS),
        (signal.SIGQUIT, IMMEDIATE_SHUTDOWN_GRACE_SECONDS),
    ):
        if server.poll() is not None:
            break
        server.send_signal(signal_number)
        try:
            return server.wait(grace)
        except subprocess.TimeoutExpired:
            _say(f"PostgreSQL (PID {server.pid}) still runs {grace:g}s after {signal.Signals(signal_number).name}")
    if server.poll() is None:
        server.kill()
    return server.wait()


def _exit_like(status: int) -> None:
    """Ends this process as the server ended: same exit code, or killed by the same signal."""
    if status < 0:
        with suppress(OSError, ValueError):  # SIGKILL and SIGSTOP have no handler to reset
            signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        time.sleep(1)  # the signal is delivered before this returns; belt and braces
        status = 128 - status
    sys.exit(status)


def main(argv: list[str] | None = None) -> None:
    pending: list[int] = []

    def remember(signal_number: int, _frame: FrameType | None) -> None:
        pending.append(signal_number)

    for signal_number in FORWARDED_SIGNALS:
        signal.signal(signal_number, remember)

    parser = argparse.ArgumentParser(prog="pg_supervisor")
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--uid", type=int)
    parser.add_argument("--gid", type=int)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no server command after --")

    if os.getppid() != args.parent_pid or any(s != signal.SIGHUP for s in pending):
        _say("stopped before PostgreSQL started")
        sys.exit(1)
    other_user = args.uid is not None and args.uid != os.geteuid()
    server = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        user=args.uid if other_user else None,
        group=args.gid if other_user else None,
        extra_groups=[] if other_user else None,
        # Single-threaded here, so a preexec_fn is safe; it runs after the change of user.
        preexec_fn=_parent_death_signal(signal.SIGINT),  # noqa: PLW1509
    )
    while True:
        while pending:
            server.send_signal(pending.pop(0))
        try:
            status = server.wait(POLL_SECONDS)
        except subprocess.TimeoutExpired:
            if os.getppid() != args.parent_pid:
                _say(f"parent process {args.parent_pid} is gone; stopping PostgreSQL (PID {server.pid})")
                status = _stop(server)
                break
            continue
        break
    _exit_like(status)


if __name__ == "__main__":
    main()
