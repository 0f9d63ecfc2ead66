"""Request dependencies: services, the authenticated client, roles, API versions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from limits import RateLimitItem

from mpo_realtime.api.batcher import Batcher
from mpo_realtime.domain.errors import AuthenticationError, ErrorCode, ProblemError, StoreError
from mpo_realtime.domain.jobs import Client, Role
from mpo_realtime.exports.ratelimit import Decision, RateLimited, per_minute
from mpo_realtime.services import Services

__all__ = [
    "IngestClient",
    "ReportClient",
    "ServicesDep",
    "services_of",
]


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


async def _authenticate(request: Request, services: Services) -> Client:
    """The client of the bearer token; every auth failure is one 401.

    Checks stay on the event loop unless they need I/O: a poll is answered with at most
    one trip to a worker thread.
    """
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationError(
            "missing Authorization header: send 'Bearer <access_token>'", bearer_error=None
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError(
            "malformed Authorization header: expected 'Bearer <token>'",
            # another scheme carries no Bearer credentials; "Bearer" alone is a bad request
            bearer_error="invalid_request" if scheme.lower() == "bearer" else None,
        )
    now = datetime.now(UTC)
    clients = services.clients
    cached = clients.authenticate_token_cached(token.strip(), now=now)
    if cached is not None:
        return cached
    return await run_in_threadpool(clients.authenticate_token, token.strip(), now=now)


async def _spend_budget(request: Request, services: Services, client: Client, role: Role) -> None:
    """Refuse a client without ``role``; else spend one unit of that role's budget."""
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
    item = per_minute(amount)
    if limiter.shared:
        # a shared (Redis) store is I/O: concurrent hits go in one round trip
        answer = await _shared_hits(request, services).get(_Hit(role.value, client.client_id, item))
        if isinstance(answer, StoreError):
            raise answer
        decision = answer
    else:
        # in memory a hit is a dict update: no I/O, no thread
        decision = limiter.hit(role.value, client.client_id, item)
    if not decision.allowed:
        raise RateLimited(decision, f"over the {role.value} budget of {amount} requests per minute")
    request.state.ratelimit = decision


@dataclass(frozen=True, eq=False)
class _Hit:
    """One request's hit: equal only to itself, so that no two hits are merged."""

    budget: str
    key: str
    item: RateLimitItem


def _shared_hits(request: Request, services: Services) -> Batcher[_Hit, Decision | StoreError]:
    """The app's batcher of shared rate-limit hits (``api/batcher.py``)."""
    state = request.app.state
    batcher: Batcher[_Hit, Decision | StoreError] | None = getattr(state, "shared_hits", None)
    if batcher is None:
        limiter = services.limiter

        def spend(hits: Sequence[_Hit]) -> dict[_Hit, Decision | StoreError]:
            decisions = limiter.hits([(hit.budget, hit.key, hit.item) for hit in hits])
            return dict(zip(hits, decisions, strict=True))

        async def call(hits: Sequence[_Hit]) -> Mapping[_Hit, Decision | StoreError]:
            return await run_in_threadpool(spend, hits)

        batcher = state.shared_hits = Batcher(call)
    return batcher


def _check_version(services: Services, version: str) -> None:
    if version not in services.settings.api_versions:
        known = ", ".join(services.settings.api_versions)
        raise ProblemError.single(
            ErrorCode.VERSION_NOT_FOUND,
            f"API version '{version[:32]}' is unknown; use one of {known}",
        )


VersionPath = Annotated[str, Path(description="'preview' or a dated version such as 2026-10")]


# The checks of a route are one dependency, not a tree of them: FastAPI walks the tree
# on every request, and on the poll path that walk cost more than the answer itself.
async def report_client(request: Request, version: VersionPath) -> Client:
    """Known API version, then the bearer's client, with the report role and budget."""
    services = services_of(request)
    _check_version(services, version)
    client = await _authenticate(request, services)
    await _spend_budget(request, services, client, Role.REPORT)
    return client


async def ingest_client(request: Request) -> Client:
    """The bearer's client, with the ingest role and budget."""
    services = services_of(request)
    client = await _authenticate(request, services)
    await _spend_budget(request, services, client, Role.INGEST)
    return client


ReportClient = Annotated[Client, Depends(report_client)]
IngestClient = Annotated[Client, Depends(ingest_client)]
