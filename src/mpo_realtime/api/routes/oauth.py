"""OAuth2 client credentials, as Criteo's own token endpoint."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from mpo_realtime.api.deps import ServicesDep
from mpo_realtime.domain.errors import AuthenticationError, ErrorCode, ProblemError
from mpo_realtime.exports.ratelimit import per_minute

__all__ = ["router"]

router = APIRouter(tags=["oauth"])


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str | None = None


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


@router.post(
    "/oauth2/token",
    response_model=TokenAnswer,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
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
async def token(request: Request, services: ServicesDep) -> TokenAnswer:
    """Exchange client credentials (form fields or HTTP Basic) for an access token."""
    form = await request.form()
    grant = form.get("grant_type")
    if grant != "client_credentials":
        raise ProblemError.single(
            ErrorCode.UNSUPPORTED_GRANT_TYPE,
            "grant_type must be 'client_credentials'",
            "/grant_type",
        )
    basic = _basic_credentials(request.headers.get("authorization"))
    client_id, secret = basic or (form.get("client_id"), form.get("client_secret"))
    settings, limiter = services.settings, services.limiter
    address = request.client.host if request.client else "unknown"
    amount = settings.token_requests_per_minute_per_address
    limiter.check("token-address", address, per_minute(amount), "too many token requests")
    if not isinstance(client_id, str) or not isinstance(secret, str):
        raise AuthenticationError("client_id and client_secret are required")
    amount = settings.token_requests_per_minute
    request.state.ratelimit = limiter.check(
        "token", client_id[:128], per_minute(amount), "too many token requests for this client"
    )
    client = await run_in_threadpool(services.clients.authenticate_credentials, client_id, secret)
    issued = services.clients.issue_token(client, now=datetime.now(UTC))
    return TokenAnswer(access_token=issued.access_token, expires_in=issued.expires_in)
