"""The ingest event model and its parser.

An event is one observation of ad activity. Parsing is all-or-nothing: a batch
either yields every event as columns, or an :class:`EventBatchError` naming each bad
line and field.

Money is exact: ``cost`` becomes integer nano-units (9 decimals, see :mod:`.money`).
Per-event caps (:data:`MAX_COUNT`, :data:`MAX_COST`) are far above what an ad server
emits for one event and keep every sum the store computes inside its column types
(the argument is in ``store/base.py``).

Memory is bounded before objects are built: the body's structure is counted first
(:func:`_within_budget`), NDJSON lines are read lazily and parsing stops once the
event limit is passed, so a 16 MiB body of tiny values cannot become millions of
Python objects.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from mpo_realtime.domain.money import NANOS, cost_nanos, costs_nanos

__all__ = [
    "EVENT_FIELDS",
    "MAX_COST",
    "MAX_COUNT",
    "MAX_ID",
    "MAX_TEXT",
    "EventBatch",
    "EventBatchError",
    "EventIssue",
    "parse_events",
]

MAX_ID = 2**63 - 1
MAX_TEXT = 256
#: most displays, or clicks, in one event
MAX_COUNT = 1_000_000
#: most cost of one event, in currency units (a billion billion nano-units below 2**63)
MAX_COST = 1_000_000
_MAX_COST_NANOS = MAX_COST * NANOS
#: JSON values (commas and openers) a valid event can hold: 10 fields, its braces and
#: the separator before it; a body with more per allowed event cannot be valid
_VALUES_PER_EVENT = 12
_UTF8_CHUNK = 1 << 20
EVENT_FIELDS = (
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
)
_REQUIRED = frozenset(EVENT_FIELDS[:-1])
_ID_FIELDS = ("advertiserId", "partnerId", "campaignId", "sellerId")
_KNOWN = frozenset(EVENT_FIELDS)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class EventIssue:
    """What is wrong with one event: ``line`` is 1-based (NDJSON line or array index + 1)."""

    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field '{self.field}'" if self.field else "")
        return f"{where}: {self.message}"


class EventBatchError(ValueError):
    """A batch had bad events; ``issues`` lists the first ``cap`` of ``total``."""

    def __init__(self, issues: list[EventIssue], total: int) -> None:
        self.issues = issues
        self.total = total
        super().__init__(f"{total} invalid field(s) in batch")


@dataclass(slots=True)
class EventBatch:
    """Parsed events as columns; ``ts_ms`` is epoch milliseconds (UTC)."""

    ts_ms: list[int] = field(default_factory=list)
    advertiser_id: list[int] = field(default_factory=list)
    partner_id: list[int] = field(default_factory=list)
    campaign_id: list[int] = field(default_factory=list)
    seller_id: list[int] = field(default_factory=list)
    product_id: list[str] = field(default_factory=list)
    displays: list[int] = field(default_factory=list)
    clicks: list[int] = field(default_factory=list)
    #: cost in nano-units (10**-9 of the currency unit), exact
    cost_nanos: list[int] = field(default_factory=list)
    seller_name: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ts_ms)


class _FieldError(ValueError):
    pass


def _timestamp_parser(min_ms: int, max_ms: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise _FieldError("must be an ISO-8601 string or epoch milliseconds")
        if isinstance(value, int):
            ms = value
        else:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise _FieldError(f"'{value[:64]}' is not an ISO-8601 date-time") from None
            if parsed.tzinfo is None:
                raise _FieldError(f"'{value[:64]}' has no UTC offset (add 'Z' or '+hh:mm')")
            delta = parsed - _EPOCH
            ms = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
        if ms < min_ms or ms > max_ms:
            raise _FieldError("is outside the accepted range (retention to one hour ahead)")
        return ms

    return parse


def _parse_id(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    else:
        raise _FieldError("must be a decimal ID (digits only)")
    if number < 0 or number > MAX_ID:
        raise _FieldError("is out of range for an ID")
    return number


def _parse_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise _FieldError(f"must be an integer from 0 to {MAX_COUNT:,} (per event)")
    return value


def _parse_cost(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _FieldError("must be a non-negative number")
    if not math.isfinite(value) or not 0 <= value <= MAX_COST:
        raise _FieldError(f"must be a number from 0 to {MAX_COST:,} (per event)")
    return cost_nanos(value)


def _parse_product(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _FieldError("must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise _FieldError(f"must be at most {MAX_TEXT} characters")
    return value


def _parse_name(value: Any) -> str | None:
    return None if value is None else _parse_product(value)


def _to_ms(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _ids_fast(values: list[Any]) -> list[int] | None:
    kinds = set(map(type, values))
    if kinds == {str}:
        if not all(v.isascii() and v.isdigit() for v in values):
            return None
        numbers = list(map(int, values))
    elif kinds == {int}:
        numbers = values
    else:
        return None
    return numbers if min(numbers) >= 0 and max(numbers) <= MAX_ID else None


def _texts_fast(values: list[Any], *, optional: bool) -> list[Any] | None:
    texts = [v for v in values if v is not None] if optional else values
    if texts and (set(map(type, texts)) != {str} or not 1 <= min(map(len, texts))):
        return None
    return values if not texts or max(map(len, texts)) <= MAX_TEXT else None


def _columns_fast(items: list[Any], min_ms: int, max_ms: int) -> EventBatch | None:
    """The batch when every event is plainly valid; None to take the detailed path.

    Column-wise checks with builtins run several times faster than the per-field
    parsers; anything unusual falls back to them, which also explain what is wrong.
    """
    if set(map(type, items)) != {dict}:
        return None
    for keys in {frozenset(item) for item in items}:
        if not _REQUIRED <= keys <= _KNOWN:
            return None
    stamps = [item["timestamp"] for item in items]
    kinds = set(map(type, stamps))
    if kinds == {str}:
        try:
            moments = list(map(datetime.fromisoformat, stamps))
        except ValueError:
            return None
        if any(m.tzinfo is None for m in moments):
            return None
        ms = list(map(_to_ms, moments))
    elif kinds == {int}:
        ms = stamps
    else:
        return None
    if min(ms) < min_ms or max(ms) > max_ms:
        return None
    advertisers, partners, campaigns, sellers = (
        _ids_fast([item[name] for item in items]) for name in _ID_FIELDS
    )
    counts = [[item[name] for item in items] for name in ("displays", "clicks")]
    costs = [item["cost"] for item in items]
    products = _texts_fast([item["productId"] for item in items], optional=False)
    names = _texts_fast([item.get("sellerName") for item in items], optional=True)
    if (
        advertisers is None
        or partners is None
        or campaigns is None
        or sellers is None
        or products is None
        or names is None
    ):
        return None
    for column in counts:
        if set(map(type, column)) != {int} or min(column) < 0 or max(column) > MAX_COUNT:
            return None
    if not set(map(type, costs)) <= {int, float}:
        return None
    nanos = costs_nanos(costs)
    if nanos is None:
        return None
    displays, clicks = counts
    return EventBatch(
        ms,
        advertisers,
        partners,
        campaigns,
        sellers,
        products,
        displays,
        clicks,
        nanos.tolist(),
        names,
    )


_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_LINE = re.compile(rb"\S[^\n]*")
_LEADING_SPACE = re.compile(rb"\s*")


def _first_invalid_utf8(body: bytes) -> int | None:
    """Offset of the first byte that is not UTF-8, decoding in chunks (bounded memory)."""
    if body.isascii():
        return None
    decoder = codecs.getincrementaldecoder("utf-8")()
    for start in range(0, len(body), _UTF8_CHUNK):
        chunk = body[start : start + _UTF8_CHUNK]
        try:
            decoder.decode(chunk, final=start + _UTF8_CHUNK >= len(body))
        except UnicodeDecodeError as exc:
            # the decoder may hold back the first bytes of a sequence cut by the chunk
            return start + exc.start - len(exc.object) + len(chunk)
    return None


def _within_budget(body: bytes, budget: int) -> bool:
    """Whether the body holds at most ``budget`` JSON values, counted before parsing.

    Commas and openers bound the values (and so the Python objects) a parser would
    build. Counting them anywhere is a cheap upper bound; only if that is over the
    budget are they counted again outside strings, where they are the real structure.
    """
    if body.count(b",") + body.count(b"{") + body.count(b"[") <= budget:
        return True
    structure = _STRING.sub(b"", body)
    return structure.count(b",") + structure.count(b"{") + structure.count(b"[") <= budget


def _lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number, text) of the non-blank lines, found lazily."""
    line, seen = 1, 0
    for match in _LINE.finditer(body):
        line += body.count(b"\n", seen, match.start())
        seen = match.start()
        yield line, match.group()


