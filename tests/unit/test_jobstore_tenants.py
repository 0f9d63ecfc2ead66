"""Job store rules between tenants, on SQLite and PostgreSQL alike: one reuse slot per
cache key taken atomically (concurrent identical creates make one export, also across
processes), and fair claims (no client holds every runner or jumps the others' queue)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mpo_realtime.domain.errors import StoreError
from mpo_realtime.domain.jobs import Job
from mpo_realtime.exports.jobstore import SqlJobStore

JobFactory = Callable[..., Job]

NOW = datetime(2026, 3, 2, 8, 30, 15, 123456, tzinfo=UTC)
LEASE = timedelta(seconds=60)


class QuotaSpent(Exception):
    """Raised by a ``before_commit`` hook standing for an exhausted export quota."""


def _finish(store: SqlJobStore, job: Job, *, expires_at: datetime, owner: str = "r") -> None:
    claimed = store.claim_next(owner=owner, now=NOW, lease=LEASE)
    assert claimed is not None and claimed.id == job.id
    assert store.finish_job(
        job.id,
        owner=owner,
        now=NOW,
        row_count=1,
        byte_size=1,
        file_name=f"{job.id}.csv",
        expires_at=expires_at,
        query_seconds=0.0,
        write_seconds=0.0,
    )


def _run_threads(count: int, target: Callable[[int], None]) -> list[BaseException]:
    """Run ``target(i)`` in ``count`` threads released together; the errors they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def body(index: int) -> None:
        try:
            start.wait()
            target(index)
        except BaseException as exc:  # handed to the test, which fails on it
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return errors


# -- reuse slots ---------------------------------------------------------------------------


