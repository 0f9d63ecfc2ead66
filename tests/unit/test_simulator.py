"""Unit tests for the deterministic traffic simulator."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpo_realtime.domain.events import parse_events
from mpo_realtime.store.simulator import EVENT_SCHEMA, Simulator, World

START = datetime(2024, 5, 1, tzinfo=UTC)
WORLD = World.generate()
SIM = Simulator(WORLD)

aware_datetimes = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31)
).map(lambda d: d.replace(tzinfo=UTC))
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


def _table(batches: list[pa.RecordBatch]) -> pa.Table:
    return pa.Table.from_batches(batches, schema=EVENT_SCHEMA)


def _ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@pytest.fixture(scope="module")
def hour() -> pa.Table:
    """One evening hour of the default world at the default rate (~450k rows)."""
    start = START + timedelta(hours=18)
    return _table(list(SIM.backfill(start, start + timedelta(hours=1))))


# -- World ---------------------------------------------------------------------------------


def test_world_generate_is_deterministic() -> None:
    assert World.generate(seed=7) == World.generate(seed=7)
    assert World.generate(seed=7) != World.generate(seed=8)


def test_world_generate_sizes_follow_parameters() -> None:
    world = World.generate(
        partners=2, advertisers_per_partner=4, campaigns=3, sellers=5, products=40
    )
    assert len(world.advertisers) == 8
    assert len({a.partner_id for a in world.advertisers}) == 2
    for adv in world.advertisers:
        assert (len(adv.campaigns), len(adv.sellers), len(adv.products)) == (3, 5, 40)


def test_world_ids_are_unique_and_well_formed() -> None:
    advertisers = WORLD.advertisers
    adv_ids = [a.advertiser_id for a in advertisers]
    campaign_ids = [c.campaign_id for a in advertisers for c in a.campaigns]
    seller_ids = [s.seller_id for a in advertisers for s in a.sellers]
    # Unique across the world: each campaign and seller belongs to exactly one advertiser.
    assert len(set(adv_ids)) == len(adv_ids)
    assert len(set(campaign_ids)) == len(campaign_ids)
    assert len(set(seller_ids)) == len(seller_ids)
    assert all(100_000 <= i <= 999_999 for i in adv_ids)
    assert all(100_000_000 <= i <= 999_999_999 for i in seller_ids)
    assert all(i > 0 for i in campaign_ids + [a.partner_id for a in advertisers])
    for adv in advertisers:
        assert len(set(adv.products)) == len(adv.products)
        assert len({s.name for s in adv.sellers}) == len(adv.sellers)
        assert all(0 < len(p) <= 256 for p in adv.products)


def test_world_campaigns_have_plausible_ctr_and_cpc() -> None:
    for adv in WORLD.advertisers:
        scale = 100.0 if adv.currency == "JPY" else 1.0
        for campaign in adv.campaigns:
            assert 0.002 <= campaign.ctr <= 0.02
            assert 0.05 * scale <= campaign.cpc <= 1.5 * scale


def test_world_product_ids_are_mostly_sku_with_about_one_percent_odd() -> None:
    products = [p for a in World.generate(seed=3, products=20_000).advertisers for p in a.products]
    odd = {p for p in products if not (p.isascii() and "," not in p and '"' not in p)}
    assert all(p.startswith("SKU-") for p in products if p not in odd)
    assert 0.005 < len(odd) / len(products) < 0.02


def test_world_generate_rejects_empty_counts() -> None:
    with pytest.raises(ValueError, match="campaigns"):
        World.generate(campaigns=0)
    with pytest.raises(ValueError, match="seed"):
        World.generate(seed=-1)


# -- minute_rows -----------------------------------------------------------------------------


def test_minute_rows_schema_equals_event_schema() -> None:
    batch = SIM.minute_rows(START)
    assert batch.schema.equals(EVENT_SCHEMA)
    assert batch.num_rows > 0


def test_minute_rows_is_deterministic_per_seed() -> None:
    minute = START + timedelta(hours=20, minutes=5)
    first = Simulator(WORLD, seed=5).minute_rows(minute)
    again = Simulator(World.generate(), seed=5).minute_rows(minute)
    assert first.equals(again)
    assert not first.equals(Simulator(WORLD, seed=6).minute_rows(minute))
    assert not first.equals(Simulator(World.generate(seed=1), seed=5).minute_rows(minute))


def test_minute_rows_is_independent_of_call_order() -> None:
    minutes = [START + timedelta(minutes=m) for m in (0, 1, 2, 500, 1439)]
    forward = [Simulator(WORLD).minute_rows(m) for m in minutes]
    sim = Simulator(WORLD)
    backward = [sim.minute_rows(m) for m in reversed(minutes)][::-1]
    assert all(a.equals(b) for a, b in zip(forward, backward, strict=True))
    # Different minutes differ.
    assert not forward[0].equals(forward[1])


def test_minute_rows_truncates_to_the_utc_minute() -> None:
    minute = START + timedelta(hours=3)
    inside = (minute + timedelta(seconds=59, microseconds=999_999)).astimezone(
        timezone(timedelta(hours=-3, minutes=-30))
    )
    batch = SIM.minute_rows(inside)
    assert batch.equals(SIM.minute_rows(minute))
    assert set(batch.column("minute").to_pylist()) == {minute}


def test_minute_rows_rejects_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SIM.minute_rows(datetime(2024, 5, 1))


def test_minute_rows_zero_rate_is_empty() -> None:
    batch = Simulator(WORLD, displays_per_minute=0).minute_rows(START)
    assert batch.num_rows == 0
    assert batch.schema.equals(EVENT_SCHEMA)


@settings(max_examples=15, deadline=None)
@given(moment=aware_datetimes, seed=st.integers(0, 2**32), offset=offsets)
def test_minute_rows_metrics_are_consistent(moment: datetime, seed: int, offset: timezone) -> None:
    batch = Simulator(WORLD, seed=seed, displays_per_minute=3_000).minute_rows(
        moment.astimezone(offset)
    )
    displays = batch.column("displays").to_numpy()
    clicks = batch.column("clicks").to_numpy()
    costs = batch.column("cost").to_pylist()
    assert batch.schema.field("cost").type == pa.decimal128(18, 9)
    assert (displays >= 1).all()  # no zero-activity rows
    assert (clicks >= 0).all() and (clicks <= displays).all()
    # whole micro-units: exact in the store and in JSON
    assert all(c >= 0 and c == c.quantize(Decimal("0.000001")) for c in costs)
    assert all((c == 0) == (n == 0) for c, n in zip(costs, clicks.tolist(), strict=True))
    keys = ["campaign_id", "seller_id", "product_id"]
    assert len(set(zip(*(batch.column(k).to_pylist() for k in keys), strict=True))) == len(batch)


def test_minute_rows_follow_the_world_catalog(hour: pa.Table) -> None:
    campaign_owner = {c.campaign_id: a for a in WORLD.advertisers for c in a.campaigns}
    seller = {s.seller_id: (s.name, a) for a in WORLD.advertisers for s in a.sellers}
    products = {a.advertiser_id: set(a.products) for a in WORLD.advertisers}
    rows = hour.select(
        ["advertiser_id", "partner_id", "campaign_id", "seller_id", "seller_name"]
    ).group_by(["advertiser_id", "partner_id", "campaign_id", "seller_id", "seller_name"])
    for row in rows.aggregate([]).to_pylist():
        adv = campaign_owner[row["campaign_id"]]
        assert (row["advertiser_id"], row["partner_id"]) == (adv.advertiser_id, adv.partner_id)
        assert seller[row["seller_id"]] == (row["seller_name"], adv)
    pairs = hour.group_by(["advertiser_id", "product_id"]).aggregate([]).to_pylist()
    assert all(p["product_id"] in products[p["advertiser_id"]] for p in pairs)


# -- traffic shape -----------------------------------------------------------------------------


def test_simulator_ctr_of_large_sample_is_plausible(hour: pa.Table) -> None:
    displays = pc.sum(hour.column("displays")).as_py()
    clicks = pc.sum(hour.column("clicks")).as_py()
    assert displays > 1_000_000
    assert 0.002 <= clicks / displays <= 0.02


def test_simulator_rate_matches_displays_per_minute(hour: pa.Table) -> None:
    # Evening is above the daily mean for most advertisers but within a few times of it.
    per_minute = pc.sum(hour.column("displays")).as_py() / 60
    assert 20_000 * 0.5 < per_minute < 20_000 * 3


def test_simulator_daily_curve_night_below_evening() -> None:
    # All advertisers in one zone (UTC+1, give or take an hour) so the curve is not blurred.
    world = World(tuple(dataclasses.replace(a, currency="EUR") for a in WORLD.advertisers))
    sim = Simulator(world)
    night = sum(
        pc.sum(sim.minute_rows(START + timedelta(hours=2, minutes=m))["displays"]).as_py()
        for m in range(10)
    )
    evening = sum(
        pc.sum(sim.minute_rows(START + timedelta(hours=19, minutes=m))["displays"]).as_py()
        for m in range(10)
    )
    assert night * 2 < evening


def test_simulator_product_popularity_is_power_law(hour: pa.Table) -> None:
    per_product = hour.group_by(["advertiser_id", "product_id"]).aggregate([("displays", "sum")])
    for adv in WORLD.advertisers:
        mine = per_product.filter(pc.equal(per_product["advertiser_id"], adv.advertiser_id))
        counts = sorted(mine.column("displays_sum").to_pylist(), reverse=True)
        top = sum(counts[: len(adv.products) // 10])
        assert top > 0.5 * sum(counts), adv.advertiser_id


def test_simulator_output_exercises_csv_quoting(hour: pa.Table) -> None:
    products = hour.column("product_id").unique().to_pylist()
    names = hour.column("seller_name").unique().to_pylist()
    assert any("," in p or '"' in p for p in products)
    assert any(not p.isascii() for p in products)
    assert any("," in n for n in names) or any(not n.isascii() for n in names)


# -- backfill ----------------------------------------------------------------------------------


def test_backfill_equals_concatenated_minute_rows() -> None:
    start, end = START + timedelta(hours=6), START + timedelta(hours=6, minutes=30)
    expected = _table([SIM.minute_rows(start + timedelta(minutes=m)) for m in range(30)])
    for batch_rows in (1_000, 7_777, 100_000):
        batches = list(SIM.backfill(start, end, batch_rows=batch_rows))
        assert all(b.schema.equals(EVENT_SCHEMA) for b in batches)
        assert all(b.num_rows == batch_rows for b in batches[:-1])
        assert 0 < batches[-1].num_rows <= batch_rows
        assert _table(batches).equals(expected)


def test_backfill_default_batches_are_100k_rows(hour: pa.Table) -> None:
    start = START + timedelta(hours=18)
    sizes = [b.num_rows for b in SIM.backfill(start, start + timedelta(hours=1))]
    assert sum(sizes) == hour.num_rows
    assert set(sizes[:-1]) == {100_000}


def test_backfill_covers_minutes_starting_in_half_open_range() -> None:
    start = START + timedelta(seconds=30)  # first minute starting at or after: 00:01
    batches = list(SIM.backfill(start, START + timedelta(minutes=3)))
    minutes = set(_table(batches).column("minute").to_pylist())
    assert minutes == {START + timedelta(minutes=1), START + timedelta(minutes=2)}
    assert list(SIM.backfill(START, START)) == []


# -- events ------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(now=aware_datetimes, count=st.integers(1, 60), offset=offsets)
def test_events_pass_the_ingest_parser(now: datetime, count: int, offset: timezone) -> None:
    events = SIM.events(now.astimezone(offset), count)
    now_ms = _ms(now)
    parsed = parse_events(orjson.dumps(events), now_ms=now_ms)
    assert len(parsed) == count
    minute_ms = now_ms - now_ms % 60_000
    assert all(minute_ms <= t <= now_ms for t in parsed.ts_ms)
    assert all(1 <= d <= 4 for d in parsed.displays)
    assert all(c in (0, 1) for c in parsed.clicks)
    assert all(
        x >= 0 and (x > 0) == (c == 1)
        for x, c in zip(parsed.cost_nanos, parsed.clicks, strict=True)
    )
    # at most 6 decimals, each read back exactly from its JSON text
    assert all(x % 1_000 == 0 for x in parsed.cost_nanos)
    assert parsed.cost_nanos == [Decimal(repr(e["cost"])) * 10**9 for e in events]


def test_events_are_deterministic_and_shaped_like_the_api() -> None:
    now = START + timedelta(hours=12, minutes=34, seconds=56, microseconds=789_123)
    events = SIM.events(now, 200)
    assert events == Simulator(World.generate()).events(now, 200)
    assert events != SIM.events(now + timedelta(milliseconds=1), 200)
    assert events != Simulator(WORLD, seed=1).events(now, 200)
    first = events[0]
    assert list(first) == [
        "timestamp",
        "advertiserId",
        "partnerId",
        "campaignId",
        "sellerId",
        "productId",
        "displays",
        "clicks",
        "cost",
        "sellerName",
    ]
    for key in ("advertiserId", "partnerId", "campaignId", "sellerId"):
        value = first[key]
        assert isinstance(value, str) and value.isdigit()
    stamp = str(first["timestamp"])
    assert stamp.startswith("2024-05-01T12:34:") and stamp.endswith("Z") and len(stamp) == 24
    campaigns = {str(c.campaign_id): a for a in WORLD.advertisers for c in a.campaigns}
    for event in events:
        adv = campaigns[str(event["campaignId"])]
        assert event["advertiserId"] == str(adv.advertiser_id)
        assert event["productId"] in adv.products
        assert event["sellerId"] in {str(s.seller_id) for s in adv.sellers}


def test_events_zero_count_is_empty() -> None:
    assert SIM.events(START, 0) == []
    with pytest.raises(ValueError, match="count"):
        SIM.events(START, -1)
