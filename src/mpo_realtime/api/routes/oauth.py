"""OAuth2 client credentials (RFC 6749 section 4.4), as Criteo's own token endpoint.

Cheap checks come first: the source address's budget, then the content type, then a
small body read within a deadline, parsed as a form (no multipart, no files); only then
the secret's hash is verified.

Guessing a client's secret is slowed without letting strangers lock the client out:
each ``client_id`` has a budget of *failed* attempts per minute. While it lasts anyone
may try; once it is spent, only addresses that obtained a token for that client within
``token_trusted_address_seconds`` are still checked, everyone else gets 429.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from starlette.responses import Response

from mpo_realtime.api.body import read_body
from mpo_realtime.api.deps import ServicesDep
from mpo_realtime.api.errors import NO_STORE, OAuthProblem
from mpo_realtime.domain.errors import AuthenticationError, ErrorCode, Problem, ProblemError
from mpo_realtime.exports.ratelimit import RateLimited, per_minute
from mpo_realtime.services import Services

__all__ = ["FORM", "router"]

router = APIRouter(tags=["oauth"])

#: the only body the token endpoint reads (RFC 6749 section 4.4.2)
FORM = "application/x-www-form-urlencoded"
#: fields of a token request; a few more are tolerated, then the body is refused
_MAX_FIELDS = 16


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str | None = None


def _problem(
    code: ErrorCode, detail: str, oauth_error: str, *, pointer: str | None = None
) -> OAuthProblem:
    title = "Invalid token request" if code is ErrorCode.INVALID_QUERY else None
    return OAuthProblem([Problem(code, detail, pointer, title)], oauth_error=oauth_error)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def _check_content_type(request: Request) -> None:
    """A form, or no body at all (read as an empty form: ``grant_type`` is missing)."""
    headers = request.headers
    received = headers.get("content-type", "")
    if not received and headers.get("content-length", "0") == "0":
        if "transfer-encoding" not in headers:
            return
    if received.split(";", 1)[0].strip().lower() != FORM:
        shown = f"'{received[:100]}'" if received else "no Content-Type"
        raise OAuthProblem(
            [
                Problem(
                    ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                    f"the token endpoint reads {FORM} bodies only "
                    f"(grant_type=client_credentials&client_id=...&client_secret=...); "
                    f"received {shown}",
                    "/headers/Content-Type",
                )
            ],
            oauth_error="invalid_request",
        )


async def _read_form(request: Request, services: Services) -> dict[str, str]:
    settings = services.settings
    try:
        body = await read_body(
            request,
            limit=settings.token_max_body_bytes,
            timeout=settings.body_read_timeout_seconds,
        )
    except ProblemError as exc:
        raise OAuthProblem(exc.problems, oauth_error="invalid_request") from None
    try:
        fields = parse_qs(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=_MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise _problem(
            ErrorCode.INVALID_QUERY,
            f"the body is not a UTF-8 form of at most {_MAX_FIELDS} fields",
            "invalid_request",
        ) from None
    repeated = sorted(name for name, values in fields.items() if len(values) > 1)
    if repeated:
        raise _problem(
            ErrorCode.INVALID_QUERY,
            f"parameters sent more than once: {', '.join(repeated)[:200]}",
            "invalid_request",
        )
    return {name: values[0] for name, values in fields.items()}


def _check_grant(form: dict[str, str]) -> None:
    grant = form.get("grant_type")
    if grant == "client_credentials":
        return
    if grant is None:
        detail = "grant_type is missing: send grant_type=client_credentials"
        error = "invalid_request"
    else:
        detail = f"grant_type '{grant[:64]}' is not supported: use client_credentials"
        error = "unsupported_grant_type"
    raise _problem(ErrorCode.UNSUPPORTED_GRANT_TYPE, detail, error, pointer="/grant_type")


@router.post(
    "/oauth2/token",
    response_model=TokenAnswer,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def token(request: Request, services: ServicesDep) -> Response:
    """Exchange client credentials (form fields or HTTP Basic) for an access token."""
    settings, limiter = services.settings, services.limiter
    address = request.client.host if request.client else "unknown"
    request.state.ratelimit = limiter.check(
        "token-address",
        address,
        per_minute(settings.token_requests_per_minute_per_address),
        "too many token requests from this address",
    )
    _check_content_type(request)
    form = await _read_form(request, services)
    _check_grant(form)
    basic = _basic_credentials(request.headers.get("authorization"))
    client_id, secret = basic or (form.get("client_id"), form.get("client_secret"))
    if not client_id or secret is None:
        raise OAuthProblem(
            [
                Problem(
                    ErrorCode.INVALID_CLIENT,
                    "client_id and client_secret are required (form fields or HTTP Basic)",
                )
            ],
            oauth_error="invalid_client",
            challenge=True,
        )
    client_key = client_id[:128]
    failures = per_minute(settings.token_requests_per_minute)
    trusted = limiter.remembers("token-trusted", f"{client_key}|{address}")
    if not trusted:
        budget = limiter.peek("token-failures", client_key, failures)
        if not budget.allowed:
            raise RateLimited(
                budget,
                "too many failed token requests for this client_id from addresses that have "
                "not obtained a token for it recently",
            )
    try:
        client = await run_in_threadpool(
            services.clients.authenticate_credentials, client_id, secret
        )
    except AuthenticationError as exc:
        limiter.hit("token-failures", client_key, failures)
        raise OAuthProblem(
            [Problem(ErrorCode.INVALID_CLIENT, str(exc))],
            oauth_error="invalid_client",
            challenge=basic is not None,
        ) from None
    limiter.remember(
        "token-trusted", f"{client_key}|{address}", settings.token_trusted_address_seconds
    )
    issued = services.clients.issue_token(client, now=datetime.now(UTC))
    answer = TokenAnswer(access_token=issued.access_token, expires_in=issued.expires_in)
    return Response(answer.model_dump_json(), media_type="application/json", headers=NO_STORE)
