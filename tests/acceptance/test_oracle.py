"""An independent oracle, end to end: raw events and a create request in, the file out.

Hypothesis draws raw ingest events (ISO timestamps with any UTC offset and sub-second
parts, or epoch milliseconds; costs as JSON number literals) and a create request (any
dimensions the source allows together, in any case and order, with duplicates; metrics;
every filter with IDs present and absent; ``lookbackWindow`` or ``startDate`` with an
optional ``endDate``, bounds finer than a minute included; zones with DST changes and
``:30``/``:45`` offsets; CSV and JSON). The events go through ``POST /ingest/v1/events``,
the request through create -> run -> download of the real app, with the service's clock
stopped at a drawn "now".

The expected file is computed here from the raw events and the request JSON alone, with
``zoneinfo`` on the ``tzdata`` package and plain Python. Nothing of the service is used
to compute it (no ``QueryPlan``, ``plan_for``, bucket helpers, zone helpers or
``tests/reference.py``, which builds on the service's plan): a mistake anywhere on the
way from the request to the file, the request's parsing and interval included, shows
as a difference. The rules implemented here are the documented ones (``docs/api.md``):

- a minute belongs to a report when its start lies in ``[start, end)``; both bounds are
  rounded up to a whole minute; ``lookbackWindow`` N is ``[now - N min, now)``; a missing
  or future ``endDate`` is now; an event's minute is its UTC timestamp floored;
- a time bucket is a maximal run of instants with the same local key (``hour``: local
  date, hour and UTC offset; ``day``/``week``/``month``/``year``: the local calendar
  period) and is printed as the local time, with its offset, of the run's first instant;
- costs are the JSON literals rounded half to even to 9 decimals, summed exactly and
  printed without trailing zeros; rows whose requested metrics are all zero are left
  out; rows ascend by the dimension columns;
- a non-empty filter none of whose IDs the requested advertisers have is a 403
  ``no-campaign-found-in-scope``; an interval without a minute start, or a start after
  now, a 400 ``invalid-time-interval``; two of ``productId``/``hour``/``minute`` or two
  time buckets a 409 ``invalid-dimensioncombination``.

The session's terminal summary says how many examples compared a non-empty file.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mpo_realtime.domain.jobs import Role
from tests.acceptance.conftest import Api

INGEST = "/ingest/v1/events"
MINUTE = timedelta(minutes=1)
QUARTER = timedelta(minutes=15)
NANO = Decimal("0.000000001")

#: zones with DST changes (on and off the hour), :30 and :45 offsets, a midnight skip
#: (Cairo), a 30-minute DST (Lord Howe) and Vancouver's 2026 move to permanent UTC-7
ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "America/St_Johns",
    "America/Vancouver",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Adelaide",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Africa/Cairo",
]
#: UTC instants near the zones' 2025-2026 changes and calendar boundaries; events fall
#: in the 36 hours after one of them (all in the past, so ingest accepts them)
ANCHORS = [
    datetime(2025, 12, 31, 6, tzinfo=UTC),  # a new year in every zone
    datetime(2026, 3, 8, 0, tzinfo=UTC),  # New York, St John's, Vancouver spring forward
    datetime(2026, 3, 28, 18, tzinfo=UTC),  # Paris spring forward; a Sunday -> Monday
    datetime(2026, 4, 4, 6, tzinfo=UTC),  # Chatham, Lord Howe, Adelaide fall back
    datetime(2026, 4, 23, 12, tzinfo=UTC),  # Cairo skips midnight; end of a month
    datetime(2026, 9, 26, 6, tzinfo=UTC),  # Chatham springs forward at 02:45
    datetime(2026, 10, 3, 6, tzinfo=UTC),  # Lord Howe (30 min) and Adelaide spring forward
    datetime(2026, 10, 24, 18, tzinfo=UTC),  # Paris falls back; end of a month
    datetime(2026, 10, 29, 12, tzinfo=UTC),  # Cairo falls back at midnight
    datetime(2026, 10, 31, 18, tzinfo=UTC),  # New York, St John's fall back
]
SPAN = timedelta(hours=36)
PARTNERS, CAMPAIGNS, SELLERS = [1, 2, 3], [11, 12, 13, 14], [21, 22, 23]
#: never in any event: filters naming only these find nothing in scope
ABSENT = [9, 99, 999_999]
PRODUCTS = ["a", "b,c", 'q"uote', "é", "Z", "sku 1"]
#: advertisers of the report client; each example takes three fresh ones
SCOPE = list(range(50_000, 53_000))
ENTITY_DIMENSIONS = ["advertiserId", "partnerId", "campaignId", "sellerId"]
BUCKETS = ["day", "week", "month", "year"]
METRICS = ["clicks", "displays", "cost"]

_ADVERTISERS = itertools.count(0, 3)
#: ``make mutate`` runs this test once per mutant of the modules it covers: fewer
#: examples there, and the same ones for every mutant (docs/testing.md)
UNDER_MUTMUT = "MUTANT_UNDER_TEST" in os.environ
EXAMPLES = 15 if UNDER_MUTMUT else 60
#: outcomes of the examples of this session, for the terminal summary
OUTCOMES: dict[str, int] = {}


def summary_lines() -> list[str]:
    """What the oracle compared (read by the terminal summary in tests/conftest.py)."""
    if not OUTCOMES:
        return []
    total = sum(OUTCOMES.values())
    parts = ", ".join(f"{count} {name}" for name, count in sorted(OUTCOMES.items()))
    return [f"independent oracle: {total} examples: {parts}"]


# -- the reference: zones, buckets, intervals, sums, formatting ------------------------------


@functools.cache
def zone(name: str) -> ZoneInfo:
    """``name`` from the ``tzdata`` package's own files (the service's one database)."""
    with resources.files("tzdata.zoneinfo").joinpath(name).open("rb") as data:
        return ZoneInfo.from_file(data, key=name)


def local_key(dimension: str, instant: datetime, tz: ZoneInfo) -> tuple[Any, ...]:
    """What a bucket's instants share: two instants with equal keys may share a bucket."""
    local = instant.astimezone(tz)
    if dimension == "hour":
        return (local.date(), local.hour, local.utcoffset())
    if dimension == "day":
        return (local.date(),)
    if dimension == "week":
        return tuple(local.isocalendar()[:2])
    if dimension == "month":
        return (local.year, local.month)
    return (local.year,)


