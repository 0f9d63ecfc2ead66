"""Report intervals: whole minutes by their start, clamped to the data kept, dates in range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpo_realtime.domain.errors import ErrorCode, Problem
from mpo_realtime.domain.interval import Interval, resolve_interval

NOW = datetime(2026, 11, 29, 15, 2, 17, 250_000, tzinfo=UTC)
RETENTION = timedelta(days=45)
#: the oldest whole minute kept at NOW
EARLIEST = datetime(2026, 10, 15, 15, 3, tzinfo=UTC)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _resolve(**attrs: Any) -> Interval:
    found = resolve_interval(attrs, now=NOW, retention=RETENTION)
    assert isinstance(found, Interval), found
    return found


def _problems(**attrs: Any) -> list[tuple[ErrorCode, str | None]]:
    found = resolve_interval(attrs, now=NOW, retention=RETENTION)
    assert isinstance(found, list), found
    return [(p.code, p.pointer) for p in found]


def _codes(warnings: tuple[Problem, ...]) -> list[tuple[ErrorCode, str | None]]:
    return [(w.code, w.pointer) for w in warnings]


def test_interval_whole_minutes_are_kept_as_given() -> None:
    found = _resolve(startDate="2026-11-20T10:00:00Z", endDate="2026-11-20T11:00:00Z")
    assert found == Interval(_utc("2026-11-20T10:00Z"), _utc("2026-11-20T11:00Z"))
    assert found.warnings == ()


def test_interval_bounds_within_a_minute_round_up_with_warnings() -> None:
    found = _resolve(startDate="2026-11-20T10:00:30Z", endDate="2026-11-20T10:01:30Z")
    # Minute 10:00 started before startDate, minute 10:02 after endDate: only 10:01 counts.
    assert (found.start, found.end) == (_utc("2026-11-20T10:01Z"), _utc("2026-11-20T10:02Z"))
    assert _codes(found.warnings) == [
        (ErrorCode.INTERVAL_ROUNDED, "/data/attributes/startDate"),
        (ErrorCode.INTERVAL_ROUNDED, "/data/attributes/endDate"),
    ]
    assert "[2026-11-20T10:01:00Z, 2026-11-20T10:02:00Z)" in found.warnings[0].detail


def test_interval_same_effective_bounds_are_the_same_interval() -> None:
    rounded = _resolve(startDate="2026-11-20T10:00:00.5Z", endDate="2026-11-20T10:59:01+00:00")
    exact = _resolve(startDate="2026-11-20T10:01:00Z", endDate="2026-11-20T11:00:00Z")
    assert rounded == exact  # warnings do not take part in equality


def test_interval_holding_no_minute_start_is_refused() -> None:
    assert _problems(startDate="2026-11-20T10:00:10Z", endDate="2026-11-20T10:00:50Z") == [
        (ErrorCode.INVALID_TIME_INTERVAL, "/data/attributes/startDate")
    ]


def test_interval_relative_request_keeps_the_current_minute() -> None:
    found = _resolve(lookbackWindow=60)
    assert found == Interval(
        _utc("2026-11-29T14:03Z"), _utc("2026-11-29T15:03Z"), lookback_window=60, open_ended=True
    )
    assert found.warnings == ()  # the client gave no bound that needed rounding


def test_interval_open_ended_request_ends_after_the_current_minute() -> None:
    found = _resolve(startDate="2026-11-29T14:00:00Z")
    assert (found.end, found.open_ended, found.warnings) == (_utc("2026-11-29T15:03Z"), True, ())


def test_interval_future_end_is_clamped_without_a_rounding_warning() -> None:
    found = _resolve(startDate="2026-11-29T14:00:00Z", endDate="2026-12-01T00:00:00Z")
    assert found.end == _utc("2026-11-29T15:03Z")
    assert _codes(found.warnings) == [(ErrorCode.END_DATE_CLAMPED, "/data/attributes/endDate")]


@pytest.mark.parametrize("start", ["0002-01-01T00:00:00Z", "2026-01-09T08:00:00Z", "1970-01-01"])
def test_interval_start_before_the_data_kept_is_clamped(start: str) -> None:
    found = _resolve(startDate=start)
    assert (found.start, found.end) == (EARLIEST, _utc("2026-11-29T15:03Z"))
    assert _codes(found.warnings) == [(ErrorCode.START_DATE_CLAMPED, "/data/attributes/startDate")]
    assert "45 days" in found.warnings[0].detail


def test_interval_that_ended_before_the_data_kept_is_refused() -> None:
    assert _problems(startDate="2026-01-09T08:00:00Z", endDate="2026-01-09T09:00:00Z") == [
        (ErrorCode.INVALID_TIME_INTERVAL, "/data/attributes/endDate")
    ]


@pytest.mark.parametrize(
    ("attrs", "pointer"),
    [
        ({"startDate": "0001-01-01T00:00:00+01:00"}, "startDate"),
        ({"startDate": "2026-11-20T00:00:00Z", "endDate": "9999-12-31T23:59:59-01:00"}, "endDate"),
        ({"startDate": "0001-01-01T00:30:00+00:31"}, "startDate"),
        ({"startDate": "2026-11-20", "endDate": "9999-12-31T23:00:00-23:59"}, "endDate"),
    ],
)
def test_interval_dates_outside_utc_are_refused(attrs: dict[str, str], pointer: str) -> None:
    assert _problems(**attrs) == [(ErrorCode.INVALID_TIME_INTERVAL, f"/data/attributes/{pointer}")]


@given(
    start=st.datetimes(timezones=st.timezones()) | st.datetimes(),
    end=st.none() | st.datetimes(timezones=st.timezones()) | st.datetimes(),
)
def test_interval_any_dates_resolve_or_give_problems(start: datetime, end: datetime | None) -> None:
    attrs = {"startDate": start.isoformat()}
    if end is not None:
        attrs["endDate"] = end.isoformat()
    found = resolve_interval(attrs, now=NOW, retention=RETENTION)
    if isinstance(found, Interval):
        assert EARLIEST <= found.start < found.end <= _utc("2026-11-29T15:03Z")
        assert found.start.second == found.end.second == 0
        assert found.start.microsecond == found.end.microsecond == 0
    else:
        assert found and all(p.code is ErrorCode.INVALID_TIME_INTERVAL for p in found)
