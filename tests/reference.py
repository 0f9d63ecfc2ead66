"""A naive reference for report queries: plain Python, no DuckDB, no Arrow compute.

Tests compare what a store computes for a :class:`QueryPlan` against
:func:`expected_rows`. Keep it obviously right rather than fast.

Time buckets are the UTC instant at which the local bucket starts in ``plan.timezone``:

- ``minute``: the event's UTC minute;
- ``hour``: the latest instant at or before the event that is either a local
  wall-clock top of hour or a change of UTC offset. In whole-hour DST zones this is
  simply the local hour start, and the two passes of a repeated fall-back hour are two
  distinct instants. In zones whose clocks change away from a top of hour (Chatham at
  02:45, Lord Howe by 30 minutes) the part of an hour on the other side of the change is
  a bucket of its own that starts at the change, so every bucket starts at a real local
  time that belongs to it and holds only minutes of one local hour;
- ``day``, ``week`` (ISO: Monday), ``month``, ``year``: the first instant of the first
  local day: its midnight, or where the clock skips midnight, the change that skips it.

Zones come from the service's one time-zone database (the ``tzdata`` package) through
:func:`mpo_realtime.domain.zones.get_zone`, the only service code this module uses for
buckets: the rules themselves are computed here, independently, minute by minute.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow as pa

from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, Metric
from mpo_realtime.domain.zones import get_zone
from mpo_realtime.store.base import ROLLUP_SCHEMA

__all__ = [
    "Event",
    "Row",
    "Value",
    "bucket_start",
    "expected_rows",
    "format_bucket",
    "rollup_table",
]

Value = int | Decimal | str | datetime
Row = tuple[Value, ...]

_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Event:
    """One roll-up row as ingestion hands it to a store; ``minute`` is an aware UTC minute."""

    minute: datetime
    advertiser_id: int
    partner_id: int
    campaign_id: int
    seller_id: int
    product_id: str
    displays: int
    clicks: int
    #: exact, at most 9 decimals (the store's scale)
    cost: Decimal
    seller_name: str | None = None

    def __post_init__(self) -> None:
        if self.minute.utcoffset() != timedelta(0):
            raise ValueError(f"minute must be an aware UTC datetime, got {self.minute!r}")
        if self.minute.second or self.minute.microsecond:
            raise ValueError(f"minute must be a whole minute, got {self.minute!r}")
        if not isinstance(self.cost, Decimal):
            raise TypeError(f"cost must be an exact Decimal, got {self.cost!r}")


def _zone(name: str) -> ZoneInfo:
    return get_zone(name)


def _first_instant_of(day: date, zone: ZoneInfo) -> datetime:
    """The first UTC instant whose local date in ``zone`` is ``day``."""
    midnight = datetime.combine(day, time(0))
    # Midnight may occur twice (a fall-back to 00:00): both folds, the earlier that exists.
    for fold in (0, 1):
        instant = midnight.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == midnight:
            return instant
    # Midnight was skipped: fold=0 lands after the jump; walk back to the jump itself.
    instant = midnight.replace(tzinfo=zone).astimezone(UTC)
    while (instant - _MINUTE).astimezone(zone).date() == day:
        instant -= _MINUTE
    return instant


def _hour_start(instant: datetime, zone: ZoneInfo) -> datetime:
    local = instant.astimezone(zone)
    offset = local.utcoffset()
    top = instant - timedelta(minutes=local.minute, seconds=local.second)
    if top.astimezone(zone).utcoffset() == offset:
        return top
    # The offset changed since the local top of the hour: the bucket starts at the change.
    start = instant
    while (start - _MINUTE).astimezone(zone).utcoffset() == offset:
        start -= _MINUTE
    return start


def bucket_start(instant: datetime, dimension: Dimension, timezone: str) -> datetime:
    """UTC instant of the start of the local ``dimension`` bucket holding ``instant``."""
    zone = _zone(timezone)
    instant = instant.astimezone(UTC)
    if dimension is Dimension.MINUTE:
        return instant.replace(second=0, microsecond=0)
    if dimension is Dimension.HOUR:
        return _hour_start(instant.replace(second=0, microsecond=0), zone)
    day = instant.astimezone(zone).date()
    if dimension is Dimension.DAY:
        return _first_instant_of(day, zone)
    if dimension is Dimension.WEEK:
        return _first_instant_of(day - timedelta(days=day.weekday()), zone)
    if dimension is Dimension.MONTH:
        return _first_instant_of(day.replace(day=1), zone)
    if dimension is Dimension.YEAR:
        return _first_instant_of(day.replace(month=1, day=1), zone)
    raise ValueError(f"{dimension} is not a time dimension")


def format_bucket(instant: datetime, timezone: str) -> str:
    """ISO-8601 local time with its UTC offset, e.g. ``2026-03-29T03:00:00+02:00``."""
    return instant.astimezone(_zone(timezone)).isoformat(timespec="seconds")


def _dimension_value(event: Event, dimension: Dimension, timezone: str) -> Value:
    if dimension is Dimension.ADVERTISER_ID:
        return event.advertiser_id
    if dimension is Dimension.PARTNER_ID:
        return event.partner_id
    if dimension is Dimension.CAMPAIGN_ID:
        return event.campaign_id
    if dimension is Dimension.SELLER_ID:
        return event.seller_id
    if dimension is Dimension.PRODUCT_ID:
        return event.product_id
    return bucket_start(event.minute, dimension, timezone)


def _selected(event: Event, plan: QueryPlan) -> bool:
    if not plan.start <= event.minute < plan.end:
        return False
    filters = (
        (plan.advertiser_ids, event.advertiser_id),
        (plan.campaign_ids, event.campaign_id),
        (plan.seller_ids, event.seller_id),
        (plan.partner_ids, event.partner_id),
    )
    return all(not ids or value in ids for ids, value in filters)


def expected_rows(events: Iterable[Event], plan: QueryPlan) -> list[Row]:
    """Rows of ``plan.columns``: dimensions then metrics, sorted, all-zero rows dropped."""
    sums: dict[tuple[Value, ...], list[int | Decimal]] = {}
    for event in events:
        if not _selected(event, plan):
            continue
        key = tuple(_dimension_value(event, d, plan.timezone) for d in plan.dimensions)
        totals = sums.setdefault(key, [0, 0, Decimal(0)])
        totals[0] += event.clicks
        totals[1] += event.displays
        totals[2] += event.cost
    index = {Metric.CLICKS: 0, Metric.DISPLAYS: 1, Metric.COST: 2}
    rows: list[Row] = []
    for key, totals in sums.items():
        metrics = tuple(totals[index[m]] for m in plan.metrics)
        if any(value != 0 for value in metrics):
            rows.append(key + metrics)
    width = len(plan.dimensions)
    # Only dimension columns decide the order; keys are unique, so no ties.
    rows.sort(key=lambda row: row[:width])
    return rows


def rollup_table(events: Sequence[Event]) -> pa.Table:
    """The events as a roll-up table a store accepts (a convenience for tests)."""
    columns = {name: [getattr(e, name) for e in events] for name in ROLLUP_SCHEMA.names}
    return pa.table(columns, schema=ROLLUP_SCHEMA)
