"""The API's request and status answers as plain values."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Required, TypedDict

import httpx

from mpo_realtime.client._errors import ClientError, parse_retry_after

__all__ = ["ExportStatus", "ReportOptions", "Status", "report_attributes"]

#: what the client asks when neither a lookback window nor a start is given (minutes)
DEFAULT_LOOKBACK = 60


class Status(enum.StrEnum):
    """The status of an export job, as the API spells it."""

    PENDING = "Pending"
    DONE = "Done"
    FAILURE = "Failure"
    EXPIRED = "Expired"


@dataclass(frozen=True, slots=True)
class ExportStatus:
    """One create or poll answer."""

    export_id: str
    status: Status
    message: str | None = None
    #: seconds the server asks the client to wait before the next poll
    retry_after: float | None = None
    trace_id: str | None = None
    #: warnings of the answer (the ``Warning`` header's texts)
    warnings: tuple[str, ...] = ()
    #: on a create: whether an existing export was reused, when the server says so
    reused: bool | None = None
    #: on a create: age in seconds of the reused export's data (``Age`` header)
    age: int | None = None

    @property
    def done(self) -> bool:
        return self.status is Status.DONE

    @classmethod
    def from_response(cls, response: httpx.Response) -> ExportStatus:
        """Read the plain answer or the JSON:API envelope (``X-MPO-Envelope: jsonapi``)."""
        try:
            body = json.loads(response.content)
            if isinstance(body.get("data"), dict):
                body = body["data"]["attributes"]
            export_id, status = str(body["exportId"]), Status(body["status"])
            message = body.get("message")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ClientError(f"unexpected status answer: {response.text[:200]!r}") from exc
        headers = response.headers
        reused = headers.get("x-mpo-reused")
        age = headers.get("age")
        return cls(
            export_id=export_id,
            status=status,
            message=message if isinstance(message, str) else None,
            retry_after=parse_retry_after(headers.get("retry-after")),
            trace_id=headers.get("x-trace-id"),
            warnings=tuple(_warning_texts(headers.get_list("warning"))),
            reused=None if reused is None else reused.strip().lower() in {"true", "1", "yes"},
            age=int(age) if age is not None and age.strip().isdigit() else None,
        )


class ReportOptions(TypedDict, total=False):
    """What a report asks for: the create request's attributes, in Python's spelling.

    ``advertiser_ids`` is required. Give ``lookback_window`` (minutes, 60-1440) or
    ``start`` (and optionally ``end``); with neither, the last 60 minutes. Datetimes
    without a zone are UTC. ``file_format`` is ``csv`` (default) or ``json``.
    """

    advertiser_ids: Required[Iterable[int | str]]
    dimensions: Iterable[str] | None
    metrics: Iterable[str] | None
    lookback_window: int | None
    start: datetime | str | None
    end: datetime | str | None
    timezone: str | None
    file_format: str
    campaign_ids: Iterable[int | str] | None
    seller_ids: Iterable[int | str] | None
    partner_ids: Iterable[int | str] | None


def _warning_texts(values: Iterable[str]) -> Iterable[str]:
    """The quoted texts of ``Warning: 299 mpo "text"; 299 mpo "other"`` headers."""
    for value in values:
        for part in value.split('"; '):
            _, _, text = part.partition('"')
            yield text.rstrip('"') if text else part


def _ids(values: Iterable[int | str] | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str | int):
        values = [values]
    return [str(value) for value in values]


def _instant(value: datetime | str | None) -> str | None:
    """ISO-8601; a naive datetime is taken as UTC, as the API reads a date without offset."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat().replace("+00:00", "Z")


def report_attributes(
    *,
    advertiser_ids: Iterable[int | str],
    dimensions: Iterable[str] | None = None,
    metrics: Iterable[str] | None = None,
    lookback_window: int | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    timezone: str | None = None,
    file_format: str = "csv",
    campaign_ids: Iterable[int | str] | None = None,
    seller_ids: Iterable[int | str] | None = None,
    partner_ids: Iterable[int | str] | None = None,
) -> dict[str, object]:
    """The ``attributes`` of a create request, camelCase as the API names them.

    Only shapes are handled here; every rule (ranges, combinations, zones) is the
    server's, which reports all problems of a request in one answer.
    """
    if lookback_window is None and start is None and end is None:
        lookback_window = DEFAULT_LOOKBACK
    attributes: dict[str, object | None] = {
        "fileFormat": file_format,
        "advertiserIds": _ids(advertiser_ids),
        "campaignIds": _ids(campaign_ids),
        "sellerIds": _ids(seller_ids),
        "partnerIds": _ids(partner_ids),
        "dimensions": list(dimensions) if dimensions is not None else None,
        "metrics": list(metrics) if metrics is not None else None,
        "lookbackWindow": lookback_window,
        "startDate": _instant(start),
        "endDate": _instant(end),
        "timezone": timezone,
    }
    return {key: value for key, value in attributes.items() if value is not None}
