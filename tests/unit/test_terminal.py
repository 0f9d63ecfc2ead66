"""What a person at the terminal reads: log lines, the status line, back-fill sentences."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from mpo_realtime.demo import Backfill
from mpo_realtime.logs import TextFormatter
from mpo_realtime.status import Sample, StatusLine, report_status

NOW = datetime(2026, 11, 29, 14, 8, 30, tzinfo=UTC)


def _record(level: int, message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("mpo_realtime.access", level, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_text_log_line_is_short_and_names_the_trace_of_a_problem() -> None:
    plain = TextFormatter()
    line = plain.format(_record(logging.INFO, "GET /health 200 0.4ms", traceId="abc"))
    assert line.endswith(" INFO  access   GET /health 200 0.4ms")
    assert len(line.split(" ", 1)[0]) == len("14:03:12")
    warning = plain.format(_record(logging.WARNING, "POST /x 500 3ms", traceId="abc"))
    assert warning.endswith("WARNING access   POST /x 500 3ms (trace abc)")
    coloured = TextFormatter(colour=True).format(_record(logging.ERROR, "boom"))
    assert "\x1b[31mERROR\x1b[0m" in coloured


def test_status_line_from_two_samples() -> None:
    before = Sample(100.0, events=1_000, requests=10, freshness=40.0, jobs={})
    after = Sample(
        110.0,
        events=3_010,
        requests=14,
        freshness=42.5,
        jobs={"Pending": 1, "Done": 7, "Failure": 0, "Expired": 2},
    )
    line = StatusLine.between(before, after)
    assert line.message() == (
        "ingest 201 events/s, newest data 42 s old, exports 1 pending, 7 done, 0 failed, "
        "HTTP 0.4 requests/s"
    )
    assert line.fields() == {
        "eventsPerSecond": 201.0,
        "requestsPerSecond": 0.4,
        "freshnessSeconds": 42.5,
        "exports": {"Pending": 1, "Done": 7, "Failure": 0, "Expired": 2},
    }
    empty = StatusLine.between(before, Sample(101.0, 1_000, 10, None, {}))
    assert empty.message().startswith("ingest 0 events/s, no data yet, exports 0 pending")


def test_status_sample_reads_the_metrics_registry() -> None:
    registry = CollectorRegistry()
    Counter("mpo_ingest_events", "", registry=registry).inc(5)
    requests = Counter("mpo_http_requests", "", ["status"], registry=registry)
    requests.labels("200").inc(3)
    requests.labels("404").inc(1)
    Gauge("mpo_data_freshness_seconds", "", registry=registry).set(12)
    Gauge("mpo_export_jobs", "", ["status"], registry=registry).labels("Done").set(2)
    sample = Sample.read(registry)
    assert (sample.events, sample.requests, sample.freshness, sample.jobs) == (
        5,
        4,
        12,
        {"Done": 2},
    )


def test_backfill_sentences_say_what_the_store_had_and_what_was_added() -> None:
    end = NOW.replace(second=0)
    fresh = Backfill(None, end - timedelta(hours=3), end, 1_267_014, 4.21)
    assert fresh.describe(NOW) == (
        "back-filled 3 hours of simulated traffic (11:08 to 14:08 UTC): "
        "1,267,014 roll-up rows in 4.2s"
    )
    latest = end - timedelta(minutes=4)
    gap = Backfill(latest, latest + timedelta(minutes=1), end, 5_120, 0.12)
    assert gap.describe(NOW) == (
        "the store has data up to 14:04 UTC (3 min ago); "
        "back-filled 14:05 to 14:08 UTC: 5,120 roll-up rows in 0.1s"
    )
    current = Backfill(end, end + timedelta(minutes=1), end, 0, 0.0)
    assert (
        current.describe(NOW)
        == "the store has data up to 14:08 UTC (0 s ago): nothing to back-fill"
    )
    old = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    stale = Backfill(old, end - timedelta(hours=3), end, 10, 1.0)
    assert stale.describe(NOW).startswith(
        "the store has data up to 2026-11-20 09:00 UTC (9 days ago)"
    )


def test_report_status_logs_lines_until_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    events = Counter("mpo_ingest_events", "", registry=registry)

    async def scenario() -> None:
        task = asyncio.create_task(report_status(registry, interval=0.01))
        deadline = time.monotonic() + 30
        while not caplog.records and time.monotonic() < deadline:
            events.inc(10)
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.INFO, logger="mpo_realtime.status"):
        asyncio.run(scenario())
    record = caplog.records[0]
    assert record.name == "mpo_realtime.status"
    assert record.getMessage().startswith("ingest ")
    assert record.__dict__["eventsPerSecond"] >= 0
