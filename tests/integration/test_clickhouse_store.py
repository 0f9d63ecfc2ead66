"""ClickHouseEventStore against DuckDBEventStore: same events, same plan, same file bytes.

A real ClickHouse server (``tests/services.py``: the one at the standard address, else a
throwaway one), a database per test or example. The random cases are the DuckDB store's
own correctness strategies (``tests/unit/test_store_aggregate.py``): every dimension,
filters, zones with DST and :30/:45 offsets, intervals on and off bucket edges.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mpo_realtime.domain.events import EventBatchError
from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, FileFormat
from mpo_realtime.exports.writers import write_export
from mpo_realtime.store.base import IngestReceipt, IngestRequest
from mpo_realtime.store.clickhouse_store import ClickHouseEventStore
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from tests.conftest import clickhouse_database
from tests.reference import Event, expected_rows, rollup_table
from tests.services import Service
from tests.unit.test_store_aggregate import ANCHORS, event_lists, query_plans

TIMEOUT = 30.0


@contextlib.contextmanager
def _stores(service: Service) -> Iterator[tuple[DuckDBEventStore, ClickHouseEventStore]]:
    duck = DuckDBEventStore(":memory:", flush_interval=0.002)
    try:
        with clickhouse_database(service, flush_interval=0.002) as url:
            click = ClickHouseEventStore(url)
            try:
                yield duck, click
            finally:
                click.close()
    finally:
        duck.close()


def _file(
    store: DuckDBEventStore | ClickHouseEventStore,
    plan: QueryPlan,
    file_format: FileFormat,
    batch_rows: int = 65_536,
) -> bytes:
    sink = io.BytesIO()
    write_export(
        store.aggregate(plan, batch_rows=batch_rows),
        columns=plan.columns,
        file_format=file_format,
        timezone=plan.timezone,
        sink=sink,
    )
    return sink.getvalue()


def _assert_same_files(
    duck: DuckDBEventStore, click: ClickHouseEventStore, plan: QueryPlan, batch_rows: int = 65_536
) -> None:
    for file_format in (FileFormat.CSV, FileFormat.JSON):
        expected = _file(duck, plan, file_format)
        assert _file(click, plan, file_format, batch_rows) == expected, (plan, file_format)


def _rows(store: ClickHouseEventStore, plan: QueryPlan) -> list[tuple[object, ...]]:
    batches = list(store.aggregate(plan))
    if not batches:
        return []
    table = pa.Table.from_batches(batches)
    return list(zip(*(c.to_pylist() for c in table.columns), strict=True))


def _ingest_both(
    duck: DuckDBEventStore, click: ClickHouseEventStore, events: list[Event], data: st.DataObject
) -> None:
    """The same events into both stores, through a random mix of append and submit."""
    pending: list[tuple[object, int]] = []
    rest = events
    while rest:
        size = data.draw(st.integers(1, len(rest)), label="chunk")
        chunk, rest = rest[:size], rest[size:]
        table = rollup_table(chunk)
        duck.append(table)
        if data.draw(st.booleans(), label="append"):
            assert click.append(table) == len(chunk)
        else:
            pending.append((click.submit(IngestRequest(table, events=len(chunk))), len(chunk)))
    for future, count in pending:
        assert future.result(timeout=TIMEOUT) == IngestReceipt(events=count)  # type: ignore[attr-defined]


@settings(
    max_examples=40,
    deadline=None,
    # no shrinking: each step runs against a server, and the failing example is printed whole
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(data=st.data())
def test_clickhouse_files_equal_duckdb_files(
    clickhouse_service: Service, data: st.DataObject
) -> None:
    anchors = data.draw(
        st.lists(st.sampled_from(list(ANCHORS)), min_size=1, max_size=2, unique=True),
        label="anchors",
    )
    events = data.draw(event_lists(anchors), label="events")
    plans = data.draw(st.lists(query_plans(anchors, events), min_size=1, max_size=4), label="plans")
    with _stores(clickhouse_service) as (duck, click):
        _ingest_both(duck, click, events, data)
        for plan in plans:
            batch_rows = data.draw(st.sampled_from((1, 3, 65_536)), label="batch_rows")
            _assert_same_files(duck, click, plan, batch_rows)
            assert _rows(click, plan) == expected_rows(events, plan)


def _around(anchor: datetime, zone: str) -> list[Event]:
    """Events every 7 minutes for two days around ``anchor``, of two advertisers."""
    return [
        Event(
            anchor + timedelta(minutes=7 * i - 1440),
            1 + i % 2,
            10,
            100 + i % 3,
            7,
            "SKU-" + "abc"[i % 3],
            i % 5,
            i % 2,
            Decimal(i % 11) / 10,
        )
        for i in range(2 * 1440 // 7)
    ]


@pytest.mark.parametrize(("anchor", "zone"), list(ANCHORS.items()))
def test_clickhouse_time_buckets_equal_duckdb_around_offset_changes(
    clickhouse_service: Service, anchor: datetime, zone: str
) -> None:
    """Every time dimension, in the zone that changes its offset there and in the others."""
    events = _around(anchor, zone)
    with _stores(clickhouse_service) as (duck, click):
        table = rollup_table(events)
        duck.append(table)
        click.append(table)
        for timezone in (zone, "UTC", "Asia/Kathmandu", "America/St_Johns"):
            for dimension in (
                Dimension.MINUTE,
                Dimension.HOUR,
                Dimension.DAY,
                Dimension.WEEK,
                Dimension.MONTH,
                Dimension.YEAR,
            ):
                # absolute, off-edge and empty intervals
                for start, end in (
                    (anchor - timedelta(days=1), anchor + timedelta(days=1)),
                    (anchor - timedelta(minutes=89, seconds=30), anchor + timedelta(minutes=131)),
                    (anchor, anchor),
                ):
                    plan = QueryPlan(
                        start=start,
                        end=end,
                        advertiser_ids=(1,),
                        dimensions=(Dimension.CAMPAIGN_ID, dimension),
                        timezone=timezone,
                    )
                    _assert_same_files(duck, click, plan)


def test_clickhouse_sums_past_64_bits_stay_exact(clickhouse_service: Service) -> None:
    """Rows at the largest a row holds: flush folds keep what fits, reads sum in 128 bits."""
    minute = datetime(2026, 3, 8, 7, tzinfo=UTC)
    big = Event(minute, 1, 10, 100, 7, "p", 2**63 - 1, 2**63 - 1, Decimal("999999999.999999999"))
    events = [big] * 5
    plan = QueryPlan(
        start=minute,
        end=minute + timedelta(hours=1),
        advertiser_ids=(1,),
        dimensions=(Dimension.ADVERTISER_ID,),
    )
    with _stores(clickhouse_service) as (duck, click):
        duck.append(rollup_table(events))
        click.submit(IngestRequest(rollup_table(events), events=5)).result(timeout=TIMEOUT)
        _assert_same_files(duck, click, plan)
        assert _rows(click, plan) == [
            (1, 5 * (2**63 - 1), 5 * (2**63 - 1), Decimal("4999999999.999999995"))
        ]
        assert click.totals() == {
            "rows": 5,
            "displays": 5 * (2**63 - 1),
            "clicks": 5 * (2**63 - 1),
            "cost": Decimal("4999999999.999999995"),
        }


def test_clickhouse_catalog_totals_freshness_and_retention(clickhouse_service: Service) -> None:
    minute = datetime(2026, 3, 1, 12, tzinfo=UTC)
    events = [
        Event(minute, 1, 10, 100, 7, "a", 1, 0, Decimal("0.1")),
        Event(minute + timedelta(days=2), 1, 20, 200, 8, "b", 2, 1, Decimal("0.2")),
        Event(minute, 2, 30, 300, 9, "c", 4, 0, Decimal("0.3")),
    ]
    with _stores(clickhouse_service) as (duck, click):
        assert click.latest_minute() is None
        assert click.last_write((1,), minute, minute + timedelta(days=3)) is None
        before = datetime.now(UTC)
        for store in (duck, click):
            store.append(rollup_table(events))
        for advertisers in ((1,), (2,), (1, 2), (3,)):
            assert click.catalog(advertisers) == duck.catalog(advertisers)
        assert click.totals() == duck.totals()
        assert click.latest_minute() == duck.latest_minute() == minute + timedelta(days=2)
        written = click.last_write((1,), minute, minute + timedelta(hours=1))
        assert written is not None and written >= before
        assert click.last_write((3,), minute, minute + timedelta(hours=1)) is None
        assert (
            click.last_write((1,), minute + timedelta(hours=5), minute + timedelta(hours=6)) is None
        )
        assert click.purge(minute + timedelta(days=1)) == 2
        _wait_for(lambda: click.totals()["rows"] == 1)
        assert click.totals()["displays"] == 2


def _wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    """ClickHouse runs ``ALTER ... DELETE`` in the background."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_clickhouse_store_refuses_bad_rows_alone(clickhouse_service: Service) -> None:
    minute = datetime(2026, 3, 1, 12, tzinfo=UTC)
    good = rollup_table([Event(minute, 1, 10, 100, 7, "a", 1, 0, Decimal("0.1"))])
    bad = good.set_column(6, "displays", pa.array([-1], pa.int64()))
    with _stores(clickhouse_service) as (_, click):
        refused = click.submit(IngestRequest(bad, events=1))
        stored = click.submit(IngestRequest(good, events=1))
        assert stored.result(timeout=TIMEOUT) == IngestReceipt(1)
        with pytest.raises(EventBatchError):
            refused.result(timeout=TIMEOUT)
        assert click.totals()["rows"] == 1