@functools.cache
def run_start(dimension: str, zone_name: str, minute: datetime) -> datetime:
    """The first instant of the run of ``minute``'s local key, walking back.

    Every offset of these zones is a multiple of 15 minutes and every change happens on
    a quarter of a UTC hour, so keys can only change on the quarter-hour grid: step back
    a quarter at a time while the key holds, then minute by minute.
    """
    tz = zone(zone_name)
    key = local_key(dimension, minute, tz)
    start = minute
    while local_key(dimension, start - QUARTER, tz) == key:
        start -= QUARTER
    while local_key(dimension, start - MINUTE, tz) == key:
        start -= MINUTE
    return start


def bucket_label(dimension: str, zone_name: str, minute: datetime) -> tuple[datetime, str]:
    """(sort key, printed value) of the ``dimension`` bucket holding the UTC ``minute``."""
    tz = zone(zone_name)
    start = minute if dimension == "minute" else run_start(dimension, zone_name, minute)
    return start, start.astimezone(tz).isoformat(timespec="seconds")


def ceil_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + MINUTE


def parse_date(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def plain(amount: Decimal) -> str:
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class RawEvent:
    """One ingest event as sent: the JSON fields, the cost as its literal."""

    fields: dict[str, Any]
    cost: str

    def json(self) -> str:
        return json.dumps(self.fields)[:-1] + f', "cost": {self.cost}}}'

    @property
    def minute(self) -> datetime:
        stamp = self.fields["timestamp"]
        if isinstance(stamp, int):
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=stamp)
        else:
            moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)
        return moment.replace(second=0, microsecond=0)

    def id(self, name: str) -> int:
        return int(self.fields[name])

    @property
    def amount(self) -> Decimal:
        return Decimal(self.cost).quantize(NANO, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Expected:
    """The answer the reference predicts: a status and code, or the file's exact text."""

    status: int
    codes: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    file_format: str = "csv"

    def csv(self) -> str:
        lines = [",".join(f'"{c}"' for c in self.columns)]
        for row in self.rows:
            cells = [
                '"' + v.replace('"', '""') + '"' if isinstance(v, str) else plain(Decimal(v))
                for v in row
            ]
            lines.append(",".join(cells))
        return "\n".join(lines) + "\n"


def _names(raw: Any, allowed: list[str], default: list[str]) -> list[str] | None:
    """Canonical names of an enum list (case-insensitive, duplicates dropped); None: bad."""
    if raw is None:
        return default
    by_key = {name.casefold(): name for name in allowed}
    chosen: list[str] = []
    for value in raw:
        name = by_key.get(value.casefold())
        if name is None:
            return None
        if name not in chosen:
            chosen.append(name)
    return chosen or default


def _ids(raw: Any) -> set[int]:
    return {int(v) for v in raw or []}


def expect(events: list[RawEvent], attributes: dict[str, Any], now: datetime) -> Expected:
    """What the service must answer to ``attributes`` at ``now`` over ``events``."""
    dimensions = _names(
        attributes.get("dimensions"),
        [*ENTITY_DIMENSIONS, "productId", "hour", "minute", *BUCKETS],
        ["advertiserId"],
    )
    metrics = _names(attributes.get("metrics"), METRICS, METRICS)
    assert dimensions is not None and metrics is not None
    problems: list[tuple[int, str]] = []
    exclusive = [d for d in dimensions if d in ("productId", "hour", "minute")]
    times = [d for d in dimensions if d in ("hour", "minute", *BUCKETS)]
    if len(exclusive) > 1 or len(times) > 1:
        problems.append((409, "invalid-dimensioncombination"))

    # The interval, as docs/api.md "Intervals" states it.
    if "lookbackWindow" in attributes:
        start, end = now - timedelta(minutes=attributes["lookbackWindow"]), now
    else:
        start = parse_date(attributes["startDate"])
        given_end = attributes.get("endDate")
        end = now if given_end is None else min(parse_date(given_end), now)
    if start > now or ceil_minute(start) >= ceil_minute(end):
        problems.append((400, "invalid-time-interval"))
    if problems:
        # One answer names every problem; a plain validation problem makes it a 400.
        status = 400 if any(s == 400 for s, _ in problems) else 409
        return Expected(status, tuple(code for _, code in problems))
    start, end = ceil_minute(start), ceil_minute(end)

    advertisers = _ids(attributes["advertiserIds"])
    mine = [e for e in events if e.id("advertiserId") in advertisers]
    filters = {
        "partnerId": _ids(attributes.get("partnerIds")),
        "campaignId": _ids(attributes.get("campaignIds")),
        "sellerId": _ids(attributes.get("sellerIds")),
    }
    for name, ids in filters.items():
        if ids and ids.isdisjoint(e.id(name) for e in mine):
            return Expected(403, ("no-campaign-found-in-scope",))

    zone_name = attributes.get("timezone") or "UTC"
    zone_name = next(z for z in ZONES if z.casefold() == zone_name.casefold())
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for event in mine:
        if not start <= event.minute < end:
            continue
        if any(ids and event.id(name) not in ids for name, ids in filters.items()):
            continue
        key: list[Any] = []
        for dimension in dimensions:
            if dimension in ENTITY_DIMENSIONS:
                key.append((event.id(dimension), event.id(dimension)))
            elif dimension == "productId":
                key.append((event.fields["productId"], event.fields["productId"]))
            else:
                key.append(bucket_label(dimension, zone_name, event.minute))
        totals = sums.setdefault(tuple(key), [0, 0, Decimal(0)])
        totals[0] += event.fields["clicks"]
        totals[1] += event.fields["displays"]
        totals[2] += event.amount
    rows = []
    for group in sorted(sums, key=lambda k: tuple(order for order, _ in k)):
        values = dict(zip(METRICS, sums[group], strict=True))
        chosen = [values[m] for m in metrics]
        if any(v != 0 for v in chosen):
            rows.append(tuple(shown for _, shown in group) + tuple(chosen))
    file_format = (attributes.get("fileFormat") or "csv").casefold()
    return Expected(200, (), (*dimensions, *metrics), tuple(rows), file_format)


# -- the draws ---------------------------------------------------------------------------


def chance(draw: st.DrawFn, probability: float) -> bool:
    """True with about ``probability``.

    Hypothesis favours the bounds of an integer range (a 1-in-25 case drawn as
    ``integers(0, 24) == 0`` came up 1 in 4): the odds are read from a shifted range,
    where both bounds land on the False side below 0.7 (the rare cases here) and on
    the True side above.
    """
    return (draw(st.integers(0, 9_999)) - 3_000) % 10_000 < probability * 10_000


def pick(draw: st.DrawFn, low: int, high: int) -> int:
    return draw(st.integers(low, high))


def _stamp(draw: st.DrawFn, moment: datetime) -> str | int:
    """``moment`` as an ingest timestamp: epoch ms, or ISO in some offset, maybe with ms."""
    if chance(draw, 0.2):
        return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1))
    offset = draw(st.sampled_from([0, 0, 330, 345, -210, 60, -420, 765]))
    local = moment.astimezone(timezone(timedelta(minutes=offset)))
    text = local.isoformat(timespec=draw(st.sampled_from(["seconds", "milliseconds"])))
    return text.replace("+00:00", "Z")


