"""The HTTP application: ``create_app(settings)`` is the only way to build it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware

from mpo_realtime import __version__
from mpo_realtime.api.direct import DirectDispatch
from mpo_realtime.api.edge import EdgeMiddleware
from mpo_realtime.api.errors import install_error_handlers
from mpo_realtime.api.metrics import router as metrics_router
from mpo_realtime.api.routes import health, ingest, me, oauth, reports
from mpo_realtime.api.schemas import refine_openapi
from mpo_realtime.console import console_router
from mpo_realtime.domain.report import FileFormat
from mpo_realtime.services import Services
from mpo_realtime.settings import Settings

__all__ = ["create_app"]


BackgroundTask = Callable[[Services], Coroutine[Any, Any, None]]


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    background: bool = True,
    runners: bool = True,
    tasks: Sequence[BackgroundTask] = (),
    direct: bool = True,
) -> FastAPI:
    """Build the app. Without ``services`` it opens (and closes) its own in its lifespan.

    ``background`` starts export runners and the sweeper (``runners=False``: neither, an
    API-only process of the scale-out deployment, whose jobs ``mpo worker`` runs);
    ``tasks`` are extra coroutines
    (demo traffic) run for the app's lifetime. ``direct=False`` leaves every route to
    FastAPI's router: the reference the direct dispatch is tested and measured against.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        active = Services.open(settings) if own else services
        assert active is not None
        app.state.services = active
        if background:
            active.start_background(runners=runners, sweeper=runners)
        for task in tasks:
            active.spawn(task(active))
        try:
            yield
        finally:
            await active.stop_background()
            if own:
                active.close()

    # The API browser (/docs, /redoc) with its scripts served by this process from the
    # fastapi-offline package: no CDN, so it works offline and leaks no visits.
    app = FastAPIOffline(
        title="mpo-realtime",
        version=__version__,
        description=(
            "MPO Real-Time Asynchronous API: create an export job, poll it, download the "
            "file. Send `X-MPO-Envelope: jsonapi` to receive the JSON:API-style envelope "
            "that generated clients expect. **Authorize** with a client's `client_id` and "
            "`client_secret` (OAuth2 client credentials) to try the report endpoints."
        ),
        lifespan=lifespan,
        static_url="/docs/assets",
        swagger_ui_parameters={"persistAuthorization": True},
        # Metrics and logs are our own (Prometheus, JSON lines); FastAPI's OpenTelemetry
        # bridge would otherwise look up the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    if services is not None:
        app.state.services = services
    install_error_handlers(app)
    app.include_router(oauth.router)
    app.include_router(reports.router)
    app.include_router(ingest.router)
    app.include_router(health.router)
    app.include_router(metrics_router)
    app.include_router(me.router)
    # The console calls the public API like any integrator, on its first version.
    app.include_router(
        console_router(
            stats_path=reports.BASE.replace("{version}", "preview"),
            me_path="/preview/me",
            token_path="/oauth2/token",
        )
    )
    _describe_truthfully(app)
    # Level 1: downloads of export files are the large answers, and level 9 took ten times
    # as long for a file 9 % smaller (40 MB: 58 s against 6.9 s on a loaded machine).
    # Downloads are read in chunks of 256 KiB (``routes/reports.py``) and chunks from 64 KiB
    # on are compressed in a worker thread, never on the event loop (FileResponse's own
    # 64 KiB chunks were below Starlette's 128 KiB threshold: every chunk of a download was
    # compressed on the loop). Parquet files are compressed already: sent as they are.
    app.add_middleware(
        GZipMiddleware,
        minimum_size=1024,
        compresslevel=1,
        thread_minimum_size=64 * 1024,
        exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, FileFormat.PARQUET.content_type),
    )
    if direct:
        app.add_middleware(DirectDispatch, routes=reports.direct_routes())
    app.add_middleware(EdgeMiddleware)
    return app


def _describe_truthfully(app: FastAPI) -> None:
    """Serve FastAPI's OpenAPI description as ``schemas.refine_openapi`` corrects it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = refine_openapi(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
