"""Structured logs: one JSON object per line, for ``mpo serve`` and anything it runs.

Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``; values
passed with ``extra=`` (``traceId``, the access log's ``method``, ``route``, ``status``,
``durationMs``...) become fields of their own, and a logged exception adds
``exception`` with its traceback text.
"""

from __future__ import annotations

import logging
import sys
import threading
from datetime import UTC, datetime
from typing import IO, Any

import orjson

__all__ = ["BufferedStreamHandler", "JsonFormatter", "configure_logging"]

#: attributes every LogRecord has; anything else on a record came in through ``extra=``
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    # uvicorn's coloured duplicate of the message
    "color_message",
}
_BASE = ("time", "level", "logger", "message")
_SKIP = _STANDARD | frozenset(_BASE)


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (orjson); never raises on odd extras."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__
        # one set difference in C finds the extras; most records have none
        if fields.keys() - _SKIP:
            for key, value in fields.items():
                if key not in _SKIP and not key.startswith("_"):
                    payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        try:
            line = orjson.dumps(payload, default=repr, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            # e.g. an integer beyond 64 bits: keep the line, with the odd values as text
            line = orjson.dumps({k: v if k in _BASE else repr(v) for k, v in payload.items()})
        return line.decode()


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A ``StreamHandler`` that does not flush after every line.

    Lines are flushed every ``interval`` seconds by a daemon thread, at once when a
    record of level WARNING or above is written (with everything before it), and at
    exit by ``logging.shutdown``. At thousands of requests a second a flush per access
    line is a write syscall per request, which cost a fifth of a poll's time here.
    """

    def __init__(self, stream: IO[str], *, interval: float = 0.25) -> None:
        super().__init__(stream)
        self.interval = interval
        self._stopping = threading.Event()
        self._flusher = threading.Thread(target=self._flush_regularly, name="log-flush")
        self._flusher.daemon = True
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING:
                self.stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def _flush_regularly(self) -> None:
        while not self._stopping.wait(self.interval):
            self.flush()

    def close(self) -> None:
        self._stopping.set()
        self.flush()
        super().close()


def configure_logging(level: int = logging.INFO, stream: IO[str] | None = None) -> None:
    """Send every logger (uvicorn's included) to ``stream`` as JSON lines.

    Without ``stream``: standard error, line by line on a terminal, else through a
    :class:`BufferedStreamHandler` (lines reach a file or pipe within a quarter second,
    warnings and errors at once). Replaces the root logger's handlers; meant for the
    process entry point only.
    """
    # The logging HOWTO's "Optimization" switches: no line prints thread or process
    # names, and gathering them for each record is a fifth of an access line's cost.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler: logging.Handler
    if stream is None and sys.stderr.isatty():
        handler = logging.StreamHandler(sys.stderr)
    else:
        # standard error is line buffered even when it is a file; this one is not
        out = stream or open(  # noqa: SIM115 - lives as long as the process
            sys.stderr.fileno(), "w", encoding="utf-8", buffering=1 << 16, closefd=False
        )
        handler = BufferedStreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, BufferedStreamHandler):
            old.close()  # its flusher thread stops with it
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers would print plain text; let the root handler write them
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
