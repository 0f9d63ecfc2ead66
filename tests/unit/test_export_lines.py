"""CSV and JSON text made by DuckDB (``render_export_lines``) equals the writers' byte for byte.

The runner writes CSV and JSON exports from rows the store formats itself
(``DuckDBEventStore.export_lines`` + ``write_lines``). ``write_export`` over the typed
rows (``DuckDBEventStore.aggregate``) is the reference: the files must be identical in
every case the writers know, on a real DuckDB store.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, FileFormat, Metric
from mpo_realtime.exports.writers import write_export, write_lines
from mpo_realtime.store.base import MAX_ROW_COST, MAX_ROW_COUNT
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from tests.reference import Event, rollup_table

ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "America/St_Johns",  # -03:30 / -02:30
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # +10:30 / +11:00: a 30-minute DST
    "Pacific/Chatham",  # +12:45 / +13:45, changing at 02:45 local
]
#: around DST changes of 2026: Europe and America in March, October, November; the south
#: in April (Lord Howe, Chatham)
ANCHORS = [
    datetime(2026, 3, 8, 5, tzinfo=UTC),
    datetime(2026, 3, 29, 0, tzinfo=UTC),
    datetime(2026, 4, 4, 12, tzinfo=UTC),
    datetime(2026, 10, 25, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 4, tzinfo=UTC),
]
TIME_DIMENSIONS = [
    Dimension.MINUTE,
    Dimension.HOUR,
    Dimension.DAY,
    Dimension.WEEK,
    Dimension.MONTH,
    Dimension.YEAR,
]
#: strings a CSV must quote and JSON must escape, and some it must leave alone
AWKWARD = [
    "plain",
    'q"uote',
    'two""quotes"',
    "comma,inside",
    "new\nline",
    "carriage\r\nreturn",
    "back\\slash",
    "tab\there",
    "\\u000B literal",  # the text of an escape, not a control character
    "\\\\u00",
    "".join(chr(code) for code in range(1, 0x20)),
    "del\x7f",
    "é ü ß 中文 🛒",
    "line\u2028separator",
    "",
    "'single'",
    "/slash/",
]


def _files(
    store: DuckDBEventStore, plan: QueryPlan, file_format: FileFormat
) -> tuple[bytes, bytes]:
    """(the writers' file from typed rows, the file from the store's lines)."""
    old, new = io.BytesIO(), io.BytesIO()
    reference = write_export(
        store.aggregate(plan, batch_rows=7),
        columns=plan.columns,
        file_format=file_format,
        timezone=plan.timezone,
        sink=old,
    )
    result = write_lines(
        store.export_lines(plan, file_format, batch_rows=5),
        columns=plan.columns,
        file_format=file_format,
        sink=new,
    )
    assert (result.rows, result.bytes) == (reference.rows, reference.bytes)
    return old.getvalue(), new.getvalue()


def _assert_identical(store: DuckDBEventStore, plan: QueryPlan) -> None:
    for file_format in (FileFormat.CSV, FileFormat.JSON):
        old, new = _files(store, plan, file_format)
        assert new == old, (file_format, plan)


@pytest.fixture
def store(quiet_store: DuckDBEventStore) -> DuckDBEventStore:
    return quiet_store


def _events(anchor: datetime, products: Sequence[str], hours: int = 36) -> list[Event]:
    """A few hundred rows over ``hours`` after ``anchor``: every entity, product and cost shape."""
    costs = [Decimal("0.1"), Decimal("0.000000001"), Decimal("12.5"), Decimal("7"), Decimal(0)]
    events = []
    for i, minute in enumerate(range(0, hours * 60, 37)):
        events.append(
            Event(
                minute=anchor + timedelta(minutes=minute),
                advertiser_id=100 + i % 2,
                partner_id=1 + i % 3,
                campaign_id=10 + i % 4,
                seller_id=20 + i % 5,
                product_id=products[i % len(products)],
                displays=1 + i,
                clicks=i % 3,
                cost=costs[i % len(costs)],
            )
        )
    return events


def _plan(
    anchor: datetime, dimensions: Sequence[Dimension], zone: str, **more: object
) -> QueryPlan:
    return QueryPlan(
        start=anchor - timedelta(hours=2),
        end=anchor + timedelta(hours=40),
        advertiser_ids=(100, 101),
        dimensions=tuple(dimensions),
        timezone=zone,
        **more,  # type: ignore[arg-type]
    )


def test_time_buckets_in_every_zone_and_dst_change(store: DuckDBEventStore) -> None:
    for anchor in ANCHORS:
        store.append(rollup_table(_events(anchor, ["p1", "p2"])))
    cases = itertools.chain(
        itertools.product(ANCHORS, ZONES, [Dimension.MINUTE, Dimension.HOUR, Dimension.DAY]),
        itertools.product(ANCHORS[2:4], ZONES, [Dimension.WEEK, Dimension.MONTH, Dimension.YEAR]),
    )
    for anchor, zone, bucket in cases:
        _assert_identical(store, _plan(anchor, [Dimension.ADVERTISER_ID, bucket], zone))


def test_dimension_sets_filters_and_metric_orders(store: DuckDBEventStore) -> None:
    anchor = ANCHORS[3]
    store.append(rollup_table(_events(anchor, AWKWARD)))
    dimension_sets = [
        [Dimension.ADVERTISER_ID],
        [Dimension.SELLER_ID, Dimension.PRODUCT_ID],
        [Dimension.PRODUCT_ID, Dimension.DAY],
        [
            Dimension.YEAR,
            Dimension.PARTNER_ID,
            Dimension.CAMPAIGN_ID,
            Dimension.SELLER_ID,
            Dimension.ADVERTISER_ID,
        ],
        [Dimension.CAMPAIGN_ID, Dimension.MINUTE],
    ]
    metric_orders = [
        (Metric.CLICKS, Metric.DISPLAYS, Metric.COST),
        (Metric.COST,),
        (Metric.DISPLAYS, Metric.CLICKS),
        (Metric.COST, Metric.CLICKS),
    ]
    filters: list[dict[str, tuple[int, ...]]] = [
        {},
        {"campaign_ids": (10, 12)},
        {"seller_ids": (21,), "partner_ids": (1, 2)},
    ]
    cases = itertools.chain(
        itertools.product(dimension_sets, metric_orders[:1], filters),
        itertools.product(dimension_sets[2:4], metric_orders[1:], filters[:1]),
    )
    for dimensions, metrics, chosen in cases:
        plan = _plan(anchor, dimensions, "Asia/Kathmandu", metrics=metrics, **chosen)
        _assert_identical(store, plan)


def test_lines_read_in_parts_are_the_lines_of_one_query(store: DuckDBEventStore) -> None:
    # A read past ``part_rows`` runs one query per range of the sort order: each part's
    # lines must hold that range only, so that the file is the one query's, row for row.
    anchor = ANCHORS[3]
    store.append(rollup_table(_events(anchor, AWKWARD)))
    plan = _plan(anchor, [Dimension.HOUR, Dimension.PRODUCT_ID], "Europe/Paris")
    whole = {f: _files(store, plan, f) for f in (FileFormat.CSV, FileFormat.JSON)}
    assert whole[FileFormat.CSV][1].count(b"\n") > 40  # header and one line per row
    store.part_rows = 10  # some 60 input rows: six parts or so
    for file_format in (FileFormat.CSV, FileFormat.JSON):
        assert _files(store, plan, file_format) == whole[file_format]


def test_null_values_print_as_the_writers_print_them(store: DuckDBEventStore) -> None:
    # The store's columns are NOT NULL, but the lines promise the writers' text for any
    # rows, and the writers print a null as an empty CSV cell and as JSON null.
    anchor = ANCHORS[1]
    store.append(rollup_table(_events(anchor, ["p1", "p2"])))

    def add_nulls(conn: duckdb.DuckDBPyConnection) -> None:
        for column in ("seller_id", "product_id"):
            conn.execute(f"ALTER TABLE rollup ALTER {column} DROP NOT NULL")
        conn.execute(
            "INSERT INTO rollup VALUES"
            f" (TIMESTAMPTZ '{anchor.isoformat()}', 100, 1, 10, NULL, NULL, 3, 1, 0.5)"
        )

    store.call(add_nulls)
    plan = _plan(anchor, [Dimension.SELLER_ID, Dimension.PRODUCT_ID], "UTC")
    _assert_identical(store, plan)
    csv, _ = _files(store, plan, FileFormat.CSV)
    json_file, _ = _files(store, plan, FileFormat.JSON)
    assert csv.endswith(b"\n,,1,3,0.5\n")  # nulls sort last
    assert b",[null,null,1,3,0.5]]" in json_file


def test_empty_results(store: DuckDBEventStore) -> None:
    anchor = ANCHORS[0]
    store.append(rollup_table(_events(anchor, ["p"])))
    later = anchor + timedelta(days=10)
    for dimensions in ([Dimension.ADVERTISER_ID], [Dimension.PRODUCT_ID, Dimension.HOUR]):
        _assert_identical(store, _plan(later, dimensions, "Europe/Paris"))  # no rows then
        nobody = _plan(anchor, dimensions, "UTC", campaign_ids=(999,))
        _assert_identical(store, nobody)
    csv, _ = _files(store, _plan(later, [Dimension.ADVERTISER_ID], "UTC"), FileFormat.CSV)
    assert csv == b'"advertiserId","clicks","displays","cost"\n'


def test_strings_that_need_quoting_or_escaping(store: DuckDBEventStore) -> None:
    anchor = ANCHORS[1]
    store.append(rollup_table(_events(anchor, AWKWARD, hours=60)))
    for dimensions in ([Dimension.PRODUCT_ID], [Dimension.ADVERTISER_ID, Dimension.PRODUCT_ID]):
        _assert_identical(store, _plan(anchor, dimensions, "UTC"))
    old, _ = _files(store, _plan(anchor, [Dimension.PRODUCT_ID], "UTC"), FileFormat.CSV)
    assert b'"q""uote"' in old and b'"comma,inside"' in old  # the cases are really there


def test_money_and_counts_at_their_limits(store: DuckDBEventStore) -> None:
    """Sums past 10**9 (cost) and past 2**63 (counts) take the engine's general path."""
    minute = ANCHORS[2]
    shapes = [
        (MAX_ROW_COST, MAX_ROW_COUNT, 3),  # sums of 3e9 and 3 * (2**63 - 1)
        (Decimal("999999999.999999999"), 1, 1),  # the largest of the quick path
        (Decimal("500000000"), 0, 2),  # 10**9: the first past it
        (Decimal("0.000000001"), 0, 1),
        (Decimal("0.100000000"), 5, 1),
        (Decimal("10.000000000"), 5, 1),
        (Decimal("0"), 7, 1),
        (Decimal("123456.789012345"), 0, 1),
        # counts of 10**9 end in zeros that only cost may lose (its text is cut)
        (Decimal("0.5"), 500_000_000, 2),
    ]
    events = [
        Event(
            minute=minute,
            advertiser_id=100,
            partner_id=1,
            campaign_id=1,
            seller_id=seller,
            product_id=f"p{seller}",
            displays=count,
            clicks=count,
            cost=cost,
        )
        for seller, (cost, count, repeat) in enumerate(shapes)
        for _ in range(repeat)
    ]
    store.append(rollup_table(events))
    plan = _plan(minute, [Dimension.SELLER_ID], "UTC")
    _assert_identical(store, plan)
    old, _ = _files(store, plan, FileFormat.CSV)
    assert b"2999999999.999999997" in old and str(3 * MAX_ROW_COUNT).encode() in old
    assert b",1000000000\n" in old and b",0.1\n" in old and b",10\n" in old
    assert b"\n8,1000000000,1000000000,1\n" in old


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    products=st.lists(st.text(max_size=12), min_size=1, max_size=8),
    costs=st.lists(st.decimals(0, MAX_ROW_COST, places=9), min_size=1, max_size=8),
    zone=st.sampled_from(ZONES),
    bucket=st.sampled_from(TIME_DIMENSIONS),
)
def test_any_strings_and_costs(
    tmp_path_factory: pytest.TempPathFactory,
    products: list[str],
    costs: list[Decimal],
    zone: str,
    bucket: Dimension,
) -> None:
    anchor = ANCHORS[3]
    events = [
        Event(
            minute=anchor + timedelta(minutes=97 * i),
            advertiser_id=100,
            partner_id=1,
            campaign_id=1,
            seller_id=1,
            product_id=product,
            displays=1,
            clicks=0,
            cost=cost,
        )
        for i, (product, cost) in enumerate(zip(itertools.cycle(products), costs * 2, strict=False))
    ]
    path = tmp_path_factory.mktemp("lines") / "events.duckdb"
    store = DuckDBEventStore(path, maintenance_interval=1e9)
    try:
        store.append(rollup_table(events))
        _assert_identical(store, _plan(anchor, [Dimension.PRODUCT_ID], zone))
        _assert_identical(store, _plan(anchor, [Dimension.ADVERTISER_ID, bucket], zone))
    finally:
        store.close()
