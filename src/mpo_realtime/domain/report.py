"""Report requests: parse and validate a create-job body into a :class:`ReportSpec`.

Pure code: ``now`` is passed in. Every problem is collected, then raised together
as one :class:`~mpo_realtime.domain.errors.ProblemError`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import orjson

from mpo_realtime.domain.errors import ErrorCode, Problem, ProblemError
from mpo_realtime.domain.events import MAX_ID
from mpo_realtime.domain.interval import LOOKBACK_MAX, LOOKBACK_MIN, Interval, resolve_interval
from mpo_realtime.domain.zones import canonical_zone, tzdata_version

__all__ = [
    "DEFAULT_DIMENSIONS",
    "LOOKBACK_MAX",
    "LOOKBACK_MIN",
    "DEFAULT_METRICS",
    "Dimension",
    "FileFormat",
    "Metric",
    "ReportSpec",
    "parse_report_request",
]

JOB_TYPE = "RealTimeProductReportJob"
#: longest dimensions or metrics list (each name may repeat; more is abuse, not a request)
MAX_LIST_ITEMS = 64


class FileFormat(enum.StrEnum):
    CSV = "csv"
    JSON = "json"
    #: This service's extension of the contract, for pipelines loading a warehouse; the
    #: official clients know only Csv and Json, so nothing they see mentions it.
    PARQUET = "parquet"

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self]

    @property
    def is_extension(self) -> bool:
        """Not in the source API: accepted, but absent from what the official SDK sees."""
        return self is FileFormat.PARQUET


_CONTENT_TYPES = {
    FileFormat.CSV: "text/csv",
    FileFormat.JSON: "application/json",
    FileFormat.PARQUET: "application/vnd.apache.parquet",
}


class Dimension(enum.StrEnum):
    ADVERTISER_ID = "advertiserId"
    PARTNER_ID = "partnerId"
    CAMPAIGN_ID = "campaignId"
    SELLER_ID = "sellerId"
    PRODUCT_ID = "productId"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"

    @property
    def is_time(self) -> bool:
        return self in TIME_DIMENSIONS


TIME_DIMENSIONS = frozenset(
    {Dimension.MINUTE, Dimension.HOUR, Dimension.DAY, Dimension.WEEK, Dimension.MONTH}
    | {Dimension.YEAR}
)
#: the source's rule: only one of these per request
EXCLUSIVE_DIMENSIONS = (Dimension.PRODUCT_ID, Dimension.HOUR, Dimension.MINUTE)


class Metric(enum.StrEnum):
    CLICKS = "clicks"
    DISPLAYS = "displays"
    COST = "cost"


DEFAULT_DIMENSIONS = (Dimension.ADVERTISER_ID,)
DEFAULT_METRICS = (Metric.CLICKS, Metric.DISPLAYS, Metric.COST)
#: attributes the official client knows but this service does not serve yet
_NOT_YET = frozenset({"currency"})
_KNOWN_ATTRIBUTES = frozenset(
    {
        "fileFormat",
        "advertiserIds",
        "campaignIds",
        "sellerIds",
        "partnerIds",
        "dimensions",
        "metrics",
        "lookbackWindow",
        "startDate",
        "endDate",
        "timezone",
    }
)
_NOT_YET_DIMENSIONS = frozenset({"sellername"})


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """A valid report request, canonical, with its effective interval in whole UTC minutes."""

    advertiser_ids: tuple[int, ...]
    #: (index, advertiser) of each advertiser's first place in the request's
    #: ``advertiserIds``, in the request's order: where a refusal's pointer points
    advertisers_as_requested: tuple[tuple[int, int], ...] = field(compare=False)
    start: datetime
    end: datetime
    file_format: FileFormat = FileFormat.CSV
    campaign_ids: tuple[int, ...] = ()
    seller_ids: tuple[int, ...] = ()
    partner_ids: tuple[int, ...] = ()
    dimensions: tuple[Dimension, ...] = DEFAULT_DIMENSIONS
    metrics: tuple[Metric, ...] = DEFAULT_METRICS
    timezone: str = "UTC"
    #: minutes of a relative request; None for an absolute one
    lookback_window: int | None = None
    #: the request named no end (or one after now): its end is "now"
    open_ended: bool = False
    warnings: tuple[Problem, ...] = field(default=(), compare=False)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(str(d) for d in self.dimensions) + tuple(str(m) for m in self.metrics)

    def canonical_attributes(self) -> dict[str, Any]:
        """The attributes that make two requests identical (for result reuse)."""
        interval: dict[str, Any]
        if self.lookback_window is not None:
            interval = {"lookbackWindow": self.lookback_window}
        elif self.open_ended:
            interval = {"startDate": self.start.isoformat()}
        else:
            interval = {"startDate": self.start.isoformat(), "endDate": self.end.isoformat()}
        return {
            "fileFormat": str(self.file_format),
            "advertiserIds": list(self.advertiser_ids),
            "campaignIds": list(self.campaign_ids),
            "sellerIds": list(self.seller_ids),
            "partnerIds": list(self.partner_ids),
            "dimensions": [str(d) for d in self.dimensions],
            "metrics": [str(m) for m in self.metrics],
            "timezone": self.timezone,
            **interval,
        }


E = TypeVar("E", bound=enum.StrEnum)


class _Collector:
    def __init__(self) -> None:
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(
        self, code: ErrorCode, detail: str, pointer: str | None, *, conflict: bool = False
    ) -> None:
        self.errors.append(Problem(code, detail, pointer, conflict=conflict))

    def type_error(self, name: str, expected: str) -> None:
        # The source's own example names the field in the detail and carries no pointer.
        detail = f"data.attributes.{name} must be {expected}"
        self.errors.append(Problem(ErrorCode.JSON_SERIALIZATION, detail))


def _pointer(name: str, index: int | None = None) -> str:
    base = f"/data/attributes/{name}"
    return base if index is None else f"{base}/{index}"


def _id_list(out: _Collector, attrs: dict[str, Any], name: str, max_ids: int) -> dict[int, int]:
    """The valid IDs of ``name``, sorted, each with its first index in the request."""
    raw = attrs.get(name)
    if raw is None:
        return {}
    if not isinstance(raw, list):
        out.type_error(name, "an array of strings")
        return {}
    if len(raw) > max_ids:
        out.error(
            ErrorCode.INVALID_QUERY,
            f"{name} holds {len(raw)} IDs; at most {max_ids}",
            _pointer(name),
        )
        return {}
    ids: dict[int, int] = {}
    repeats: list[tuple[int, int]] = []
    for index, value in enumerate(raw):
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.isascii() and value.isdigit():
            number = int(value)
        if number is None or number > MAX_ID or number < 0:
            shown = orjson.dumps(value).decode()[:64]
            out.error(
                ErrorCode.INVALID_QUERY,
                f"{name}[{index}] {shown} is not a valid ID: IDs are decimal digit strings",
                _pointer(name, index),
            )
        elif number in ids:
            repeats.append((index, number))
        else:
            ids[number] = index
    if repeats:
        # one warning per list, not per repeat: a list may hold thousands of IDs
        index, number = repeats[0]
        out.warnings.append(
            Problem(
                ErrorCode.DUPLICATE_VALUE,
                f"{name} repeats {len(repeats)} ID(s), the first at {name}[{index}] ({number});"
                " each repeat was dropped",
                _pointer(name, index),
            )
        )
    return dict(sorted(ids.items()))


def _enum_list(
    out: _Collector, attrs: dict[str, Any], name: str, kind: type[E], default: tuple[E, ...]
) -> tuple[E, ...]:
    raw = attrs.get(name)
    if raw is None:
        return default
    if not isinstance(raw, list):
        out.type_error(name, "an array of strings")
        return default
    if len(raw) > MAX_LIST_ITEMS:
        out.error(
            ErrorCode.INVALID_QUERY,
            f"{name} holds {len(raw)} entries; at most {MAX_LIST_ITEMS}",
            _pointer(name),
        )
        return default
    by_key = {member.value.casefold(): member for member in kind}
    chosen: list[E] = []
    for index, value in enumerate(raw):
        if not isinstance(value, str):
            out.type_error(f"{name}[{index}]", "a string")
            continue
        member = by_key.get(value.casefold())
        if member is None:
            allowed = ", ".join(repr(m.value) for m in kind)
            hint = " (not supported yet)" if value.casefold() in _NOT_YET_DIMENSIONS else ""
            out.error(
                ErrorCode.INVALID_QUERY,
                f"{name}[{index}] '{value[:64]}' is not supported{hint}; one of {allowed}",
                _pointer(name, index),
            )
        elif member in chosen:
            out.warnings.append(
                Problem(
                    ErrorCode.DUPLICATE_VALUE,
                    f"{name}[{index}] '{member.value}' repeats an earlier entry and was dropped",
                    _pointer(name, index),
                )
            )
        else:
            chosen.append(member)
    return tuple(chosen) or default


def _check_dimensions(out: _Collector, dimensions: Sequence[Dimension]) -> None:
    exclusive = [d for d in dimensions if d in EXCLUSIVE_DIMENSIONS]
    if len(exclusive) > 1:
        names = ", ".join(d.value for d in exclusive)
        out.error(
            ErrorCode.INVALID_DIMENSION_COMBINATION,
            f"only one of productId, hour, minute can be used in a request; got {names}",
            _pointer("dimensions"),
            conflict=True,
        )
    times = [d for d in dimensions if d.is_time]
    if len(times) > 1 and len(exclusive) <= 1:
        names = ", ".join(d.value for d in times)
        out.error(
            ErrorCode.INVALID_DIMENSION_COMBINATION,
            f"only one time bucket (minute, hour, day, week, month, year) per request; got {names}",
            _pointer("dimensions"),
            conflict=True,
        )


def _file_format(out: _Collector, attrs: dict[str, Any]) -> FileFormat:
    raw = attrs.get("fileFormat")
    if raw is None:
        return FileFormat.CSV
    if isinstance(raw, str):
        for member in FileFormat:
            if raw.casefold() == member.value:
                return member
    shown = raw if isinstance(raw, str) else orjson.dumps(raw).decode()
    # Byte for byte the source's example.
    detail = f"data.attributes.fileFormat '{shown}' not valid. Must be one of 'Csv','Json'"
    out.errors.append(Problem(ErrorCode.JSON_SERIALIZATION, detail))
    return FileFormat.CSV


def _timezone(out: _Collector, attrs: dict[str, Any]) -> str:
    raw = attrs.get("timezone")
    if raw is None:
        return "UTC"
    if not isinstance(raw, str):
        out.type_error("timezone", "a string")
        return "UTC"
    zone = canonical_zone(raw)
    if zone is None:
        out.error(
            ErrorCode.INVALID_QUERY,
            f"timezone '{raw[:64]}' is not in the IANA time zone database"
            f" (tzdata {tzdata_version()}); give a zone name such as 'Europe/Paris'",
            _pointer("timezone"),
        )
        return "UTC"
    return zone


def _attributes(out: _Collector, body: Any) -> dict[str, Any] | None:
    if not isinstance(body, dict):
        out.errors.append(Problem(ErrorCode.JSON_SERIALIZATION, "the body must be a JSON object"))
        return None
    data = body.get("data")
    if data is None:
        out.error(ErrorCode.INVALID_QUERY, "data is required", "/data")
        return None
    if not isinstance(data, dict):
        out.errors.append(Problem(ErrorCode.JSON_SERIALIZATION, "data must be an object"))
        return None
    kind = data.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.casefold() != JOB_TYPE.casefold()):
        out.error(ErrorCode.INVALID_QUERY, f"data.type must be '{JOB_TYPE}'", "/data/type")
    attrs = data.get("attributes")
    if attrs is None:
        out.error(ErrorCode.INVALID_QUERY, "data.attributes is required", "/data/attributes")
        return None
    if not isinstance(attrs, dict):
        out.errors.append(
            Problem(ErrorCode.JSON_SERIALIZATION, "data.attributes must be an object")
        )
        return None
    return attrs


def parse_report_request(
    body: bytes | Any, *, now: datetime, retention: timedelta, max_ids: int = 10_000
) -> ReportSpec:
    """Validate a create-job body (raw bytes or decoded JSON) into a :class:`ReportSpec`.

    ``retention`` is how long the store keeps data: older parts of an interval are cut
    off (``mpo_realtime.domain.interval``). Raises :class:`ProblemError` with every
    problem found.
    """
    out = _Collector()
    if isinstance(body, bytes | bytearray):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            detail = f"the request body is not valid JSON: {exc}"
            raise ProblemError([Problem(ErrorCode.JSON_SERIALIZATION, detail)]) from None
    attrs = _attributes(out, body)
    if attrs is None:
        raise ProblemError(out.errors, out.warnings)
    for name in sorted(attrs.keys() - _KNOWN_ATTRIBUTES):
        if attrs[name] is None:
            continue
        reason = "is not supported yet" if name in _NOT_YET else "is not a known attribute"
        out.warnings.append(
            Problem(ErrorCode.IGNORED_ATTRIBUTE, f"{name} {reason} and was ignored", _pointer(name))
        )
    file_format = _file_format(out, attrs)
    if attrs.get("advertiserIds") in (None, []):
        out.error(ErrorCode.INVALID_QUERY, "advertiserIds is required", _pointer("advertiserIds"))
    advertisers = _id_list(out, attrs, "advertiserIds", max_ids)
    campaigns = tuple(_id_list(out, attrs, "campaignIds", max_ids))
    sellers = tuple(_id_list(out, attrs, "sellerIds", max_ids))
    partners = tuple(_id_list(out, attrs, "partnerIds", max_ids))
    dimensions = _enum_list(out, attrs, "dimensions", Dimension, DEFAULT_DIMENSIONS)
    metrics = _enum_list(out, attrs, "metrics", Metric, DEFAULT_METRICS)
    _check_dimensions(out, dimensions)
    interval = resolve_interval(attrs, now=now, retention=retention)
    if isinstance(interval, Interval):
        out.warnings += interval.warnings
    else:
        out.errors += interval
    zone = _timezone(out, attrs)
    if out.errors or not isinstance(interval, Interval):
        raise ProblemError(out.errors, out.warnings)
    return ReportSpec(
        advertiser_ids=tuple(advertisers),
        advertisers_as_requested=tuple(sorted((i, a) for a, i in advertisers.items())),
        start=interval.start,
        end=interval.end,
        file_format=file_format,
        campaign_ids=campaigns,
        seller_ids=sellers,
        partner_ids=partners,
        dimensions=dimensions,
        metrics=metrics,
        timezone=zone,
        lookback_window=interval.lookback_window,
        open_ended=interval.open_ended,
        warnings=tuple(out.warnings),
    )
