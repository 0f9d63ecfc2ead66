"""What every HTTP answer gets: a trace id, rate-limit headers, metrics, an access line.

One plain ASGI middleware, outermost of the app's own: each layer wraps ``send`` once
per request, and on the poll path those wrappers were a fifth of the time.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mpo_realtime.api.errors import new_trace_id
from mpo_realtime.api.metrics import ACCESS_LOGGER, METHODS, UNMATCHED, Metrics

__all__ = ["SLOW_SECONDS", "EdgeMiddleware"]

_TRACE_HEADER = b"x-trace-id"
_ACCESS_FORMAT = "%s %s %d %.1fms"
#: with ``MPO_ACCESS_LOG=problems``, answers slower than this are logged too
SLOW_SECONDS = 1.0


def _incoming_trace(scope: Scope) -> str | None:
    """The caller's ``X-Trace-Id`` if it is a sane token (alphanumeric, ≤ 64 chars)."""
    for name, value in scope["headers"]:
        if name == _TRACE_HEADER:
            trace = value.decode("latin-1")
            return trace if trace.isalnum() and len(trace) <= 64 else None
    return None


class EdgeMiddleware:
    """Trace id in (``X-Trace-Id``, or a new one) and out; ``x-ratelimit-*`` headers.

    The trace id is ``scope["state"]["trace_id"]`` for the handlers and error bodies;
    the headers of the budget a request spent (``scope["state"]["ratelimit"]``) go on
    every answer, errors included. Once answered, the request is counted and timed by
    route template (read from ``scope["route"]``) and gets one access-log line with
    its trace id, as ``MPO_ACCESS_LOG`` says (every request, only problems, or none).
    A request whose handler raised before answering counts as a 500, the status the
    outer error handler sends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.access = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        trace = _incoming_trace(scope) or new_trace_id()
        state = scope.setdefault("state", {})
        state["trace_id"] = trace
        status = 500

        async def send_with_edge(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                headers.append((_TRACE_HEADER, trace.encode()))
                decision = state.get("ratelimit")
                if decision is not None:
                    headers += decision.raw_headers()
            await send(message)

        try:
            await self.app(scope, receive, send_with_edge)
        finally:
            self._record(scope, trace, status, time.perf_counter() - started)

    def _record(self, scope: Scope, trace: str, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or UNMATCHED
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        app = scope.get("app")
        services = getattr(app.state, "services", None) if app is not None else None
        if services is not None:
            metrics: Metrics = services.metrics
            metrics.observe_request(method, route, status, seconds)
        access = self.access
        policy = services.settings.access_log if services is not None else "all"
        if policy == "problems" and status < 400 and seconds < SLOW_SECONDS:
            return
        if policy != "off" and access.isEnabledFor(logging.INFO):
            millis = round(seconds * 1000, 2)
            fields = {
                "method": method,
                "route": route,
                "path": scope["path"],
                "status": status,
                "durationMs": millis,
                "traceId": trace,
            }
            # makeRecord + handle is what Logger.info does, minus walking the stack for
            # the caller's file and line: an access line's origin is always this one.
            record = access.makeRecord(
                access.name,
                logging.INFO,
                __file__,
                0,
                _ACCESS_FORMAT,
                (method, scope["path"], status, millis),
                None,
                extra=fields,
            )
            access.handle(record)
