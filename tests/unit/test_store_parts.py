"""Report reads in parts (``DuckDBEventStore``, "reads"): larger than the memory limit
allows in one query, they still succeed, and the parts give the same file as one query.

A read whose input passes ``part_rows`` is cut into ranges of its sort order, one query
each. The files must be byte for byte those of one query, whatever the first sort key
(a time bucket in a zone with DST, a product string that needs quoting, an ID of few
values, which needs the next keys to cut it), and an export whose one query runs out of
the engine's memory must succeed.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Generator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, FileFormat
from mpo_realtime.exports.writers import write_export, write_lines
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from mpo_realtime.store.plan_sql import render_aggregate
from tests.reference import Event, rollup_table

#: an hour before Paris falls back (2026-10-25 01:00 UTC) and the day after
ANCHOR = datetime(2026, 10, 24, 22, tzinfo=UTC)
PRODUCTS = ["plain", 'q"uote', "comma,inside", "new\nline", "é ü 中文", "", "z" * 40]


def _events() -> list[Event]:
    """About 1,200 rows over 30 hours: every key of every dimension repeats."""
    costs = [Decimal("0.1"), Decimal("0.000000001"), Decimal("12.5"), Decimal(0)]
    return [
        Event(
            minute=ANCHOR + timedelta(minutes=i * 3 % 1800),
            advertiser_id=100 + i % 2,
            partner_id=1 + i % 3,
            campaign_id=10 + i % 4,
            seller_id=20 + i % 5,
            product_id=PRODUCTS[i % len(PRODUCTS)] + str(i % 11),
            displays=1 + i % 9,
            clicks=i % 3,
            cost=costs[i % len(costs)],
        )
        for i in range(1200)
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBEventStore]:
    opened = DuckDBEventStore(tmp_path / "events.duckdb", maintenance_interval=1e9)
    opened.append(rollup_table(_events()))
    try:
        yield opened
    finally:
        opened.close()


def _plan(dimensions: Sequence[Dimension], zone: str = "Europe/Paris", **more: object) -> QueryPlan:
    return QueryPlan(
        start=ANCHOR - timedelta(hours=1),
        end=ANCHOR + timedelta(hours=31),
        advertiser_ids=(100, 101),
        dimensions=tuple(dimensions),
        timezone=zone,
        **more,  # type: ignore[arg-type]
    )


def _files(store: DuckDBEventStore, plan: QueryPlan) -> list[bytes]:
    """The CSV and JSON files of ``plan``, from typed rows and from the store's lines."""
    files = []
    for file_format in (FileFormat.CSV, FileFormat.JSON):
        typed, lines = io.BytesIO(), io.BytesIO()
        write_export(
            store.aggregate(plan, batch_rows=13),
            columns=plan.columns,
            file_format=file_format,
            timezone=plan.timezone,
            sink=typed,
        )
        write_lines(
            store.export_lines(plan, file_format, batch_rows=13),
            columns=plan.columns,
            file_format=file_format,
            sink=lines,
        )
        files += [typed.getvalue(), lines.getvalue()]
    return files


PLANS = [
    # a time bucket first, across a DST change, in a zone with a :45 offset too
    _plan([Dimension.HOUR, Dimension.PRODUCT_ID, Dimension.SELLER_ID]),
    _plan([Dimension.MINUTE, Dimension.CAMPAIGN_ID], zone="Pacific/Chatham"),
    # strings that need quoting first
    _plan([Dimension.PRODUCT_ID, Dimension.ADVERTISER_ID, Dimension.DAY]),
    # a first key of two values: the ranges need the next keys
    _plan([Dimension.ADVERTISER_ID, Dimension.CAMPAIGN_ID, Dimension.SELLER_ID]),
    _plan([Dimension.DAY, Dimension.PARTNER_ID, Dimension.PRODUCT_ID], zone="Asia/Kathmandu"),
    # filters, and an empty result
    _plan([Dimension.SELLER_ID, Dimension.PRODUCT_ID], campaign_ids=(10, 12)),
    _plan([Dimension.SELLER_ID, Dimension.PRODUCT_ID], campaign_ids=(99,)),
]


def _clustered(store: DuckDBEventStore) -> None:
    """Run the store's maintenance to its end: its days are then clustered."""
    while store.compact():
        pass
    while store.maintain():
        pass


