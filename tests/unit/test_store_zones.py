"""Every zone of the tzdata package: the store's time buckets equal the naive reference's.

For each zone, events around its 2026 UTC offset changes and one report per bucket kind
(hour, day, week, month, year) over a window that crosses a change; rows are compared
exactly with ``tests/reference.py``. Zones without a change in 2026 still check their
offsets. One store holds every zone's events (one advertiser per zone).

Names whose data files are byte for byte the same (links such as ``US/Pacific`` and
``America/Los_Angeles``) give the same answers, so each distinct file is checked once,
under one of its names: 344 files for the 598 names of tzdata 2026f.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources

import pytest

from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, Metric
from mpo_realtime.domain.zones import get_zone, zone_names
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from tests.reference import Event, Row, expected_rows, rollup_table


def _by_data() -> dict[bytes, list[str]]:
    groups: dict[bytes, list[str]] = {}
    for name in sorted(zone_names()):
        data = resources.files("tzdata.zoneinfo").joinpath(name).read_bytes()
        groups.setdefault(data, []).append(name)
    return groups


GROUPS = list(_by_data().values())
#: a name per distinct file, an Area/Location one where there is one
ZONES = [min(names, key=lambda name: ("/" not in name, name)) for names in GROUPS]
UNITS = (Dimension.HOUR, Dimension.DAY, Dimension.WEEK, Dimension.MONTH, Dimension.YEAR)
YEAR = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Case:
    advertiser_id: int
    start: datetime
    end: datetime
    events: tuple[Event, ...]


def _change_days(name: str) -> list[datetime]:
    """UTC days of 2026 during which ``name`` changes its offset."""
    zone = get_zone(name)
    days = [YEAR + i * DAY for i in range(366)]
    offsets = [day.astimezone(zone).utcoffset() for day in days]
    return [days[i] for i in range(365) if offsets[i] != offsets[i + 1]]


def _case(index: int, name: str) -> Case:
    changes = _change_days(name)
    odd = timedelta(hours=5, minutes=17)  # windows start inside a bucket, not on a boundary
    if not changes:
        start, end, around = datetime(2026, 6, 1, tzinfo=UTC) + odd, datetime(2026, 7, 20), []
    elif len(changes) == 1:
        start, end, around = changes[0] - 3 * DAY + odd, changes[0] + 4 * DAY, changes
    else:
        # Start after the first change, so that a bucket holding the start (its month or
        # year) began before it; end after the second.
        start, end, around = changes[0] + 2 * DAY + odd, changes[1] + 4 * DAY, changes[:2]
    end = end.replace(tzinfo=UTC)
    minutes = {start - timedelta(minutes=1), start, end - timedelta(minutes=1), end}
    minutes |= {start + (end - start) * k / 7 for k in range(7)}
    for day in around:
        minutes |= {day + timedelta(hours=12, minutes=53 * k) for k in range(-30, 31)}
    events = tuple(
        Event(m.replace(second=0, microsecond=0), index, 1, 1, 1, "p", 1 + i % 3, 0, Decimal(0))
        for i, m in enumerate(sorted(minutes))
    )
    return Case(index, start, end, events)


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    return {name: _case(index + 1, name) for index, name in enumerate(ZONES)}


@pytest.fixture(scope="module")
def store(cases: dict[str, Case]) -> Iterator[DuckDBEventStore]:
    opened = DuckDBEventStore(":memory:", flush_interval=0.002)
    try:
        opened.append(rollup_table([e for case in cases.values() for e in case.events]))
        yield opened
    finally:
        opened.close()


def _rows(store: DuckDBEventStore, plan: QueryPlan) -> list[Row]:
    rows: list[Row] = []
    for batch in store.aggregate(plan):
        rows.extend(zip(*(column.to_pylist() for column in batch.columns), strict=True))
    return rows


def test_zones_cover_the_package_list() -> None:
    assert sorted(name for names in GROUPS for name in names) == sorted(zone_names())
    assert len(ZONES) > 300
    assert {"America/Vancouver", "Pacific/Chatham", "Asia/Kathmandu"} <= set(ZONES)


@pytest.mark.parametrize("name", ZONES)
def test_store_buckets_match_reference_in_every_zone(
    name: str, cases: dict[str, Case], store: DuckDBEventStore
) -> None:
    case = cases[name]
    for unit in UNITS:
        plan = QueryPlan(
            start=case.start,
            end=case.end,
            advertiser_ids=(case.advertiser_id,),
            dimensions=(unit,),
            metrics=(Metric.DISPLAYS,),
            timezone=name,
        )
        assert _rows(store, plan) == expected_rows(case.events, plan), unit
