"""Error codes and problems, as data.

Hierarchy::

    MpoError
    ├── ProblemError          one or more API problems (validation, scope, lifecycle)
    ├── AuthenticationError   missing, malformed, expired or revoked token
    └── StoreError            an event or job store failed (driver error kept as __cause__)

The HTTP status of each code lives in ``api/errors.py``; the domain only names them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "CODE_INFO",
    "AuthenticationError",
    "ErrorCode",
    "ErrorType",
    "MpoError",
    "Problem",
    "ProblemError",
    "StoreError",
]


class ErrorType(enum.StrEnum):
    VALIDATION = "validation"
    AUTHENTICATION = "authentication"
    AUTHORIZATION = "authorization"
    NOT_FOUND = "not-found"
    CONFLICT = "conflict"
    THROTTLING = "throttling"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"


class ErrorCode(enum.StrEnum):
    """Every error code the API can answer with."""

    JSON_SERIALIZATION = "json-serialization-error"
    INVALID_QUERY = "invalid-query"
    INVALID_LOOKBACK_WINDOW = "invalid-lookbackwindow"
    INVALID_TIME_INTERVAL = "invalid-time-interval"
    INVALID_DIMENSION_COMBINATION = "invalid-dimensioncombination"
    UNSUPPORTED_FILE_FORMAT = "unsupported-fileformat"
    INSUFFICIENT_PERMISSIONS = "insufficient-accountpermissions"
    CAMPAIGN_NOT_IN_SCOPE = "no-campaign-found-in-scope"
    EXPORT_NOT_FOUND = "export-not-found"
    EXPORT_ALREADY_EXPIRED = "export-alreadyexpired"
    EXPORT_NOT_READY = "export-not-ready"
    EXPORT_FAILED = "export-failed"
    VERSION_NOT_FOUND = "version-not-found"
    ROUTE_NOT_FOUND = "route-not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    AUTHENTICATION_FAILED = "authentication-failed"
    INVALID_CLIENT = "invalid-client"
    UNSUPPORTED_GRANT_TYPE = "unsupported-grant-type"
    INSUFFICIENT_ROLE = "insufficient-role"
    INVALID_EVENTS = "invalid-events"
    PAYLOAD_TOO_LARGE = "payload-too-large"
    REQUEST_TIMEOUT = "request-timeout"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    TOO_MANY_REQUESTS = "too-many-requests"
    SERVICE_UNAVAILABLE = "service-unavailable"
    INTERNAL_ERROR = "internal-error"
    # Warning codes: answered in ``warnings``, never as errors.
    DUPLICATE_VALUE = "duplicate-value"
    END_DATE_CLAMPED = "end-date-clamped"
    START_DATE_CLAMPED = "start-date-clamped"
    INTERVAL_ROUNDED = "interval-rounded"
    IGNORED_ATTRIBUTE = "ignored-attribute"


#: (type, title) of every code. Titles of the source's codes are the source's words.
CODE_INFO: dict[ErrorCode, tuple[ErrorType, str]] = {
    ErrorCode.JSON_SERIALIZATION: (ErrorType.VALIDATION, "JSON error"),
    ErrorCode.INVALID_QUERY: (ErrorType.VALIDATION, "Invalid query definition"),
    ErrorCode.INVALID_LOOKBACK_WINDOW: (ErrorType.VALIDATION, "Invalid lookback window"),
    ErrorCode.INVALID_TIME_INTERVAL: (ErrorType.VALIDATION, "Invalid time interval definition"),
    ErrorCode.INVALID_DIMENSION_COMBINATION: (
        ErrorType.VALIDATION,
        "Invalid combination of dimensions",
    ),
    ErrorCode.UNSUPPORTED_FILE_FORMAT: (ErrorType.VALIDATION, "Unsupported file format"),
    ErrorCode.INSUFFICIENT_PERMISSIONS: (
        ErrorType.AUTHORIZATION,
        "Insufficient account permissions",
    ),
    ErrorCode.CAMPAIGN_NOT_IN_SCOPE: (ErrorType.AUTHORIZATION, "No campaign found in scope"),
    ErrorCode.EXPORT_NOT_FOUND: (ErrorType.AUTHORIZATION, "Export job not found"),
    ErrorCode.EXPORT_ALREADY_EXPIRED: (ErrorType.NOT_FOUND, "Export already expired"),
    ErrorCode.EXPORT_NOT_READY: (ErrorType.CONFLICT, "Export not ready"),
    ErrorCode.EXPORT_FAILED: (ErrorType.CONFLICT, "Export failed"),
    ErrorCode.VERSION_NOT_FOUND: (ErrorType.NOT_FOUND, "Unknown API version"),
    ErrorCode.ROUTE_NOT_FOUND: (ErrorType.NOT_FOUND, "Route not found"),
    ErrorCode.METHOD_NOT_ALLOWED: (ErrorType.VALIDATION, "Method not allowed"),
    ErrorCode.AUTHENTICATION_FAILED: (ErrorType.AUTHENTICATION, "Authentication failed"),
    ErrorCode.INVALID_CLIENT: (ErrorType.AUTHENTICATION, "Invalid client credentials"),
    ErrorCode.UNSUPPORTED_GRANT_TYPE: (ErrorType.VALIDATION, "Unsupported grant type"),
    ErrorCode.INSUFFICIENT_ROLE: (ErrorType.AUTHORIZATION, "Insufficient role"),
    ErrorCode.INVALID_EVENTS: (ErrorType.VALIDATION, "Invalid events"),
    ErrorCode.PAYLOAD_TOO_LARGE: (ErrorType.VALIDATION, "Payload too large"),
    ErrorCode.REQUEST_TIMEOUT: (ErrorType.VALIDATION, "Request timeout"),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: (ErrorType.VALIDATION, "Unsupported media type"),
    ErrorCode.TOO_MANY_REQUESTS: (ErrorType.THROTTLING, "Too many requests"),
    ErrorCode.SERVICE_UNAVAILABLE: (ErrorType.UNAVAILABLE, "Service unavailable"),
    ErrorCode.INTERNAL_ERROR: (ErrorType.INTERNAL, "Internal server error"),
    ErrorCode.DUPLICATE_VALUE: (ErrorType.VALIDATION, "Duplicate value dropped"),
    ErrorCode.END_DATE_CLAMPED: (ErrorType.VALIDATION, "End date clamped to now"),
    ErrorCode.START_DATE_CLAMPED: (ErrorType.VALIDATION, "Start date clamped to the data kept"),
    ErrorCode.INTERVAL_ROUNDED: (ErrorType.VALIDATION, "Interval rounded to whole minutes"),
    ErrorCode.IGNORED_ATTRIBUTE: (ErrorType.VALIDATION, "Attribute ignored"),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of an answer: what the API's ``errors``/``warnings`` arrays hold."""

    code: ErrorCode
    detail: str
    pointer: str | None = None
    title: str | None = None
    #: the problem is a conflict between parameters (HTTP 409 in the source's table)
    conflict: bool = False

    @property
    def type(self) -> ErrorType:
        return CODE_INFO[self.code][0]

    @property
    def resolved_title(self) -> str:
        return self.title or CODE_INFO[self.code][1]


class MpoError(Exception):
    """An mpo-realtime error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


@dataclass
class ProblemError(MpoError):
    """The request cannot be served; the problems say why."""

    problems: list[Problem]
    warnings: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__("; ".join(f"{p.code}: {p.detail}" for p in self.problems))

    @classmethod
    def single(
        cls, code: ErrorCode, detail: str, pointer: str | None = None, *, conflict: bool = False
    ) -> ProblemError:
        return cls([Problem(code, detail, pointer, conflict=conflict)])

    @property
    def codes(self) -> set[ErrorCode]:
        return {p.code for p in self.problems}


class AuthenticationError(MpoError):
    """Authentication failed: missing, malformed, expired or revoked token.

    ``bearer_error`` is the RFC 6750 error code of the ``WWW-Authenticate`` challenge:
    ``invalid_token`` for a token that was sent and refused, ``invalid_request`` for a
    Bearer header without a token, None when the request carried no Bearer credentials
    at all (the RFC's section 3.1: then the challenge names no error).
    """

    def __init__(self, message: str | None = None, *, bearer_error: str | None = "invalid_token"):
        super().__init__(message)
        self.bearer_error = bearer_error


class StoreError(MpoError):
    """A store could not serve the request."""
