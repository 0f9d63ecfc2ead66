"""uvicorn's httptools protocol with the limits of a public server, and one write per answer.

uvicorn (0.54) has no option for what an exposed server needs below the application:
it accepts request heads of any size (httptools gathers a header value in memory until
its end), waits forever for a head sent a byte at a time, and, when a client pipelines
requests without reading the answers, parses and queues every one of them. This
subclass adds, per connection:

- a head size limit: a request line and headers over ``max_header_bytes`` get 431 and
  the connection is closed. Bytes are handed to the parser in pieces, so no more than
  the limit (plus one piece, 4 KiB, or 64 KiB right behind a body) is ever held;
- a head deadline: a head not complete ``header_timeout`` seconds after its first byte
  (or after the connection opened, for its first request) gets 408 and a close; a
  connection that never sends anything is closed silently;
- a pipeline bound: once ``max_pipelined`` requests wait behind the one being answered,
  the rest of what was read is held unparsed and the socket is no longer read, until
  answers go out. A client that does not read its answers fills its socket buffer, the
  transport's high-water mark stops the answers, and nothing more is read from it.

Bodies are bounded elsewhere, without internals: each route reads its body within a
size limit and a deadline (``api/body.py``, 413 and 408), and an answer sent before the
body was read closes the connection (``api/edge.py``): here, with a lingering close (the
rest of the body is read and dropped for a while), so that the client gets the answer
rather than a reset.

This is the one module that relies on uvicorn's internals (the protocol's parser
callbacks, ``pipeline``, ``flow``, ``cycle``). :func:`check_uvicorn` fails loudly when
one of them changes; ``mpo serve`` runs it at start-up and a test runs it too, and
``pyproject.toml`` caps uvicorn's version.
"""

from __future__ import annotations

import asyncio
import http
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
import uvicorn
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from mpo_realtime.api.coalesce import CoalescingTransport
from mpo_realtime.api.errors import new_trace_id, problem_json
from mpo_realtime.domain.errors import ErrorCode, Problem

__all__ = ["EdgeLimits", "EdgeHttpToolsProtocol", "Refusal", "check_uvicorn", "protocol_class"]

#: bytes handed to the parser at once outside a body: bounds what one call can parse
HEAD_PIECE = 4096
#: bytes handed to the parser at once inside a body
BODY_PIECE = 64 * 1024

#: after a refusal, what the client still sends is read and dropped this long before the
#: close, so that the answer is not lost to a reset (a "lingering close", as nginx's)
LINGER_SECONDS = 2.0

#: called for every answer the protocol gives itself: (status, seconds, trace id)
Refusal = Callable[[int, float, str], None]


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """Per-connection limits of :class:`EdgeHttpToolsProtocol`, and who hears of the
    answers it gives itself (metrics, access log)."""

    max_header_bytes: int = 32 * 1024
    header_timeout: float = 10.0
    max_pipelined: int = 16
    on_refusal: Refusal | None = None


class EdgeHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with the limits above, over a :class:`CoalescingTransport`.

    Use :func:`protocol_class` to get a subclass carrying its limits: uvicorn builds
    one protocol per connection from the class it is given.
    """

    limits: ClassVar[EdgeLimits] = EdgeLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held = b""
        self._in_head = False
        self._in_body = False
        self._head_bytes = 0
        self._head_started = 0.0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._refusal: tuple[int, ErrorCode, str] | None = None

    # Connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_LingeringTransport(transport, self.loop, self))
        self._head_started = self.loop.time()
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._held = b""
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._held:
            data, self._held = self._held + data, b""
        self._feed(data)
        # A head that arrived whole needs no timer: one is armed only for a head still
        # incomplete once everything received so far is parsed.
        if self._in_head and self._head_timer is None and not self._refused:
            self._arm_head_timer()

    def _feed(self, data: bytes) -> None:
        """Parse ``data`` piece by piece, holding the rest while the pipeline is full."""
        view = memoryview(data)
        offset, end = 0, len(data)
        limits = self.limits
        while offset < end:
            if self.parser is None or self.transport.is_closing():
                return
            if len(self.pipeline) >= limits.max_pipelined:
                self._held = bytes(view[offset:])
                self.flow.pause_reading()
                return
            if self._in_body:
                size = BODY_PIECE
            elif self._in_head:
                size = min(HEAD_PIECE, limits.max_header_bytes - self._head_bytes + 1)
            else:
                size = HEAD_PIECE
            piece = view[offset : offset + size]
            offset += len(piece)
            was_in_head = self._in_head
            super().data_received(piece)  # type: ignore[arg-type]
            if was_in_head and self._in_head:
                self._head_bytes += len(piece)
            if self._in_head and self._head_bytes > limits.max_header_bytes:
                self._refuse(
                    431,
                    ErrorCode.PAYLOAD_TOO_LARGE,
                    f"the request line and headers exceed {limits.max_header_bytes} bytes",
                )
                return

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refused:
            self._send_refusal()
        elif self._held and not self.transport.is_closing():
            held, self._held = self._held, b""
            self.data_received(held)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        if self._head_timer is None:  # else the connection's first deadline still runs
            self._head_started = self.loop.time()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._in_head = False
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()

    # The head deadline

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_at(
            self._head_started + self.limits.header_timeout, self._head_timeout
        )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self._refused or self.transport.is_closing():
            return
        if self._held:
            # the head waits on us (pipeline full), not on the client
            self._head_started = self.loop.time()
            self._arm_head_timer()
        elif self._in_head:
            self._refuse(
                408,
                ErrorCode.REQUEST_TIMEOUT,
                f"the request line and headers were not received within "
                f"{self.limits.header_timeout:g} s",
            )
        elif self.cycle is None or self.cycle.response_complete:
            self.transport.close()  # opened, never used

    def body_arriving(self) -> bool:
        """True while the current request's body is still being received."""
        return self._in_body

    def linger(self, transport: _LingeringTransport) -> None:
        """An answer went out before the request's body was read whole: stop parsing,
        read and drop what still arrives, and close after ``LINGER_SECONDS`` (or when
        the client closes first). Closing at once, with the body's rest unread, would
        make the kernel reset the connection, and a reset can destroy the answer in the
        client's receive buffer before the client reads it (an early 413 seen as
        "connection reset")."""
        self._cancel_head_timer()
        self._refused = True
        self._held = b""
        self.flow.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, transport.close_now)

    def _refuse(self, status: int, code: ErrorCode, detail: str) -> None:
        """Stop reading requests; answer ``status`` in the error envelope once the
        answers to earlier requests of this connection are out, then close."""
        self._cancel_head_timer()
        self._held = b""
        self._refused = True
        self._refusal = (status, code, detail)
        self._send_refusal()

    def _send_refusal(self) -> None:
        if self._refusal is None or self.transport.is_closing():
            return
        if self.pipeline or (self.cycle is not None and not self.cycle.response_complete):
            return  # on_response_complete calls again
        status, code, detail = self._refusal
        self._refusal = None
        trace = new_trace_id()
        problem = problem_json(Problem(code, detail), trace)
        body = orjson.dumps({"warnings": [], "errors": [problem]})
        head = (
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"x-trace-id: {trace}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
        if self.limits.on_refusal is not None:
            self.limits.on_refusal(status, self.loop.time() - self._head_started, trace)


class _LingeringTransport(CoalescingTransport):
    """The connection's transport: a close asked for while a request body is still
    arriving becomes a lingering close (:meth:`EdgeHttpToolsProtocol.linger`)."""

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        protocol: EdgeHttpToolsProtocol,
    ) -> None:
        super().__init__(transport, loop)
        self._protocol = protocol
        self._lingering = False

    def close(self) -> None:
        if self._lingering:
            return
        if self._protocol.body_arriving() and not super().is_closing():
            self._lingering = True
            self._protocol.linger(self)
            return
        super().close()

    def close_now(self) -> None:
        super().close()

    def is_closing(self) -> bool:
        return self._lingering or super().is_closing()


def protocol_class(limits: EdgeLimits) -> type[HttpToolsProtocol]:
    """A protocol class for uvicorn's ``http=`` option, with these limits."""
    return type("EdgeHttpToolsProtocol", (EdgeHttpToolsProtocol,), {"limits": limits})


#: uvicorn methods overridden or called by the subclass
_METHODS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_url",
    "on_header",
    "on_headers_complete",
    "on_message_complete",
    "on_response_complete",
)
#: uvicorn attributes of a protocol instance read by the subclass
_ATTRIBUTES = ("parser", "pipeline", "flow", "cycle", "transport", "loop")


async def _noop_app(scope: Any, receive: Any, send: Any) -> None:
    return None


def check_uvicorn() -> None:
    """Fail with a clear message if uvicorn lacks a name :class:`EdgeHttpToolsProtocol`
    relies on (run at start-up by ``api/server.py`` and by a test)."""
    problems = [f"method {name}" for name in _METHODS if name not in vars(HttpToolsProtocol)]
    loop = asyncio.new_event_loop()
    try:
        config = uvicorn.Config(_noop_app, log_config=None, http="httptools")
        protocol = HttpToolsProtocol(
            config=config, server_state=ServerState(), app_state={}, _loop=loop
        )
        problems += [f"attribute {name}" for name in _ATTRIBUTES if not hasattr(protocol, name)]
        for name in ("pause_reading", "resume_reading"):
            if not hasattr(FlowControl, name):
                problems.append(f"FlowControl.{name}")
        if "response_complete" not in RequestResponseCycle.__init__.__code__.co_names:
            problems.append("RequestResponseCycle.response_complete")
    except Exception as exc:  # any change in how the protocol is built is a change too
        problems.append(f"building a protocol failed: {exc!r}")
    finally:
        loop.close()
    if problems:
        raise RuntimeError(
            f"uvicorn {uvicorn.__version__} lacks what api/protocol.py relies on "
            f"({', '.join(problems)}): pin the uvicorn version in pyproject.toml that "
            "passes tests/unit/test_protocol.py, or adapt api/protocol.py"
        )
