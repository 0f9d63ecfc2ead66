"""The ingest event parser: NDJSON or JSON array in, columns or every problem out."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpo_realtime.domain.events import (
    EVENT_FIELDS,
    MAX_COST,
    MAX_COUNT,
    MAX_ID,
    MAX_TEXT,
    EventBatch,
    EventBatchError,
    EventIssue,
    parse_events,
)
from mpo_realtime.domain.money import NANOS, costs_nanos

NOW = datetime(2026, 3, 29, 10, 20, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
HOUR_MS = 3_600_000
REQUIRED = tuple(f for f in EVENT_FIELDS if f != "sellerName")
ID_FIELDS = ("advertiserId", "partnerId", "campaignId", "sellerId")
COUNT_FIELDS = ("displays", "clicks")

EVENT_A: dict[str, Any] = {
    "timestamp": "2026-03-29T10:15:30.250Z",
    "advertiserId": "321",
    "partnerId": 45,
    "campaignId": "12345",
    "sellerId": "254614150",
    "productId": 'SKU-1, "XL" Größe',
    "displays": 3,
    "clicks": 1,
    "cost": 0.75,
    "sellerName": "Maison Durand",
}
EVENT_B: dict[str, Any] = {
    "timestamp": "2026-03-29T12:16:00+02:00",
    "advertiserId": 321,
    "partnerId": "45",
    "campaignId": 56789,
    "sellerId": 1,
    "productId": "日本",
    "displays": 0,
    "clicks": 0,
    "cost": 0,
}
PARSED = EventBatch(
    ts_ms=[NOW_MS - 270_000 + 250, NOW_MS - 240_000],
    advertiser_id=[321, 321],
    partner_id=[45, 45],
    campaign_id=[12345, 56789],
    seller_id=[254614150, 1],
    product_id=['SKU-1, "XL" Größe', "日本"],
    displays=[3, 0],
    clicks=[1, 0],
    cost_nanos=[750_000_000, 0],
    seller_name=["Maison Durand", None],
)


def _json(value: Any) -> bytes:
    # The standard library, not orjson: it also writes integers past 64 bits.
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _ndjson(*events: Any) -> bytes:
    return b"\n".join(_json(e) for e in events) + b"\n"


def _array(*events: Any) -> bytes:
    return _json(list(events))


def _issues(body: bytes, **kwargs: int) -> EventBatchError:
    with pytest.raises(EventBatchError) as caught:
        parse_events(body, now_ms=NOW_MS, **kwargs)
    return caught.value


def _where(error: EventBatchError) -> list[tuple[int, str | None]]:
    return [(issue.line, issue.field) for issue in error.issues]


# -- valid bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("encode", [_ndjson, _array], ids=["ndjson", "array"])
def test_parse_events_valid_body_gives_columns(encode: Any) -> None:
    assert parse_events(encode(EVENT_A, EVENT_B), now_ms=NOW_MS) == PARSED


def test_parse_events_ndjson_and_array_agree() -> None:
    ndjson = parse_events(_ndjson(EVENT_A, EVENT_B), now_ms=NOW_MS)
    array = parse_events(_array(EVENT_A, EVENT_B), now_ms=NOW_MS)
    assert ndjson == array
    assert len(ndjson) == 2


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b"\r\n".join(orjson.dumps(e) for e in (EVENT_A, EVENT_B)), id="crlf-no-final-newline"
        ),
        pytest.param(
            b"\n\n" + _ndjson(EVENT_A) + b"   \n\t\n" + _ndjson(EVENT_B), id="blank-lines"
        ),
        pytest.param(b"  \n" + _array(EVENT_A, EVENT_B) + b"\n", id="array-with-whitespace"),
        pytest.param(
            orjson.dumps([EVENT_A, EVENT_B], option=orjson.OPT_INDENT_2), id="pretty-array"
        ),
    ],
)
def test_parse_events_tolerates_whitespace(body: bytes) -> None:
    assert parse_events(body, now_ms=NOW_MS) == PARSED


@pytest.mark.parametrize(
    ("field", "value", "column", "parsed"),
    [
        ("advertiserId", "0", "advertiser_id", 0),
        ("advertiserId", "007", "advertiser_id", 7),
        ("partnerId", str(MAX_ID), "partner_id", MAX_ID),
        ("campaignId", MAX_ID, "campaign_id", MAX_ID),
        ("displays", MAX_COUNT, "displays", MAX_COUNT),
        ("clicks", 0, "clicks", 0),
        ("clicks", MAX_COUNT, "clicks", MAX_COUNT),
        ("cost", 3, "cost_nanos", 3 * NANOS),
        ("cost", MAX_COST, "cost_nanos", MAX_COST * NANOS),
        ("cost", float(MAX_COST), "cost_nanos", MAX_COST * NANOS),
        ("cost", 999_999.999999999, "cost_nanos", MAX_COST * NANOS - 1),
        ("cost", 0.1, "cost_nanos", 100_000_000),
        ("cost", 0.000000001, "cost_nanos", 1),
        ("cost", -0.0, "cost_nanos", 0),
        # finer than 9 decimals: rounded half to even, from the number's shortest form
        ("cost", 0.1 * 3, "cost_nanos", 300_000_000),
        ("cost", 0.0000000025, "cost_nanos", 2),
        ("cost", 0.0000000035, "cost_nanos", 4),
        ("cost", 1.0000000005, "cost_nanos", NANOS),
        ("cost", 1.0000000015, "cost_nanos", NANOS + 2),
        ("cost", 0.00000000049, "cost_nanos", 0),
        ("cost", 5e-324, "cost_nanos", 0),
        ("productId", "x" * MAX_TEXT, "product_id", "x" * MAX_TEXT),
        ("productId", "\x00", "product_id", "\x00"),
        ("productId", " ", "product_id", " "),
        ("sellerName", None, "seller_name", None),
        ("sellerName", "O'Brien, Gear & Co.", "seller_name", "O'Brien, Gear & Co."),
        ("timestamp", NOW_MS, "ts_ms", NOW_MS),
        ("timestamp", NOW_MS + HOUR_MS, "ts_ms", NOW_MS + HOUR_MS),
        ("timestamp", "2026-03-29T11:20:00Z", "ts_ms", NOW_MS + HOUR_MS),
        ("timestamp", "2026-03-29T15:50:00+05:30", "ts_ms", NOW_MS),
        ("timestamp", "2026-03-29T10:20:00.999999+00:00", "ts_ms", NOW_MS + 999),
        ("timestamp", "2026-03-29 10:20Z", "ts_ms", NOW_MS),
    ],
)
def test_parse_events_accepts_boundary_value(
    field: str, value: object, column: str, parsed: object
) -> None:
    batch = parse_events(_ndjson({**EVENT_A, field: value}), now_ms=NOW_MS)
    assert getattr(batch, column) == [parsed]


def test_parse_events_seller_name_is_optional() -> None:
    event = {k: v for k, v in EVENT_A.items() if k != "sellerName"}
    assert parse_events(_ndjson(event), now_ms=NOW_MS).seller_name == [None]


# -- bad fields -----------------------------------------------------------------------------

BAD_IDS: list[tuple[object, str]] = [
    ("12a", "digits only"),
    ("abc", "digits only"),
    ("", "digits only"),
    (" 1", "digits only"),
    ("+1", "digits only"),
    ("-1", "digits only"),
    ("1e3", "digits only"),
    ("١٢", "digits only"),  # Arabic-Indic digits: str.isdigit() says yes, the API says no
    ("²", "digits only"),
    (1.0, "digits only"),
    (1.5, "digits only"),
    (True, "digits only"),
    (False, "digits only"),
    ([1], "digits only"),
    ({"id": 1}, "digits only"),
    (-1, "out of range"),
    (MAX_ID + 1, "out of range"),
    (str(MAX_ID + 1), "out of range"),
    ("9" * 40, "out of range"),
    (2**64 - 1, "out of range"),
]
BAD_COUNTS: list[tuple[object, str]] = [
    (-1, "integer from 0 to 1,000,000"),
    (1.0, "integer from 0 to 1,000,000"),
    (1.5, "integer from 0 to 1,000,000"),
    (True, "integer from 0 to 1,000,000"),
    ("1", "integer from 0 to 1,000,000"),
    ([1], "integer from 0 to 1,000,000"),
    (MAX_COUNT + 1, "integer from 0 to 1,000,000 (per event)"),
    (2**53, "integer from 0 to 1,000,000"),
    (2**64, "integer from 0 to 1,000,000"),  # orjson reads integers past 64 bits as floats
]
BAD_FIELDS: list[tuple[str, object, str]] = [
    *[(field, value, message) for field in ID_FIELDS for value, message in BAD_IDS],
    *[(field, value, message) for field in COUNT_FIELDS for value, message in BAD_COUNTS],
    ("cost", -0.01, "number from 0 to 1,000,000 (per event)"),
    ("cost", -1, "number from 0 to 1,000,000"),
    ("cost", -1e-12, "number from 0 to 1,000,000"),
    ("cost", MAX_COST + 1, "number from 0 to 1,000,000"),
    ("cost", 1_000_000.001, "number from 0 to 1,000,000"),
    ("cost", 1e308, "number from 0 to 1,000,000"),
    ("cost", 2**64, "number from 0 to 1,000,000"),
    ("cost", "0.5", "non-negative number"),
    ("cost", True, "non-negative number"),
    ("cost", [0.5], "non-negative number"),
    ("productId", "", "non-empty string"),
    ("productId", "x" * (MAX_TEXT + 1), f"at most {MAX_TEXT} characters"),
    ("productId", "日" * (MAX_TEXT + 1), f"at most {MAX_TEXT} characters"),
    ("productId", 5, "non-empty string"),
    ("productId", True, "non-empty string"),
    ("productId", ["a"], "non-empty string"),
    ("sellerName", "", "non-empty string"),
    ("sellerName", "x" * (MAX_TEXT + 1), f"at most {MAX_TEXT} characters"),
    ("sellerName", 5, "non-empty string"),
    ("timestamp", "2026-03-29T10:15:00", "no UTC offset"),
    ("timestamp", "2026-03-29", "no UTC offset"),
    ("timestamp", "yesterday", "not an ISO-8601 date-time"),
    ("timestamp", "", "not an ISO-8601 date-time"),
    ("timestamp", "2026-03-29T10:15:00+24:00", "not an ISO-8601 date-time"),
    ("timestamp", "29/03/2026 10:15", "not an ISO-8601 date-time"),
    ("timestamp", "2026-02-30T10:15:00Z", "not an ISO-8601 date-time"),
    ("timestamp", "2030-01-01T00:00:00Z", "outside the accepted range"),
    ("timestamp", "2026-03-29T11:20:00.001Z", "outside the accepted range"),
    ("timestamp", "1969-12-31T23:59:59Z", "outside the accepted range"),
    ("timestamp", NOW_MS + HOUR_MS + 1, "outside the accepted range"),
    ("timestamp", -1, "outside the accepted range"),
    ("timestamp", 1.7e12, "ISO-8601 string or epoch milliseconds"),
    ("timestamp", True, "ISO-8601 string or epoch milliseconds"),
    ("timestamp", ["2026-03-29T10:15:00Z"], "ISO-8601 string or epoch milliseconds"),
    ("timestamp", {"iso": "2026-03-29T10:15:00Z"}, "ISO-8601 string or epoch milliseconds"),
]


@pytest.mark.parametrize("encode", [_ndjson, _array], ids=["ndjson", "array"])
@pytest.mark.parametrize(("field", "value", "message"), BAD_FIELDS)
def test_parse_events_rejects_bad_field(
    encode: Any, field: str, value: object, message: str
) -> None:
    error = _issues(encode(EVENT_A, {**EVENT_B, field: value}, EVENT_A))
    assert _where(error) == [(2, field)]
    assert message in error.issues[0].message
    assert error.total == 1


@pytest.mark.parametrize("field", REQUIRED)
@pytest.mark.parametrize("how", ["missing", "null"])
def test_parse_events_rejects_missing_required_field(field: str, how: str) -> None:
    event = {k: v for k, v in EVENT_A.items() if k != field}
    if how == "null":
        event[field] = None
    error = _issues(_ndjson(EVENT_B, event))
    assert error.issues == [EventIssue(2, field, "is required")]


@pytest.mark.parametrize("unknown", ["foo", "AdvertiserId", "timestamp ", ""])
def test_parse_events_rejects_unknown_field(unknown: str) -> None:
    error = _issues(_ndjson({**EVENT_A, unknown: 1}))
    assert error.issues == [EventIssue(1, unknown, "unknown field")]


def test_parse_events_reports_every_issue_of_a_line_in_field_order() -> None:
    event = {**EVENT_A, "zeta": 1, "alpha": 2, "cost": -1, "advertiserId": "x"}
    del event["clicks"]
    error = _issues(_ndjson(EVENT_A, EVENT_A, event))
    assert _where(error) == [
        (3, "alpha"),
        (3, "zeta"),
        (3, "advertiserId"),
        (3, "clicks"),
        (3, "cost"),
    ]
    assert error.total == 5


# -- bad lines and bodies -------------------------------------------------------------------

GOOD = _json(EVENT_A)


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        pytest.param(GOOD + b"\n1", [(2, None)], "must be a JSON object", id="number-line"),
        pytest.param(GOOD + b'\n"x"', [(2, None)], "must be a JSON object", id="string-line"),
        pytest.param(GOOD + b"\nnull", [(2, None)], "must be a JSON object", id="null-line"),
        pytest.param(GOOD + b"\ntrue", [(2, None)], "must be a JSON object", id="bool-line"),
        pytest.param(GOOD + b"\n[" + GOOD + b"]", [(2, None)], "JSON object", id="array-line"),
        pytest.param(_array(EVENT_A, 7), [(2, None)], "must be a JSON object", id="array-item"),
        pytest.param(_array(EVENT_A, [EVENT_A]), [(2, None)], "JSON object", id="nested-array"),
        pytest.param(GOOD + b"\n{", [(2, None)], "not valid JSON", id="truncated-line"),
        pytest.param(GOOD + b"\n{'a': 1}", [(2, None)], "not valid JSON", id="single-quotes"),
        pytest.param(GOOD[:-1] + b",}", [(1, None)], "not valid JSON", id="trailing-comma"),
        pytest.param(GOOD + b"\nNaN", [(2, None)], "not valid JSON", id="nan-line"),
        pytest.param(
            GOOD + b"\n" + GOOD.replace(b'"cost":0.75', b'"cost":NaN'),
            [(2, None)],
            "not valid JSON",
            id="nan-cost",
        ),
        pytest.param(
            GOOD.replace(b'"cost":0.75', b'"cost":Infinity'),
            [(1, None)],
            "not valid JSON",
            id="infinity-cost",
        ),
        pytest.param(
            GOOD.replace(b'"cost":0.75', b'"cost":-Infinity'),
            [(1, None)],
            "not valid JSON",
            id="minus-infinity-cost",
        ),
        pytest.param(
            GOOD.replace(b'"cost":0.75', b'"cost":1e400'),
            [(1, None)],
            "not valid JSON",
            id="overflowing-cost",
        ),
        pytest.param(
            b"[" + GOOD + b", " + GOOD.replace(b'"cost":0.75', b'"cost":NaN') + b"]",
            [(1, None)],
            "body is not valid JSON",
            id="nan-in-array-body",
        ),
        pytest.param(b"[" + GOOD, [(1, None)], "body is not valid JSON", id="unclosed-array"),
        pytest.param(b"[" + GOOD + b"]\n[" + GOOD + b"]", [(1, None)], "not valid", id="arrays"),
        pytest.param(b"", [(1, None)], "body is empty", id="empty"),
        pytest.param(b" \n\t\r\n  ", [(1, None)], "body is empty", id="whitespace-only"),
        pytest.param(b"[]", [(1, None)], "no events", id="empty-array"),
        pytest.param(b"\xef\xbb\xbf" + GOOD, [(1, None)], "not valid JSON", id="utf8-bom"),
        pytest.param(GOOD + b"\n\n\xff\xfe" + GOOD, [(3, None)], "not valid UTF-8", id="not-utf8"),
        pytest.param(
            GOOD.replace(b"Durand", b"Dur\xe9nd"), [(1, None)], "not valid UTF-8", id="latin-1"
        ),
        pytest.param(
            orjson.dumps({"events": [EVENT_A]}),
            [(1, "events"), *[(1, f) for f in REQUIRED]],
            "unknown field",
            id="object-instead-of-array",
        ),
        pytest.param(
            orjson.dumps(EVENT_A, option=orjson.OPT_INDENT_2),
            [(n, None) for n in range(1, len(EVENT_A) + 3)],
            "not valid JSON",
            id="pretty-object-is-not-ndjson",
        ),
    ],
)
def test_parse_events_rejects_bad_body(
    body: bytes, where: list[tuple[int, str | None]], message: str
) -> None:
    error = _issues(body)
    assert _where(error) == where
    assert message in error.issues[0].message
    assert error.total == len(where)


def test_parse_events_rejects_more_than_max_events() -> None:
    error = _issues(_ndjson(EVENT_A, EVENT_A, EVENT_A), max_events=2)
    assert error.issues[0].line == 1
    assert "2 events" in error.issues[0].message
    assert parse_events(_ndjson(EVENT_A, EVENT_A), now_ms=NOW_MS, max_events=2).ts_ms


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"1\n" * 50_000, id="ndjson-numbers"),
        pytest.param(b"\n" * 50_000 + b"{}\n" * 11, id="ndjson-objects-after-blank-lines"),
        pytest.param(b"[" + b"1," * 50_000 + b"1]", id="array-numbers"),
        pytest.param(b"[" + b"{}," * 50_000 + b"{}]", id="array-objects"),
        pytest.param(b'[{"a":[' + b"[]," * 50_000 + b"[]]}]", id="one-deep-event"),
        pytest.param(b'{"a":[' + b"0," * 50_000 + b"0]}", id="one-wide-line"),
    ],
)
def test_parse_events_refuses_too_many_values_before_building_them(body: bytes) -> None:
    # Over the event limit, or more JSON values than that many events can hold: refused
    # as a whole, with one issue, whatever the values are.
    error = _issues(body, max_events=10)
    assert error.total == 1
    assert _where(error) == [(1, None)]
    assert "10 events" in error.issues[0].message


def test_parse_events_counts_only_structure_outside_strings() -> None:
    # Commas and brackets inside strings are text: two events full of them still parse.
    punctuated = {**EVENT_A, "productId": "[{,}]" * 40, "sellerName": ',"[' * 60}
    body = _array(punctuated, EVENT_B)
    assert body.count(b",") > 12 * 2 + 1  # over the cheap bound, within the exact one
    batch = parse_events(body, now_ms=NOW_MS, max_events=2)
    assert batch.product_id == [punctuated["productId"], EVENT_B["productId"]]
    assert batch.seller_name == [punctuated["sellerName"], None]


def test_parse_events_range_follows_min_ms_and_max_future_ms() -> None:
    week_ago = NOW_MS - 7 * 24 * HOUR_MS
    # Epoch seconds sent by mistake read as milliseconds in January 1970: too old.
    seconds = {**EVENT_A, "timestamp": NOW_MS // 1000}
    error = _issues(_ndjson(EVENT_A, seconds), min_ms=week_ago)
    assert _where(error) == [(2, "timestamp")]
    at_min = {**EVENT_A, "timestamp": week_ago}
    assert parse_events(_ndjson(at_min), now_ms=NOW_MS, min_ms=week_ago).ts_ms == [week_ago]
    ahead = {**EVENT_A, "timestamp": NOW_MS + 1}
    assert _where(_issues(_ndjson(ahead), max_future_ms=0)) == [(1, "timestamp")]


@pytest.mark.parametrize(("bad_lines", "cap"), [(150, 100), (7, 5), (3, 3), (1, 1)])
def test_parse_events_caps_issues_and_counts_all(bad_lines: int, cap: int) -> None:
    bad = {**EVENT_A, "displays": -1}
    error = _issues(_ndjson(*[EVENT_A, bad] * bad_lines), cap=cap)
    assert error.total == bad_lines
    assert _where(error) == [(2 * n, "displays") for n in range(1, min(cap, bad_lines) + 1)]
    assert str(error) == f"{bad_lines} invalid field(s) in batch"


def test_parse_events_caps_issues_across_lines_with_many_issues() -> None:
    error = _issues(_ndjson(*[{}] * 10), cap=20)
    assert error.total == 10 * len(REQUIRED)
    assert len(error.issues) == 20
    assert _where(error)[-1] == (3, REQUIRED[20 - 2 * len(REQUIRED) - 1])


def test_parse_events_is_all_or_nothing() -> None:
    events = [EVENT_A] * 1000
    events[617] = {**EVENT_A, "cost": -0.5}
    error = _issues(_ndjson(*events))
    assert _where(error) == [(618, "cost")]
    assert error.total == 1


def test_event_issue_str_names_line_and_field() -> None:
    assert (
        str(EventIssue(3, "cost", "must be a number")) == "line 3, field 'cost': must be a number"
    )
    assert str(EventIssue(1, None, "body is empty")) == "line 1: body is empty"


# -- property -------------------------------------------------------------------------------

ids = st.integers(0, MAX_ID)
texts = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=MAX_TEXT)


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    def an_id() -> int | str:
        value = draw(ids)
        return str(value) if draw(st.booleans()) else value

    event: dict[str, Any] = {
        "timestamp": draw(st.integers(0, NOW_MS + HOUR_MS)),
        "advertiserId": an_id(),
        "partnerId": an_id(),
        "campaignId": an_id(),
        "sellerId": an_id(),
        "productId": draw(texts),
        "displays": draw(st.integers(0, MAX_COUNT)),
        "clicks": draw(st.integers(0, MAX_COUNT)),
        "cost": draw(st.floats(0, MAX_COST) | st.integers(0, MAX_COST)),
    }
    if draw(st.booleans()):
        event["sellerName"] = draw(st.none() | texts)
    if draw(st.booleans()):
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=event["timestamp"])
        event["timestamp"] = moment.isoformat(timespec="milliseconds")
    return event


@settings(max_examples=60, deadline=None)
@given(st.lists(valid_events(), min_size=1, max_size=5))
def test_parse_events_round_trips_valid_events(events: list[dict[str, Any]]) -> None:
    batch = parse_events(_ndjson(*events), now_ms=NOW_MS)
    assert batch == parse_events(_array(*events), now_ms=NOW_MS)
    assert batch.advertiser_id == [int(e["advertiserId"]) for e in events]
    assert batch.product_id == [e["productId"] for e in events]
    assert batch.displays == [e["displays"] for e in events]
    assert batch.cost_nanos == [_nanos(e["cost"]) for e in events]
    assert batch.seller_name == [e.get("sellerName") for e in events]
    assert all(0 <= ts <= NOW_MS + HOUR_MS for ts in batch.ts_ms)


def _nanos(cost: float) -> int:
    """The rounding rule, spelled out: the number's shortest decimal, half to even."""
    exact = Decimal(repr(cost)).quantize(Decimal("0.000000001"), rounding=ROUND_HALF_EVEN)
    return int(exact * NANOS)


