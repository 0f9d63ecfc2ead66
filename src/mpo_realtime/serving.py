"""The ``mpo serve`` process: the port first, then uvicorn, then a graceful stop.

1. :func:`bind` takes the port before any start-up work, so that a busy port is a
   one-line error and nothing else has started (no store opened, no thread to hang on).
2. :class:`ServerProcess` serves the app on that socket with ``uvicorn.Server`` and
   calls ``on_listening`` once connections are accepted.
3. On SIGTERM or SIGINT (Ctrl+C): uvicorn stops accepting and lets in-flight requests
   finish (``shutdown_grace_seconds``), then the background work stops
   (:meth:`Services.stop_background`: runners finish or release their jobs); the caller
   then closes the stores and the process exits 0. A second signal while stopping
   releases running export jobs at once. A signal during start-up (back-fill) raises
   :class:`StopRequested`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from mpo_realtime.api.coalesce import CoalescingHttpToolsProtocol
from mpo_realtime.domain.errors import MpoError
from mpo_realtime.services import Services
from mpo_realtime.settings import Settings

__all__ = ["PortUnavailable", "ServerProcess", "StopRequested", "bind"]

log = logging.getLogger(__name__)


class PortUnavailable(MpoError):
    """The HTTP port cannot be bound."""


class StopRequested(Exception):
    """SIGTERM or SIGINT arrived before the server was serving."""


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (listening starts when uvicorn serves on it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortUnavailable(f"cannot bind {host}:{port}: unknown host ({exc})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    # as uvicorn does: a restart need not wait for the old connections' TIME_WAIT
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise PortUnavailable(_bind_failure(host, port, exc)) from None
    sock.set_inheritable(True)
    return sock


def _bind_failure(host: str, port: int, exc: OSError) -> str:
    other = 8090 if port != 8090 else 8091
    choose = (
        f"choose another port: make run PORT={other}, mpo serve --port {other} or MPO_PORT={other}"
    )
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use (another server?); {choose}"
    if exc.errno == errno.EACCES:
        return f"no permission to bind port {port} on {host}; {choose}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine; set --host or MPO_HOST"
    return f"cannot bind {host}:{port}: {exc.strerror or exc}"


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "log_level": "info",
        # our own log lines (logs.configure_logging) and our own access log
        "log_config": None,
        "access_log": False,
        "timeout_keep_alive": 5,
        # no "server: uvicorn" on every answer: it tells attackers what runs here
        "server_header": False,
        # httptools parses HTTP in C (about 10 % more ingest per CPU second), and each
        # small answer leaves in one write (see api/coalesce.py). The asyncio loop is
        # kept: under uvloop some polls stalled for close to a second at 200 connections
        # in bench_poll.py.
        "http": CoalescingHttpToolsProtocol,
        "loop": "asyncio",
    }


class ServerProcess:
    """Serves ``app`` on ``sock`` until SIGTERM or SIGINT, then stops gracefully.

    Create it before the start-up work: from then on a signal raises
    :class:`StopRequested` in the main thread instead of killing the process.
    """

    def __init__(self, *, settings: Settings, sock: socket.socket) -> None:
        self.settings = settings
        self.sock = sock
        self._services: Services | None = None
        self._server: uvicorn.Server | None = None
        self._stopping = False
        self._closing = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._closing:
            return
        if self._server is None:
            self._closing = True
            raise StopRequested(signal.Signals(signum).name)
        if self._stopping and self._services is not None:
            # uvicorn hands its signal on once it has stopped; a later one is the
            # operator asking again: jobs still running are released now
            self._services.runner.stop(release=True)
        self._server.should_exit = True

    def closing(self) -> None:
        """From now on signals change nothing: the process is closing its stores."""
        self._closing = True

    def run(self, app: FastAPI, services: Services, *, on_listening: Callable[[], None]) -> None:
        """Serve until a signal; returns once requests and background work are done."""
        self._services = services
        asyncio.run(self._serve(app, services, on_listening))

    async def _serve(
        self, app: FastAPI, services: Services, on_listening: Callable[[], None]
    ) -> None:
        config = uvicorn.Config(
            app,
            **_uvicorn_options(self.settings),
            timeout_graceful_shutdown=math.ceil(self.settings.shutdown_grace_seconds),
        )
        server = uvicorn.Server(config)
        self._server = server
        announce = asyncio.create_task(self._announce(server, on_listening))
        try:
            # uvicorn installs its own SIGINT/SIGTERM handlers while it serves, then
            # restores ours and hands the signal on to them (see _on_signal)
            await server.serve(sockets=[self.sock])
        finally:
            self._stopping = True
            announce.cancel()
            if server.force_exit:
                services.runner.stop(release=True)  # a second Ctrl+C: no more waiting
            # idempotent; does the work here when uvicorn skipped the app's shutdown
            # (a second Ctrl+C) or never started it
            await services.stop_background()

    async def _announce(self, server: uvicorn.Server, on_listening: Callable[[], None]) -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.02)
        on_listening()