def _cost(draw: st.DrawFn) -> str:
    """A JSON number literal of at most 15 significant digits (read exactly as written)."""
    kind = pick(draw, 0, 9)
    if kind == 0:
        return draw(st.sampled_from(["0", "0.0", "5", "0.1", "1e-9", "2.5E-7", "1000000"]))
    if kind == 1:  # more than 9 decimals: rounded half to even, ties included
        return draw(
            st.sampled_from(["0.0000000005", "0.0000000015", "0.1234567895", "7.0000000004"])
        )
    # At most the per-event cap (1,000,000) and 15 digits.
    places = pick(draw, 0, 9)
    units = pick(draw, 0, min(10 ** (6 + places), 10**15 - 1))
    return plain(Decimal(units).scaleb(-places))


@st.composite
def raw_events(
    draw: st.DrawFn, anchor: datetime, center: datetime, advertisers: list[int]
) -> list[RawEvent]:
    """Events over the 36 hours after ``anchor``, half of them in the 150 minutes before
    ``center``; mostly of the first advertiser."""
    count = pick(draw, 10, 60)
    events = []
    for _ in range(count):
        if chance(draw, 0.5):
            moment = center - timedelta(seconds=pick(draw, 1, 150 * 60))
        else:
            moment = anchor + timedelta(seconds=pick(draw, 0, int(SPAN.total_seconds()) - 1))
        moment += timedelta(microseconds=pick(draw, 0, 999_999))
        ids = {
            "advertiserId": draw(st.sampled_from([*advertisers[:1] * 4, *advertisers])),
            "partnerId": draw(st.sampled_from(PARTNERS)),
            "campaignId": draw(st.sampled_from(CAMPAIGNS)),
            "sellerId": draw(st.sampled_from(SELLERS)),
        }
        as_text = draw(st.booleans())
        fields: dict[str, Any] = {
            "timestamp": _stamp(draw, moment),
            **{k: str(v) if as_text else v for k, v in ids.items()},
            "productId": draw(st.sampled_from(PRODUCTS)),
            # mostly activity; sometimes none (all-zero rows are left out)
            "displays": draw(st.integers(1, 1000) | st.sampled_from([0, 1_000_000])),
            "clicks": draw(st.integers(1, 30) | st.just(0)),
        }
        events.append(RawEvent(fields, _cost(draw)))
    return events


