"""The time interval of a report request: parsed, checked, clamped to the data kept, rounded.

The rules (``docs/api.md``, "Intervals"):

- exactly one of ``lookbackWindow`` or ``startDate`` (with an optional ``endDate``);
  dates without an offset are UTC; a date that cannot be converted to UTC (year 1 with
  a positive offset, year 9999 with a negative one) is ``invalid-time-interval``;
- an ``endDate`` after now ends the report now (``end-date-clamped``);
- a ``startDate`` before the oldest data kept (``retention``) starts the report there
  (``start-date-clamped``); an interval that ends before it is ``invalid-time-interval``;
- stored data are whole UTC minutes, and a minute belongs to a report when its start
  lies in ``[start, end)``: both bounds are rounded up to a whole minute, so that a
  relative report keeps the current, partial minute. A client's bound that was not a
  whole minute gets an ``interval-rounded`` warning that gives the effective bounds.

The resolved :class:`Interval` holds the effective bounds: two requests with the same
effective interval are the same request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mpo_realtime.domain.errors import ErrorCode, Problem

__all__ = ["LOOKBACK_MAX", "LOOKBACK_MIN", "Interval", "resolve_interval"]

LOOKBACK_MIN, LOOKBACK_MAX = 60, 1440
_MINUTE = timedelta(minutes=1)
_FIRST_INSTANT = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Interval:
    """The effective ``[start, end)`` of a report, whole UTC minutes."""

    start: datetime
    end: datetime
    #: minutes of a relative request; None for an absolute one
    lookback_window: int | None = None
    #: the request named no end (or one after now): its end is "now"
    open_ended: bool = False
    warnings: tuple[Problem, ...] = field(default=(), compare=False)


def _pointer(name: str) -> str:
    return f"/data/attributes/{name}"


def _text(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _duration(span: timedelta) -> str:
    return f"{span.days} days" if span == timedelta(days=span.days) else str(span)


def _ceil_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + _MINUTE


def _parse_instant(attrs: Mapping[str, Any], name: str, errors: list[Problem]) -> datetime | None:
    raw = attrs.get(name)
    if raw is None:
        return None
    if not isinstance(raw, str):
        # The source's own example names the field in the detail and carries no pointer.
        detail = f"data.attributes.{name} must be an ISO-8601 date-time string"
        errors.append(Problem(ErrorCode.JSON_SERIALIZATION, detail))
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        detail = f"{name} '{raw[:64]}' is not an ISO-8601 date-time"
        errors.append(Problem(ErrorCode.INVALID_TIME_INTERVAL, detail, _pointer(name)))
        return None
    try:
        # The source's dates are UTC; a date without an offset is read as UTC.
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        detail = f"{name} '{raw[:64]}' is outside the dates a UTC time can express"
        errors.append(Problem(ErrorCode.INVALID_TIME_INTERVAL, detail, _pointer(name)))
        return None


def _lookback(
    attrs: Mapping[str, Any], raw: Any, now: datetime
) -> tuple[datetime, datetime, bool] | list[Problem]:
    """``(start, end, True)``: the last ``raw`` minutes up to now."""
    if isinstance(raw, bool) or not isinstance(raw, int):
        detail = "data.attributes.lookbackWindow must be an integer number of minutes"
        return [Problem(ErrorCode.JSON_SERIALIZATION, detail)]
    errors: list[Problem] = []
    has_start, has_end = attrs.get("startDate") is not None, attrs.get("endDate") is not None
    if has_start or has_end:
        names = " and ".join(n for n, h in (("startDate", has_start), ("endDate", has_end)) if h)
        detail = f"lookbackWindow cannot be combined with {names}"
        pointer = _pointer("startDate" if has_start else "endDate")
        errors += [
            Problem(
                ErrorCode.INVALID_LOOKBACK_WINDOW, detail, _pointer("lookbackWindow"), conflict=True
            ),
            Problem(ErrorCode.INVALID_TIME_INTERVAL, detail, pointer, conflict=True),
        ]
    if not LOOKBACK_MIN <= raw <= LOOKBACK_MAX:
        detail = f"lookbackWindow {raw} is outside {LOOKBACK_MIN}-{LOOKBACK_MAX} minutes"
        errors.append(
            Problem(ErrorCode.INVALID_LOOKBACK_WINDOW, detail, _pointer("lookbackWindow"))
        )
    return errors or (now - timedelta(minutes=raw), now, True)


def _absolute(
    attrs: Mapping[str, Any], now: datetime, warnings: list[Problem]
) -> tuple[datetime, datetime, bool] | list[Problem]:
    """``(start, end, open_ended)``: the end is now when none is given or it is later."""
    errors: list[Problem] = []
    start = _parse_instant(attrs, "startDate", errors)
    end = _parse_instant(attrs, "endDate", errors)
    if attrs.get("startDate") is None:
        if attrs.get("endDate") is not None:
            detail, name = "endDate requires startDate", "endDate"
        else:
            detail = "give exactly one of lookbackWindow or startDate (with an optional endDate)"
            name = "startDate"
        return [*errors, Problem(ErrorCode.INVALID_TIME_INTERVAL, detail, _pointer(name))]
    if errors or start is None:
        return errors
    if start > now:
        detail = f"startDate {_text(start)} is in the future"
        return [Problem(ErrorCode.INVALID_TIME_INTERVAL, detail, _pointer("startDate"))]
    if end is not None and end > now:
        detail = f"endDate {_text(end)} is in the future; the report ends now"
        warnings.append(Problem(ErrorCode.END_DATE_CLAMPED, detail, _pointer("endDate")))
    open_ended = end is None or end > now
    resolved_end = now if end is None or open_ended else end
    if start >= resolved_end:
        detail = "startDate must be before endDate"
        return [Problem(ErrorCode.INVALID_TIME_INTERVAL, detail, _pointer("startDate"))]
    return start, resolved_end, open_ended


def resolve_interval(
    attrs: Mapping[str, Any], *, now: datetime, retention: timedelta
) -> Interval | list[Problem]:
    """The effective interval of a request's attributes, or the problems that prevent one.

    ``now`` is an aware datetime; data older than ``retention`` is not kept.
    """
    now = now.astimezone(UTC)
    warnings: list[Problem] = []
    lookback_raw = attrs.get("lookbackWindow")
    found = (
        _lookback(attrs, lookback_raw, now)
        if lookback_raw is not None
        else _absolute(attrs, now, warnings)
    )
    if isinstance(found, list):
        return found
    start, end, open_ended = found
    relative = lookback_raw is not None
    start_name = "lookbackWindow" if relative else "startDate"
    #: the attribute that gave the end, if the client gave it
    end_name = None if open_ended else "endDate"
    earliest = _ceil_minute(now - retention) if retention < now - _FIRST_INSTANT else None
    effective_end = _ceil_minute(end)
    if earliest is not None and effective_end <= earliest:
        detail = (
            f"{end_name or 'the interval'} ends at {_text(end)}, before the oldest data kept"
            f" ({_text(earliest)}: data are kept for {_duration(retention)})"
        )
        return [Problem(ErrorCode.INVALID_TIME_INTERVAL, detail, _pointer(end_name or start_name))]
    if earliest is not None and start < earliest:
        detail = (
            f"{start_name} starts at {_text(start)}, before the oldest data kept (data are kept"
            f" for {_duration(retention)}); the report starts at {_text(earliest)}"
        )
        warnings.append(Problem(ErrorCode.START_DATE_CLAMPED, detail, _pointer(start_name)))
        start = earliest
    effective_start = _ceil_minute(start)
    if effective_start >= effective_end:
        detail = (
            f"no minute starts in [{_text(start)}, {_text(end)}): a report counts whole minutes,"
            " those whose start lies in its interval"
        )
        return [Problem(ErrorCode.INVALID_TIME_INTERVAL, detail, _pointer(start_name))]
    if not relative:
        effective = f"[{_text(effective_start)}, {_text(effective_end)})"
        for name, given, rounded in (
            ("startDate", start, effective_start),
            (end_name, end, effective_end),
        ):
            if name is not None and given != rounded:
                detail = (
                    f"{name} {_text(given)} is not a whole minute; a report counts the minutes"
                    f" that start in its interval, so the effective interval is {effective}"
                )
                warnings.append(Problem(ErrorCode.INTERVAL_ROUNDED, detail, _pointer(name)))
    return Interval(
        start=effective_start,
        end=effective_end,
        lookback_window=lookback_raw if relative else None,
        open_ended=open_ended,
        warnings=tuple(warnings),
    )
