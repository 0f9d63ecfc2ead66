"""The composition root: builds every part from :class:`Settings` and owns their lifetimes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mpo_realtime.domain.errors import StoreError
from mpo_realtime.exports.clients import ClientService, TokenSigner
from mpo_realtime.exports.files import LocalFileStore
from mpo_realtime.exports.ingestion import IngestService
from mpo_realtime.exports.jobstore import SqlJobStore
from mpo_realtime.exports.leader import ClusterLeader
from mpo_realtime.exports.ratelimit import Clock, RateLimiter
from mpo_realtime.exports.runner import JobRunner
from mpo_realtime.exports.service import ExportService
from mpo_realtime.exports.sweeper import Sweeper
from mpo_realtime.metrics import Metrics
from mpo_realtime.settings import Settings
from mpo_realtime.store.base import EventStore
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from mpo_realtime.store.ingest import Ingestor

__all__ = ["Services", "open_event_store"]

log = logging.getLogger(__name__)


def open_event_store(
    settings: Settings, *, on_stored: Callable[[int, int], None] | None = None
) -> EventStore:
    """The event store named by the URL: ``duckdb:///relative``, ``duckdb:////absolute``,
    or ``clickhouse://[user:password@]host:port/database`` (shared by many processes).

    ``on_stored(requests, events)`` is called after each committed ingest flush.
    """
    url = settings.resolved_event_store_url
    if url.startswith(("clickhouse://", "clickhouses://")):
        # imported here: the embedded default never loads the ClickHouse driver
        from mpo_realtime.store.clickhouse_store import ClickHouseEventStore

        return ClickHouseEventStore(url, on_stored=on_stored)
    if not url.startswith("duckdb:///"):
        raise StoreError(
            f"unsupported event store URL {url!r}: use duckdb:///path or "
            "clickhouse://host:port/database"
        )
    return DuckDBEventStore(
        url.removeprefix("duckdb:///"),
        flush_interval=settings.flush_interval_seconds,
        memory_limit=settings.event_store_memory_limit,
        on_stored=on_stored,
    )


def _refuse_lost_event_store(settings: Settings, jobs: SqlJobStore) -> None:
    """A missing event store beside a job store that has run exports was lost or moved:
    starting an empty one would silently answer every report with nothing."""
    if not settings.resolved_event_store_url.startswith("duckdb:///"):
        return  # a server store (ClickHouse) is checked by connecting to it
    path = Path(settings.resolved_event_store_url.removeprefix("duckdb:///"))
    if settings.allow_new_event_store or path.name == ":memory:" or path.exists():
        return
    if sum(jobs.status_counts().values()):
        raise StoreError(
            f"event store {path} is missing, but the job store has exports: was it moved "
            "or lost? Restore it, or set MPO_ALLOW_NEW_EVENT_STORE=true to start empty."
        )


def client_service(settings: Settings, store: SqlJobStore) -> ClientService:
    """Clients and access tokens over ``store``, signed with the configured key."""
    signer = TokenSigner(
        key=settings.resolved_signing_key(),
        ttl=timedelta(seconds=settings.token_ttl_seconds),
    )
    return ClientService(store=store, signer=signer)


@dataclass
class Services:
    """Every long-lived part of one process."""

    settings: Settings
    events: EventStore
    jobs: SqlJobStore
    files: LocalFileStore
    clients: ClientService
    exports: ExportService
    runner: JobRunner
    sweeper: Sweeper
    ingestor: Ingestor
    ingest: IngestService
    metrics: Metrics
    limiter: RateLimiter
    leader: ClusterLeader
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock = time.time) -> Services:
        """Every part, built from ``settings``; ``clock`` (epoch seconds) drives the rate
        limits, so that tests can start their budgets clear of a window's end."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        limiter = RateLimiter(
            settings.rate_limit_storage_url, namespace=settings.rate_limit_namespace, clock=clock
        )
        metrics = Metrics()
        jobs = SqlJobStore(settings.resolved_job_store_url)
        jobs.migrate()
        _refuse_lost_event_store(settings, jobs)
        events = open_event_store(settings, on_stored=metrics.ingested)
        metrics.watch(jobs=jobs, events=events)
        files = LocalFileStore(settings.resolved_export_dir)
        files.clean_partials()
        runner = JobRunner(
            jobs=jobs,
            events=events,
            files=files,
            export_ttl=timedelta(seconds=settings.export_ttl_seconds),
            lease=timedelta(seconds=settings.lease_seconds),
            on_finished=metrics.job_finished,
            max_running_per_client=settings.max_running_per_client or None,
            text_in_engine=settings.exports_text_in_engine,
        )
        exports = ExportService(
            jobs=jobs,
            events=events,
            files=files,
            cache_window=timedelta(seconds=settings.cache_window_seconds),
            settle=timedelta(seconds=settings.settle_seconds),
            retention=timedelta(days=settings.retention_days),
            max_ids=settings.max_ids_per_filter,
            on_created=runner.wake,
            limiter=limiter,
            exports_per_hour=settings.exports_per_hour,
        )
        ingestor = Ingestor(
            store=events,
            max_events=settings.ingest_max_events,
            retention_ms=settings.retention_days * 86_400_000,
        )
        return cls(
            settings=settings,
            events=events,
            jobs=jobs,
            files=files,
            clients=client_service(settings, jobs),
            exports=exports,
            runner=runner,
            sweeper=Sweeper(
                jobs=jobs,
                events=events,
                files=files,
                retention=timedelta(days=settings.retention_days),
            ),
            ingestor=ingestor,
            ingest=IngestService(ingestor),
            metrics=metrics,
            limiter=limiter,
            leader=ClusterLeader(jobs),
        )

    def start_background(self, *, runners: bool = True, sweeper: bool = True) -> None:
        """Start runner and sweeper tasks on the running event loop.

        The sweeper sweeps only while this process leads it (:class:`ClusterLeader`):
        one process of a cluster at a time.
        """
        self._stopping = asyncio.Event()
        if runners and self.settings.runner_concurrency > 0:
            coro = self.runner.serve(concurrency=self.settings.runner_concurrency)
            self._tasks.append(asyncio.create_task(coro, name="runners"))
        if sweeper:
            self._tasks.append(asyncio.create_task(self._sweep_forever(), name="sweeper"))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` until :meth:`stop_background` (which cancels it)."""
        self._tasks.append(asyncio.create_task(coro))

    async def _sweep_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                if await asyncio.to_thread(self.leader.lead):
                    await asyncio.to_thread(self.sweeper.sweep, datetime.now(UTC))
            except Exception:
                log.exception("sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.sweep_interval_seconds)

    async def stop_background(self) -> None:
        """Stop the background work gracefully; idempotent.

        Runners claim no more jobs and get ``shutdown_grace_seconds`` to finish the ones
        they run; jobs still running then are released (their leases end, so another
        runner claims them at once). A sweep under way ends first. Other tasks (demo
        traffic, the status line) are cancelled.
        """
        if not self._tasks:
            return
        tasks, self._tasks = self._tasks, []
        try:
            await self._stop_tasks(tasks)
        finally:
            # another process takes the sweeper over at its next period
            await asyncio.to_thread(self.leader.release)

    async def _stop_tasks(self, tasks: list[asyncio.Task[None]]) -> None:
        self._stopping.set()
        self.runner.stop()
        owned = [t for t in tasks if t.get_name() in ("runners", "sweeper")]
        for task in tasks:
            if task not in owned:
                task.cancel()
        grace = self.settings.shutdown_grace_seconds
        _, late = await asyncio.wait(tasks, timeout=grace) if tasks else (set(), set())
        if late:
            log.warning(
                "export jobs still running after %.0fs: releasing them to another runner", grace
            )
            self.runner.stop(release=True)
            # a job stops at its next batch; one waiting on a long query is left behind
            _, late = await asyncio.wait(late, timeout=5)
            for task in late:
                task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for task, result in zip(tasks, results, strict=True):
            if isinstance(result, Exception):
                log.error("background task %s failed", task.get_name(), exc_info=result)

    def close(self) -> None:
        """Close the stores: the event store writes everything queued and checkpoints."""
        self.leader.release()
        self.events.close()
        self.jobs.close()