def _spelled(draw: st.DrawFn, name: str) -> str:
    """``name`` as a client may spell it: matched case-insensitively."""
    return draw(st.sampled_from([name, name, name[0].upper() + name[1:], name.upper()]))


def _enum_list(draw: st.DrawFn, names: list[str]) -> list[str]:
    chosen = [_spelled(draw, n) for n in names]
    if chosen and chance(draw, 0.15):  # a duplicate: dropped, with a warning
        chosen.insert(
            draw(st.integers(0, len(chosen))), _spelled(draw, draw(st.sampled_from(names)))
        )
    return chosen


def _dimensions(draw: st.DrawFn) -> list[str] | None:
    if chance(draw, 0.08):
        return draw(st.sampled_from([None, []]))  # the default: advertiserId
    exclusive = draw(st.sampled_from([None, None, "productId", "hour", "minute"]))
    bucket = None if exclusive in ("hour", "minute") else draw(st.sampled_from([None, *BUCKETS]))
    pool = [d for d in ENTITY_DIMENSIONS if chance(draw, 0.4)]
    pool += [d for d in (exclusive, bucket) if d is not None]
    if chance(draw, 0.04):  # a combination the source forbids
        pool += draw(st.sampled_from([["productId", "hour"], ["minute", "day"], ["week", "month"]]))
    if not pool:
        pool = [draw(st.sampled_from(ENTITY_DIMENSIONS))]
    return _enum_list(draw, draw(st.permutations(pool)))


