"""``EventStore.last_write``: when events of some advertisers and interval were last stored.

Export reuse relies on it (a settled export is reused only if created after the last
write into its interval), so it must never answer a time before the newest write.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from mpo_realtime.store.base import ROLLUP_SCHEMA, IngestRequest
from mpo_realtime.store.duckdb_store import DuckDBEventStore

HOUR = datetime(2026, 1, 9, 10, 0, tzinfo=UTC)
TIMEOUT = 30


@pytest.fixture
def store() -> Iterator[DuckDBEventStore]:
    store = DuckDBEventStore(":memory:", flush_interval=0.005)
    try:
        yield store
    finally:
        store.close()


def _rows(*cells: tuple[int, datetime]) -> pa.Table:
    rows = [
        {
            "minute": minute,
            "advertiser_id": advertiser_id,
            "partner_id": 1,
            "campaign_id": 1,
            "seller_id": 1,
            "product_id": "p",
            "displays": 1,
            "clicks": 1,
            "cost": Decimal("0.5"),
            "seller_name": None,
        }
        for advertiser_id, minute in cells
    ]
    return pa.Table.from_pylist(rows, schema=ROLLUP_SCHEMA)


def test_store_last_write_is_none_before_any_write(store: DuckDBEventStore) -> None:
    assert store.last_write((1,), HOUR, HOUR + timedelta(hours=1)) is None


def test_store_last_write_follows_bulk_appends_and_ingest_flushes(
    store: DuckDBEventStore,
) -> None:
    before = datetime.now(UTC)
    store.append(_rows((1, HOUR + timedelta(minutes=30))))
    appended = store.last_write((1,), HOUR, HOUR + timedelta(hours=1))
    store.submit(IngestRequest(_rows((1, HOUR + timedelta(minutes=45))), 1)).result(TIMEOUT)
    flushed = store.last_write((1,), HOUR, HOUR + timedelta(hours=1))
    after = datetime.now(UTC)

    assert appended is not None and flushed is not None
    assert before <= appended <= flushed <= after
    assert appended < flushed


@pytest.mark.parametrize(
    ("advertisers", "start", "end", "touched"),
    [
        ((1,), HOUR, HOUR + timedelta(hours=1), True),
        ((2, 1), HOUR + timedelta(minutes=50), HOUR + timedelta(minutes=51), True),
        ((1,), HOUR - timedelta(minutes=1), HOUR + timedelta(minutes=1), True),
        ((2,), HOUR, HOUR + timedelta(hours=1), False),
        ((1,), HOUR + timedelta(hours=1), HOUR + timedelta(hours=2), False),
        ((1,), HOUR - timedelta(hours=1), HOUR, False),
        ((), HOUR, HOUR + timedelta(hours=1), False),
    ],
    ids=[
        "its-hour",
        "a-minute-of-it",
        "straddling",
        "other-advertiser",
        "next-hour",
        "hour-before",
        "no-advertiser",
    ],
)
def test_store_last_write_is_kept_per_advertiser_and_utc_hour(
    store: DuckDBEventStore,
    advertisers: tuple[int, ...],
    start: datetime,
    end: datetime,
    touched: bool,
) -> None:
    store.append(_rows((1, HOUR + timedelta(minutes=5))))

    assert (store.last_write(advertisers, start, end) is not None) is touched


def test_store_failed_write_leaves_no_mark(store: DuckDBEventStore) -> None:
    # A null in a NOT NULL column: the rows are refused whole, and no mark is left.
    bad = pa.array([None], pa.int64())
    rows = _rows((1, HOUR)).set_column(1, ROLLUP_SCHEMA.field(1), bad)
    with pytest.raises(ValueError, match="advertiser_id must not be null"):
        store.append(rows)

    assert store.last_write((1,), HOUR, HOUR + timedelta(hours=1)) is None


def test_store_purge_drops_marks_of_purged_hours(store: DuckDBEventStore) -> None:
    store.append(_rows((1, HOUR), (1, HOUR + timedelta(hours=3))))

    store.purge(HOUR + timedelta(hours=2))

    assert store.last_write((1,), HOUR, HOUR + timedelta(hours=1)) is None
    assert store.last_write((1,), HOUR, HOUR + timedelta(hours=4)) is not None
