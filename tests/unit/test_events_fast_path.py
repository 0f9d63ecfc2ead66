"""The column-wise fast path of the event parser agrees with the field-by-field one."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from mpo_realtime.domain.events import (
    MAX_COST,
    MAX_COUNT,
    EventBatchError,
    _columns_fast,
    _parse_each,
    _split_body,
    parse_events,
)

NOW_MS = 1_795_000_000_000
MIN_MS = NOW_MS - 45 * 86_400_000
MAX_MS = NOW_MS + 3_600_000

ids = st.one_of(
    st.integers(0, 2**63 - 1),
    st.integers(0, 10**6).map(str),
    st.sampled_from(["", "12a", "-4", "٣", "9" * 20, 2**63, -1, True, 1.5, None]),
)
stamps = st.one_of(
    st.integers(MIN_MS - 10, MAX_MS + 10),
    st.sampled_from(
        ["2026-11-18T10:00:00Z", "2026-11-18T10:00:00+05:30", "2026-11-18T10:00:00", "nope", 1.5]
    ),
)
counts = st.one_of(
    st.integers(0, MAX_COUNT + 1), st.sampled_from([-1, True, 2.0, "3", None, 2**53])
)
costs = st.one_of(
    st.floats(0, 1e300, allow_nan=False),
    st.floats(0, MAX_COST + 1, allow_nan=False),
    st.integers(0, MAX_COST + 1),
    st.sampled_from([-0.5, -0.0, "1", None, True, 2.5e-9, 1.0000000005, 0.1 * 3]),
)
texts = st.one_of(st.text(max_size=300), st.sampled_from([None, 5, ""]))


valid_ids = st.one_of(st.integers(0, 2**63 - 1), st.integers(0, 10**6).map(str))
valid_stamps = st.one_of(
    st.integers(MIN_MS, MAX_MS), st.sampled_from(["2026-11-18T10:00:00.123+05:30"])
)
valid_counts = st.integers(0, MAX_COUNT)
valid_costs = st.one_of(
    st.floats(0, MAX_COST),
    st.integers(0, MAX_COST),
    st.decimals(0, MAX_COST, places=9).map(float),
)
valid_texts = st.text(min_size=1, max_size=256)


@st.composite
def valid_event(draw: st.DrawFn) -> Any:
    fields: dict[str, Any] = {
        "timestamp": draw(valid_stamps),
        "advertiserId": draw(valid_ids),
        "partnerId": draw(valid_ids),
        "campaignId": draw(valid_ids),
        "sellerId": draw(valid_ids),
        "productId": draw(valid_texts),
        "displays": draw(valid_counts),
        "clicks": draw(valid_counts),
        "cost": draw(valid_costs),
    }
    if draw(st.booleans()):
        fields["sellerName"] = draw(st.one_of(st.none(), valid_texts))
    return fields


@st.composite
def event(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        return draw(valid_event())
    if draw(st.integers(0, 40)) == 0:
        return draw(st.sampled_from([[], 3, "x", None]))
    fields: dict[str, Any] = {
        "timestamp": draw(stamps),
        "advertiserId": draw(ids),
        "partnerId": draw(ids),
        "campaignId": draw(ids),
        "sellerId": draw(ids),
        "productId": draw(texts),
        "displays": draw(counts),
        "clicks": draw(counts),
        "cost": draw(costs),
    }
    if draw(st.booleans()):
        fields["sellerName"] = draw(texts)
    if draw(st.integers(0, 30)) == 0:
        fields["extra"] = 1
    if draw(st.integers(0, 30)) == 0:
        fields.pop(draw(st.sampled_from(sorted(fields))))
    return fields


def _outcome(run: Any) -> Any:
    try:
        return ("ok", run())
    except EventBatchError as exc:
        return ("error", exc.issues, exc.total)


@given(
    st.one_of(
        st.lists(valid_event(), min_size=1, max_size=8), st.lists(event(), min_size=1, max_size=8)
    )
)
@settings(max_examples=400, deadline=None)
def test_events_fast_path_agrees_with_the_detailed_one(events: list[Any]) -> None:
    body = orjson.dumps(events)
    fast = _outcome(lambda: parse_events(body, now_ms=NOW_MS, min_ms=MIN_MS))
    split = _split_body(body, 1_000_000)
    assert isinstance(split, list)
    slow = _outcome(lambda: _parse_each(split, min_ms=MIN_MS, max_ms=MAX_MS, cap=100))
    assert fast == slow


def test_events_fast_path_takes_plain_valid_batches() -> None:
    events = [
        {
            "timestamp": "2026-11-18T10:00:00Z",
            "advertiserId": "321",
            "partnerId": 7,
            "campaignId": "12345",
            "sellerId": "254614150",
            "productId": "SKU-1",
            "displays": 3,
            "clicks": 1,
            "cost": 0.25,
        }
    ] * 3
    batch = _columns_fast(events, MIN_MS, MAX_MS)
    assert batch is not None and batch.advertiser_id == [321, 321, 321]
