"""The status line of ``mpo serve``: what the system is doing, every few seconds.

One log line per ``status_interval_seconds`` from the ``mpo_realtime.status`` logger,
read from the same registry as ``GET /metrics``: events ingested per second since the
last line, how old the newest stored minute is, export jobs by status and HTTP requests
per second. In JSON logs the figures are fields of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

__all__ = ["Sample", "StatusLine", "report_status"]

log = logging.getLogger("mpo_realtime.status")


@dataclass(frozen=True)
class Sample:
    """Counters and gauges of one moment (``monotonic`` is ``time.monotonic()``)."""

    monotonic: float
    events: float
    requests: float
    freshness: float | None
    jobs: dict[str, float]

    @classmethod
    def read(cls, registry: CollectorRegistry) -> Sample:
        """Collect the registry once (this queries the stores: not on the event loop)."""
        events = requests = 0.0
        freshness: float | None = None
        jobs: dict[str, float] = {}
        for family in registry.collect():
            for sample in family.samples:
                if sample.name == "mpo_ingest_events_total":
                    events = sample.value
                elif sample.name == "mpo_http_requests_total":
                    requests += sample.value
                elif sample.name == "mpo_data_freshness_seconds":
                    freshness = sample.value
                elif sample.name == "mpo_export_jobs":
                    jobs[sample.labels["status"]] = sample.value
        return cls(time.monotonic(), events, requests, freshness, jobs)


@dataclass(frozen=True)
class StatusLine:
    """The change between two samples, as a sentence and as fields."""

    events_per_second: float
    requests_per_second: float
    freshness_seconds: float | None
    jobs: dict[str, int]

    @classmethod
    def between(cls, before: Sample, after: Sample) -> StatusLine:
        elapsed = max(after.monotonic - before.monotonic, 1e-9)
        return cls(
            events_per_second=(after.events - before.events) / elapsed,
            requests_per_second=(after.requests - before.requests) / elapsed,
            freshness_seconds=after.freshness,
            jobs={status: int(count) for status, count in after.jobs.items()},
        )

    def message(self) -> str:
        if self.freshness_seconds is None:
            fresh = "no data yet"
        else:
            fresh = f"newest data {_duration(self.freshness_seconds)} old"
        jobs = ", ".join(
            f"{self.jobs.get(status, 0)} {word}"
            for status, word in (("Pending", "pending"), ("Done", "done"), ("Failure", "failed"))
        )
        return (
            f"ingest {self.events_per_second:,.0f} events/s, {fresh}, "
            f"exports {jobs}, HTTP {self.requests_per_second:,.1f} requests/s"
        )

    def fields(self) -> dict[str, object]:
        return {
            "eventsPerSecond": round(self.events_per_second, 1),
            "requestsPerSecond": round(self.requests_per_second, 2),
            "freshnessSeconds": (
                None if self.freshness_seconds is None else round(self.freshness_seconds, 1)
            ),
            "exports": self.jobs,
        }


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


async def _read(registry: CollectorRegistry) -> Sample:
    reading = asyncio.ensure_future(asyncio.to_thread(Sample.read, registry))
    try:
        return await asyncio.shield(reading)
    except asyncio.CancelledError:
        # a graceful stop: let the read that queries the stores end before they close
        with contextlib.suppress(Exception):
            await reading
        raise


async def report_status(registry: CollectorRegistry, *, interval: float) -> None:
    """Log a :class:`StatusLine` every ``interval`` seconds until cancelled."""
    before: Sample | None = None
    while True:
        try:
            after = await _read(registry)
        except Exception:
            log.exception("status line: reading the metrics failed")
        else:
            if before is not None:
                line = StatusLine.between(before, after)
                log.info(line.message(), extra=line.fields())
            before = after
        await asyncio.sleep(interval)
