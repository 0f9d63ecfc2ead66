"""Logs for ``mpo serve`` and anything it runs: JSON lines, or short text on a terminal.

In JSON (:class:`JsonFormatter`), every line has ``time`` (UTC, ISO 8601), ``level``,
``logger`` and ``message``; values passed with ``extra=`` (``traceId``, the access log's
``method``, ``route``, ``status``, ``durationMs``...) become fields of their own, and a
logged exception adds ``exception`` with its traceback text. In text
(:class:`TextFormatter`), a line is the local time, the level, the logger's short name
and the message, for people watching.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from typing import IO, Any, Literal

import orjson

__all__ = [
    "BufferedStreamHandler",
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "configure_logging",
    "flush_logs",
]

#: ``auto``: text on a terminal, JSON otherwise
LogFormat = Literal["auto", "json", "text"]

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


class TextFormatter(logging.Formatter):
    """``14:03:12 INFO  access   GET /health 200 0.4ms``: for a person at a terminal.

    The time is local, the logger name loses its ``mpo_realtime.`` prefix, a trace ID
    follows a warning or an error, and ``colour`` marks warnings and errors in ANSI.
    """

    _COLOURS = {
        logging.WARNING: "\x1b[33m",
        logging.ERROR: "\x1b[31m",
        logging.CRITICAL: "\x1b[31m",
    }

    def __init__(self, *, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        clock = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        name = record.name.removeprefix("mpo_realtime.").removesuffix(".error")
        level = f"{record.levelname:<5}"
        if self.colour and record.levelno in self._COLOURS:
            level = f"{self._COLOURS[record.levelno]}{level}\x1b[0m"
        line = f"{clock} {level} {name:<8} {record.getMessage()}"
        trace = getattr(record, "traceId", None)
        if trace and record.levelno >= logging.WARNING:
            line += f" (trace {trace})"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return line


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A ``StreamHandler`` whose writes are made by a thread of its own, in batches.

    A record is formatted by the thread that logs it and kept in memory; a daemon thread
    writes and flushes what is kept every ``interval`` seconds. A record of level WARNING
    or above is written at once, with everything kept before it, by the thread that
    logs it; ``logging.shutdown`` writes the rest at exit. At thousands of requests a
    second a write per access line was a syscall per request (a fifth of a poll's time),
    and a write that waited on a slow disk stopped the event loop.

    At most ``max_pending`` lines are kept: past that, lines are dropped and counted,
    and the count is written as a WARNING line once the stream takes writes again.
    """

    def __init__(
        self, stream: IO[str], *, interval: float = 0.25, max_pending: int = 100_000
    ) -> None:
        super().__init__(stream)
        self.interval = interval
        self.max_pending = max_pending
        self._pending: list[str] = []
        self._dropped = 0
        self._pending_lock = threading.Lock()  # held for list operations only
        self._write_lock = threading.Lock()  # one writer at a time, never the logging thread's lock
        self._stopping = threading.Event()
        self._flusher = threading.Thread(target=self._flush_regularly, name="log-flush")
        self._flusher.daemon = True
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        with self._pending_lock:
            if len(self._pending) < self.max_pending:
                self._pending.append(line)
            else:
                self._dropped += 1
        if record.levelno >= logging.WARNING:
            self.flush()

    def flush(self) -> None:
        """Write and flush every kept line (in the calling thread)."""
        with self._write_lock:
            with self._pending_lock:
                lines, self._pending = self._pending, []
                dropped, self._dropped = self._dropped, 0
            if dropped:
                lines.append(self._dropped_line(dropped))
            if not lines or self.stream is None:
                return
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except Exception as exc:
                # the stream failed (closed pipe, full disk): the lines are lost; say so
                # where Python itself would, without raising into the logging thread
                with contextlib.suppress(Exception):
                    print(f"lost {len(lines)} log lines: {exc!r}", file=sys.__stderr__)

    def _dropped_line(self, dropped: int) -> str:
        record = logging.LogRecord(
            "mpo_realtime.logs",
            logging.WARNING,
            __file__,
            0,
            "dropped %d log lines: the log stream took them slower than they came",
            (dropped,),
            None,
        )
        return self.format(record) + self.terminator

    def _flush_regularly(self) -> None:
        while not self._stopping.wait(self.interval):
            self.flush()

    def close(self) -> None:
        self._stopping.set()
        self.flush()
        super().close()


def configure_logging(
    level: int = logging.INFO, stream: IO[str] | None = None, *, log_format: LogFormat = "auto"
) -> None:
    """Send every logger (uvicorn's included) to ``stream``, as JSON lines or as text.

    Without ``stream``: standard error, line by line on a terminal, else through a
    :class:`BufferedStreamHandler` (lines reach a file or pipe within a quarter second,
    warnings and errors at once). ``log_format="auto"`` writes text on a terminal and
    JSON elsewhere. Replaces the root logger's handlers; meant for the process entry
    point only.
    """
    # The logging HOWTO's "Optimization" switches: no line prints thread or process
    # names, and gathering them for each record is a fifth of an access line's cost.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler: logging.Handler
    terminal = stream is None and sys.stderr.isatty()
    if terminal:
        handler = logging.StreamHandler(sys.stderr)
    else:
        # standard error is line buffered even when it is a file; this one is not
        out = stream or open(  # noqa: SIM115 - lives as long as the process
            sys.stderr.fileno(), "w", encoding="utf-8", buffering=1 << 16, closefd=False
        )
        handler = BufferedStreamHandler(out)
    if log_format == "text" or (log_format == "auto" and terminal):
        colour = terminal and not os.environ.get("NO_COLOR")
        handler.setFormatter(TextFormatter(colour=colour))
    else:
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


def flush_logs() -> None:
    """Write every line the root logger's handlers still keep (before the process ends)."""
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
