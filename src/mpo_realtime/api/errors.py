"""The one place where errors become HTTP answers, in the API's error envelope."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from mpo_realtime.domain.errors import (
    AuthenticationError,
    ErrorCode,
    MpoError,
    Problem,
    ProblemError,
    StoreError,
)
from mpo_realtime.domain.events import EventBatchError
from mpo_realtime.exports.ratelimit import RateLimited

__all__ = [
    "CLIENT_CLOSED",
    "STATUS",
    "OAuthProblem",
    "bearer_challenge",
    "error_response",
    "install_error_handlers",
    "new_trace_id",
    "problem_json",
    "trace_id_of",
]

log = logging.getLogger(__name__)

#: status recorded (metrics, access log) for a request whose client hung up before its
#: body was read: nginx's 499 "client closed request"; nobody receives it
CLIENT_CLOSED = 499

#: HTTP status of each code; a problem marked ``conflict`` is 409 whatever its code.
STATUS: dict[ErrorCode, int] = {
    ErrorCode.JSON_SERIALIZATION: 400,
    ErrorCode.INVALID_QUERY: 400,
    ErrorCode.INVALID_LOOKBACK_WINDOW: 400,
    ErrorCode.INVALID_TIME_INTERVAL: 400,
    ErrorCode.INVALID_DIMENSION_COMBINATION: 409,
    ErrorCode.UNSUPPORTED_FILE_FORMAT: 400,
    ErrorCode.INSUFFICIENT_PERMISSIONS: 403,
    ErrorCode.CAMPAIGN_NOT_IN_SCOPE: 403,
    ErrorCode.EXPORT_NOT_FOUND: 403,
    ErrorCode.EXPORT_ALREADY_EXPIRED: 410,
    ErrorCode.EXPORT_NOT_READY: 409,
    ErrorCode.EXPORT_FAILED: 409,
    ErrorCode.VERSION_NOT_FOUND: 404,
    ErrorCode.ROUTE_NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.AUTHENTICATION_FAILED: 401,
    ErrorCode.INVALID_CLIENT: 401,
    ErrorCode.UNSUPPORTED_GRANT_TYPE: 400,
    ErrorCode.INSUFFICIENT_ROLE: 403,
    ErrorCode.INVALID_EVENTS: 400,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.TOO_MANY_REQUESTS: 429,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.INTERNAL_ERROR: 500,
}


@dataclass
class OAuthProblem(ProblemError):
    """A token-endpoint error: the envelope plus RFC 6749's ``error`` field (section 5.2).

    ``oauth_error`` is one of the RFC's codes (``invalid_request``, ``invalid_client``,
    ``unsupported_grant_type``...); ``challenge`` asks for HTTP Basic on a 401.
    """

    oauth_error: str = "invalid_request"
    challenge: bool = False


#: what every token-endpoint answer carries (RFC 6749 section 5.1)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def new_trace_id() -> str:
    """32 hex digits. Trace ids must be unique, not secret: ``uuid4`` would read the
    system's random source on every request, a syscall costing more than the rest."""
    return f"{random.getrandbits(128):032x}"


def trace_id_of(request: Request) -> str:
    trace = getattr(request.state, "trace_id", None)
    if trace is None:
        trace = new_trace_id()
        request.state.trace_id = trace
    return str(trace)


def problem_json(problem: Problem, trace_id: str) -> dict[str, Any]:
    """One problem in the source's field order; ``source`` only when there is a pointer."""
    item: dict[str, Any] = {
        "traceId": trace_id,
        "type": problem.type.value,
        "code": problem.code.value,
        "title": problem.resolved_title,
        "detail": problem.detail,
    }
    if problem.pointer is not None:
        item["source"] = {"pointer": problem.pointer}
    return item


def status_of(problems: Sequence[Problem]) -> int:
    """A plain validation problem makes the answer a 400; otherwise the first one decides."""
    statuses = [409 if p.conflict else STATUS[p.code] for p in problems]
    return 400 if 400 in statuses else statuses[0]


