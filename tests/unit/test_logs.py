"""The buffered log handler: lines reach the file late but surely, warnings at once."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from pathlib import Path

from mpo_realtime.logs import BufferedStreamHandler, JsonFormatter


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _logger(path: Path, interval: float) -> tuple[logging.Logger, BufferedStreamHandler]:
    stream = path.open("w", encoding="utf-8", buffering=1 << 16)
    handler = BufferedStreamHandler(stream, interval=interval)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"test.buffered.{path.name}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, handler


def test_info_lines_are_flushed_within_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "info.log"
    logger, handler = _logger(path, interval=0.2)
    try:
        logger.info("GET /x 200", extra={"traceId": "abc"})
        deadline = time.monotonic() + 5
        while not path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        [line] = _lines(path)
        assert (line["message"], line["traceId"]) == ("GET /x 200", "abc")
    finally:
        handler.close()


def test_a_warning_flushes_itself_and_what_came_before(tmp_path: Path) -> None:
    path = tmp_path / "warning.log"
    logger, handler = _logger(path, interval=3600)
    try:
        logger.info("first")
        assert path.read_text() == ""  # kept, not one write per line
        logger.warning("second")
        assert [line["message"] for line in _lines(path)] == ["first", "second"]
    finally:
        handler.close()


def test_close_flushes_and_stops_the_flusher(tmp_path: Path) -> None:
    path = tmp_path / "close.log"
    logger, handler = _logger(path, interval=3600)
    logger.info("kept")
    handler.close()
    assert [line["message"] for line in _lines(path)] == ["kept"]
    handler._flusher.join(timeout=5)
    assert not handler._flusher.is_alive()


class _StalledStream(io.StringIO):
    """A stream whose writes block until released, like a disk that stalls."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = threading.Event()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.writing.set()
        assert self.release.wait(timeout=30), "the test never released the stream"
        return super().write(text)


def test_a_slow_stream_does_not_hold_up_the_logging_thread() -> None:
    stream = _StalledStream()
    handler = BufferedStreamHandler(stream, interval=0.05)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.buffered.slow")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info("first")
        assert stream.writing.wait(timeout=10), "the flusher never wrote"
        # the flusher is now inside a write that will not return: logging goes on

        def log_lines() -> None:
            for n in range(100):
                logger.info("line %d", n)

        logging_thread = threading.Thread(target=log_lines)
        logging_thread.start()
        logging_thread.join(timeout=10)
        assert not logging_thread.is_alive(), "logging waited for the stalled write"
        stream.release.set()
    finally:
        stream.release.set()
        handler.close()
    messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
    assert messages == ["first"] + [f"line {n}" for n in range(100)]


def test_lines_past_the_cap_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "capped.log"
    stream = path.open("w", encoding="utf-8")
    handler = BufferedStreamHandler(stream, interval=3600, max_pending=3)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.buffered.capped")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for n in range(5):
        logger.info("line %d", n)
    handler.close()
    lines = _lines(path)
    assert [line["message"] for line in lines[:3]] == ["line 0", "line 1", "line 2"]
    assert lines[3]["level"] == "WARNING"
    assert str(lines[3]["message"]).startswith("dropped 2 log lines")
