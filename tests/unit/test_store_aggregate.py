"""DuckDBEventStore.aggregate against the naive reference in ``tests/reference.py``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, Metric
from mpo_realtime.store.base import IngestReceipt, IngestRequest
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from tests.reference import (
    Event,
    Row,
    bucket_start,
    expected_rows,
    format_bucket,
    rollup_table,
)

TIMEOUT = 30.0
#: far enough ahead that every stored minute is settled and compactable
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
#: every event of the strategies below (a year: plans that span decades are slow to render)
ALL_TIME = (datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))

ZONES = (
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Pacific/Chatham",
)
#: UTC instants of 2026 offset changes in ZONES (and the zone), plus a year boundary
ANCHORS: dict[datetime, str] = {
    datetime(2026, 1, 1, tzinfo=UTC): "Asia/Kolkata",
    datetime(2026, 3, 8, 5, 30, tzinfo=UTC): "America/St_Johns",  # spring forward
    datetime(2026, 3, 8, 7, tzinfo=UTC): "America/New_York",  # spring forward
    datetime(2026, 3, 29, 1, tzinfo=UTC): "Europe/Paris",  # spring forward
    datetime(2026, 4, 4, 14, tzinfo=UTC): "Pacific/Chatham",  # fall back, at 03:45 local
    datetime(2026, 4, 4, 15, tzinfo=UTC): "Australia/Lord_Howe",  # fall back by 30 minutes
    datetime(2026, 9, 26, 14, tzinfo=UTC): "Pacific/Chatham",  # spring forward
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC): "Australia/Lord_Howe",  # spring forward
    datetime(2026, 10, 25, 1, tzinfo=UTC): "Europe/Paris",  # fall back
    datetime(2026, 11, 1, 6, tzinfo=UTC): "America/New_York",  # fall back
}

ADVERTISERS = (1, 2, 3)
PARTNERS = (10, 20)
CAMPAIGNS = (100, 200, 2**63 - 1)
SELLERS = (7, 8)
#: IDs that no event carries, so that some filters match nothing
MISSING_ID = 999
PRODUCTS = ("SKU-1", "sku-1", 'SKU, "XL"', "Café", "日本", "B", "a", "a\x00", " ", "😀")
ENTITY_DIMENSIONS = (
    Dimension.ADVERTISER_ID,
    Dimension.PARTNER_ID,
    Dimension.CAMPAIGN_ID,
    Dimension.SELLER_ID,
    Dimension.PRODUCT_ID,
)
BUCKETS = (Dimension.DAY, Dimension.WEEK, Dimension.MONTH, Dimension.YEAR)
TIMESTAMP = pa.timestamp("us", tz="UTC")


# -- helpers -------------------------------------------------------------------------------


@contextlib.contextmanager
def _open_store() -> Iterator[DuckDBEventStore]:
    store = DuckDBEventStore(":memory:", flush_interval=0.002)
    try:
        yield store
    finally:
        store.close()


def _arrow_type(column: str) -> pa.DataType:
    if column in {d.value for d in ENTITY_DIMENSIONS if d is not Dimension.PRODUCT_ID}:
        return pa.int64()
    if column == Dimension.PRODUCT_ID.value:
        return pa.string()
    if column == Metric.COST.value:
        return pa.decimal128(38, 9)  # exact sums, wider than any row
    if column in (Metric.CLICKS.value, Metric.DISPLAYS.value):
        return pa.decimal128(38, 0)
    return TIMESTAMP


def _store_rows(store: DuckDBEventStore, plan: QueryPlan, *, batch_rows: int = 65_536) -> list[Row]:
    expected_schema = pa.schema([(c, _arrow_type(c)) for c in plan.columns])
    rows: list[Row] = []
    for batch in store.aggregate(plan, batch_rows=batch_rows):
        assert batch.schema.remove_metadata() == expected_schema
        rows.extend(zip(*(column.to_pylist() for column in batch.columns), strict=True))
    return rows


def _assert_rows_match(got: Sequence[Row], expected: Sequence[Row], plan: QueryPlan) -> None:
    """Same rows in the same order, every value exact (cost to the last decimal)."""
    assert list(got) == list(expected)


def _plan(
    dimensions: Sequence[Dimension],
    metrics: Sequence[Metric] = (Metric.CLICKS, Metric.DISPLAYS, Metric.COST),
    *,
    timezone: str = "UTC",
    start: datetime = ALL_TIME[0],
    end: datetime = ALL_TIME[1],
    advertiser_ids: tuple[int, ...] = (),
) -> QueryPlan:
    return QueryPlan(
        start=start,
        end=end,
        advertiser_ids=advertiser_ids,
        dimensions=tuple(dimensions),
        metrics=tuple(metrics),
        timezone=timezone,
    )


def _event(minute: datetime, *, advertiser_id: int = 1, **values: int | Decimal | str) -> Event:
    fields: dict[str, int | Decimal | str] = {
        "partner_id": 10,
        "campaign_id": 100,
        "seller_id": 7,
        "product_id": "SKU-1",
        "displays": 1,
        "clicks": 0,
        "cost": Decimal(0),
    }
    fields.update(values)
    return Event(minute, advertiser_id, **fields)  # type: ignore[arg-type]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _checked_rows(events: Sequence[Event], plan: QueryPlan) -> list[Row]:
    """The store's rows for ``plan`` (events appended in bulk), checked against the reference."""
    with _open_store() as store:
        store.append(rollup_table(events))
        got = _store_rows(store, plan)
    _assert_rows_match(got, expected_rows(events, plan), plan)
    return got