def _filter(draw: st.DrawFn, present: list[int]) -> list[Any] | None:
    """Mostly IDs the events have, sometimes mixed with or only absent ones."""
    kind = pick(draw, 0, 13)
    if kind <= 7:
        return None
    if kind == 8:
        return []  # no filter
    ids = draw(st.lists(st.sampled_from(present), min_size=1, max_size=3))
    if kind in (9, 10):
        ids += draw(st.lists(st.sampled_from(ABSENT), min_size=1, max_size=2))
    if kind == 11 and chance(draw, 0.3):
        ids = draw(st.lists(st.sampled_from(ABSENT), min_size=1, max_size=2))
    as_text = draw(st.booleans())
    return [str(i) if as_text else i for i in draw(st.permutations(ids))]


def _date(draw: st.DrawFn, moment: datetime) -> str:
    """``moment`` as a request date: UTC with Z, another offset, or no offset (UTC)."""
    kind = pick(draw, 0, 3)
    if kind == 0:
        return moment.replace(tzinfo=None).isoformat()
    if kind == 1:
        offset = timezone(timedelta(minutes=draw(st.sampled_from([330, -210, 765, 60]))))
        return moment.astimezone(offset).isoformat()
    return moment.isoformat().replace("+00:00", "Z")


def _sub_minute(draw: st.DrawFn) -> timedelta:
    if draw(st.booleans()):
        return timedelta(0)
    return timedelta(
        seconds=draw(st.integers(0, 59)), microseconds=draw(st.sampled_from([0, 1, 500_000]))
    )


@st.composite
def requests(
    draw: st.DrawFn,
    events: list[RawEvent],
    anchor: datetime,
    center: datetime,
    advertisers: list[int],
) -> tuple[dict[str, Any], datetime]:
    """A create request's attributes, and the "now" at which it is made.

    Mostly a now just after the events' dense part and intervals that hold it, so that
    most examples compare rows.
    """
    if chance(draw, 0.7):
        now = center + timedelta(minutes=pick(draw, 0, 60))
    else:
        now = anchor + timedelta(minutes=pick(draw, 8 * 60, 40 * 60))
    now += _sub_minute(draw)
    requested = draw(
        st.sampled_from([advertisers[:1], advertisers[:2], advertisers[:2], advertisers])
    )
    attributes: dict[str, Any] = {
        "advertiserIds": [str(a) if draw(st.booleans()) else a for a in requested]
    }
    dimensions = _dimensions(draw)
    if dimensions is not None:
        attributes["dimensions"] = dimensions
    if chance(draw, 0.9):
        metrics = draw(st.permutations(METRICS))[: draw(st.integers(1, 3))]
        attributes["metrics"] = _enum_list(draw, metrics)
    for name, key, pool in (
        ("partnerIds", "partnerId", PARTNERS),
        ("campaignIds", "campaignId", CAMPAIGNS),
        ("sellerIds", "sellerId", SELLERS),
    ):
        present = sorted({e.id(key) for e in events if e.id("advertiserId") in requested})
        chosen = _filter(draw, present or pool)
        if chosen is not None:
            attributes[name] = chosen
    if chance(draw, 0.35):
        attributes["lookbackWindow"] = draw(
            st.sampled_from([60, 61, 719, 1440, 1440, 1440]) | st.integers(60, 1440)
        )
    else:
        if chance(draw, 0.6):
            start = center - timedelta(minutes=pick(draw, 0, 200))
        else:
            start = min(e.minute for e in events) + timedelta(minutes=pick(draw, -120, 12 * 60))
        start += _sub_minute(draw)
        if start > now:
            start = now - timedelta(minutes=pick(draw, 0, 600)) - _sub_minute(draw)
        attributes["startDate"] = _date(draw, start)
        if chance(draw, 0.75):
            minutes = draw(st.sampled_from([180, 600, 1440, 36 * 60, 1, 2, 60]))
            minutes = minutes if chance(draw, 0.5) else pick(draw, 1, 36 * 60)
            if chance(draw, 0.03):
                minutes = 0  # empty or backwards: invalid-time-interval
            end = start + timedelta(minutes=minutes) + _sub_minute(draw)
            attributes["endDate"] = _date(draw, end)
    zone_name = draw(st.sampled_from([None, *ZONES]))
    if zone_name is not None:
        attributes["timezone"] = draw(st.sampled_from([zone_name, zone_name.lower()]))
    file_format = draw(st.sampled_from([None, "csv", "CSV", "json", "Json"]))
    if file_format is not None:
        attributes["fileFormat"] = file_format
    return attributes, now


