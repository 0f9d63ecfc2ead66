"""A graceful stop of the export runners: finish the job under way, or give it back.

Real stores on a fresh data dir; the event store is wrapped so that a job can be held
between two of its batches, which is where a runner notices that it is stopping.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from mpo_realtime.domain.jobs import Job, JobStatus, Role
from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import FileFormat
from mpo_realtime.exports.runner import JobRunner
from mpo_realtime.services import Services
from mpo_realtime.settings import Settings
from mpo_realtime.store.base import EventStore, LineExporter
from mpo_realtime.store.simulator import Simulator, World


class HeldEventStore:
    """The real event store; a job's query stops before its second batch until ``go``."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.reached = threading.Event()
        self.go = threading.Event()

    def aggregate(self, plan: QueryPlan, *, batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        return self._held(self.store.aggregate(plan, batch_rows=1))

    def export_lines(
        self, plan: QueryPlan, file_format: FileFormat, *, batch_rows: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        assert isinstance(self.store, LineExporter)
        return self._held(self.store.export_lines(plan, file_format, batch_rows=1))

    def _held(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for index, batch in enumerate(batches):
            if index == 1:
                self.reached.set()
                assert self.go.wait(30)
            yield batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    opened = Services.open(Settings(data_dir=tmp_path))
    try:
        yield opened
    finally:
        opened.close()


def _pending_export(services: Services, lookback: int = 60) -> Job:
    world = World.generate(seed=7)
    if services.events.latest_minute() is None:
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        for batch in Simulator(world, seed=7).backfill(end - timedelta(minutes=10), end):
            services.events.append(batch)
    advertiser = world.advertisers[0].advertiser_id
    client, _ = services.clients.create(
        "test", advertiser_ids=[advertiser], roles=[Role.REPORT], now=datetime.now(UTC)
    )
    body = {
        "data": {
            "type": "RealTimeProductReportJob",
            "attributes": {
                "advertiserIds": [str(advertiser)],
                "dimensions": ["campaignId", "minute"],
                "lookbackWindow": lookback,
            },
        }
    }
    return services.exports.create(client, orjson.dumps(body)).job


def _runner(services: Services, events: Any) -> JobRunner:
    return JobRunner(
        jobs=services.jobs,
        events=events,
        files=services.files,
        lease=timedelta(seconds=60),
    )


def _files(services: Services) -> list[Path]:
    return [path for path in services.files.root.rglob("*") if path.is_file()]


def test_runner_stop_with_release_gives_the_job_back_at_once(services: Services) -> None:
    job = _pending_export(services)
    held = HeldEventStore(services.events)
    runner = _runner(services, held)
    finished: list[Job | None] = []
    thread = threading.Thread(target=lambda: finished.append(runner.run_one()))
    thread.start()
    assert held.reached.wait(30)
    runner.stop(release=True)
    held.go.set()
    thread.join(30)

    [after] = finished
    assert after is not None and after.id == job.id
    assert after.status is JobStatus.PENDING and after.message is None
    assert after.lease_expires_at is not None and after.lease_expires_at <= datetime.now(UTC)
    assert _files(services) == []  # nothing half-written is left
    # the next runner takes it now, not a lease period later, and finishes it
    done = _runner(services, services.events).run_one()
    assert done is not None and (done.id, done.status) == (job.id, JobStatus.DONE)


def test_runner_stop_lets_the_job_under_way_finish(services: Services) -> None:
    job = _pending_export(services)
    second = _pending_export(services, lookback=120)  # another job: stopped runners do not claim it
    held = HeldEventStore(services.events)
    runner = _runner(services, held)

    async def scenario() -> None:
        serving = asyncio.create_task(runner.serve(concurrency=1))
        assert await asyncio.to_thread(held.reached.wait, 30)
        runner.stop()
        held.go.set()
        await asyncio.wait_for(serving, 30)

    asyncio.run(scenario())
    done = services.jobs.get_job(job.id)
    assert done is not None and done.status is JobStatus.DONE
    untouched = services.jobs.get_job(second.id)
    assert untouched is not None and (untouched.status, untouched.attempts) == (
        JobStatus.PENDING,
        0,
    )