@st.composite
def cost_literals(draw: st.DrawFn) -> str:
    """A JSON number of at most 9 decimals within the cap, in one of its many spellings."""
    nanos = draw(
        st.integers(0, MAX_COST * NANOS)
        | st.sampled_from([0, 1, 100_000_000, MAX_COST * NANOS, MAX_COST * NANOS - 1])
        | st.integers(0, 10**6).map(lambda n: n * 10**8)  # many 0.1 steps
    )
    value = Decimal(nanos).scaleb(-9)
    form = draw(st.sampled_from(["plain", "padded", "exponent", "upper", "integer"]))
    if form == "padded":
        return f"{value:.9f}"
    if form in ("exponent", "upper"):
        digits = f"{value:e}" if nanos else "0e0"
        return digits.upper() if form == "upper" else digits
    if form == "integer" and nanos % NANOS == 0:
        return str(nanos // NANOS)
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _with_costs(literals: list[str], mixed_ids: bool) -> bytes:
    lines = []
    for index, literal in enumerate(literals):
        event = {**EVENT_A, "cost": 0}
        if mixed_ids and index % 2:
            event["advertiserId"] = 321  # int among strings: the field-by-field path
        lines.append(_json(event).replace(b'"cost":0', b'"cost":' + literal.encode()))
    return b"\n".join(lines)


@settings(max_examples=300, deadline=None)
@given(st.lists(cost_literals(), min_size=1, max_size=40), st.booleans())
def test_parse_events_cost_of_nine_decimals_is_stored_exactly(
    literals: list[str], mixed_ids: bool
) -> None:
    batch = parse_events(_with_costs(literals, mixed_ids), now_ms=NOW_MS)
    # Decimal and int compare exactly: each amount is its literal, to the last digit.
    assert batch.cost_nanos == [Decimal(literal) * NANOS for literal in literals]


def test_costs_nanos_is_exact_on_a_million_random_amounts() -> None:
    # The vectorised conversion, at scale: every amount of 9 decimals under the cap,
    # read as JSON reads it (float of the literal), comes back to its nano-units.
    rng = random.Random(20261118)
    nanos = [rng.randrange(MAX_COST * NANOS + 1) for _ in range(500_000)]
    nanos += [rng.randrange(10**6) * 10 ** (rng.randrange(10)) for _ in range(500_000)]
    amounts = [float(Decimal(n).scaleb(-9)) for n in nanos]
    converted = costs_nanos(amounts)
    assert converted is not None
    assert converted.tolist() == nanos


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, MAX_COST) | st.integers(0, MAX_COST), min_size=1, max_size=30))
def test_costs_nanos_agrees_with_the_rule_for_any_number(amounts: list[float]) -> None:
    converted = costs_nanos(amounts)
    assert converted is not None
    assert converted.tolist() == [_nanos(a) for a in amounts]