# -- strategies ----------------------------------------------------------------------------

products = st.one_of(
    st.sampled_from(PRODUCTS),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=6),
)
#: roll-up rows, up to the largest a row holds: sums past 64 bits must stay exact
MAX_ROW_COST = Decimal("999999999.999999999")
counts = st.one_of(
    st.just(0), st.integers(0, 3), st.integers(0, 2**40), st.just(2**63 - 1), st.just(10**6)
)
costs = st.one_of(
    st.just(Decimal(0)),
    st.just(Decimal("0.1")),
    st.decimals(0, 10**6, places=9),
    st.decimals(0, MAX_ROW_COST, places=9),
    st.just(MAX_ROW_COST),
    st.just(Decimal("0.000000001")),
)
offsets = st.one_of(st.integers(-150, 150), st.integers(-5 * 1440, 5 * 1440))


@st.composite
def event_lists(draw: st.DrawFn, anchors: Sequence[datetime]) -> list[Event]:
    events = []
    for _ in range(draw(st.integers(0, 40))):
        minute = draw(st.sampled_from(anchors)) + timedelta(minutes=draw(offsets))
        events.append(
            Event(
                minute=minute,
                advertiser_id=draw(st.sampled_from(ADVERTISERS)),
                partner_id=draw(st.sampled_from(PARTNERS)),
                campaign_id=draw(st.sampled_from(CAMPAIGNS)),
                seller_id=draw(st.sampled_from(SELLERS)),
                product_id=draw(products),
                displays=draw(counts),
                clicks=draw(counts),
                cost=draw(costs),
                seller_name=draw(st.sampled_from((None, "Maison Durand", "O'Brien, Gear & Co."))),
            )
        )
    return events


def _id_filter(pool: tuple[int, ...]) -> st.SearchStrategy[tuple[int, ...]]:
    chosen = st.lists(st.sampled_from((*pool, MISSING_ID)), min_size=1, max_size=3, unique=True)
    return st.one_of(st.just(()), st.just(()), chosen.map(tuple))


def _instants(anchors: Sequence[datetime], events: Sequence[Event]) -> st.SearchStrategy[datetime]:
    """Interval bounds: near an anchor, or exactly on (or 30 s after) an event's minute."""
    near_anchor = st.builds(
        lambda anchor, minutes: anchor + timedelta(minutes=minutes),
        st.sampled_from(anchors),
        st.one_of(st.integers(-75, 75), offsets),
    )
    if not events:
        return near_anchor
    on_event = st.sampled_from([e.minute for e in events])
    shifted = st.builds(lambda t, s: t + timedelta(seconds=s), on_event, st.sampled_from((0, 30)))
    return st.one_of(near_anchor, shifted, shifted)


