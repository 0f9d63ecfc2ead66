"""What every HTTP answer gets: a trace id, rate-limit headers, metrics, an access line.

One plain ASGI middleware, outermost of the app's own: each layer wraps ``send`` once
per request, and on the poll path those wrappers were a fifth of the time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mpo_realtime.api.errors import new_trace_id
from mpo_realtime.api.metrics import ACCESS_LOGGER, METHODS, UNMATCHED
from mpo_realtime.metrics import Metrics

__all__ = ["SLOW_SECONDS", "EdgeMiddleware", "refusal_recorder"]

_TRACE_HEADER = b"x-trace-id"
_ACCESS_FORMAT = "%s %s %d %.1fms"
#: with ``MPO_ACCESS_LOG=problems``, answers slower than this are logged too
SLOW_SECONDS = 1.0


def _read_head(scope: Scope) -> tuple[str | None, bool]:
    """The caller's ``X-Trace-Id`` if it is a sane token (alphanumeric, ≤ 64 chars), and
    whether the request announces a body (a non-zero ``Content-Length`` or chunks)."""
    trace = None
    body = False
    for name, value in scope["headers"]:
        if name == _TRACE_HEADER:
            text = value.decode("latin-1")
            trace = text if text.isalnum() and len(text) <= 64 else None
        elif name == b"content-length":
            body = value.strip() not in (b"0", b"")
        elif name == b"transfer-encoding":
            body = True
    return trace, body


class EdgeMiddleware:
    """Trace id in (``X-Trace-Id``, or a new one) and out; ``x-ratelimit-*`` headers.

    The trace id is ``scope["state"]["trace_id"]`` for the handlers and error bodies;
    the headers of the budget a request spent (``scope["state"]["ratelimit"]``) go on
    every answer, errors included. Once answered, the request is counted and timed by
    route template (read from ``scope["route"]``) and gets one access-log line with
    its trace id, as ``MPO_ACCESS_LOG`` says (every request, only problems, or none).
    A request whose handler raised before answering counts as a 500, the status the
    outer error handler sends.

    Two HTTP rules are kept here for every route:

    - ``HEAD`` is answered wherever ``GET`` is (RFC 9110 section 9.3.2): the app sees
      a ``GET`` and the answer leaves without its body (files are not even read: the
      app is offered the ``http.response.pathsend`` extension, which sends a path).
    - An answer sent before the request's body was read whole (an early 401, 413 or
      415, or a route that reads no body) closes the connection after it, so that an
      unread or trickled body never holds the connection or is read for nothing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.access = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming, has_body = _read_head(scope)
        trace = incoming or new_trace_id()
        state = scope.setdefault("state", {})
        state["trace_id"] = trace
        status = 500
        head = scope["method"] == "HEAD"
        body_done = not has_body

        async def send_with_edge(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                headers.append((_TRACE_HEADER, trace.encode()))
                decision = state.get("ratelimit")
                if decision is not None:
                    headers += decision.raw_headers()
                if not body_done:
                    headers.append((b"connection", b"close"))
            elif head:
                if kind == "http.response.pathsend":
                    message = {"type": "http.response.body", "body": b""}
                elif message.get("body"):
                    message = {**message, "body": b""}
            await send(message)

        inner_receive = receive
        if has_body:

            async def inner_receive() -> Message:
                nonlocal body_done
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    body_done = True
                return message

        inner = scope
        if head:
            extensions = {**scope.get("extensions", {}), "http.response.pathsend": {}}
            inner = {**scope, "method": "GET", "extensions": extensions}
        try:
            await self.app(inner, inner_receive, send_with_edge)
        finally:
            if inner is not scope and "route" in inner:
                scope["route"] = inner["route"]
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


def refusal_recorder(app: Any) -> Callable[[int, float, str], None]:
    """What records an answer the HTTP protocol gave itself (431, 408 on a slow head):
    counted under ``route="unmatched"``, method ``OTHER``, with an access line."""
    access = logging.getLogger(ACCESS_LOGGER)

    def record(status: int, seconds: float, trace: str) -> None:
        services = getattr(app.state, "services", None)
        if services is not None:
            services.metrics.observe_request("OTHER", UNMATCHED, status, seconds)
            if services.settings.access_log == "off":
                return
        millis = round(seconds * 1000, 2)
        access.info(
            "request refused before routing: %d %.1fms",
            status,
            millis,
            extra={
                "method": "OTHER",
                "route": UNMATCHED,
                "status": status,
                "durationMs": millis,
                "traceId": trace,
            },
        )

    return record