def _split_body(body: bytes, max_events: int) -> list[tuple[int, Any]] | EventIssue:
    """Decode the body into (line, value) pairs: a JSON array or NDJSON.

    Stops as soon as the body is known to hold more than ``max_events`` events.
    """
    bad = _first_invalid_utf8(body)
    if bad is not None:
        line = body.count(b"\n", 0, bad) + 1
        return EventIssue(line, None, f"body is not valid UTF-8 (byte {bad})")
    too_many = EventIssue(1, None, f"at most {max_events} events per request")
    if not _within_budget(body, _VALUES_PER_EVENT * max_events + 1):
        return EventIssue(
            1,
            None,
            f"body holds more JSON values than {max_events} events (the most per request) can",
        )
    leading = _LEADING_SPACE.match(body)  # no copy of the body, unlike lstrip()
    first = leading.end() if leading else 0
    if first == len(body):
        return EventIssue(1, None, "body is empty: send a JSON array or NDJSON events")
    if body[first] == ord("["):
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return EventIssue(1, None, f"body is not valid JSON: {exc}")
        if not isinstance(items, list):
            return EventIssue(1, None, "body must be a JSON array of events")
        if len(items) > max_events:
            return too_many
        return [(index + 1, item) for index, item in enumerate(items)]
    pairs: list[tuple[int, Any]] = []
    for number, chunk in _lines(body):
        if len(pairs) == max_events:
            return too_many
        try:
            pairs.append((number, orjson.loads(chunk)))
        except orjson.JSONDecodeError as exc:
            pairs.append((number, EventIssue(number, None, f"not valid JSON: {exc}")))
    return pairs