@st.composite
def query_plans(draw: st.DrawFn, anchors: Sequence[datetime], events: Sequence[Event]) -> QueryPlan:
    entities = draw(st.lists(st.sampled_from(ENTITY_DIMENSIONS), unique=True, max_size=5))
    time_options: list[Dimension | None] = [None, *BUCKETS]
    if Dimension.PRODUCT_ID not in entities:
        time_options += [Dimension.MINUTE, Dimension.HOUR]
    if not entities:
        time_options.remove(None)
    time_dimension = draw(st.sampled_from(time_options))
    dimensions = entities if time_dimension is None else [*entities, time_dimension]
    metrics = draw(st.permutations(list(Metric)))[: draw(st.integers(1, 3))]
    start, end = ALL_TIME
    bounds = draw(st.sampled_from(("all", "start", "end", "both", "both", "length")))
    if bounds in ("start", "both", "length"):
        start = draw(_instants(anchors, events))
    if bounds in ("end", "both"):
        end = draw(_instants(anchors, events))
    if bounds == "both" and end < start and draw(st.booleans()):
        start, end = end, start
    if bounds == "length":
        end = start + timedelta(minutes=draw(st.integers(-60, 8 * 1440)))
    return QueryPlan(
        start=start,
        end=end,
        advertiser_ids=draw(_id_filter(ADVERTISERS)),
        campaign_ids=draw(_id_filter(CAMPAIGNS)),
        seller_ids=draw(_id_filter(SELLERS)),
        partner_ids=draw(_id_filter(PARTNERS)),
        dimensions=tuple(draw(st.permutations(dimensions))),
        metrics=tuple(metrics),
        # Often the zone whose offset changes at one of the anchors.
        timezone=draw(st.sampled_from(ZONES) | st.sampled_from([ANCHORS[a] for a in anchors])),
    )


def _ingest(store: DuckDBEventStore, events: list[Event], data: st.DataObject) -> None:
    """Store ``events`` through a random mix of append, submit and compaction."""
    pending: list[tuple[Future[IngestReceipt], int]] = []
    rest = events
    while rest:
        size = data.draw(st.integers(1, len(rest)), label="chunk")
        chunk, rest = rest[:size], rest[size:]
        table = rollup_table(chunk)
        if data.draw(st.booleans(), label="append"):
            assert store.append(table) == len(chunk)
        else:
            pending.append((store.submit(IngestRequest(table, events=len(chunk))), len(chunk)))
        if data.draw(st.integers(0, 3), label="compact") == 0:
            store.compact(FAR_FUTURE)
    for future, count in pending:
        assert future.result(timeout=TIMEOUT) == IngestReceipt(events=count)


# -- the property --------------------------------------------------------------------------


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_store_aggregate_matches_reference(data: st.DataObject) -> None:
    anchors = data.draw(
        st.lists(st.sampled_from(list(ANCHORS)), min_size=1, max_size=2, unique=True),
        label="anchors",
    )
    events = data.draw(event_lists(anchors), label="events")
    plans = data.draw(st.lists(query_plans(anchors, events), min_size=1, max_size=3), label="plans")
    with _open_store() as store:
        _ingest(store, events, data)
        for plan in plans:
            batch_rows = data.draw(st.sampled_from((1, 3, 65_536)), label="batch_rows")
            got = _store_rows(store, plan, batch_rows=batch_rows)
            _assert_rows_match(got, expected_rows(events, plan), plan)


