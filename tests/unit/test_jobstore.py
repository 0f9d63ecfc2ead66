"""Tests for the SQL job store, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mpo_realtime.api.batcher import MAX_BATCH
from mpo_realtime.domain.errors import StoreError
from mpo_realtime.domain.jobs import Client, Job, JobStatus, Role
from mpo_realtime.exports.jobstore import SqlJobStore

JobFactory = Callable[..., Job]

#: after every ``created_at`` the job factory hands out
NOW = datetime(2026, 3, 2, 8, 30, 15, 123456, tzinfo=UTC)
LEASE = timedelta(seconds=60)
PARIS = timezone(timedelta(hours=1))


BASE_CLIENT = Client(
    client_id="c0ffee",
    name="Acme reporting",
    secret_hash="$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
    advertiser_ids=(7, 101, 102),
    roles=frozenset({Role.REPORT}),
    created_at=NOW,
)


def _client(**overrides: Any) -> Client:
    return dataclasses.replace(BASE_CLIENT, **overrides)


def _all_fields_job(job_factory: JobFactory) -> Job:
    return job_factory(
        status=JobStatus.DONE,
        message="all good",
        spec={"dimensions": ["advertiserId", "hour"], "filters": {"ids": [1, 2]}, "x": None},
        file_format="json",
        reusable_until=NOW + timedelta(seconds=60),
        started_at=NOW - timedelta(seconds=3),
        finished_at=NOW - timedelta(seconds=1),
        expires_at=NOW + timedelta(hours=24),
        lease_owner="runner-1",
        lease_expires_at=NOW + LEASE,
        attempts=3,
        row_count=12_345_678_901,
        byte_size=98_765,
        file_name="export.json",
        query_seconds=0.125,
        write_seconds=1.0 / 3.0,
    )


# -- lifecycle ---------------------------------------------------------------------------


def test_store_migrate_twice_is_harmless(job_store: SqlJobStore, job_factory: JobFactory) -> None:
    job = job_factory()
    job_store.create_job(job)

    job_store.migrate()

    assert job_store.get_job(job.id) == job


def test_store_migrate_on_a_second_store_keeps_data(
    job_store_url: str, job_factory: JobFactory
) -> None:
    first = SqlJobStore(job_store_url)
    first.migrate()
    job = job_factory()
    first.create_job(job)
    first.close()

    second = SqlJobStore(job_store_url)
    second.migrate()
    try:
        assert second.get_job(job.id) == job
    finally:
        second.close()


def test_store_ping_answers_true(job_store: SqlJobStore) -> None:
    assert job_store.ping() is True


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////nonexistent-directory/for/sure/jobs.sqlite3",
        "postgresql://postgres@127.0.0.1:1/nothing",
    ],
    ids=["sqlite", "postgresql"],
)
def test_store_ping_unreachable_answers_false(url: str) -> None:
    store = SqlJobStore(url)
    try:
        assert store.ping() is False
    finally:
        store.close()


def test_store_unreachable_raises_store_error() -> None:
    store = SqlJobStore("sqlite:////nonexistent-directory/for/sure/jobs.sqlite3")
    try:
        with pytest.raises(StoreError, match="job store could not read a job") as info:
            store.get_job("x")
        assert info.value.__cause__ is not None
    finally:
        store.close()


def test_store_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = SqlJobStore(f"sqlite:///{path}")
    store.migrate()
    store.close()

    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_store_plain_postgresql_url_uses_psycopg(postgres_admin_url: str) -> None:
    store = SqlJobStore(postgres_admin_url.replace("postgresql+psycopg://", "postgresql://", 1))
    try:
        assert store.ping() is True
    finally:
        store.close()


# -- create and read ---------------------------------------------------------------------


def test_store_create_job_round_trips_whole_row(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    job = _all_fields_job(job_factory)

    job_store.create_job(job)

    assert job_store.get_job(job.id) == job


def test_store_create_job_defaults_round_trip(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    job = job_factory()

    job_store.create_job(job)

    assert job_store.get_job(job.id) == job


def test_store_datetimes_come_back_aware_utc(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    local = NOW.astimezone(PARIS)
    job = _all_fields_job(job_factory).evolve(created_at=local, expires_at=local)
    job_store.create_job(job)

    stored = job_store.get_job(job.id)

    assert stored is not None
    moments = [
        stored.created_at,
        stored.reusable_until,
        stored.started_at,
        stored.finished_at,
        stored.expires_at,
        stored.lease_expires_at,
    ]
    assert all(m is not None and m.tzinfo is UTC for m in moments)
    assert stored.created_at == NOW
    assert stored.expires_at == NOW


def test_store_naive_datetime_is_refused(job_store: SqlJobStore, job_factory: JobFactory) -> None:
    job = job_factory(created_at=NOW.replace(tzinfo=None))

    with pytest.raises(StoreError, match="naive datetime"):
        job_store.create_job(job)


def test_store_get_job_unknown_is_none(job_store: SqlJobStore) -> None:
    assert job_store.get_job("00000000-0000-4000-8000-000000000000") is None


def test_store_create_job_duplicate_id_raises(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    job = job_factory()
    job_store.create_job(job)

    with pytest.raises(StoreError, match="create a job") as info:
        job_store.create_job(job.evolve(cache_key="other"))

    assert info.value.__cause__ is not None
    assert job_store.get_job(job.id) == job


def test_store_get_jobs_reads_the_existing_ones_whole(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    jobs = [_all_fields_job(job_factory), *(job_factory() for _ in range(4))]
    for job in jobs:
        job_store.create_job(job)
    unknown = "00000000-0000-4000-8000-000000000000"
    asked = [jobs[3].id, unknown, jobs[0].id, jobs[3].id, jobs[1].id]

    found = job_store.get_jobs(asked)

    assert found == {job.id: job for job in (jobs[0], jobs[1], jobs[3])}
    assert found == {job.id: job_store.get_job(job.id) for job in (jobs[0], jobs[1], jobs[3])}


def test_store_get_jobs_of_one_or_none(job_store: SqlJobStore, job_factory: JobFactory) -> None:
    job = job_factory()
    job_store.create_job(job)

    assert job_store.get_jobs([job.id]) == {job.id: job}
    assert job_store.get_jobs(["00000000-0000-4000-8000-000000000000"]) == {}
    assert job_store.get_jobs([]) == {}


def test_store_get_jobs_of_a_full_batch(job_store: SqlJobStore, job_factory: JobFactory) -> None:
    """As many ids as a batch of polls may hold (``api/batcher.py``): one query."""
    jobs = [job_factory() for _ in range(MAX_BATCH)]
    for job in jobs:
        job_store.create_job(job)

    assert job_store.get_jobs([job.id for job in jobs]) == {job.id: job for job in jobs}


def test_store_get_jobs_fails_as_get_job_does(job_store_url: str, job_factory: JobFactory) -> None:
    """A read that fails says what get_job would: polls answer as a single one would."""
    store = SqlJobStore(job_store_url)  # never migrated: no jobs table
    ids = [job_factory().id for _ in range(2)]
    try:
        with pytest.raises(StoreError, match="could not read a job") as many:
            store.get_jobs(ids)
        with pytest.raises(StoreError, match="could not read a job") as one:
            store.get_job(ids[0])
    finally:
        store.close()

    assert type(many.value) is type(one.value)
    assert many.value.__cause__ is not None


# Reuse slots and fair claims: tests/unit/test_jobstore_tenants.py


# -- claims ------------------------------------------------------------------------------


def test_store_claim_next_takes_oldest_pending_and_leases_it(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    done = job_factory(status=JobStatus.DONE)
    oldest = job_factory()
    newer = job_factory()
    for job in (newer, done, oldest):
        job_store.create_job(job)

    claimed = job_store.claim_next(owner="runner-1", now=NOW, lease=LEASE)

    expected = oldest.evolve(
        lease_owner="runner-1", lease_expires_at=NOW + LEASE, started_at=NOW, attempts=1
    )
    assert claimed == expected
    assert job_store.get_job(oldest.id) == expected
    assert job_store.get_job(newer.id) == newer


def test_store_claim_next_with_nothing_pending_is_none(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    job_store.create_job(job_factory(status=JobStatus.DONE))
    job_store.create_job(job_factory(status=JobStatus.FAILURE))

    assert job_store.claim_next(owner="runner-1", now=NOW, lease=LEASE) is None


def test_store_claim_next_skips_job_under_live_lease(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    first = job_factory()
    second = job_factory()
    job_store.create_job(first)
    job_store.create_job(second)

    one = job_store.claim_next(owner="runner-1", now=NOW, lease=LEASE)
    two = job_store.claim_next(owner="runner-2", now=NOW + timedelta(seconds=59), lease=LEASE)
    three = job_store.claim_next(owner="runner-3", now=NOW + timedelta(seconds=59), lease=LEASE)

    assert (one and one.id, two and two.id, three) == (first.id, second.id, None)


def test_store_claim_next_reclaims_expired_lease(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    job = job_factory()
    job_store.create_job(job)
    job_store.claim_next(owner="runner-1", now=NOW, lease=LEASE)
    later = NOW + LEASE

    reclaimed = job_store.claim_next(owner="runner-2", now=later, lease=LEASE)

    assert reclaimed == job.evolve(
        lease_owner="runner-2", lease_expires_at=later + LEASE, started_at=NOW, attempts=2
    )


def test_store_claim_next_concurrent_claimers_get_distinct_jobs(
    job_store_url: str, job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    jobs = [job_factory() for _ in range(50)]
    for job in jobs:
        job_store.create_job(job)
    # Several engines (one per would-be process), each shared by several threads.
    stores = [SqlJobStore(job_store_url) for _ in range(3)]
    claims: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def claimer(store: SqlJobStore, owner: str) -> None:
        mine = claims.setdefault(owner, [])
        try:
            start.wait()
            while (job := store.claim_next(owner=owner, now=NOW, lease=LEASE)) is not None:
                mine.append(job.id)
        except BaseException as exc:  # handed to the main thread, which fails the test
            errors.append(exc)

    threads = [
        threading.Thread(target=claimer, args=(stores[i % 3], f"runner-{i}")) for i in range(6)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for store in stores:
            store.close()

    assert errors == []
    claimed = [job_id for ids in claims.values() for job_id in ids]
    assert sorted(claimed) == sorted(job.id for job in jobs)
    for owner, ids in claims.items():
        for job_id in ids:
            stored = job_store.get_job(job_id)
            assert stored is not None
            assert (stored.lease_owner, stored.attempts) == (owner, 1)


def test_store_renew_lease_only_by_owner(job_store: SqlJobStore, job_factory: JobFactory) -> None:
    job = job_factory()
    job_store.create_job(job)
    claimed = job_store.claim_next(owner="runner-1", now=NOW, lease=LEASE)
    until = NOW + 3 * LEASE

    assert job_store.renew_lease(job.id, owner="runner-2", until=until) is False
    assert job_store.renew_lease("unknown", owner="runner-1", until=until) is False
    assert job_store.renew_lease(job.id, owner="runner-1", until=until) is True
    assert claimed is not None
    assert job_store.get_job(job.id) == claimed.evolve(lease_expires_at=until)


# -- outcomes ----------------------------------------------------------------------------


def test_store_finish_job_by_owner_marks_done(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    job = job_factory()
    job_store.create_job(job)
    claimed = job_store.claim_next(owner="runner-1", now=NOW, lease=LEASE)
    done_at = NOW + timedelta(seconds=2)
    expires_at = done_at + timedelta(hours=24)

    finished = job_store.finish_job(
        job.id,
        owner="runner-1",
        now=done_at,
        row_count=42,
        byte_size=1024,
        file_name=f"{job.id}.csv",
        expires_at=expires_at,
        query_seconds=0.5,
        write_seconds=0.25,
    )

    assert finished is True
    assert claimed is not None
    assert job_store.get_job(job.id) == claimed.evolve(
        status=JobStatus.DONE,
        finished_at=done_at,
        lease_owner=None,
        lease_expires_at=None,
        row_count=42,
        byte_size=1024,
        file_name=f"{job.id}.csv",
        expires_at=expires_at,
        query_seconds=0.5,
        write_seconds=0.25,
    )


@pytest.mark.parametrize("case", ["non-owner", "unleased", "reclaimed", "already-done"])
def test_store_finish_job_refused_unless_pending_and_leased_by_owner(
    job_store: SqlJobStore, job_factory: JobFactory, case: str
) -> None:
    job = job_factory()
    job_store.create_job(job)
    if case != "unleased":
        job_store.claim_next(owner="runner-1", now=NOW, lease=LEASE)
    owner = "runner-2" if case == "non-owner" else "runner-1"
    if case == "reclaimed":
        job_store.claim_next(owner="runner-2", now=NOW + LEASE, lease=LEASE)
    if case == "already-done":
        job_store.fail_job(job.id, owner=None, now=NOW, message="cancelled")
    before = job_store.get_job(job.id)

    finished = job_store.finish_job(
        job.id,
        owner=owner,
        now=NOW,
        row_count=1,
        byte_size=1,
        file_name="x.csv",
        expires_at=NOW + LEASE,
        query_seconds=0.0,
        write_seconds=0.0,
    )

    assert finished is False
    assert job_store.get_job(job.id) == before


def test_store_fail_job_by_owner_marks_failure(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    job = job_factory()
    job_store.create_job(job)
    claimed = job_store.claim_next(owner="runner-1", now=NOW, lease=LEASE)
    failed_at = NOW + timedelta(seconds=1)

    assert job_store.fail_job(job.id, owner="runner-2", now=failed_at, message="no") is False
    assert job_store.fail_job(job.id, owner="runner-1", now=failed_at, message="boom") is True
    assert claimed is not None
    assert job_store.get_job(job.id) == claimed.evolve(
        status=JobStatus.FAILURE,
        message="boom",
        finished_at=failed_at,
        lease_owner=None,
        lease_expires_at=None,
    )


def test_store_fail_job_without_owner_fails_any_pending_job(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    unleased = job_factory()
    leased = job_factory()
    done = job_factory(status=JobStatus.DONE)
    for job in (unleased, leased, done):
        job_store.create_job(job)
    job_store.claim_next(owner="runner-1", now=NOW, lease=LEASE)

    results = [
        job_store.fail_job(job.id, owner=None, now=NOW, message="gave up")
        for job in (unleased, leased, done)
    ]

    assert results == [True, True, False]
    assert job_store.get_job(unleased.id) == unleased.evolve(
        status=JobStatus.FAILURE,
        message="gave up",
        finished_at=NOW,
        started_at=NOW,
        attempts=1,
    )
    assert job_store.get_job(done.id) == done


def test_store_expire_due_expires_done_jobs_past_their_time(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    due = job_factory(status=JobStatus.DONE, expires_at=NOW - timedelta(hours=1))
    due_now = job_factory(status=JobStatus.DONE, expires_at=NOW, file_name="b.csv")
    not_yet = job_factory(status=JobStatus.DONE, expires_at=NOW + timedelta(microseconds=1))
    pending = job_factory(expires_at=NOW - timedelta(hours=1))
    failed = job_factory(status=JobStatus.FAILURE, expires_at=NOW - timedelta(hours=1))
    for job in (due, due_now, not_yet, pending, failed):
        job_store.create_job(job)

    expired = job_store.expire_due(now=NOW)

    assert expired == [
        due.evolve(status=JobStatus.EXPIRED),
        due_now.evolve(status=JobStatus.EXPIRED),
    ]
    assert [job_store.get_job(job.id) for job in (due, due_now, not_yet, pending, failed)] == [
        *expired,
        not_yet,
        pending,
        failed,
    ]
    assert job_store.expire_due(now=NOW) == []


def test_store_count_created_counts_a_clients_jobs_since(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    since = NOW - timedelta(hours=1)
    for created_at, client_id in [
        (since - timedelta(microseconds=1), "client-a"),
        (since, "client-a"),
        (NOW, "client-a"),
        (NOW, "client-b"),
    ]:
        job_store.create_job(job_factory(created_at=created_at, client_id=client_id))

    assert job_store.count_created("client-a", since=since) == 2
    assert job_store.count_created("client-b", since=since) == 1
    assert job_store.count_created("client-c", since=since) == 0


def test_store_count_created_cannot_include_reuses(job_store: SqlJobStore) -> None:
    with pytest.raises(ValueError, match="exclude_reused"):
        job_store.count_created("client-a", since=NOW, exclude_reused=False)


def test_store_status_counts_counts_every_status(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    for status in (JobStatus.PENDING, JobStatus.PENDING, JobStatus.DONE, JobStatus.FAILURE):
        job_store.create_job(job_factory(status=status))

    assert job_store.status_counts() == {
        JobStatus.PENDING: 2,
        JobStatus.DONE: 1,
        JobStatus.FAILURE: 1,
        JobStatus.EXPIRED: 0,
    }


# -- clients -----------------------------------------------------------------------------


def test_store_create_client_round_trips_whole_row(job_store: SqlJobStore) -> None:
    client = _client(
        roles=frozenset({Role.REPORT, Role.INGEST}),
        requests_per_minute=20,
        exports_per_hour=5,
        created_at=NOW.astimezone(PARIS),
    )

    job_store.create_client(client)

    stored = job_store.get_client(client.client_id)
    assert stored == client
    assert stored is not None and stored.created_at.tzinfo is UTC


def test_store_create_client_duplicate_id_raises(job_store: SqlJobStore) -> None:
    job_store.create_client(_client())

    with pytest.raises(StoreError, match="create a client"):
        job_store.create_client(_client(name="Impostor"))


def test_store_get_client_unknown_is_none(job_store: SqlJobStore) -> None:
    assert job_store.get_client("nobody") is None


def test_store_list_clients_oldest_first(job_store: SqlJobStore) -> None:
    newer = _client(client_id="b", created_at=NOW)
    older = _client(client_id="a", created_at=NOW - timedelta(days=1), revoked_at=NOW)
    job_store.create_client(newer)
    job_store.create_client(older)

    assert job_store.list_clients() == [older, newer]


def test_store_revoke_client_once(job_store: SqlJobStore) -> None:
    client = _client()
    job_store.create_client(client)

    results = [
        job_store.revoke_client(client.client_id, now=NOW),
        job_store.revoke_client(client.client_id, now=NOW + LEASE),
        job_store.revoke_client("nobody", now=NOW),
    ]

    assert results == [True, False, False]
    revoked = job_store.get_client(client.client_id)
    assert revoked == dataclasses.replace(client, revoked_at=NOW)
    assert revoked is not None and not revoked.active


def test_client_covers_only_advertisers_in_scope() -> None:
    client = _client(advertiser_ids=(7, 101, 102))

    assert client.covers([101, 7])
    assert client.covers([])
    assert not client.covers([101, 103])
    assert client.active
    assert not _client(revoked_at=NOW).active
