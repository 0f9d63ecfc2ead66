"""Time buckets decided in Python, handed to any engine as plain UTC instants.

No query engine is trusted with time-zone rules (each bundles its own, and they
disagree): the service's one database (:mod:`mpo_realtime.domain.zones`) decides
where every local bucket starts, and :func:`bucket_pieces` hands the answer over
as a short list of :class:`Piece` rules that need only UTC arithmetic. With
``m`` a stored UTC minute and pieces sorted by ``since``, the bucket of ``m``
starts at::

    p = the last piece with p.since <= m (the first piece if none)
    p.start                                         if p.width is None
    p.start + floor((m - p.start) / p.width) * p.width   otherwise

An engine renders that as one ``CASE`` (DuckDB) or ``multiIf`` (ClickHouse) on
``m >= since``, newest piece first, with a constant or ``m - (m - start) % width``
in each branch (``m >= start`` holds wherever a branch applies, so the remainder is
never negative). Within a stretch of constant UTC offset, minute, hour, day and
week buckets have a fixed width, so a window of any length needs only a few pieces
per offset change; month and year buckets get one constant piece each.

The rule: a bucket is a maximal run of instants with the same local *key*, and
starts at the first instant of that run:

- ``minute``: the UTC minute (not local: every zone's minutes are UTC minutes);
- ``hour``: the local hour together with the UTC offset, so a bucket starts at a
  local top of hour or at an offset change, whichever is later: the repeated hour
  of a fall-back is two buckets, and where clocks change off the hour (Chatham at
  02:45, Lord Howe by 30 minutes) the part of the hour after the change is its own;
- ``day``, ``week`` (ISO, Monday), ``month``, ``year``: the local calendar period,
  so a bucket starts at local midnight of its first day, or, where the clock skips
  midnight, at the change that skips it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from mpo_realtime.domain.report import Dimension
from mpo_realtime.domain.zones import get_zone

__all__ = ["Piece", "bucket_pieces", "offset_changes"]

_EPSILON = timedelta(microseconds=1)
#: Offset changes are looked for by sampling at this step, then bisecting to the
#: second. Two changes closer than the step could hide each other; the closest two of
#: any zone between 1970 and 2040 in tzdata 2026f are 6 days 23 hours apart.
_SAMPLE_STEP = timedelta(days=1)
#: width of the buckets that are the same length wherever the UTC offset is constant
_WIDTHS = {
    Dimension.MINUTE: timedelta(minutes=1),
    Dimension.HOUR: timedelta(hours=1),
    Dimension.DAY: timedelta(days=1),
    Dimension.WEEK: timedelta(weeks=1),
}


@dataclass(frozen=True, slots=True)
class Piece:
    """From ``since`` until the next piece, where the bucket of a minute starts.

    With ``width`` None every minute of the piece is in the bucket that starts at
    ``start``; otherwise buckets are ``width`` long and one of them starts at
    ``start``. Always ``start <= since``.
    """

    since: datetime
    start: datetime
    width: timedelta | None = None

    def bucket(self, minute: datetime) -> datetime:
        """The bucket start of ``minute`` (at or after ``since``) under this piece."""
        if self.width is None:
            return self.start
        return minute - (minute - self.start) % self.width


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _change_in(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The instant in ``(low, high]`` where the offset changes, given that it does once."""
    before = _offset(zone, low)
    # Offsets change at whole seconds, so flooring the bounds keeps the change between them.
    low_s, high_s = math.floor(low.timestamp()), math.floor(high.timestamp())
    while high_s - low_s > 1:
        middle = (low_s + high_s) // 2
        if _offset(zone, datetime.fromtimestamp(middle, UTC)) == before:
            low_s = middle
        else:
            high_s = middle
    return datetime.fromtimestamp(high_s, UTC)


def _changes(zone: ZoneInfo, low: datetime, high: datetime) -> list[datetime]:
    """UTC instants in ``(low, high]`` at which the zone's offset changes."""
    found: list[datetime] = []
    left, left_offset = low, _offset(zone, low)
    while left < high:
        right = min(left + _SAMPLE_STEP, high)
        right_offset = _offset(zone, right)
        if right_offset != left_offset:
            found.append(_change_in(zone, left, right))
        left, left_offset = right, right_offset
    return found


@functools.lru_cache(maxsize=1024)
def offset_changes(timezone: str, low: datetime, high: datetime) -> tuple[datetime, ...]:
    """UTC instants in ``(low, high]`` at which ``timezone`` changes its UTC offset.

    Costs one offset look-up per day of the interval and about 17 per change.
    """
    return tuple(_changes(get_zone(timezone), low, high))


