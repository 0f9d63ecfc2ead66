"""Bucket boundaries decided in the domain: pieces, applied in Python, against the reference."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpo_realtime.domain.buckets import Piece, bucket_pieces, offset_changes
from mpo_realtime.domain.report import Dimension
from mpo_realtime.domain.zones import get_zone, zone_names
from tests.reference import bucket_start

TIME_UNITS = (
    Dimension.MINUTE,
    Dimension.HOUR,
    Dimension.DAY,
    Dimension.WEEK,
    Dimension.MONTH,
    Dimension.YEAR,
)
ZONES = sorted(zone_names())
RETENTION_END = datetime(2026, 11, 29, tzinfo=UTC)


def _apply(pieces: Sequence[Piece], minute: datetime) -> datetime:
    """The bucket start of ``minute``, as an engine's CASE over the pieces computes it."""
    chosen = pieces[0]
    for piece in pieces[1:]:
        if minute >= piece.since:
            chosen = piece
    return chosen.bucket(minute)


def _hourly_changes(name: str, low: datetime, high: datetime) -> list[datetime]:
    """Offset changes in ``(low, high]`` by a walk hour by hour, then minute by minute."""
    zone = get_zone(name)
    found = []
    moment = low
    while moment < high:
        following = min(moment + timedelta(hours=1), high)
        before = moment.astimezone(zone).utcoffset()
        if following.astimezone(zone).utcoffset() != before:
            change = moment + timedelta(minutes=1)
            while change.astimezone(zone).utcoffset() == before:
                change += timedelta(minutes=1)
            found.append(change)
        moment = following
    return found


@pytest.mark.parametrize(
    "name",
    [
        "Europe/Paris",
        "America/Vancouver",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "Africa/Casablanca",
        "America/Santiago",
        "Antarctica/Troll",
        "Asia/Gaza",
        "UTC",
    ],
)
def test_buckets_offset_changes_equal_an_hourly_walk(name: str) -> None:
    low, high = datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    assert list(offset_changes(name, low, high)) == _hourly_changes(name, low, high)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(ZONES),
    unit=st.sampled_from(TIME_UNITS),
    start=st.integers(0, 2 * 365 * 1440),
    length=st.integers(0, 120 * 1440),
    points=st.lists(st.integers(0, 10**9), min_size=1, max_size=20),
)
def test_buckets_pieces_agree_with_the_reference_in_any_zone(
    name: str, unit: Dimension, start: int, length: int, points: list[int]
) -> None:
    low = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(minutes=start, seconds=start % 2 * 30)
    high = low + timedelta(minutes=length)
    pieces = bucket_pieces(name, unit, low, high)
    assert pieces[0].since == low
    assert [p.since for p in pieces] == sorted({p.since for p in pieces})
    assert all(p.start <= p.since for p in pieces)
    first = low.replace(second=0) + (timedelta(minutes=1) if low.second else timedelta(0))
    for point in points:
        if high <= first:
            break
        minute = first + timedelta(minutes=point % ((high - first) // timedelta(minutes=1) or 1))
        if minute < high:
            assert _apply(pieces, minute) == bucket_start(minute, unit, name), minute


@pytest.mark.parametrize("unit", [Dimension.HOUR, Dimension.DAY, Dimension.WEEK])
def test_buckets_a_retention_window_is_a_few_pieces_in_every_zone(unit: Dimension) -> None:
    # Arithmetic over a constant offset, not a branch per hour: at most three pieces per
    # offset change (before it, the rest of the bucket holding it, after it).
    start = RETENTION_END - timedelta(days=45)
    for name in ZONES:
        changes = offset_changes(name, start, RETENTION_END)
        pieces = bucket_pieces(name, unit, start, RETENTION_END)
        assert len(pieces) <= 1 + 2 * len(changes), (name, pieces)


@pytest.mark.parametrize(
    ("name", "unit", "expected"),
    [
        # Whole-hour DST: an hour bucket is a UTC hour all year, one rule.
        (
            "Europe/Paris",
            Dimension.HOUR,
            [
                Piece(
                    datetime(2026, 10, 20, tzinfo=UTC),
                    datetime(2026, 10, 20, tzinfo=UTC),
                    timedelta(hours=1),
                )
            ],
        ),
        # The day of the fall-back is 25 hours: local midnights at +02:00, then +01:00.
        (
            "Europe/Paris",
            Dimension.DAY,
            [
                Piece(
                    datetime(2026, 10, 20, tzinfo=UTC),
                    datetime(2026, 10, 19, 22, tzinfo=UTC),
                    timedelta(days=1),
                ),
                Piece(
                    datetime(2026, 10, 25, 1, tzinfo=UTC), datetime(2026, 10, 24, 22, tzinfo=UTC)
                ),
                Piece(
                    datetime(2026, 10, 25, 23, tzinfo=UTC),
                    datetime(2026, 10, 25, 23, tzinfo=UTC),
                    timedelta(days=1),
                ),
            ],
        ),
        # Month buckets are constant pieces, one per local month start.
        (
            "Europe/Paris",
            Dimension.MONTH,
            [
                Piece(datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 9, 30, 22, tzinfo=UTC)),
                Piece(
                    datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 10, 31, 23, tzinfo=UTC)
                ),
            ],
        ),
    ],
)
def test_buckets_pieces_for_the_paris_fall_back(
    name: str, unit: Dimension, expected: list[Piece]
) -> None:
    start, end = datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC)
    assert list(bucket_pieces(name, unit, start, end)) == expected


