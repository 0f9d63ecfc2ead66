"""The ingest event model and its parser.

An event is one observation of ad activity. Parsing is all-or-nothing: a batch
either yields every event as columns, or an :class:`EventBatchError` naming each bad
line and field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "EVENT_FIELDS",
    "MAX_ID",
    "MAX_TEXT",
    "EventBatch",
    "EventBatchError",
    "EventIssue",
    "parse_events",
]

MAX_ID = 2**63 - 1
MAX_TEXT = 256
MAX_COUNT = 2**53  # counts above this lose exactness in JSON readers
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
    cost: list[float] = field(default_factory=list)
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
        raise _FieldError("must be a non-negative integer of at most 2^53")
    return value


def _parse_cost(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _FieldError("must be a non-negative number")
    cost = float(value)
    if not math.isfinite(cost) or cost < 0:
        raise _FieldError("must be a non-negative finite number")
    return cost


def _parse_product(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _FieldError("must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise _FieldError(f"must be at most {MAX_TEXT} characters")
    return value


def _parse_name(value: Any) -> str | None:
    return None if value is None else _parse_product(value)


def _split_body(body: bytes) -> list[tuple[int, Any]] | EventIssue:
    """Decode the body into (line, value) pairs: a JSON array or NDJSON."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        return EventIssue(line, None, f"body is not valid UTF-8 (byte {exc.start})")
    stripped = text.lstrip()
    if not stripped:
        return EventIssue(1, None, "body is empty: send a JSON array or NDJSON events")
    if stripped[0] == "[":
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return EventIssue(1, None, f"body is not valid JSON: {exc}")
        if not isinstance(items, list):
            return EventIssue(1, None, "body must be a JSON array of events")
        return [(index + 1, item) for index, item in enumerate(items)]
    pairs: list[tuple[int, Any]] = []
    for number, chunk in enumerate(text.split("\n"), start=1):
        if not chunk.strip():
            continue
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
    split = _split_body(body)
    if isinstance(split, EventIssue):
        raise EventBatchError([split], 1)
    if not split:
        raise EventBatchError([EventIssue(1, None, "body holds no events")], 1)
    if len(split) > max_events:
        issue = EventIssue(1, None, f"at most {max_events} events per request")
        raise EventBatchError([issue], 1)
    parsers: tuple[tuple[str, Callable[[Any], Any]], ...] = (
        ("timestamp", _timestamp_parser(min_ms, now_ms + max_future_ms)),
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
