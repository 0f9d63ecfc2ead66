"""Report intervals: whole minutes by their start, clamped to the data kept, dates in range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
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


def _refusal(**attrs: Any) -> list[Problem]:
    found = resolve_interval(attrs, now=NOW, retention=RETENTION)
    assert isinstance(found, list), found
    return found


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


BAD, LOOKBACK, SERIAL = (
    ErrorCode.INVALID_TIME_INTERVAL,
    ErrorCode.INVALID_LOOKBACK_WINDOW,
    ErrorCode.JSON_SERIALIZATION,
)
P = "/data/attributes/"
REFUSED: list[tuple[dict[str, Any], list[tuple[ErrorCode, str, str | None, bool]]]] = [
    (
        {"lookbackWindow": "60"},
        [
            (
                SERIAL,
                "data.attributes.lookbackWindow must be an integer number of minutes",
                None,
                False,
            )
        ],
    ),
    (
        {"lookbackWindow": True},
        [
            (
                SERIAL,
                "data.attributes.lookbackWindow must be an integer number of minutes",
                None,
                False,
            )
        ],
    ),
    (
        {"lookbackWindow": 59},
        [(LOOKBACK, "lookbackWindow 59 is outside 60-1440 minutes", P + "lookbackWindow", False)],
    ),
    (
        {"lookbackWindow": 1441},
        [(LOOKBACK, "lookbackWindow 1441 is outside 60-1440 minutes", P + "lookbackWindow", False)],
    ),
    (
        {"lookbackWindow": 60, "startDate": "2026-11-29T10:00:00Z"},
        [
            (
                LOOKBACK,
                "lookbackWindow cannot be combined with startDate",
                P + "lookbackWindow",
                True,
            ),
            (BAD, "lookbackWindow cannot be combined with startDate", P + "startDate", True),
        ],
    ),
    (
        {"lookbackWindow": 10, "endDate": "x"},
        [
            (
                LOOKBACK,
                "lookbackWindow cannot be combined with endDate",
                P + "lookbackWindow",
                True,
            ),
            (BAD, "lookbackWindow cannot be combined with endDate", P + "endDate", True),
            (LOOKBACK, "lookbackWindow 10 is outside 60-1440 minutes", P + "lookbackWindow", False),
        ],
    ),
    (
        {"lookbackWindow": 60, "startDate": "x", "endDate": "y"},
        [
            (
                LOOKBACK,
                "lookbackWindow cannot be combined with startDate and endDate",
                P + "lookbackWindow",
                True,
            ),
            (
                BAD,
                "lookbackWindow cannot be combined with startDate and endDate",
                P + "startDate",
                True,
            ),
        ],
    ),
    (
        {},
        [
            (
                BAD,
                "give exactly one of lookbackWindow or startDate (with an optional endDate)",
                P + "startDate",
                False,
            )
        ],
    ),
    (
        {"endDate": "2026-11-29T10:00:00Z"},
        [(BAD, "endDate requires startDate", P + "endDate", False)],
    ),
    (
        {"endDate": 5},
        [
            (SERIAL, "data.attributes.endDate must be an ISO-8601 date-time string", None, False),
            (BAD, "endDate requires startDate", P + "endDate", False),
        ],
    ),
    (
        {"startDate": 5},
        [(SERIAL, "data.attributes.startDate must be an ISO-8601 date-time string", None, False)],
    ),
    (
        {"startDate": "2026-11-29T10:00:00Z", "endDate": "nope" + "x" * 70},
        [(BAD, f"endDate 'nope{'x' * 60}' is not an ISO-8601 date-time", P + "endDate", False)],
    ),
    (
        {"startDate": "0001-01-01T00:00:00+01:00"},
        [
            (
                BAD,
                "startDate '0001-01-01T00:00:00+01:00' is outside the dates a UTC time can express",
                P + "startDate",
                False,
            )
        ],
    ),
    (
        {"startDate": "2026-11-29T15:02:17.250001Z"},
        [(BAD, "startDate 2026-11-29T15:02:17.250001Z is in the future", P + "startDate", False)],
    ),
    (
        {"startDate": "2026-11-29T10:00:00Z", "endDate": "2026-11-29T10:00:00Z"},
        [(BAD, "startDate must be before endDate", P + "startDate", False)],
    ),
    (
        {"startDate": "2026-11-29T10:00:10Z", "endDate": "2026-11-29T10:00:50Z"},
        [
            (
                BAD,
                "no minute starts in [2026-11-29T10:00:10Z, 2026-11-29T10:00:50Z): a report"
                " counts whole minutes, those whose start lies in its interval",
                P + "startDate",
                False,
            )
        ],
    ),
    (
        {"startDate": "2026-01-01T10:00:00Z", "endDate": "2026-01-02T10:00:00Z"},
        [
            (
                BAD,
                "endDate ends at 2026-01-02T10:00:00Z, before the oldest data kept"
                " (2026-10-15T15:03:00Z: data are kept for 45 days)",
                P + "endDate",
                False,
            )
        ],
    ),
]


@pytest.mark.parametrize(("attrs", "expected"), REFUSED)
def test_interval_refusals_name_the_problem_and_its_attribute(
    attrs: dict[str, Any], expected: list[tuple[ErrorCode, str, str | None, bool]]
) -> None:
    found = resolve_interval(attrs, now=NOW, retention=RETENTION)
    assert isinstance(found, list)
    assert [(p.code, p.detail, p.pointer, p.conflict) for p in found] == expected


def test_interval_start_at_now_is_not_in_the_future_but_holds_no_minute() -> None:
    # NOW is 15:02:17.25: a start exactly then is not in the future, but the interval
    # that ends now is then empty.
    at_now = "2026-11-29T15:02:17.250Z"
    for attrs in ({"startDate": at_now}, {"startDate": at_now, "endDate": at_now}):
        assert [(p.detail, p.pointer) for p in _refusal(**attrs)] == [
            ("startDate must be before endDate", P + "startDate")
        ]


def test_interval_end_at_now_is_not_clamped_nor_open_ended() -> None:
    found = _resolve(startDate="2026-11-29T14:00:00Z", endDate="2026-11-29T15:02:17.250Z")
    assert (found.end, found.open_ended) == (_utc("2026-11-29T15:03Z"), False)
    assert _codes(found.warnings) == [(ErrorCode.INTERVAL_ROUNDED, P + "endDate")]


def test_interval_lookback_bounds_are_allowed() -> None:
    for minutes in (60, 1440):
        found = _resolve(lookbackWindow=minutes)
        assert found.end - found.start == timedelta(minutes=minutes)
        assert found.lookback_window == minutes


def test_interval_relative_request_older_than_the_data_kept_is_clamped() -> None:
    found = resolve_interval({"lookbackWindow": 1440}, now=NOW, retention=timedelta(hours=2))
    assert isinstance(found, Interval)
    assert (found.start, found.end, found.lookback_window) == (
        _utc("2026-11-29T13:03Z"),
        _utc("2026-11-29T15:03Z"),
        1440,
    )
    assert [(w.code, w.detail, w.pointer) for w in found.warnings] == [
        (
            ErrorCode.START_DATE_CLAMPED,
            "lookbackWindow starts at 2026-11-28T15:02:17.250000Z, before the oldest data kept"
            " (data are kept for 2:00:00); the report starts at 2026-11-29T13:03:00Z",
            P + "lookbackWindow",
        )
    ]


def test_interval_open_interval_before_the_data_kept_names_the_interval() -> None:
    found = resolve_interval({"startDate": "2026-11-29T10:00:00Z"}, now=NOW, retention=timedelta(0))
    assert isinstance(found, list)
    assert [(p.code, p.detail, p.pointer) for p in found] == [
        (
            BAD,
            "the interval ends at 2026-11-29T15:02:17.250000Z, before the oldest data kept"
            " (2026-11-29T15:03:00Z: data are kept for 0 days)",
            P + "startDate",
        )
    ]


def test_interval_clamp_and_rounding_warnings_give_the_effective_interval() -> None:
    found = _resolve(startDate="2026-10-01T10:00:00+02:00", endDate="2026-11-01T10:00:30")
    assert (found.start, found.end, found.open_ended) == (
        EARLIEST,
        _utc("2026-11-01T10:01Z"),
        False,
    )
    assert [(w.code, w.detail, w.pointer) for w in found.warnings] == [
        (
            ErrorCode.START_DATE_CLAMPED,
            "startDate starts at 2026-10-01T08:00:00Z, before the oldest data kept (data are"
            " kept for 45 days); the report starts at 2026-10-15T15:03:00Z",
            P + "startDate",
        ),
        (
            ErrorCode.INTERVAL_ROUNDED,
            "endDate 2026-11-01T10:00:30Z is not a whole minute; a report counts the minutes"
            " that start in its interval, so the effective interval is"
            " [2026-10-15T15:03:00Z, 2026-11-01T10:01:00Z)",
            P + "endDate",
        ),
    ]


def test_interval_future_end_is_a_warning_that_says_the_report_ends_now() -> None:
    found = _resolve(startDate="2026-11-29T14:00:00Z", endDate="2026-11-29T15:02:17.250001Z")
    assert found.open_ended
    assert [(w.code, w.detail) for w in found.warnings] == [
        (
            ErrorCode.END_DATE_CLAMPED,
            "endDate 2026-11-29T15:02:17.250001Z is in the future; the report ends now",
        )
    ]


def test_interval_now_in_another_zone_is_the_same_instant() -> None:
    paris_now = NOW.astimezone(timezone(timedelta(hours=1)))
    found = resolve_interval({"lookbackWindow": 60}, now=paris_now, retention=RETENTION)
    assert found == _resolve(lookbackWindow=60)
    assert isinstance(found, Interval) and found.end.tzinfo is UTC


def test_interval_retention_longer_than_all_time_keeps_every_date() -> None:
    found = resolve_interval(
        {"startDate": "0001-01-01T00:00:00Z"}, now=NOW, retention=timedelta(days=800_000)
    )
    assert isinstance(found, Interval)
    assert (found.start, found.warnings) == (datetime(1, 1, 1, tzinfo=UTC), ())


def test_interval_overflowing_date_is_named_by_its_first_64_characters() -> None:
    given = "0001-01-01T00:00:00." + "0" * 50 + "+01:00"
    assert [p.detail for p in _refusal(startDate=given)] == [
        f"startDate '{given[:64]}' is outside the dates a UTC time can express"
    ]


@pytest.mark.usefixtures("server_in_kolkata")
def test_interval_dates_never_depend_on_the_servers_local_zone() -> None:
    # A date without an offset is UTC, and every bound is a UTC datetime.
    found = _resolve(startDate="2026-11-20T10:00:00", endDate="2026-11-20T16:30:30+05:30")
    assert (found.start, found.end) == (_utc("2026-11-20T10:00Z"), _utc("2026-11-20T11:01Z"))
    assert found.start.tzinfo is UTC and found.end.tzinfo is UTC
    assert found.warnings[0].detail.startswith("endDate 2026-11-20T11:00:30Z is not")


def test_interval_at_the_oldest_minute_kept_is_the_boundary_of_both_rules() -> None:
    # Starting exactly at the oldest minute kept is not a clamp ...
    found = _resolve(startDate="2026-10-15T15:03:00Z", endDate="2026-10-15T16:00:00Z")
    assert (found.start, found.warnings) == (EARLIEST, ())
    # ... and ending exactly there ends before any data kept.
    assert [
        (p.detail, p.pointer)
        for p in _refusal(startDate="2026-10-01", endDate="2026-10-15T15:03:00Z")
    ] == [
        (
            "endDate ends at 2026-10-15T15:03:00Z, before the oldest data kept"
            " (2026-10-15T15:03:00Z: data are kept for 45 days)",
            P + "endDate",
        )
    ]