def _local_floor(dimension: Dimension, instant: datetime, offset: timedelta) -> datetime:
    """The latest bucket start at or before ``instant`` were ``offset`` in force throughout."""
    local = (instant + offset).replace(tzinfo=None)
    if dimension is Dimension.MINUTE:
        return instant.replace(second=0, microsecond=0)
    if dimension is Dimension.HOUR:
        local = local.replace(minute=0, second=0, microsecond=0)
    else:
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if dimension is Dimension.WEEK:
        local -= timedelta(days=local.weekday())
    elif dimension is Dimension.MONTH:
        local = local.replace(day=1)
    elif dimension is Dimension.YEAR:
        local = local.replace(month=1, day=1)
    return local.replace(tzinfo=UTC) - offset


def _next_period(dimension: Dimension, start: datetime, offset: timedelta) -> datetime:
    """The start of the month or year after the one starting at ``start`` (same offset)."""
    local = (start + offset).replace(tzinfo=None)
    if dimension is Dimension.MONTH:
        local = local.replace(year=local.year + local.month // 12, month=local.month % 12 + 1)
    else:
        local = local.replace(year=local.year + 1)
    return local.replace(tzinfo=UTC) - offset


def _key(zone: ZoneInfo, dimension: Dimension, instant: datetime) -> tuple[object, ...]:
    local = instant.astimezone(zone)
    if dimension is Dimension.HOUR:
        return (local.date(), local.hour, local.utcoffset())
    if dimension is Dimension.WEEK:
        return local.isocalendar()[:2]
    if dimension is Dimension.MONTH:
        return (local.year, local.month)
    if dimension is Dimension.YEAR:
        return (local.year,)
    return (local.date(),)


def _bucket_start(zone: ZoneInfo, dimension: Dimension, instant: datetime) -> datetime:
    """The first instant of the run of ``instant``'s key that holds ``instant``."""
    while True:
        floor = _local_floor(dimension, instant, _offset(zone, instant))
        changes = _changes(zone, floor - timedelta(seconds=1), instant)
        if not changes:
            return floor
        change = changes[-1]
        if _key(zone, dimension, change - _EPSILON) != _key(zone, dimension, change):
            return change
        # The key carried over the change (a day spans its DST change): look before it.
        instant = change - _EPSILON


def _merged(pieces: list[Piece]) -> tuple[Piece, ...]:
    """``pieces`` without those that repeat what the piece before them already says."""
    kept: list[Piece] = []
    for piece in pieces:
        last = kept[-1] if kept else None
        if last is None or last.width != piece.width:
            kept.append(piece)
        elif piece.width is None:
            if piece.start != last.start:
                kept.append(piece)
        elif (piece.start - last.start) % piece.width:
            kept.append(piece)
    return tuple(kept)


@functools.lru_cache(maxsize=1024)
def bucket_pieces(
    timezone: str, dimension: Dimension, start: datetime, end: datetime
) -> tuple[Piece, ...]:
    """The rules that give the bucket of every minute of ``[start, end)``.

    Work is proportional to the days of the interval (one offset look-up each) and
    the offset changes in it; the result has a few pieces per change.
    """
    if not dimension.is_time:
        raise ValueError(f"{dimension} is not a time dimension")
    start, end = start.astimezone(UTC), max(end.astimezone(UTC), start.astimezone(UTC))
    width = _WIDTHS.get(dimension)
    if dimension is Dimension.MINUTE:
        assert width is not None
        return (Piece(start, _local_floor(dimension, start, timedelta(0)), width),)
    zone = get_zone(timezone)
    sinces = [start, *_changes(zone, start, end)]
    pieces: list[Piece] = []
    for since, until in zip(sinces, [*sinces[1:], end], strict=True):
        offset = _offset(zone, since)
        first = _bucket_start(zone, dimension, since)
        floor = _local_floor(dimension, since, offset)
        if width is not None:
            if floor == first:
                pieces.append(Piece(since, first, width))
                continue
            pieces.append(Piece(since, first))
            following = floor + width
            if following < until:
                pieces.append(Piece(following, following, width))
            continue
        pieces.append(Piece(since, first))
        following = _next_period(dimension, floor, offset)
        while following < until:
            pieces.append(Piece(following, following))
            following = _next_period(dimension, following, offset)
    return _merged(pieces)