def _cut(store: DuckDBEventStore, overlapped: bool) -> None:
    """Reads of more than 50 rows in parts: overlapped (where the first key allows: its
    days clustered) or, in the store's arrival order, one after the other."""
    store.part_rows = 50  # a few dozen parts of the ~1,200 rows
    store.overlap_rows = 30 if overlapped else None
    if overlapped:
        _clustered(store)


#: parts overlapped (on clustered days) or one after the other
OVERLAPPED = pytest.mark.parametrize(
    "overlapped", [True, False], ids=["overlapped", "one-after-another"]
)


@OVERLAPPED
@pytest.mark.parametrize("plan", PLANS, ids=lambda p: ",".join(d.value for d in p.dimensions))
def test_parts_give_the_files_of_one_query(
    store: DuckDBEventStore, plan: QueryPlan, overlapped: bool, caplog: pytest.LogCaptureFixture
) -> None:
    whole = _files(store, plan)
    assert whole[0] == whole[1] and whole[2] == whole[3]  # typed rows and lines agree
    _cut(store, overlapped)
    with caplog.at_level(logging.INFO, logger="mpo_realtime.store.duckdb_store"):
        parts = _files(store, plan)
    assert parts == whole
    cut = [r.message for r in caplog.records if r.message.startswith("report read of")]
    # each read (typed and lines, CSV and JSON) in many parts, unless it has no rows
    assert len(cut) == (0 if plan.campaign_ids == (99,) else 4), cut


@pytest.mark.parametrize(
    ("dimensions", "clustered", "overlapped"),
    [
        ([Dimension.HOUR, Dimension.PRODUCT_ID], False, True),
        ([Dimension.ADVERTISER_ID, Dimension.PRODUCT_ID], True, True),
        # in arrival order every row group holds every advertiser: more parts would each
        # scan everything, and so would parts of products at all times
        ([Dimension.ADVERTISER_ID, Dimension.PRODUCT_ID], False, False),
        ([Dimension.PRODUCT_ID, Dimension.HOUR], True, False),
    ],
)
def test_parts_overlap_where_the_first_key_is_stored_in_order(
    store: DuckDBEventStore, dimensions: list[Dimension], clustered: bool, overlapped: bool
) -> None:
    if clustered:
        _clustered(store)
    store.part_rows, store.overlap_rows = 50, 30
    batches = store.aggregate(_plan(dimensions), batch_rows=5)
    next(batches)
    helpers = [t for t in threading.enumerate() if t.name.startswith("report-part")]
    assert bool(helpers) == overlapped
    assert isinstance(batches, Generator)
    batches.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dimensions=st.lists(
        st.sampled_from(
            [
                Dimension.ADVERTISER_ID,
                Dimension.CAMPAIGN_ID,
                Dimension.SELLER_ID,
                Dimension.PRODUCT_ID,
                Dimension.PARTNER_ID,
            ]
        ),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    time=st.sampled_from([None, Dimension.HOUR, Dimension.DAY, Dimension.MINUTE]),
    at=st.integers(0, 4),
    part_rows=st.integers(20, 400),
    overlapped=st.booleans(),
    zone=st.sampled_from(["UTC", "Europe/Paris", "Asia/Kathmandu"]),
)
def test_parts_are_the_rows_of_one_query(
    store: DuckDBEventStore,
    dimensions: list[Dimension],
    time: Dimension | None,
    at: int,
    part_rows: int,
    overlapped: bool,
    zone: str,
) -> None:
    # Whatever the keys and their order, the ranges and the column bounds they imply
    # (``_implied_bounds``) keep every row in exactly one part, in the order of one query.
    if time is not None:
        dimensions.insert(min(at, len(dimensions)), time)
    plan = _plan(dimensions, zone=zone)
    store.part_rows, store.overlap_rows = 10**9, None
    whole = _rows(store.aggregate(plan, batch_rows=97))
    store.part_rows = part_rows
    store.overlap_rows = max(10, part_rows // 2) if overlapped else None
    if overlapped:
        _clustered(store)  # advertisers first overlap only on clustered days
    assert _rows(store.aggregate(plan, batch_rows=97)) == whole


#: a store that cannot hold the aggregate and the sort of 600,000 groups in one query
SMALL_LIMIT = "32MB"
GROUPS = 600_000


def test_an_export_larger_than_the_memory_limit_allows_succeeds(tmp_path: Path) -> None:
    # two threads whatever the machine: DuckDB's need grows with its threads
    store = DuckDBEventStore(
        tmp_path / "events.duckdb",
        memory_limit=SMALL_LIMIT,
        threads=2,
        maintenance_interval=1e9,
    )
    try:
        store.call(
            lambda conn: conn.execute(
                "INSERT INTO rollup SELECT TIMESTAMPTZ '2026-11-01 00:00:00+00'"
                " + to_minutes((i % 1440)::BIGINT), i % 3, 1, i % 5, i % 7,"
                f" 'product-' || (i // 11)::VARCHAR, 1 + i % 4, i % 2, 0.5 FROM range({GROUPS})"
                " AS t(i)"
            )
        )
        plan = QueryPlan(
            start=datetime(2026, 11, 1, tzinfo=UTC),
            end=datetime(2026, 11, 2, tzinfo=UTC),
            advertiser_ids=(0, 1, 2),
            dimensions=(
                Dimension.ADVERTISER_ID,
                Dimension.CAMPAIGN_ID,
                Dimension.SELLER_ID,
                Dimension.PRODUCT_ID,
            ),
        )
        # The case is real: as one query, this report does not fit the limit.
        params = {"start": plan.start, "end": plan.end}
        with pytest.raises(duckdb.OutOfMemoryException):  # noqa: PT012 - the read is the act
            cursor = store._cursor()
            try:
                for _ in cursor.sql(render_aggregate(plan), params=params).to_arrow_reader(65_536):
                    pass
            finally:
                cursor.close()
        assert store.part_rows < GROUPS

        sink = io.BytesIO()
        result = write_export(
            store.aggregate(plan),
            columns=plan.columns,
            file_format=FileFormat.CSV,
            timezone=plan.timezone,
            sink=sink,
        )
        assert result.rows == GROUPS  # every (advertiser, campaign, seller, product) once
        table = pa_csv.read_csv(io.BytesIO(sink.getvalue()))
        assert pc.sum(table["displays"]).as_py() == sum(1 + i % 4 for i in range(GROUPS))
        keys = ["advertiserId", "campaignId", "sellerId", "productId"]
        order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys])
        assert order.equals(pa.array(range(GROUPS), pa.uint64()))
    finally:
        store.close()


