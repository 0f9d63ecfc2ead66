"""DuckDBEventStore under concurrent writers and readers; idempotency; failed flushes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mpo_realtime.domain.errors import StoreError
from mpo_realtime.domain.events import EventBatchError, parse_events
from mpo_realtime.domain.money import NANOS
from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, Metric
from mpo_realtime.store.base import (
    ROLLUP_SCHEMA,
    IdempotencyConflict,
    IngestReceipt,
    IngestRequest,
)
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from mpo_realtime.store.ingest import Ingestor, batch_to_table
from mpo_realtime.store.simulator import Simulator, World

TIMEOUT = 30.0
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
#: a few minutes either side of the Europe/Paris spring-forward change
START = datetime(2026, 3, 29, 0, 50, tzinfo=UTC)
SIM = Simulator(World.generate(seed=5, partners=2, advertisers_per_partner=2, products=40))
ALL_TIME = QueryPlan(
    start=datetime(2026, 1, 1, tzinfo=UTC),
    end=datetime(2027, 1, 1, tzinfo=UTC),
    advertiser_ids=(),
    dimensions=(Dimension.ADVERTISER_ID, Dimension.HOUR),
    metrics=(Metric.DISPLAYS, Metric.CLICKS, Metric.COST),
    timezone="Europe/Paris",
)


@dataclass(frozen=True, slots=True)
class Sums:
    displays: int = 0
    clicks: int = 0
    cost: Decimal = Decimal(0)

    def __add__(self, other: Sums) -> Sums:
        return Sums(
            self.displays + other.displays, self.clicks + other.clicks, self.cost + other.cost
        )


# -- helpers -------------------------------------------------------------------------------


def _request(
    now: datetime, count: int, *, key: str | None = None, digest: str | None = None
) -> tuple[IngestRequest, Sums]:
    """Simulated events parsed as the ingest endpoint would, and their sums."""
    events = SIM.events(now, count)
    body = b"\n".join(json.dumps(e).encode() for e in events)
    batch = parse_events(body, now_ms=int(now.timestamp() * 1000) + 1)
    sums = Sums(sum(batch.displays), sum(batch.clicks), Decimal(sum(batch.cost_nanos)) / NANOS)
    return IngestRequest(batch_to_table(batch), len(batch), key, digest), sums


def _observed(store: DuckDBEventStore, plan: QueryPlan = ALL_TIME) -> Sums:
    total = Sums()
    for batch in store.aggregate(plan):
        columns = batch.to_pydict()
        total += Sums(sum(columns["displays"]), sum(columns["clicks"]), sum(columns["cost"]))
    return total


def _stored(store: DuckDBEventStore) -> Sums:
    totals = store.totals()
    return Sums(int(totals["displays"]), int(totals["clicks"]), Decimal(totals["cost"]))


def _assert_sums(got: Sums, expected: Sums) -> None:
    assert got == expected  # exact, cost included


@pytest.fixture
def store() -> Iterator[DuckDBEventStore]:
    store = DuckDBEventStore(":memory:", flush_interval=0.005)
    try:
        yield store
    finally:
        store.close()


@contextlib.contextmanager
def _writer_paused(store: DuckDBEventStore) -> Iterator[None]:
    """Hold the writer thread, so that everything submitted meanwhile is one flush."""
    entered, release = threading.Event(), threading.Event()

    def hold(_conn: object) -> None:
        entered.set()
        release.wait(TIMEOUT)

    holder = threading.Thread(target=store.call, args=(hold,), daemon=True)
    holder.start()
    assert entered.wait(TIMEOUT), "the writer thread never ran the hold call"
    try:
        yield
    finally:
        release.set()
        holder.join(TIMEOUT)
        assert not holder.is_alive()


# -- concurrent writers and readers --------------------------------------------------------


def test_store_concurrent_submits_and_reads_sum_exactly(store: DuckDBEventStore) -> None:
    writers, batches_per_writer, readers = 4, 30, 2
    plans: list[list[tuple[IngestRequest, Sums]]] = [
        [
            _request(START + timedelta(seconds=37 * (w * batches_per_writer + b)), 25 + w)
            for b in range(batches_per_writer)
        ]
        for w in range(writers)
    ]
    expected = Sums()
    for requests in plans:
        for _, sums in requests:
            expected += sums
    acknowledged = Sums()
    lock = threading.Lock()
    stop = threading.Event()

    def write(writer: int) -> int:
        nonlocal acknowledged
        pending: list[tuple[Future[IngestReceipt], IngestRequest, Sums]] = []
        for index, (request, sums) in enumerate(plans[writer]):
            pending.append((store.submit(request), request, sums))
            # Writers 0 and 1 wait for every receipt; 2 and 3 let requests pile up.
            if writer < 2 or index % 5 == 4:
                for future, sent, done in pending:
                    assert future.result(timeout=TIMEOUT) == IngestReceipt(sent.events)
                    with lock:
                        acknowledged += done
                pending.clear()
                if writer == 0 and index % 7 == 0:
                    store.compact(FAR_FUTURE)
        for future, sent, done in pending:
            assert future.result(timeout=TIMEOUT) == IngestReceipt(sent.events)
            with lock:
                acknowledged += done
        return writer

    def read() -> int:
        queries = 0
        previous = Sums()
        while not stop.is_set() or queries < 3:
            with lock:
                floor = acknowledged
            seen = _observed(store)
            # Acknowledged events are visible; sums only grow; nothing is invented.
            assert seen.displays >= floor.displays and seen.clicks >= floor.clicks
            assert seen.displays >= previous.displays and seen.clicks >= previous.clicks
            assert seen.displays <= expected.displays and seen.clicks <= expected.clicks
            previous = seen
            queries += 1
        return queries

    with ThreadPoolExecutor(max_workers=writers + readers) as pool:
        reading = [pool.submit(read) for _ in range(readers)]
        writing = [pool.submit(write, w) for w in range(writers)]
        try:
            done, not_done = wait(writing, timeout=4 * TIMEOUT)
            assert not not_done, "writers did not finish in time"
            assert sorted(f.result() for f in writing) == list(range(writers))
        finally:
            stop.set()
        done, not_done = wait(reading, timeout=TIMEOUT)
        assert not not_done, "readers did not stop in time"
        assert all(f.result() >= 3 for f in reading)

    _assert_sums(_stored(store), expected)
    _assert_sums(_observed(store), expected)
    store.compact(FAR_FUTURE)
    _assert_sums(_stored(store), expected)
    _assert_sums(_observed(store), expected)


# -- idempotency ---------------------------------------------------------------------------


def test_store_idempotency_key_twice_in_one_flush_stores_once(store: DuckDBEventStore) -> None:
    request, sums = _request(START, 30, key="client-1:abc", digest="d1")
    with _writer_paused(store):
        first = store.submit(request)
        second = store.submit(request)
    assert first.result(timeout=TIMEOUT) == IngestReceipt(request.events)
    assert second.result(timeout=TIMEOUT) == IngestReceipt(request.events, duplicate=True)
    _assert_sums(_stored(store), sums)


def test_store_idempotency_key_across_flushes_stores_once(store: DuckDBEventStore) -> None:
    request, sums = _request(START, 30, key="client-1:abc", digest="d1")
    assert store.submit(request).result(timeout=TIMEOUT) == IngestReceipt(request.events)
    # A retry carries the same body, so its rows equal; its event count is the stored one.
    retry = IngestRequest(request.rows, 999, "client-1:abc", "d1")
    receipt = store.submit(retry).result(timeout=TIMEOUT)
    assert receipt == IngestReceipt(request.events, duplicate=True)
    store.compact(FAR_FUTURE)
    again = store.submit(retry).result(timeout=TIMEOUT)
    assert again == IngestReceipt(request.events, duplicate=True)
    _assert_sums(_stored(store), sums)


def test_store_requests_without_key_are_never_deduplicated(store: DuckDBEventStore) -> None:
    request, sums = _request(START, 30)
    with _writer_paused(store):
        futures = [store.submit(request) for _ in range(3)]
    assert [f.result(timeout=TIMEOUT) for f in futures] == [IngestReceipt(request.events)] * 3
    _assert_sums(_stored(store), sums + sums + sums)


def test_store_idempotency_key_with_other_digest_conflicts(store: DuckDBEventStore) -> None:
    request, sums = _request(START, 30, key="client-1:abc", digest="d1")
    other, _ = _request(START + timedelta(minutes=3), 30, key="client-1:abc", digest="d2")
    with _writer_paused(store):
        first = store.submit(request)
        same_flush = store.submit(other)
    assert first.result(timeout=TIMEOUT) == IngestReceipt(request.events)
    with pytest.raises(IdempotencyConflict):
        same_flush.result(timeout=TIMEOUT)
    with pytest.raises(IdempotencyConflict):
        store.submit(other).result(timeout=TIMEOUT)
    _assert_sums(_stored(store), sums)


def test_store_idempotency_keys_are_independent(store: DuckDBEventStore) -> None:
    one, sums_one = _request(START, 30, key="client-1:abc", digest="d")
    two, sums_two = _request(START, 30, key="client-2:abc", digest="d")
    with _writer_paused(store):
        futures = [store.submit(one), store.submit(two)]
    assert [f.result(timeout=TIMEOUT) for f in futures] == [
        IngestReceipt(one.events),
        IngestReceipt(two.events),
    ]
    _assert_sums(_stored(store), sums_one + sums_two)


# -- failed flushes ------------------------------------------------------------------------


def _null_advertiser(request: IngestRequest) -> IngestRequest:
    """Same schema, but a null in a NOT NULL column."""
    index = ROLLUP_SCHEMA.get_field_index("advertiser_id")
    column = pa.array([None] * request.rows.num_rows, pa.int64())
    rows = request.rows.set_column(index, ROLLUP_SCHEMA.field(index), column)
    return IngestRequest(rows, request.events)


def _bad_utf8(request: IngestRequest, key: str | None = None) -> IngestRequest:
    """Same schema and no nulls, but product IDs that are not UTF-8: DuckDB refuses them
    inside the flush, which is where only a request committed alone can be told apart."""
    count = request.rows.num_rows
    bounds = np.arange(0, 2 * count + 1, 2, dtype=np.int32)
    products = pa.Array.from_buffers(
        pa.string(), count, [None, pa.py_buffer(bounds), pa.py_buffer(b"\xff\xfe" * count)]
    )
    index = ROLLUP_SCHEMA.get_field_index("product_id")
    rows = request.rows.set_column(index, ROLLUP_SCHEMA.field(index), products)
    return IngestRequest(rows, request.events, key, "bad" if key else None)


def test_store_request_with_nulls_is_refused_alone_before_its_flush(
    store: DuckDBEventStore,
) -> None:
    good, good_sums = _request(START, 30)
    bad = _null_advertiser(_request(START + timedelta(minutes=2), 30)[0])
    with _writer_paused(store):
        good_future = store.submit(good)
        bad_future = store.submit(bad)
    assert good_future.result(timeout=TIMEOUT) == IngestReceipt(good.events)
    with pytest.raises(EventBatchError) as refused:
        bad_future.result(timeout=TIMEOUT)
    assert "advertiser_id must not be null" in str(refused.value.issues[0])
    _assert_sums(_stored(store), good_sums)


def test_store_failed_flush_stores_every_request_but_the_culprit(store: DuckDBEventStore) -> None:
    before, before_sums = _request(START, 20)
    assert store.submit(before).result(timeout=TIMEOUT) == IngestReceipt(before.events)
    advertisers = tuple(a.advertiser_id for a in SIM.world.advertisers)
    one, one_sums = _request(START + timedelta(minutes=1), 30, key="client-1:one", digest="g")
    two, two_sums = _request(START + timedelta(minutes=3), 30)
    culprit = _bad_utf8(_request(START + timedelta(minutes=2), 30)[0], key="client-2:bad")
    with _writer_paused(store):
        futures = [store.submit(one), store.submit(culprit), store.submit(two)]
    # The flush fails as a whole, then each request is committed alone: only the culprit
    # hears of it, as bad input (400), and nothing of it is stored.
    assert futures[0].result(timeout=TIMEOUT) == IngestReceipt(one.events)
    assert futures[2].result(timeout=TIMEOUT) == IngestReceipt(two.events)
    with pytest.raises(EventBatchError) as refused:
        futures[1].result(timeout=TIMEOUT)
    assert "refused these events' values" in str(refused.value.issues[0])
    expected = before_sums + one_sums + two_sums
    _assert_sums(_stored(store), expected)
    _assert_sums(_observed(store), expected)
    assert len(store.catalog(advertisers).campaign_ids) > 0
    # The culprit's key was not recorded; the good one's was.
    retry = IngestRequest(one.rows, one.events, "client-1:one", "g")
    assert store.submit(retry).result(timeout=TIMEOUT) == IngestReceipt(one.events, True)
    fixed = IngestRequest(two.rows, two.events, "client-2:bad", "bad")
    assert store.submit(fixed).result(timeout=TIMEOUT) == IngestReceipt(two.events)
    _assert_sums(_stored(store), expected + two_sums)


def test_store_duplicate_of_failed_request_is_not_acknowledged(store: DuckDBEventStore) -> None:
    request, sums = _request(START, 30)
    bad = _bad_utf8(request, key="client-1:abc")
    with _writer_paused(store):
        first = store.submit(bad)
        retry = store.submit(bad)
    # Nothing was stored, so the retry must not be told it is a stored duplicate.
    for future in (first, retry):
        with pytest.raises(EventBatchError):
            future.result(timeout=TIMEOUT)
    assert _stored(store) == Sums()
    # The key was not recorded: the corrected body is stored under it.
    fixed = IngestRequest(request.rows, request.events, "client-1:abc", "bad")
    assert store.submit(fixed).result(timeout=TIMEOUT) == IngestReceipt(request.events)
    _assert_sums(_stored(store), sums)


def _drop_seller_name(rows: pa.Table) -> pa.Table:
    return rows.drop_columns(["seller_name"])


def _nullable_fields(rows: pa.Table) -> pa.Table:
    # What pa.table(columns) builds without the schema: every field nullable.
    return rows.cast(pa.schema([f.with_nullable(True) for f in ROLLUP_SCHEMA]))


def _float_cost(rows: pa.Table) -> pa.Table:
    index = ROLLUP_SCHEMA.get_field_index("cost")
    return rows.set_column(index, "cost", rows["cost"].cast(pa.float64()))


@pytest.mark.parametrize("reshape", [_drop_seller_name, _nullable_fields, _float_cost])
def test_store_request_with_other_schema_does_not_stop_the_writer(
    store: DuckDBEventStore, reshape: Callable[[pa.Table], pa.Table]
) -> None:
    good, _ = _request(START, 30)
    other = IngestRequest(reshape(good.rows), good.events)
    with _writer_paused(store):
        good_future = store.submit(good)
        other_future = store.submit(other)
    _, not_done = wait([good_future, other_future], timeout=3)
    assert not not_done, "a future never resolved"
    later, _ = _request(START + timedelta(minutes=5), 10)
    try:
        receipt = store.submit(later).result(timeout=3)
    except FutureTimeout:
        raise AssertionError("the writer thread is gone: a later submit never resolves") from None
    assert receipt == IngestReceipt(later.events)


def test_store_float_costs_are_refused_not_rounded(store: DuckDBEventStore) -> None:
    good, _ = _request(START, 3)
    other = IngestRequest(_float_cost(good.rows), good.events)
    with pytest.raises(EventBatchError) as refused:
        store.submit(other).result(timeout=TIMEOUT)
    assert "cost must be a decimal" in str(refused.value.issues[0])
    with pytest.raises(ValueError, match="cost must be a decimal"):
        store.append(_float_cost(good.rows))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB file system (tmpfs), unmounted afterwards."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_store_full_disk_is_a_store_error_not_the_requests_fault(small_disk: Path) -> None:
    store = DuckDBEventStore(small_disk / "events.duckdb", flush_interval=0.005)
    failures: list[BaseException] = []
    try:
        for round_ in range(200):
            requests = [
                _request(START + timedelta(seconds=round_ * 3 + i), 400)[0] for i in range(3)
            ]
            with _writer_paused(store):
                futures = [store.submit(request) for request in requests]
            for future in futures:
                with contextlib.suppress(Exception):
                    future.result(timeout=TIMEOUT)
                error = future.exception()
                if error is not None:
                    failures.append(error)
            if failures:
                break
    finally:
        store.close()
    assert failures, "the disk never filled up"
    # Retried one by one, each still fails for the store's reason: 503, never 400.
    assert all(isinstance(f, StoreError) for f in failures), failures
    assert any("No space left on device" in str(f) for f in failures), failures


# -- cancelled waiters ---------------------------------------------------------------------


def test_store_cancelled_waiter_is_dropped_and_the_writer_carries_on(
    store: DuckDBEventStore,
) -> None:
    gone, _ = _request(START, 10)
    kept, kept_sums = _request(START + timedelta(minutes=1), 10)
    with _writer_paused(store):
        abandoned = store.submit(gone)
        assert abandoned.cancel()  # what asyncio.wrap_future does when a request is cancelled
        answered = store.submit(kept)
    assert answered.result(timeout=TIMEOUT) == IngestReceipt(kept.events)
    later, later_sums = _request(START + timedelta(minutes=2), 10)
    assert store.submit(later).result(timeout=TIMEOUT) == IngestReceipt(later.events)
    _assert_sums(_stored(store), kept_sums + later_sums)  # the abandoned one is not stored


def test_store_cancelled_async_ingest_leaves_later_ones_answered(
    store: DuckDBEventStore,
) -> None:
    ingestor = Ingestor(store=store)
    first, _ = _request(START, 10)
    second, second_sums = _request(START + timedelta(minutes=1), 10)

    async def scenario() -> IngestReceipt:
        with _writer_paused(store):
            waiting = asyncio.ensure_future(ingestor.store_async(first))
            await asyncio.sleep(0)  # one turn of the loop: the task submits, then waits
            waiting.cancel()  # the HTTP request went away
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
        return await asyncio.wait_for(ingestor.store_async(second), TIMEOUT)

    assert asyncio.run(scenario()) == IngestReceipt(second.events)
    third, third_sums = _request(START + timedelta(minutes=2), 10)
    assert store.submit(third).result(timeout=TIMEOUT) == IngestReceipt(third.events)
    _assert_sums(_stored(store), second_sums + third_sums)
