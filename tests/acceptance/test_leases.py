"""Leases of running export jobs, on SQLite and PostgreSQL: renewed while a job runs,
taken over when its runner is gone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from mpo_realtime.domain.jobs import JobStatus
from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.exports.runner import JobRunner
from mpo_realtime.store.base import EventStore
from tests.acceptance.conftest import Api
from tests.conftest import fresh_postgres_database

LEASE = timedelta(seconds=1)
REQUEST = {"advertiserIds": ["321"], "dimensions": ["advertiserId", "campaignId"]}


class _Slow:
    """The real event store, answering one row per batch, ``delay`` apart (a long export)."""

    def __init__(self, inner: EventStore, delay: float, first: float = 0.0) -> None:
        self.inner = inner
        self.delay = delay
        self.first = first

    def aggregate(self, plan: QueryPlan, *, batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        time.sleep(self.first)  # a query that runs long before its first row
        for batch in self.inner.aggregate(plan, batch_rows=batch_rows):
            for row in range(batch.num_rows):
                time.sleep(self.delay)
                yield batch.slice(row, 1)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, api_factory: Callable[..., Api]) -> Iterator[Api]:
    if request.param == "sqlite":
        yield api_factory(lease_seconds=LEASE.total_seconds())
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    with fresh_postgres_database(admin_url) as url:
        made = api_factory(job_store_url=url, lease_seconds=LEASE.total_seconds())
        yield made
        made.services.jobs.close()  # before the database is dropped


def _rows(count: int) -> list[dict[str, Any]]:
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    return [
        {"minute": minute, "advertiser_id": 321, "campaign_id": c, "clicks": 1, "displays": 2}
        | {"cost": 0.5}
        for c in range(count)
    ]


def _runner(api: Api, owner: str, events: Any = None) -> JobRunner:
    return JobRunner(
        jobs=api.services.jobs,
        events=events or api.services.events,
        files=api.services.files,
        lease=LEASE,
        owner=owner,
    )


@pytest.mark.parametrize(
    ("delay", "first"), [(0.2, 0.0), (0.0, 4.0)], ids=["slow-rows", "slow-query"]
)
def test_lease_renewed_while_a_long_export_runs(api: Api, delay: float, first: float) -> None:
    """An export running for four leases keeps its job: no other runner claims it, be
    it slow between rows or slow before its first one."""
    api.add_rows(_rows(20))
    headers = api.token()
    created = api.create({**REQUEST, "lookbackWindow": 120}, headers)
    assert created.status_code == 200, created.text
    job_id = created.json()["exportId"]
    slow = _runner(api, "slow", _Slow(api.services.events, delay=delay, first=first))
    other = _runner(api, "other")
    stolen: list[Any] = []
    claimed = api.services.jobs.claim_next(owner="slow", now=datetime.now(UTC), lease=LEASE)
    assert claimed is not None and claimed.id == job_id
    running = threading.Thread(target=slow.execute, args=(claimed,))
    running.start()
    while running.is_alive():
        stolen.append(other.run_one())  # tries to claim all along
        time.sleep(0.1)
    running.join()

    assert stolen and set(stolen) == {None}
    job = api.services.jobs.get_job(job_id)
    assert job is not None
    assert (job.status, job.attempts, job.row_count) == (JobStatus.DONE, 1, 20)


def test_lease_of_a_dead_runner_is_taken_over(api: Api) -> None:
    """A runner that claimed a job and died (no renewals, no finish) loses nothing."""
    api.add_rows(_rows(3))
    headers = api.token()
    created = api.create({**REQUEST, "lookbackWindow": 120}, headers)
    assert created.status_code == 200, created.text
    job_id = created.json()["exportId"]
    dead = api.services.jobs.claim_next(owner="dead", now=datetime.now(UTC), lease=LEASE)
    assert dead is not None and dead.id == job_id
    survivor = _runner(api, "survivor")

    assert survivor.run_one() is None  # the dead runner's lease still holds
    time.sleep(LEASE.total_seconds() + 0.2)
    done = survivor.run_one()

    assert done is not None
    assert (done.id, done.status, done.attempts, done.row_count) == (
        job_id,
        JobStatus.DONE,
        2,
        3,
    )
    late = api.services.jobs.finish_job(
        job_id,
        owner="dead",
        now=datetime.now(UTC),
        row_count=0,
        byte_size=0,
        file_name="x.csv",
        expires_at=datetime.now(UTC),
        query_seconds=0,
        write_seconds=0,
    )
    assert late is False
    assert api.download(job_id, headers).status_code == 200
