"""Prometheus metrics: one :class:`Metrics` per process, no global registry.

:class:`Metrics` owns a ``CollectorRegistry``; ``Services.open`` builds it and wires its
hooks (finished jobs, stored ingest batches, refusals by a rate limit). Counts that live
in the stores (jobs by status, data freshness) are read at scrape time by a collector,
so they cost nothing between scrapes and agree with the stores whichever process changed
them. The HTTP layer times each request and counts it here by route template (never the
raw path, so label values stay bounded), and serves the scrape (``api/metrics.py``).
Nothing here knows of HTTP frameworks: the composition root builds it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from mpo_realtime.domain.errors import StoreError
from mpo_realtime.domain.jobs import Job, JobStatus
from mpo_realtime.exports.jobstore import SqlJobStore
from mpo_realtime.store.base import EventStore

__all__ = ["Metrics"]

log = logging.getLogger(__name__)

_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

_JOBS_BY_STATUS = ("mpo_export_jobs", "Export jobs in the job store, by status.")
_FRESHNESS = (
    "mpo_data_freshness_seconds",
    "Now minus the newest minute in the event store (includes the 0-60 s bucket width).",
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _StoreCollector:
    """Reads jobs by status and data freshness from the stores at each scrape."""

    def __init__(
        self, *, jobs: SqlJobStore, events: EventStore, clock: Callable[[], datetime]
    ) -> None:
        self.jobs = jobs
        self.events = events
        self.clock = clock

    def describe(self) -> Iterable[Metric]:
        # Declared without touching the stores: registration must not query them.
        return [
            GaugeMetricFamily(*_JOBS_BY_STATUS, labels=["status"]),
            GaugeMetricFamily(*_FRESHNESS),
        ]

    def collect(self) -> Iterable[Metric]:
        # A store that fails leaves its metric out of this scrape instead of failing it.
        try:
            counts = self.jobs.status_counts()
        except StoreError as exc:
            log.warning("metrics: cannot count jobs: %s", exc)
        else:
            by_status = GaugeMetricFamily(*_JOBS_BY_STATUS, labels=["status"])
            for status, count in counts.items():
                by_status.add_metric([status.value], count)
            yield by_status
        try:
            latest = self.events.latest_minute()
        except StoreError as exc:
            log.warning("metrics: cannot read the newest minute: %s", exc)
            return
        freshness = GaugeMetricFamily(*_FRESHNESS)
        if latest is not None:
            if latest.tzinfo is None:
                latest = latest.replace(tzinfo=UTC)
            freshness.add_metric([], (self.clock() - latest).total_seconds())
        yield freshness


class Metrics:
    """Every metric of one process, in a registry of its own.

    Call :meth:`watch` once the stores exist; the other methods are the hooks the
    runner, the event store, the HTTP middleware and the rate limiter call. All are
    thread-safe and cheap.
    """

    def __init__(self, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.registry = CollectorRegistry()
        self._clock = clock
        r = self.registry
        ProcessCollector(registry=r)
        self._requests = Counter(
            "mpo_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._request_seconds = Histogram(
            "mpo_http_request_duration_seconds",
            "Time to answer an HTTP request (body sent), by method and route template.",
            ["method", "route"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        self._job_seconds = Histogram(
            "mpo_export_job_seconds",
            "Export job latency from creation to its end (Done or Failure), by status.",
            ["status"],
            buckets=_JOB_BUCKETS,
            registry=r,
        )
        self._job_run_seconds = Histogram(
            "mpo_export_job_run_seconds",
            "Run time (query and write) of the attempt that produced a Done export.",
            buckets=_JOB_BUCKETS,
            registry=r,
        )
        self._rows = Counter("mpo_export_rows", "Rows written to Done exports.", registry=r)
        self._bytes = Counter("mpo_export_bytes", "Bytes written to Done exports.", registry=r)
        self._ingest_requests = Counter(
            "mpo_ingest_requests",
            "Ingest requests stored (duplicates and rejected requests excluded).",
            registry=r,
        )
        self._ingest_events = Counter(
            "mpo_ingest_events", "Events stored by ingestion (rate() gives events/s).", registry=r
        )
        self._rate_limited = Counter(
            "mpo_rate_limited",
            "Requests refused by a rate limit, by budget.",
            ["budget"],
            registry=r,
        )

    def watch(self, *, jobs: SqlJobStore, events: EventStore) -> None:
        """Report jobs by status and data freshness from these stores at each scrape."""
        self.registry.register(_StoreCollector(jobs=jobs, events=events, clock=self._clock))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered HTTP request; ``route`` is the template, never the raw path."""
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            # labels() validates and locks on each call; the label sets are few and fixed
            children = (
                self._requests.labels(method, route, str(status)),
                self._request_seconds.labels(method, route),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def job_finished(self, job: Job) -> None:
        """The runner's ``on_finished`` hook: a job reached Done or Failure."""
        if job.finished_at is not None:
            elapsed = (job.finished_at - job.created_at).total_seconds()
            self._job_seconds.labels(job.status.value).observe(max(0.0, elapsed))
        if job.status is JobStatus.DONE:
            if job.query_seconds is not None and job.write_seconds is not None:
                self._job_run_seconds.observe(job.query_seconds + job.write_seconds)
            self._rows.inc(job.row_count or 0)
            self._bytes.inc(job.byte_size or 0)

    def ingested(self, requests: int, events: int) -> None:
        """The event store's hook: ``requests`` holding ``events`` events were committed."""
        self._ingest_requests.inc(requests)
        self._ingest_events.inc(events)

    def rate_limited(self, budget: str) -> None:
        """A request was refused by the rate limit named ``budget`` (a fixed, small set)."""
        self._rate_limited.labels(budget).inc()

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (queries the stores: not on the loop)."""
        return generate_latest(self.registry)