def test_buckets_chatham_hour_after_an_off_the_hour_change_is_its_own_bucket() -> None:
    # 2026-09-26T14:00Z: Chatham jumps from 02:45 (+12:45) to 03:45 (+13:45).
    change = datetime(2026, 9, 26, 14, tzinfo=UTC)
    pieces = bucket_pieces(
        "Pacific/Chatham", Dimension.HOUR, change - timedelta(hours=3), change + timedelta(hours=3)
    )
    assert _apply(pieces, change - timedelta(minutes=1)) == change - timedelta(minutes=45)  # 02:00
    assert _apply(pieces, change + timedelta(minutes=5)) == change  # 03:45, the change
    assert _apply(pieces, change + timedelta(minutes=15)) == change + timedelta(minutes=15)  # 04:00


def test_buckets_minute_buckets_are_utc_minutes_everywhere() -> None:
    start = datetime(2026, 3, 1, 0, 0, 30, tzinfo=UTC)
    for name in ("Asia/Kathmandu", "Pacific/Chatham", "UTC"):
        pieces = bucket_pieces(name, Dimension.MINUTE, start, start + timedelta(days=40))
        assert pieces == (Piece(start, start.replace(second=0), timedelta(minutes=1)),)


def test_buckets_refuse_entity_dimensions() -> None:
    with pytest.raises(ValueError, match="not a time dimension"):
        bucket_pieces("UTC", Dimension.PRODUCT_ID, RETENTION_END, RETENTION_END)


@pytest.mark.parametrize("seconds", range(0, 60, 7))
def test_buckets_offset_changes_are_exact_whatever_second_the_search_starts_at(
    seconds: int,
) -> None:
    # The search bisects from its lower bound: the change found must not depend on it.
    low = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds, microseconds=250)
    assert offset_changes("Europe/Paris", low, datetime(2027, 1, 1, tzinfo=UTC)) == (
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
    )


@pytest.mark.usefixtures("server_in_kolkata")
def test_buckets_never_depend_on_the_servers_local_zone() -> None:
    # Bounds no other test uses, so that no cached answer stands in for the computation.
    low = datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)
    assert offset_changes("America/Denver", low, datetime(2026, 12, 1, tzinfo=UTC)) == (
        datetime(2026, 3, 8, 9, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 8, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize("unit", TIME_UNITS)
@pytest.mark.parametrize("name", ["Europe/Paris", "Pacific/Chatham", "Asia/Kathmandu"])
def test_buckets_of_an_interval_starting_off_the_whole_second(name: str, unit: Dimension) -> None:
    # A start 30.25 s past a minute, a day before Paris springs forward: the pieces still
    # give every minute of the interval the bucket of the reference (whole minutes, whole
    # local hours and midnights), with no fraction of a second carried into a start.
    low = datetime(2026, 3, 28, 0, 59, 30, 250_000, tzinfo=UTC)
    high = low + timedelta(days=3)
    pieces = bucket_pieces(name, unit, low, high)
    assert pieces[0].since == low
    assert all(p.start.microsecond == 0 and p.start.second == 0 for p in pieces)
    minute = datetime(2026, 3, 28, 1, 0, tzinfo=UTC)
    while minute < high:
        assert _apply(pieces, minute) == bucket_start(minute, unit, name), minute
        minute += timedelta(minutes=37)


@pytest.mark.parametrize("unit", [Dimension.HOUR, Dimension.DAY, Dimension.WEEK])
def test_buckets_across_a_change_by_half_an_hour_onto_a_new_local_midnight(
    unit: Dimension,
) -> None:
    # 2018-05-04 15:00Z: Pyongyang went from +08:30 to +09:00, its clocks jumping from
    # 23:30 to midnight. Hours and days start on the hour and at midnight of the new
    # offset from then on: 30 minutes off the old ones, so the old rule cannot go on.
    name = "Asia/Pyongyang"
    change = datetime(2018, 5, 4, 15, tzinfo=UTC)
    low, high = change - timedelta(days=3), change + timedelta(days=4)
    assert offset_changes(name, low, high) == (change,)
    pieces = bucket_pieces(name, unit, low, high)
    minute = low
    while minute < high:
        assert _apply(pieces, minute) == bucket_start(minute, unit, name), minute
        minute += timedelta(minutes=10)