def error_response(
    problems: Sequence[Problem],
    trace_id: str,
    *,
    warnings: Iterable[Problem] = (),
    status: int | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """The envelope of ``problems``; ``extra`` fields are added to it (after the two)."""
    body = {
        "warnings": [problem_json(w, trace_id) for w in warnings],
        "errors": [problem_json(p, trace_id) for p in problems],
        **(extra or {}),
    }
    return Response(
        orjson.dumps(body),
        status_code=status or status_of(problems),
        media_type="application/json",
        headers=headers,
    )


def _events_problems(exc: EventBatchError) -> list[Problem]:
    problems = [
        Problem(
            ErrorCode.INVALID_EVENTS,
            str(issue),
            f"/{issue.line}" + (f"/{issue.field}" if issue.field else ""),
        )
        for issue in exc.issues
    ]
    if exc.total > len(exc.issues):
        more = exc.total - len(exc.issues)
        problems.append(
            Problem(ErrorCode.INVALID_EVENTS, f"{more} more problem(s) not listed; nothing stored")
        )
    return problems


def bearer_challenge(error: str | None) -> str:
    """The ``WWW-Authenticate`` value of a refused report or ingest request (RFC 6750)."""
    challenge = 'Bearer realm="mpo-realtime"'
    return challenge if error is None else f'{challenge}, error="{error}"'


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception the API can meet to the envelope, once."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        return error_response(exc.problems, trace_id_of(request), warnings=exc.warnings)

    async def on_oauth(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OAuthProblem)
        headers = dict(NO_STORE)
        if exc.challenge:
            headers["WWW-Authenticate"] = 'Basic realm="mpo-realtime", charset="UTF-8"'
        rfc = {"error": exc.oauth_error, "error_description": exc.problems[0].detail}
        return error_response(
            exc.problems, trace_id_of(request), headers=headers, extra=rfc, warnings=exc.warnings
        )

    async def on_disconnect(request: Request, exc: Exception) -> Response:
        # Nobody is left to read an answer: the 499 is for the metrics and access log.
        log.info(
            "client disconnected before its request body was read: %s %s",
            request.method,
            request.url.path,
            extra={"traceId": trace_id_of(request)},
        )
        return Response(status_code=CLIENT_CLOSED)

    async def on_auth(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AuthenticationError)
        problem = Problem(ErrorCode.AUTHENTICATION_FAILED, str(exc))
        headers = {"WWW-Authenticate": bearer_challenge(exc.bearer_error)}
        return error_response([problem], trace_id_of(request), headers=headers)

    async def on_events(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EventBatchError)
        return error_response(_events_problems(exc), trace_id_of(request))

    async def on_store(request: Request, exc: Exception) -> Response:
        log.error("store unavailable: %s", exc, extra={"traceId": trace_id_of(request)})
        problem = Problem(ErrorCode.SERVICE_UNAVAILABLE, "a backing store is unavailable; retry")
        return error_response([problem], trace_id_of(request), headers={"Retry-After": "5"})

    async def on_rate_limited(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RateLimited)
        decision = exc.decision
        request.state.ratelimit = decision
        request.app.state.services.metrics.rate_limited(decision.budget)
        detail = f"{exc}; retry in {decision.retry_after} s"
        return error_response(
            [Problem(ErrorCode.TOO_MANY_REQUESTS, detail)],
            trace_id_of(request),
            headers={"Retry-After": str(decision.retry_after)},
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: ErrorCode.ROUTE_NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
            exc.status_code, ErrorCode.INVALID_QUERY
        )
        detail = str(exc.detail) if exc.detail else "request not served"
        return error_response(
            [Problem(code, f"{request.method} {request.url.path}: {detail}")],
            trace_id_of(request),
            status=exc.status_code,
            headers=dict(exc.headers or {}),
        )

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = [
            Problem(
                ErrorCode.JSON_SERIALIZATION,
                f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}",
            )
            for error in exc.errors()
        ]
        return error_response(problems, trace_id_of(request))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        trace = trace_id_of(request)
        log.exception("unexpected error", extra={"traceId": trace})
        detail = f"an unexpected error occurred; quote trace id {trace}"
        return error_response([Problem(ErrorCode.INTERNAL_ERROR, detail)], trace)

    app.add_exception_handler(OAuthProblem, on_oauth)
    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(ClientDisconnect, on_disconnect)
    app.add_exception_handler(AuthenticationError, on_auth)
    app.add_exception_handler(EventBatchError, on_events)
    app.add_exception_handler(StoreError, on_store)
    app.add_exception_handler(RateLimited, on_rate_limited)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(MpoError, on_unexpected)
    app.add_exception_handler(Exception, on_unexpected)
