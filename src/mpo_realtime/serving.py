"""The ``mpo serve`` process: the port first, then uvicorn, then a graceful stop.

:func:`run` is the whole of it:

1. :func:`bind` takes the port before any start-up work, so that a busy port is a
   one-line error and nothing else has started (no store opened, no thread to hang on).
2. :class:`ServerProcess` serves the app on that socket with ``uvicorn.Server`` and
   calls ``on_listening`` once connections are accepted.
3. On SIGTERM or SIGINT (Ctrl+C): uvicorn stops accepting and lets in-flight requests
   finish (``shutdown_grace_seconds``), then the background work stops
   (:meth:`Services.stop_background`: runners finish or release their jobs), the
   stores close, the last log lines are written, and the process exits 0. A second
   signal while stopping releases running export jobs at once. A signal during start-up
   (the demo back-fill, say) raises :class:`StopRequested`, which ends start-up the same
   way.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import FastAPI

from mpo_realtime import demo as demo_mod
from mpo_realtime.api.app import BackgroundTask, create_app
from mpo_realtime.api.server import server_options
from mpo_realtime.deployment import signing_key_warning
from mpo_realtime.domain.errors import MpoError
from mpo_realtime.logs import configure_logging, flush_logs
from mpo_realtime.memory import prepare_allocators
from mpo_realtime.services import Services
from mpo_realtime.settings import Settings
from mpo_realtime.status import report_status
from mpo_realtime.store.simulator import Simulator, World

__all__ = ["PortUnavailable", "ServerProcess", "StopRequested", "bind", "run"]

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
            **server_options(app, self.settings),
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


def run(
    settings: Settings,
    *,
    demo: bool = False,
    demo_hours: float = 3.0,
    demo_rate: int = 200,
    runners: bool = True,
    listen_fd: int | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """``mpo serve``: bind, open, (back-fill), serve until a signal, close.

    ``say`` takes the lines meant for the person who started the process (the back-fill,
    the address, the quick start). Raises :class:`PortUnavailable` before anything else
    when the port cannot be bound; other start-up failures are :class:`MpoError`.
    ``runners=False`` serves the API only (``mpo serve --no-runner``: workers run the
    export jobs and the sweeper). ``listen_fd`` is a listening socket inherited from
    ``mpo serve --processes N`` (see :mod:`mpo_realtime.supervisor`), served instead of
    binding one; such a process also stops when its supervisor is gone.
    """
    # before the stores and the server start their threads, each of which would get an
    # arena of its own (docs/operations.md, "Memory, spilling and large exports")
    prepare_allocators(settings.malloc_arena_max)
    configure_logging(logging.INFO, log_format=settings.log_format)
    if listen_fd is None:
        sock = bind(settings.host, settings.port)
    else:
        sock = socket.socket(fileno=listen_fd)
        _stop_with_parent()
    warning = signing_key_warning(settings)
    if warning is not None:
        log.warning(warning)
    process = ServerProcess(settings=settings, sock=sock)
    try:
        _open_and_serve(
            settings,
            process,
            demo=demo,
            hours=demo_hours,
            rate=demo_rate,
            runners=runners,
            say=say if listen_fd is None else _quiet,
        )
    except StopRequested as stop:
        log.warning("stopped (%s) during start-up", stop)
    finally:
        process.closing()
        sock.close()
        flush_logs()


def _open_and_serve(
    settings: Settings,
    process: ServerProcess,
    *,
    demo: bool,
    hours: float,
    rate: int,
    runners: bool,
    say: Callable[[str], None],
) -> None:
    services = Services.open(settings)
    try:
        tasks: list[BackgroundTask] = []
        if settings.status_interval_seconds > 0:

            async def status(active: Services) -> None:
                interval = settings.status_interval_seconds
                await report_status(active.metrics.registry, interval=interval)

            tasks.append(status)
        quick_start = None
        if demo:
            world = World.generate(seed=7)
            simulator = Simulator(world, seed=7)
            say(f"demo: back-filling up to {demo_mod.hours(hours)} of simulated traffic")
            now = datetime.now(UTC)
            say(demo_mod.backfill(services, simulator, hours=hours, now=now).describe(now))
            demo_mod.ensure_demo_client(services, world)
            quick_start = demo_mod.quick_start(
                port=settings.port,
                host=settings.host,
                data_dir=settings.data_dir,
                mpo=".venv/bin/mpo" if Path(".venv/bin/mpo").exists() else "mpo",
            )

            async def traffic(active: Services) -> None:
                await demo_mod.live_traffic(active, simulator, events_per_second=rate)

            tasks.append(traffic)
        app = create_app(settings, services=services, tasks=tasks, runners=runners)
        # What exists now lives as long as the process: keep it out of the cyclic
        # collector, whose full passes over it stopped every request (137 ms seen with
        # 150k objects under 200 polling clients; 5 ms once frozen).
        gc.collect()
        gc.freeze()
        process.run(app, services, on_listening=lambda: _listening(settings, quick_start, say))
    finally:
        process.closing()
        services.close()
    log.info("stopped: requests answered, stores closed")


def _quiet(text: str) -> None:
    """One of several processes: the supervisor speaks to the terminal."""


def _stop_with_parent() -> None:
    """SIGTERM this process when the process that started it is gone (even SIGKILLed):
    an API process of ``mpo serve --processes N`` never outlives its supervisor."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        log.warning("supervisor %d is gone: stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _listening(settings: Settings, quick_start: str | None, say: Callable[[str], None]) -> None:
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    base = f"http://{host}:{settings.port}"
    say(f"listening on {base} (reports console: {base}/console, API browser: {base}/docs)")
    say("Ctrl+C stops")
    if quick_start is not None:
        say(
            f"\nTry it: the demo client is in {settings.demo_client_path}; "
            "paste this into another terminal, in this directory:\n"
        )
        say(quick_start)
        say(
            f"\nOr open {base}/console in a browser and sign in with the demo client's "
            f"client_id and client_secret (from {settings.demo_client_path})."
        )
