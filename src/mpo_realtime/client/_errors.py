"""What the report client raises: the API's error answers as typed data.

Hierarchy::

    ClientError                  everything the client raises
    ├── ApiError                 the API answered with an error: status, code, detail, trace_id
    │   ├── ValidationError      400, 409 and 413: the request is wrong; fix it, do not retry
    │   ├── AuthenticationError  401: credentials or token refused
    │   ├── PermissionDenied     403: an advertiser outside the client's scope, or a role
    │   ├── NotFound             export-not-found (403 by the source), unknown version (404)
    │   ├── Expired              410, or a job whose status is Expired
    │   ├── ExportFailed         409 export-failed, or a job whose status is Failure
    │   ├── NotReady             409 export-not-ready: a download before the job is Done
    │   ├── RateLimited          429, once the retry policy gave up (``retry_after``)
    │   └── ServerError          5xx, once the retry policy gave up
    ├── TransportError           no answer (connection refused, reset, timed out, cut short)
    └── WaitTimeout              the job was still Pending when the wait's timeout ran out

An ``ApiError`` keeps every problem of the answer in ``errors`` (each with its ``code``,
``title``, ``detail``, ``trace_id`` and ``pointer``); ``code`` and ``detail`` are the
first problem's. Errors raised because of a job's status (Failure, Expired) come from a
successful poll: their ``code`` is None and ``trace_id`` is that poll's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

__all__ = [
    "ApiError",
    "AuthenticationError",
    "ClientError",
    "ExportFailed",
    "Expired",
    "NotFound",
    "NotReady",
    "PermissionDenied",
    "Problem",
    "RateLimited",
    "ServerError",
    "TransportError",
    "ValidationError",
    "WaitTimeout",
    "error_from_response",
    "parse_retry_after",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One entry of the API's ``errors`` (or ``warnings``) array."""

    code: str | None
    detail: str
    title: str | None = None
    trace_id: str | None = None
    type: str | None = None
    #: JSON pointer to the field at fault, e.g. ``/data/attributes/fileFormat``
    pointer: str | None = None

    def __str__(self) -> str:
        where = f" at {self.pointer}" if self.pointer else ""
        return f"{self.code or 'error'}: {self.detail}{where}"


class ClientError(Exception):
    """Base of every error the report client raises."""


class TransportError(ClientError):
    """No usable answer: the connection failed, timed out or was cut short (after retries)."""


class WaitTimeout(ClientError):
    """The export was still Pending when the wait's timeout ran out."""

    def __init__(self, export_id: str, waited: float) -> None:
        super().__init__(f"export {export_id} still Pending after {waited:.1f} s")
        self.export_id = export_id
        self.waited = waited


class ApiError(ClientError):
    """An error answer of the API, with every problem it listed."""

    def __init__(
        self,
        *,
        status_code: int,
        errors: tuple[Problem, ...],
        trace_id: str | None = None,
        warnings: tuple[Problem, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        if not errors:
            errors = (Problem(None, f"HTTP {status_code}", trace_id=trace_id),)
        self.status_code = status_code
        self.errors = errors
        self.warnings = warnings
        self.code = errors[0].code
        self.detail = errors[0].detail
        self.trace_id = trace_id or errors[0].trace_id
        self.retry_after = retry_after
        super().__init__(self._message())

    def _message(self) -> str:
        first = str(self.errors[0])
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        trace = f", trace id {self.trace_id}" if self.trace_id else ""
        return f"{first}{more} [HTTP {self.status_code}{trace}]"


class ValidationError(ApiError):
    """The request was refused as invalid (400, 409, 413): retrying it cannot help."""


class AuthenticationError(ApiError):
    """Credentials or token refused (401)."""


class PermissionDenied(ApiError):
    """The client may not do this: an advertiser outside its scope, or a missing role."""


class NotFound(ApiError):
    """No such export for this client (``export-not-found``), version or path."""


class Expired(ApiError):
    """The export's file was deleted (410, or a job whose status is Expired)."""


class ExportFailed(ApiError):
    """The export job failed on the server (its status is Failure)."""


class NotReady(ApiError):
    """A download of an export that is not Done yet."""


class RateLimited(ApiError):
    """A rate limit or quota was spent; ``retry_after`` says when to come back (seconds)."""


class ServerError(ApiError):
    """The server failed (5xx); the request may succeed later."""


_BY_CODE: dict[str, type[ApiError]] = {
    "export-not-found": NotFound,
    "version-not-found": NotFound,
    "route-not-found": NotFound,
    "export-alreadyexpired": Expired,
    "export-failed": ExportFailed,
    "export-not-ready": NotReady,
    "too-many-requests": RateLimited,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: ValidationError,
    410: Expired,
    413: ValidationError,
    415: ValidationError,
    422: ValidationError,
    429: RateLimited,
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delay-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime
    from time import time

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time())


def _problems(items: object, trace_id: str | None) -> tuple[Problem, ...]:
    if not isinstance(items, list):
        return ()
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        source = item.get("source")
        pointer = source.get("pointer") if isinstance(source, dict) else None
        found.append(
            Problem(
                code=_text(item.get("code")),
                detail=_text(item.get("detail")) or _text(item.get("title")) or "",
                title=_text(item.get("title")),
                trace_id=_text(item.get("traceId")) or trace_id,
                type=_text(item.get("type")),
                pointer=_text(pointer),
            )
        )
    return tuple(found)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def error_from_response(response: httpx.Response) -> ApiError:
    """The typed error of an answer whose body has been read.

    Reads the API's envelope (``{"warnings": [...], "errors": [...]}``), an OAuth2 error
    (``{"error": "invalid_client", "error_description": ...}``, RFC 6749), or, from
    something in between that is not the API (a proxy's HTML page), the status alone.
    """
    status = response.status_code
    trace_id = response.headers.get("x-trace-id")
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        errors = _problems(body.get("errors"), trace_id)
        warnings = _problems(body.get("warnings"), trace_id)
        oauth_error = _text(body.get("error"))
        if not errors and oauth_error:
            detail = _text(body.get("error_description")) or oauth_error
            errors = (Problem(oauth_error, detail, trace_id=trace_id),)
    if not errors:
        text = response.text.strip()[:200] if body is None else ""
        detail = f"HTTP {status} {response.reason_phrase}" + (f": {text}" if text else "")
        errors = (Problem(None, detail, trace_id=trace_id),)
    kind = _BY_CODE.get(errors[0].code or "") or _BY_STATUS.get(status)
    if kind is None:
        kind = ServerError if status >= 500 else ApiError
    return kind(
        status_code=status,
        errors=errors,
        trace_id=trace_id,
        warnings=warnings,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )
