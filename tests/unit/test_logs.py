"""The buffered log handler: lines reach the file late but surely, warnings at once."""

from __future__ import annotations

import json
import logging
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
        assert path.read_text() == ""  # not one write per line
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