def test_store_create_or_reuse_inserts_once_then_hands_out_that_job(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    first = job_factory(cache_key="k")
    second = job_factory(cache_key="k")
    other = job_factory(cache_key="other")

    assert job_store.create_or_reuse(first, now=NOW) == (first, False)
    assert job_store.create_or_reuse(second, now=NOW) == (first, True)
    assert job_store.create_or_reuse(other, now=NOW) == (other, False)
    assert job_store.find_reusable("k", now=NOW) == first
    assert job_store.get_job(second.id) is None
    assert job_store.find_reusable("missing", now=NOW) is None


def test_store_find_reusable_sees_only_jobs_that_hold_a_slot(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    job_store.create_job(job_factory(cache_key="k"))

    assert job_store.find_reusable("k", now=NOW) is None


@pytest.mark.parametrize(
    ("reusable_until", "expires_at", "reusable"),
    [
        (None, None, True),
        (NOW + timedelta(microseconds=1), None, True),
        (NOW, None, False),
        (NOW - timedelta(seconds=1), None, False),
        (None, NOW + timedelta(seconds=1), True),
        (None, NOW, False),
        (NOW + timedelta(hours=1), NOW - timedelta(seconds=1), False),
    ],
    ids=["open", "window-open", "window-closes-now", "too-old", "unexpired", "expires-now", "gone"],
)
def test_store_reuse_respects_reuse_window_and_expiry(
    job_store: SqlJobStore,
    job_factory: JobFactory,
    reusable_until: datetime | None,
    expires_at: datetime | None,
    reusable: bool,
) -> None:
    job = job_factory(cache_key="k", reusable_until=reusable_until)
    job_store.create_or_reuse(job, now=NOW - timedelta(hours=2))
    if expires_at is not None:
        _finish(job_store, job, expires_at=expires_at)
    stored = job_store.get_job(job.id)
    newcomer = job_factory(cache_key="k")

    assert job_store.find_reusable("k", now=NOW) == (stored if reusable else None)
    assert job_store.create_or_reuse(newcomer, now=NOW) == (
        (stored, True) if reusable else (newcomer, False)
    )
    assert job_store.find_reusable("k", now=NOW) == (stored if reusable else newcomer)


def test_store_failed_job_is_never_reused(job_store: SqlJobStore, job_factory: JobFactory) -> None:
    failed = job_factory(cache_key="k")
    job_store.create_or_reuse(failed, now=NOW)
    job_store.fail_job(failed.id, owner=None, now=NOW, message="broken")
    newcomer = job_factory(cache_key="k")

    assert job_store.find_reusable("k", now=NOW) is None
    assert job_store.create_or_reuse(newcomer, now=NOW) == (newcomer, False)


def test_store_expired_job_is_never_reused(job_store: SqlJobStore, job_factory: JobFactory) -> None:
    done = job_factory(cache_key="k")
    job_store.create_or_reuse(done, now=NOW)
    _finish(job_store, done, expires_at=NOW - timedelta(seconds=1))
    assert [job.id for job in job_store.expire_due(now=NOW)] == [done.id]
    # Even a reader that thinks the job has not expired yet does not get it back.
    earlier = NOW - timedelta(hours=1)
    newcomer = job_factory(cache_key="k")

    assert job_store.find_reusable("k", now=earlier) is None
    assert job_store.create_or_reuse(newcomer, now=earlier) == (newcomer, False)


@pytest.mark.parametrize(
    ("fresh_after", "reusable"),
    [
        (None, True),
        (NOW - timedelta(hours=1), True),
        (NOW - timedelta(seconds=30, microseconds=1), True),
        (NOW - timedelta(seconds=30), False),
        (NOW - timedelta(seconds=1), False),
        (NOW, False),
    ],
    ids=["any-age", "long-before", "just-before", "same-moment", "after", "no-cache"],
)
def test_store_reuse_only_of_jobs_created_after_fresh_after(
    job_store: SqlJobStore, job_factory: JobFactory, fresh_after: datetime | None, reusable: bool
) -> None:
    job = job_factory(cache_key="k", created_at=NOW - timedelta(seconds=30))
    job_store.create_or_reuse(job, now=job.created_at)
    newcomer = job_factory(cache_key="k", created_at=NOW)

    found = job_store.find_reusable("k", now=NOW, fresh_after=fresh_after)
    taken = job_store.create_or_reuse(newcomer, now=NOW, fresh_after=fresh_after)

    assert found == (job if reusable else None)
    assert taken == ((job, True) if reusable else (newcomer, False))


def test_store_before_commit_runs_only_for_a_new_job_and_can_undo_it(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    calls: list[str] = []

    def spend() -> None:
        calls.append("spent")
        raise QuotaSpent

    refused = job_factory(cache_key="k")
    with pytest.raises(QuotaSpent):
        job_store.create_or_reuse(refused, now=NOW, before_commit=spend)
    assert job_store.get_job(refused.id) is None
    assert job_store.find_reusable("k", now=NOW) is None

    first = job_factory(cache_key="k")
    created = job_store.create_or_reuse(first, now=NOW, before_commit=lambda: calls.append("ok"))
    reused = job_store.create_or_reuse(job_factory(cache_key="k"), now=NOW, before_commit=spend)

    assert (created, reused) == ((first, False), (first, True))
    assert calls == ["spent", "ok"]


def test_store_finish_and_fail_keep_the_slot_in_step(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    job = job_factory(cache_key="k")
    job_store.create_or_reuse(job, now=NOW)
    _finish(job_store, job, expires_at=NOW + timedelta(hours=1))

    assert job_store.find_reusable("k", now=NOW + timedelta(minutes=59)) is not None
    assert job_store.find_reusable("k", now=NOW + timedelta(hours=1)) is None


def test_store_create_or_reuse_concurrent_identical_creates_make_one_job(
    job_store_url: str, job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    """50 threads over 5 engines (would-be processes), each with its own new job."""
    stores = [SqlJobStore(job_store_url) for _ in range(5)]
    candidates = [job_factory(cache_key="k") for _ in range(50)]
    results: list[tuple[Job, bool]] = []

    def create(index: int) -> None:
        store = stores[index % len(stores)]
        results.append(store.create_or_reuse(candidates[index], now=NOW))

    try:
        errors = _run_threads(50, create)
    finally:
        for store in stores:
            store.close()

    assert errors == []
    assert len({job.id for job, _ in results}) == 1
    assert sorted(reused for _, reused in results) == [False] + [True] * 49
    winner = results[0][0]
    assert [job_store.get_job(job.id) is not None for job in candidates].count(True) == 1
    assert job_store.find_reusable("k", now=NOW) == winner


def test_store_create_or_reuse_concurrent_replacements_of_a_dead_slot_make_one_job(
    job_store_url: str, job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    old = job_factory(cache_key="k", reusable_until=NOW - timedelta(seconds=1))
    job_store.create_or_reuse(old, now=NOW - timedelta(minutes=1))
    stores = [SqlJobStore(job_store_url) for _ in range(4)]
    results: list[tuple[Job, bool]] = []

    def create(index: int) -> None:
        results.append(stores[index % 4].create_or_reuse(job_factory(cache_key="k"), now=NOW))

    try:
        errors = _run_threads(20, create)
    finally:
        for store in stores:
            store.close()

    assert errors == []
    assert len({job.id for job, _ in results}) == 1
    assert results[0][0].id != old.id


# -- fair claims ---------------------------------------------------------------------------


@pytest.fixture
def queue(job_store: SqlJobStore, job_factory: JobFactory) -> Iterator[dict[str, list[Job]]]:
    """Client a's four jobs, queued before client b's one and client c's two."""
    jobs = {
        "a": [job_factory(client_id="a") for _ in range(4)],
        "b": [job_factory(client_id="b")],
        "c": [job_factory(client_id="c") for _ in range(2)],
    }
    for client_jobs in jobs.values():
        for job in client_jobs:
            job_store.create_job(job)
    yield jobs


def _claim(store: SqlJobStore, owner: str = "r1", **options: int) -> str | None:
    job = store.claim_next(owner=owner, now=NOW, lease=LEASE, **options)
    return None if job is None else job.client_id


def test_store_claim_next_prefers_the_client_with_fewest_running_jobs(
    job_store: SqlJobStore, queue: dict[str, list[Job]]
) -> None:
    # With every job still running, each claim goes to the client running fewest.
    claimed = [_claim(job_store, owner=f"r{i}") for i in range(7)]

    assert claimed == ["a", "b", "c", "a", "c", "a", "a"]


def test_store_claim_next_serves_clients_in_turn_with_one_runner(
    job_store: SqlJobStore, queue: dict[str, list[Job]]
) -> None:
    """One runner that finishes each job before the next claim: round robin, not FIFO."""
    order = []
    for step in range(7):
        job = job_store.claim_next(owner="r1", now=NOW + timedelta(seconds=step), lease=LEASE)
        assert job is not None
        order.append(job.id)
        job_store.fail_job(job.id, owner="r1", now=NOW, message="done with it")

    a, b, c = queue["a"], queue["b"], queue["c"]
    assert order == [j.id for j in (a[0], b[0], c[0], a[1], c[1], a[2], a[3])]


def test_store_claim_next_caps_a_clients_jobs_per_runner_process(
    job_store: SqlJobStore, queue: dict[str, list[Job]]
) -> None:
    first = [_claim(job_store, owner="p1", max_running=1) for _ in range(4)]
    # Another process has its own share.
    other = [_claim(job_store, owner="p2", max_running=1) for _ in range(4)]

    assert first == ["a", "b", "c", None]
    assert other == ["a", "c", None, None]


def test_store_claim_next_cap_frees_up_when_a_job_ends(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    jobs = [job_factory(client_id="a") for _ in range(2)]
    for job in jobs:
        job_store.create_job(job)
    held = job_store.claim_next(owner="p1", now=NOW, lease=LEASE, max_running=1)
    assert held is not None
    assert job_store.claim_next(owner="p1", now=NOW, lease=LEASE, max_running=1) is None

    job_store.fail_job(held.id, owner="p1", now=NOW, message="over")
    later = job_store.claim_next(owner="p1", now=NOW, lease=LEASE, max_running=1)

    assert later is not None and later.id == jobs[1].id


def test_store_claim_next_a_dead_runners_expired_lease_does_not_count_as_running(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    stuck = job_factory(client_id="a")
    waiting = job_factory(client_id="a")
    for job in (stuck, waiting):
        job_store.create_job(job)
    job_store.claim_next(owner="p1", now=NOW - LEASE, lease=LEASE)

    claimed = job_store.claim_next(owner="p1", now=NOW, lease=LEASE, max_running=1)

    assert claimed is not None and claimed.id == stuck.id and claimed.attempts == 2


def test_store_claim_next_concurrent_claimers_respect_the_cap(
    job_store_url: str, job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    """Six claimers of one process at once, cap 2 per client: never more, nothing twice."""
    for client in ("a", "b", "c"):
        for _ in range(5):
            job_store.create_job(job_factory(client_id=client))
    stores = [SqlJobStore(job_store_url) for _ in range(3)]
    claimed: list[Job] = []

    def claim(index: int) -> None:
        while (
            job := stores[index % 3].claim_next(owner="p1", now=NOW, lease=LEASE, max_running=2)
        ) is not None:
            claimed.append(job)

    try:
        errors = _run_threads(6, claim)
    finally:
        for store in stores:
            store.close()

    assert errors == []
    assert sorted(job.client_id for job in claimed) == ["a", "a", "b", "b", "c", "c"]


def test_store_claim_next_one_clients_jobs_go_oldest_first(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    jobs = [job_factory(client_id="a") for _ in range(3)]
    for job in reversed(jobs):
        job_store.create_job(job)

    claimed = [job_store.claim_next(owner=f"r{i}", now=NOW, lease=LEASE) for i in range(3)]

    assert [job.id if job else None for job in claimed] == [job.id for job in jobs]


def test_store_create_or_reuse_store_errors_are_translated(
    job_store: SqlJobStore, job_factory: JobFactory
) -> None:
    job = job_factory(cache_key="k")
    job_store.create_job(job)
    # The same id again: the slot is free but the job row exists.
    with pytest.raises(StoreError, match="create a job"):
        job_store.create_or_reuse(job, now=NOW)
    assert job_store.find_reusable("k", now=NOW) is None