# -- targeted examples ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "minutes", "labels"),
    [
        pytest.param(
            "Europe/Paris",
            ["2026-10-25T00:30Z", "2026-10-25T00:59Z", "2026-10-25T01:00Z", "2026-10-25T01:30Z"],
            [("2026-10-25T02:00:00+02:00", 2), ("2026-10-25T02:00:00+01:00", 2)],
            id="paris-fall-back-repeated-hour-is-two-buckets",
        ),
        pytest.param(
            "Europe/Paris",
            ["2026-03-29T00:59Z", "2026-03-29T01:00Z"],
            [("2026-03-29T01:00:00+01:00", 1), ("2026-03-29T03:00:00+02:00", 1)],
            id="paris-spring-forward",
        ),
        pytest.param(
            "America/New_York",
            ["2026-11-01T05:15Z", "2026-11-01T06:15Z"],
            [("2026-11-01T01:00:00-04:00", 1), ("2026-11-01T01:00:00-05:00", 1)],
            id="new-york-fall-back",
        ),
        pytest.param(
            "Asia/Kathmandu",
            ["2026-03-29T09:14Z", "2026-03-29T09:15Z", "2026-03-29T10:14Z"],
            [("2026-03-29T14:00:00+05:45", 1), ("2026-03-29T15:00:00+05:45", 2)],
            id="kathmandu-45-minute-offset",
        ),
        pytest.param(
            "Asia/Kolkata",
            ["2026-03-29T09:29Z", "2026-03-29T09:30Z"],
            [("2026-03-29T14:00:00+05:30", 1), ("2026-03-29T15:00:00+05:30", 1)],
            id="kolkata-30-minute-offset",
        ),
        pytest.param(
            "America/St_Johns",
            ["2026-11-01T03:45Z", "2026-11-01T04:45Z"],
            [("2026-11-01T01:00:00-02:30", 1), ("2026-11-01T01:00:00-03:30", 1)],
            id="st-johns-fall-back-with-half-hour-offset",
        ),
    ],
)
def test_store_aggregate_hour_buckets_are_local_hour_starts(
    zone: str, minutes: list[str], labels: list[tuple[str, int]]
) -> None:
    events = [_event(_utc(m)) for m in minutes]
    rows = _checked_rows(events, _plan([Dimension.HOUR], [Metric.DISPLAYS], timezone=zone))
    assert [(format_bucket(r[0], zone), r[1]) for r in rows if isinstance(r[0], datetime)] == [
        (label, minutes_in_bucket) for label, minutes_in_bucket in labels
    ]


#: zones whose clock changes away from a local top of hour: the part of an hour on the
#: far side of the change is a bucket of its own, starting at the change
OFF_THE_HOUR_DST_CASES = [
    pytest.param(
        "Pacific/Chatham",
        ["2026-09-26T13:50Z", "2026-09-26T14:05Z"],
        # 02:50+12:45, then 03:50+13:45: the clock jumps 02:45 -> 03:45
        ["2026-09-27T02:00:00+12:45", "2026-09-27T03:45:00+13:45"],
        id="chatham-spring-forward",
    ),
    pytest.param(
        "Pacific/Chatham",
        ["2026-04-04T13:50Z", "2026-04-04T14:05Z"],
        # 03:35+13:45, then 02:50+12:45: the clock falls back 03:45 -> 02:45
        ["2026-04-05T03:00:00+13:45", "2026-04-05T02:45:00+12:45"],
        id="chatham-fall-back",
    ),
    pytest.param(
        "Australia/Lord_Howe",
        ["2026-04-04T14:45Z", "2026-04-04T15:10Z"],
        # 01:45+11:00, then 01:40+10:30: the clock falls back 02:00 -> 01:30
        ["2026-04-05T01:00:00+11:00", "2026-04-05T01:30:00+10:30"],
        id="lord-howe-fall-back-by-30-minutes",
    ),
    pytest.param(
        "Australia/Lord_Howe",
        ["2026-10-03T15:20Z", "2026-10-03T15:40Z"],
        # 01:50+10:30, then 02:40+11:00: the clock jumps 02:00 -> 02:30
        ["2026-10-04T01:00:00+10:30", "2026-10-04T02:30:00+11:00"],
        id="lord-howe-spring-forward-by-30-minutes",
    ),
]


@pytest.mark.parametrize(("zone", "minutes", "labels"), OFF_THE_HOUR_DST_CASES)
def test_reference_hour_buckets_across_off_the_hour_dst_change(
    zone: str, minutes: list[str], labels: list[str]
) -> None:
    events = [_event(_utc(m)) for m in minutes]
    rows = expected_rows(events, _plan([Dimension.HOUR], [Metric.DISPLAYS], timezone=zone))
    assert [(format_bucket(r[0], zone), r[1]) for r in rows if isinstance(r[0], datetime)] == [
        (label, 1) for label in labels
    ]


@pytest.mark.parametrize(("zone", "minutes", "labels"), OFF_THE_HOUR_DST_CASES)
def test_store_aggregate_hour_buckets_across_off_the_hour_dst_change(
    zone: str, minutes: list[str], labels: list[str]
) -> None:
    events = [_event(_utc(m)) for m in minutes]
    _checked_rows(events, _plan([Dimension.HOUR], [Metric.DISPLAYS], timezone=zone))


@pytest.mark.parametrize(
    ("zone", "start", "minute"),
    [
        # Lord Howe falls back at 15:00Z; the interval starts at or 10 minutes after it.
        ("Australia/Lord_Howe", "2026-04-04T15:00Z", "2026-04-04T15:10Z"),
        ("Australia/Lord_Howe", "2026-04-04T15:10Z", "2026-04-04T15:10Z"),
        # Chatham springs forward at 14:00Z (02:45 -> 03:45).
        ("Pacific/Chatham", "2026-09-26T14:05Z", "2026-09-26T14:10Z"),
    ],
)
def test_store_aggregate_hour_bucket_when_interval_starts_just_after_the_change(
    zone: str, start: str, minute: str
) -> None:
    plan = _plan([Dimension.HOUR], [Metric.DISPLAYS], timezone=zone, start=_utc(start))
    _checked_rows([_event(_utc(minute))], plan)


def test_store_aggregate_week_starts_on_local_monday() -> None:
    events = [
        _event(_utc("2026-03-22T23:30+00:00")),  # Monday 00:30 in Paris
        _event(_utc("2026-03-29T12:00+00:00")),  # Sunday
        _event(_utc("2026-03-29T22:30+00:00")),  # Monday 00:30, now summer time
        _event(_utc("2026-03-22T22:30+00:00")),  # Sunday 23:30 of the week before
    ]
    rows = _checked_rows(
        events, _plan([Dimension.WEEK], [Metric.DISPLAYS], timezone="Europe/Paris")
    )
    labels = [
        (format_bucket(r[0], "Europe/Paris"), r[1]) for r in rows if isinstance(r[0], datetime)
    ]
    assert labels == [
        ("2026-03-16T00:00:00+01:00", 1),
        ("2026-03-23T00:00:00+01:00", 2),
        ("2026-03-30T00:00:00+02:00", 1),
    ]


@pytest.mark.parametrize(
    ("dimension", "zone", "label"),
    [
        (Dimension.DAY, "Asia/Kolkata", "2026-01-01T00:00:00+05:30"),
        (Dimension.MONTH, "Asia/Kolkata", "2026-01-01T00:00:00+05:30"),
        (Dimension.YEAR, "Asia/Kolkata", "2026-01-01T00:00:00+05:30"),
        (Dimension.YEAR, "UTC", "2025-01-01T00:00:00+00:00"),
        (Dimension.MONTH, "America/New_York", "2025-12-01T00:00:00-05:00"),
        (Dimension.WEEK, "Pacific/Chatham", "2025-12-29T00:00:00+13:45"),
    ],
)
def test_store_aggregate_calendar_buckets_are_local_midnights(
    dimension: Dimension, zone: str, label: str
) -> None:
    # 2025-12-31T19:00Z is 2026-01-01 00:30 in Kolkata, still 2025 in UTC and New York.
    events = [_event(_utc("2025-12-31T19:00+00:00"))]
    rows = _checked_rows(events, _plan([dimension], [Metric.DISPLAYS], timezone=zone))
    assert [(format_bucket(r[0], zone), r[1]) for r in rows if isinstance(r[0], datetime)] == [
        (label, 1)
    ]