# -- the test ------------------------------------------------------------------------------


def _headers(api: Api, roles: list[Role]) -> dict[str, str]:
    client, _ = api.services.clients.create(
        "oracle", advertiser_ids=SCOPE, roles=roles, now=datetime.now(UTC)
    )
    token = api.services.clients.issue_token(client, now=datetime.now(UTC)).access_token
    return {"Authorization": f"Bearer {token}"}


def _json_cells(content: bytes) -> tuple[list[str], list[list[str]], str]:
    """Columns, rows with every number as its literal text, and the ``rows`` literal."""
    body = json.loads(content, parse_int=str, parse_float=str)
    return body["columns"], body["data"], body["rows"]


def _cell(value: Any) -> str:
    return plain(Decimal(value)) if isinstance(value, int | Decimal) else value


def check_example(
    api: Api,
    report: dict[str, str],
    ingest: dict[str, str],
    events: list[RawEvent],
    attributes: dict[str, Any],
    now: datetime,
) -> str:
    """Run one example through the app; returns the outcome's name for the summary."""
    body = "[" + ",".join(e.json() for e in events) + "]"
    stored = api.http.post(
        INGEST, content=body, headers={**ingest, "Content-Type": "application/json"}
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["accepted"] == len(events)
    api.services.exports.clock = lambda: now
    expected = expect(events, attributes, now)
    created = api.create(attributes, report)
    if expected.status != 200:
        assert created.status_code == expected.status, created.text
        codes = {e["code"] for e in created.json()["errors"]}
        assert codes == set(expected.codes), created.text
        return f"refused {expected.status}"
    assert created.status_code == 200, created.text
    assert api.run_jobs() == 1
    answer = api.download(created.json()["exportId"], report)
    assert answer.status_code == 200, answer.text
    if expected.file_format == "csv":
        assert answer.headers["content-type"].startswith("text/csv")
        assert answer.content.decode("utf-8") == expected.csv()
    else:
        assert answer.headers["content-type"].startswith("application/json")
        columns, rows, count = _json_cells(answer.content)
        assert columns == list(expected.columns)
        assert rows == [[_cell(v) for v in row] for row in expected.rows]
        assert count == str(len(expected.rows))
    return "compared non-empty files" if expected.rows else "compared empty files"


@pytest.fixture
def oracle_api(api_factory: Callable[..., Api]) -> Iterator[Api]:
    yield api_factory()


def test_export_matches_an_independent_oracle(oracle_api: Api) -> None:
    api = oracle_api
    OUTCOMES.clear()
    report = _headers(api, [Role.REPORT])
    ingest = _headers(api, [Role.INGEST])

    @given(data=st.data())
    @settings(
        max_examples=EXAMPLES,
        derandomize=UNDER_MUTMUT,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def check(data: st.DataObject) -> None:
        first = SCOPE[next(_ADVERTISERS) % len(SCOPE)]
        advertisers = [first, first + 1, first + 2]
        anchor = data.draw(st.sampled_from(ANCHORS), label="anchor")
        center = anchor + timedelta(minutes=data.draw(st.integers(3 * 60, 34 * 60)))
        events = data.draw(raw_events(anchor, center, advertisers), label="events")
        request = requests(events, anchor, center, advertisers)
        attributes, now = data.draw(request, label="request")
        outcome = check_example(api, report, ingest, events, attributes, now)
        OUTCOMES[outcome] = OUTCOMES.get(outcome, 0) + 1

    check()
    # The draws aim at about two thirds; hypothesis repeats what it found, so a run
    # varies: 24 seeds gave 23-54 non-empty of 60 (mean 39), and a full run 20. A
    # quarter is the floor below which the draws have stopped doing their job (a third
    # failed about one run in a hundred on draws alone).
    compared = OUTCOMES.get("compared non-empty files", 0)
    assert compared >= sum(OUTCOMES.values()) // 4, OUTCOMES


# -- the reference's own checks: hand-worked cases it must get right -----------------------


@pytest.mark.parametrize(
    ("dimension", "zone_name", "minute", "label"),
    [
        (
            "hour",
            "Europe/Paris",
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            "2026-10-25T02:00:00+02:00",
        ),
        (
            "hour",
            "Europe/Paris",
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
            "2026-10-25T02:00:00+01:00",
        ),
        (
            "hour",
            "Pacific/Chatham",
            datetime(2026, 9, 26, 14, 5, tzinfo=UTC),
            "2026-09-27T03:45:00+13:45",
        ),
        (
            "hour",
            "Asia/Kathmandu",
            datetime(2026, 1, 1, 0, 20, tzinfo=UTC),
            "2026-01-01T06:00:00+05:45",
        ),
        (
            "day",
            "Africa/Cairo",
            datetime(2026, 4, 23, 22, 30, tzinfo=UTC),
            "2026-04-24T01:00:00+03:00",
        ),
        (
            "day",
            "Europe/Paris",
            datetime(2026, 3, 29, 20, 0, tzinfo=UTC),
            "2026-03-29T00:00:00+01:00",
        ),
        ("week", "UTC", datetime(2026, 3, 29, 20, 0, tzinfo=UTC), "2026-03-23T00:00:00+00:00"),
        (
            "month",
            "America/St_Johns",
            datetime(2026, 11, 1, 12, tzinfo=UTC),
            "2026-11-01T00:00:00-02:30",
        ),
        (
            "year",
            "Asia/Kolkata",
            datetime(2025, 12, 31, 19, tzinfo=UTC),
            "2026-01-01T00:00:00+05:30",
        ),
        (
            "minute",
            "Asia/Kathmandu",
            datetime(2026, 1, 1, 0, 20, tzinfo=UTC),
            "2026-01-01T06:05:00+05:45",
        ),
    ],
)
def test_the_oracle_buckets_hand_worked_cases(
    dimension: str, zone_name: str, minute: datetime, label: str
) -> None:
    assert bucket_label(dimension, zone_name, minute)[1] == label


def test_the_oracle_interval_and_money_rules() -> None:
    now = datetime(2026, 3, 8, 12, 0, 30, tzinfo=UTC)
    event = RawEvent(
        {
            "timestamp": "2026-03-08T17:29:59.999+05:30",  # 11:59:59.999Z: minute 11:59
            "advertiserId": "1",
            "partnerId": 1,
            "campaignId": 11,
            "sellerId": 21,
            "productId": "a",
            "displays": 0,
            "clicks": 0,
        },
        "0.0000000015",
    )
    assert event.minute == datetime(2026, 3, 8, 11, 59, tzinfo=UTC)
    assert event.amount == Decimal("0.000000002")
    base = {"advertiserIds": [1], "metrics": ["cost"], "dimensions": ["minute"]}
    # The minute in progress (12:00) is in a relative report, 11:59 too.
    answer = expect([event], {**base, "lookbackWindow": 60}, now)
    assert answer.rows == (("2026-03-08T11:59:00+00:00", Decimal("0.000000002")),)
    # A start 11:59:01 rounds up to 12:00: the event's minute is out.
    late = {**base, "startDate": "2026-03-08T11:59:01Z"}
    assert expect([event], late, now).rows == ()
    # Requested metrics all zero: no row.
    assert expect([event], {**base, "metrics": ["clicks"], "lookbackWindow": 60}, now).rows == ()
    assert expect([event], {**base, "startDate": "2026-03-08T12:00:31Z"}, now).status == 400
    assert plain(Decimal("10.500000000")) == "10.5" and plain(Decimal("0E-9")) == "0"
