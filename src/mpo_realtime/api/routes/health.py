"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from mpo_realtime.api.deps import ServicesDep
from mpo_realtime.domain.errors import StoreError
from mpo_realtime.domain.zones import tzdata_version

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive; ``tzdata`` is the release of the time-zone rules in use."""
    return {"status": "ok", "tzdata": tzdata_version()}


@router.get("/ready")
async def ready(services: ServicesDep) -> JSONResponse:
    """Both stores answer and the job store schema is migrated; 503 otherwise."""

    def check() -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            services.events.latest_minute()
            checks["eventStore"] = "ok"
        except StoreError as exc:
            checks["eventStore"] = f"error: {exc}"
        checks["jobStore"] = "ok" if services.jobs.ping() else "error"
        try:
            at_head = services.jobs.at_head()
            checks["migrations"] = (
                "ok" if at_head else "error: schema is not at the newest revision"
            )
        except StoreError as exc:
            checks["migrations"] = f"error: {exc}"
        return checks

    checks = await run_in_threadpool(check)
    ok = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, 200 if ok else 503)