@pytest.mark.parametrize(
    "plan",
    [
        pytest.param(_plan([Dimension.ADVERTISER_ID], advertiser_ids=(MISSING_ID,)), id="filter"),
        pytest.param(
            _plan(
                [Dimension.HOUR],
                start=datetime(2026, 1, 1, 12, tzinfo=UTC),
                end=datetime(2026, 1, 1, 12, tzinfo=UTC),
            ),
            id="empty-interval",
        ),
        pytest.param(
            _plan(
                [Dimension.PRODUCT_ID],
                start=datetime(2026, 1, 1, 12, 0, 1, tzinfo=UTC),
                end=datetime(2026, 1, 2, tzinfo=UTC),
            ),
            id="start-after-the-only-minute",
        ),
        pytest.param(
            _plan(
                [Dimension.DAY],
                start=datetime(2025, 1, 1, tzinfo=UTC),
                end=datetime(2026, 1, 1, 12, tzinfo=UTC),
            ),
            id="end-is-exclusive",
        ),
    ],
)
def test_store_aggregate_empty_result(plan: QueryPlan) -> None:
    assert _checked_rows([_event(datetime(2026, 1, 1, 12, tzinfo=UTC))], plan) == []


@pytest.mark.parametrize(
    ("metrics", "advertisers"),
    [
        ((Metric.DISPLAYS,), [3]),
        ((Metric.CLICKS,), [2]),
        ((Metric.COST,), [4]),
        ((Metric.CLICKS, Metric.DISPLAYS), [2, 3]),
        ((Metric.COST, Metric.CLICKS, Metric.DISPLAYS), [2, 3, 4]),
    ],
)
def test_store_aggregate_drops_rows_whose_metrics_are_all_zero(
    metrics: tuple[Metric, ...], advertisers: list[int]
) -> None:
    minute = datetime(2026, 1, 1, tzinfo=UTC)
    events = [
        _event(minute, advertiser_id=1, displays=0, clicks=0),
        _event(minute, advertiser_id=1, displays=0, clicks=0),
        _event(minute, advertiser_id=2, displays=0, clicks=3),
        _event(minute, advertiser_id=3, displays=2, clicks=0),
        _event(minute, advertiser_id=4, displays=0, clicks=0, cost=Decimal("0.000000001")),
    ]
    rows = _checked_rows(events, _plan([Dimension.ADVERTISER_ID], metrics))
    assert [row[0] for row in rows] == advertisers


def test_store_aggregate_orders_strings_by_code_point() -> None:
    minute = datetime(2026, 1, 1, tzinfo=UTC)
    names = ["😀", "日本", "é", "a\x00", "a", "B", " ", "ab", 'SKU, "XL"']
    rows = _checked_rows(
        [_event(minute, product_id=p) for p in names], _plan([Dimension.PRODUCT_ID])
    )
    assert [row[0] for row in rows] == sorted(names)


def test_store_aggregate_sums_flushes_appends_and_compaction() -> None:
    minute = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    events = [
        _event(minute + timedelta(minutes=i % 3), clicks=i, cost=Decimal("0.1")) for i in range(30)
    ]
    plan = _plan([Dimension.ADVERTISER_ID, Dimension.MINUTE], timezone="Europe/Paris")
    with _open_store() as store:
        store.append(rollup_table(events[:10]))
        receipt = store.submit(IngestRequest(rollup_table(events[10:20]), events=10))
        assert receipt.result(timeout=TIMEOUT) == IngestReceipt(events=10)
        assert store.totals()["rows"] == 10 + 3  # raw appends, one pre-aggregated flush
        store.compact(FAR_FUTURE)
        assert store.totals()["rows"] == 3  # one row per roll-up key
        store.append(rollup_table(events[20:]))
        got = _store_rows(store, plan)
    _assert_rows_match(got, expected_rows(events, plan), plan)


def test_reference_bucket_start_is_idempotent() -> None:
    for zone in ZONES:
        for anchor in ANCHORS:
            for minutes in range(-90, 91, 5):
                instant = anchor + timedelta(minutes=minutes)
                for dimension in (Dimension.MINUTE, Dimension.HOUR, *BUCKETS):
                    start = bucket_start(instant, dimension, zone)
                    assert start <= instant
                    assert bucket_start(start, dimension, zone) == start