def _rows(batches: Iterator[pa.RecordBatch]) -> list[dict[str, object]]:
    return [row for batch in batches for row in batch.to_pylist()]


@OVERLAPPED
def test_every_part_reads_the_snapshot_of_the_first(
    store: DuckDBEventStore, overlapped: bool
) -> None:
    # Parts run one after the other or, where the memory allows, each while the one before
    # is read, on a second cursor: either way every part sees the store as it was when the
    # read began, even when rows are committed between two parts.
    plan = _plan([Dimension.ADVERTISER_ID, Dimension.PRODUCT_ID, Dimension.DAY])
    before = _rows(store.aggregate(plan))
    _cut(store, overlapped)
    batches = store.aggregate(plan, batch_rows=7)
    first = next(batches)
    store.append(rollup_table(_events()))  # every key's sums double, in every part
    assert _rows(iter([first, *batches])) == before
    assert _rows(store.aggregate(plan)) != before  # the commit is there for a new read


@OVERLAPPED
def test_a_read_in_parts_given_up_midway_leaves_the_store_usable(
    store: DuckDBEventStore, overlapped: bool
) -> None:
    # The export is cancelled between batches of a part, or at a part's end, maybe while
    # the next part's query runs on the second cursor: giving up the iterator stops it and
    # ends its transactions, and reads and writes go on.
    plan = _plan([Dimension.HOUR, Dimension.PRODUCT_ID, Dimension.SELLER_ID])
    whole = _rows(store.aggregate(plan))
    _cut(store, overlapped)
    for taken in (1, 5, 40):
        batches = store.aggregate(plan, batch_rows=3)
        for _ in range(taken):
            next(batches)
        assert isinstance(batches, Generator)
        batches.close()
    assert _rows(store.aggregate(plan)) == whole
    store.append(rollup_table(_events()))
    assert len(_rows(store.aggregate(plan))) == len(whole)