def parse_events(
    body: bytes,
    *,
    now_ms: int,
    min_ms: int = 0,
    max_future_ms: int = 3_600_000,
    max_events: int = 1_000_000,
    cap: int = 100,
) -> EventBatch:
    """Parse a JSON array or NDJSON body into an :class:`EventBatch`.

    Raises :class:`EventBatchError` listing the first ``cap`` issues (and their total)
    if any event is invalid; nothing is returned partially.
    """
    split = _split_body(body, max_events)
    if isinstance(split, EventIssue):
        raise EventBatchError([split], 1)
    if not split:
        raise EventBatchError([EventIssue(1, None, "body holds no events")], 1)
    fast = _columns_fast([item for _, item in split], min_ms, now_ms + max_future_ms)
    if fast is not None:
        return fast
    return _parse_each(split, min_ms=min_ms, max_ms=now_ms + max_future_ms, cap=cap)


def _parse_each(split: list[tuple[int, Any]], *, min_ms: int, max_ms: int, cap: int) -> EventBatch:
    """Event by event, field by field: every problem named by line and field."""
    parsers: tuple[tuple[str, Callable[[Any], Any]], ...] = (
        ("timestamp", _timestamp_parser(min_ms, max_ms)),
        ("advertiserId", _parse_id),
        ("partnerId", _parse_id),
        ("campaignId", _parse_id),
        ("sellerId", _parse_id),
        ("productId", _parse_product),
        ("displays", _parse_count),
        ("clicks", _parse_count),
        ("cost", _parse_cost),
        ("sellerName", _parse_name),
    )
    columns: list[list[Any]] = [[] for _ in parsers]
    issues: list[EventIssue] = []
    total = 0

    def bad(line: int, name: str | None, message: str) -> None:
        nonlocal total
        total += 1
        if len(issues) < cap:
            issues.append(EventIssue(line, name, message))

    for line, item in split:
        if isinstance(item, EventIssue):
            bad(item.line, None, item.message)
            continue
        if not isinstance(item, dict):
            bad(line, None, "event must be a JSON object")
            continue
        for name in sorted(item.keys() - _KNOWN):
            bad(line, name, "unknown field")
        for index, (name, parse) in enumerate(parsers):
            value = item.get(name)
            if value is None and name in _REQUIRED:
                bad(line, name, "is required")
                continue
            try:
                parsed = parse(value)
            except _FieldError as exc:
                bad(line, name, str(exc))
                continue
            if not total:
                columns[index].append(parsed)
    if total:
        raise EventBatchError(issues, total)
    return EventBatch(*columns)
