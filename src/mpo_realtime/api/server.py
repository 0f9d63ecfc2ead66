"""How ``mpo serve`` runs the app under uvicorn: every server option in one place."""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI

from mpo_realtime.api.edge import refusal_recorder
from mpo_realtime.api.protocol import EdgeLimits, check_uvicorn, protocol_class
from mpo_realtime.settings import Settings

__all__ = ["server_config", "server_options"]


def server_options(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run(app, **...)`` (or ``uvicorn.Config``).

    Fails at once if uvicorn lacks what ``api/protocol.py`` relies on.
    """
    check_uvicorn()
    limits = EdgeLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_read_timeout_seconds,
        max_pipelined=settings.max_pipelined_requests,
        on_refusal=refusal_recorder(app),
    )
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": "info",
        # JSON lines from configure_logging; the app writes its own access log
        "log_config": None,
        "access_log": False,
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        # no "server: uvicorn" on every answer: it tells attackers what runs here
        "server_header": False,
        # httptools parses HTTP in C (about 10 % more ingest per CPU second), under the
        # limits of api/protocol.py, and each small answer leaves in one write
        # (api/coalesce.py). The asyncio loop is kept: under uvloop some polls stalled
        # for close to a second at 200 connections in bench_poll.py.
        "http": protocol_class(limits),
        "loop": "asyncio",
    }


def server_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    """``server_options`` as a ``uvicorn.Config``, for ``uvicorn.Server(...)``."""
    return uvicorn.Config(app, **server_options(app, settings))
