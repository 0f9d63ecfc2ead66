"""Request dependencies: services, the authenticated client, roles, API versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool

from mpo_realtime.domain.errors import AuthenticationError, ErrorCode, ProblemError
from mpo_realtime.domain.jobs import Client, Role
from mpo_realtime.exports.ratelimit import per_minute
from mpo_realtime.services import Services

__all__ = [
    "CurrentClient",
    "IngestClient",
    "ReportClient",
    "ServicesDep",
    "Version",
]


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_client(request: Request, services: ServicesDep) -> Client:
    """The client of the bearer token; every auth failure is one 401.

    Dependencies here are ``async`` and stay on the event loop unless they need I/O:
    a poll is answered with one trip to a worker thread, not one per dependency.
    """
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationError("missing Authorization header: send 'Bearer <access_token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("malformed Authorization header: expected 'Bearer <token>'")
    now = datetime.now(UTC)
    clients = services.clients
    cached = clients.authenticate_token_cached(token.strip(), now=now)
    if cached is not None:
        return cached
    return await run_in_threadpool(clients.authenticate_token, token.strip(), now=now)


CurrentClient = Annotated[Client, Depends(current_client)]


def _requiring(role: Role) -> object:
    """The client, if it has ``role``, after spending one unit of that role's budget."""

    async def check(request: Request, client: CurrentClient, services: ServicesDep) -> Client:
        if role not in client.roles:
            raise ProblemError.single(
                ErrorCode.INSUFFICIENT_ROLE, f"this client lacks the '{role.value}' role"
            )
        settings = services.settings
        if role is Role.REPORT:
            amount = client.requests_per_minute or settings.report_requests_per_minute
        else:
            amount = settings.ingest_requests_per_minute
        limiter = services.limiter
        args = (
            role.value,
            client.client_id,
            per_minute(amount),
            f"over the {role.value} budget of {amount} requests per minute",
        )
        # In memory a hit is a dict update; a shared (Redis) store is I/O.
        decision = (
            await run_in_threadpool(limiter.check, *args)
            if limiter.shared
            else limiter.check(*args)
        )
        request.state.ratelimit = decision
        return client

    return Depends(check)


ReportClient = Annotated[Client, _requiring(Role.REPORT)]
IngestClient = Annotated[Client, _requiring(Role.INGEST)]


async def api_version(
    request: Request,
    services: ServicesDep,
    version: Annotated[str, Path(description="'preview' or a dated version such as 2026-10")],
) -> str:
    if version not in services.settings.api_versions:
        known = ", ".join(services.settings.api_versions)
        raise ProblemError.single(
            ErrorCode.VERSION_NOT_FOUND,
            f"API version '{version[:32]}' is unknown; use one of {known}",
        )
    return version


Version = Annotated[str, Depends(api_version)]
