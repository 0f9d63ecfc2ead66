"""``mpo serve --processes N``: N API processes on one port, as uvicorn's ``--workers`` does.

The supervisor binds and listens on the port once, then starts N ``mpo serve``
processes that inherit the listening socket (``--listen-fd``): the kernel hands each
new connection to whichever process accepts first, so one slow process does not hold
connections that another could answer. Each child is a fresh interpreter (not a fork
of this one) with the same settings, read from the same environment.

The supervisor serves nothing itself. It restarts a child that dies (a crash, the OOM
killer) after a second; a child that dies within its first seconds at start-up means
a configuration problem, and then everything stops with exit status 1. SIGTERM or
SIGINT (Ctrl+C) is passed on once to every child, which stops gracefully as ``mpo
serve`` does; a second one is passed on too (children then release running jobs).
Children whose supervisor is gone (even SIGKILLed) stop by themselves.

Only shared stores make sense here (:func:`~mpo_realtime.deployment.require_shared`):
several processes cannot share a DuckDB file, an SQLite job store or in-memory rate
limits.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from mpo_realtime.deployment import require_shared, signing_key_warning
from mpo_realtime.logs import configure_logging, flush_logs
from mpo_realtime.serving import bind
from mpo_realtime.settings import Settings

__all__ = ["Supervisor", "run_processes"]

log = logging.getLogger(__name__)

#: A child that exits with an error this soon after the first start is a start-up failure
#: (configuration, stores), not a crash. One killed by a signal is a crash at any time.
STARTUP_SECONDS = 10.0
#: Pause before a crashed child is started again.
RESTART_DELAY_SECONDS = 1.0
#: Connections the kernel queues while every process is busy (uvicorn's default).
BACKLOG = 2048


@dataclass
class _Child:
    index: int
    process: subprocess.Popen[bytes]
    started: float


class Supervisor:
    """Starts, watches and stops the API processes of one ``mpo serve --processes N``."""

    def __init__(self, *, command: list[str], listen_fd: int, processes: int) -> None:
        self.command = command
        self.listen_fd = listen_fd
        self.processes = processes
        self.children: list[_Child] = []
        self._signals = 0
        self._failed = False

    def _start(self, index: int) -> _Child:
        process = subprocess.Popen(
            [*self.command, "--listen-fd", str(self.listen_fd)],
            pass_fds=(self.listen_fd,),
            stdin=subprocess.DEVNULL,
            # out of the terminal's process group: Ctrl+C reaches the supervisor only,
            # which passes it on once (a second signal would release running jobs)
            start_new_session=True,
        )
        log.info("API process %d started (pid %d)", index + 1, process.pid)
        return _Child(index, process, time.monotonic())

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        for child in self.children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)

    def run(self) -> int:
        """Run until a signal or a start-up failure; the exit status for the process."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        first_start = time.monotonic()
        self.children = [self._start(i) for i in range(self.processes)]
        while not self._signals:
            for position, child in enumerate(self.children):
                code = child.process.poll()
                if code is None or self._signals:
                    continue
                # a negative code is a signal (OOM killer, an operator's kill): restart it
                if code > 0 and time.monotonic() - first_start < STARTUP_SECONDS:
                    log.error(
                        "API process %d exited with %d during start-up: stopping all",
                        child.index + 1,
                        code,
                    )
                    self._failed = True
                    self._on_signal(signal.SIGTERM, None)
                    break
                log.error(
                    "API process %d (pid %d) exited with %d: starting it again",
                    child.index + 1,
                    child.process.pid,
                    code,
                )
                time.sleep(RESTART_DELAY_SECONDS)
                if not self._signals:
                    self.children[position] = self._start(child.index)
            time.sleep(0.2)
        for child in self.children:
            child.process.wait()
        return 1 if self._failed else 0


def run_processes(
    settings: Settings,
    *,
    processes: int,
    runners: bool,
    say: Callable[[str], None] = print,
) -> int:
    """``mpo serve --processes N``: refuse unshared stores, bind, supervise; exit status.

    Raises :class:`~mpo_realtime.deployment.NotShared` before anything starts when a
    configured store cannot be shared, and ``PortUnavailable`` when the port is taken.
    """
    configure_logging(logging.INFO, log_format=settings.log_format)
    require_shared(settings, f"mpo serve --processes {processes}")
    warning = signing_key_warning(settings)
    if warning is not None:
        log.warning(warning)
    # every process signs with this key; made here once when it is a file
    settings.resolved_signing_key()
    sock = bind(settings.host, settings.port)
    try:
        sock.listen(BACKLOG)
        command = [sys.executable, "-m", "mpo_realtime", "serve"]
        command += ["--data-dir", str(settings.data_dir)]
        command += ["--host", settings.host, "--port", str(settings.port)]
        if not runners:
            command.append("--no-runner")
        supervisor = Supervisor(command=command, listen_fd=sock.fileno(), processes=processes)
        host = settings.host if ":" not in settings.host else f"[{settings.host}]"
        say(
            f"listening on http://{host}:{settings.port} with {processes} API processes"
            f"{'' if runners else ' (no export runners: start mpo worker)'}; Ctrl+C stops"
        )
        code = supervisor.run()
    finally:
        sock.close()
        flush_logs()
    log.info("stopped: every API process has ended")
    return code
