"""``GET /`` (to the console), ``GET /console`` (the page) and its static files."""

from __future__ import annotations

import jinja2
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from mpo_realtime.console.assets import CHART_LIBRARY, Asset, Assets
from mpo_realtime.console.security import SECURITY_HEADERS
from mpo_realtime.domain.errors import ErrorCode, ProblemError
from mpo_realtime.domain.report import (
    EXCLUSIVE_DIMENSIONS,
    LOOKBACK_MAX,
    LOOKBACK_MIN,
    Dimension,
    FileFormat,
    Metric,
)

__all__ = ["CONSOLE_PATH", "console_router", "render_page"]

CONSOLE_PATH = "/console"
STATIC_PATH = f"{CONSOLE_PATH}/static"
#: lookback presets offered beside the minutes field: (minutes, label)
LOOKBACK_PRESETS = ((60, "1 h"), (180, "3 h"), (360, "6 h"), (720, "12 h"), (1440, "24 h"))
#: seconds between two runs of the live view: the choices, and the one preselected
LIVE_INTERVALS = (5, 10, 30, 60)
LIVE_DEFAULT = 10


def render_page(*, stats_path: str, me_path: str, token_path: str) -> bytes:
    """The console's HTML: the same for every request, so rendered once per app."""
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("mpo_realtime.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = environment.get_template("console.html")
    return template.render(
        static=STATIC_PATH,
        chart_library=f"{STATIC_PATH}/{CHART_LIBRARY}",
        stats_path=stats_path,
        me_path=me_path,
        token_path=token_path,
        entity_dimensions=[d.value for d in Dimension if not d.is_time],
        time_dimensions=[d.value for d in Dimension if d.is_time],
        exclusive_dimensions=[d.value for d in EXCLUSIVE_DIMENSIONS],
        metrics=[m.value for m in Metric],
        file_formats=[f.value for f in FileFormat if not f.is_extension],
        lookback_min=LOOKBACK_MIN,
        lookback_max=LOOKBACK_MAX,
        lookback_presets=LOOKBACK_PRESETS,
        live_intervals=LIVE_INTERVALS,
        live_default=LIVE_DEFAULT,
    ).encode()


def _matches(request: Request, etag: str) -> bool:
    wanted = request.headers.get("if-none-match", "")
    return any(tag.strip().removeprefix("W/") == etag for tag in wanted.split(","))


def _asset_response(request: Request, asset: Asset) -> Response:
    gzipped = "gzip" in request.headers.get("accept-encoding", "").lower()
    etag = f'"{asset.etag}-gz"' if gzipped else f'"{asset.etag}"'
    headers = {
        **SECURITY_HEADERS,
        "ETag": etag,
        "Cache-Control": asset.cache_control,
        "Vary": "Accept-Encoding",
    }
    if _matches(request, etag):
        return Response(status_code=304, headers=headers)
    if gzipped:
        # Already compressed: the app's GZip middleware leaves an encoded answer alone.
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def console_router(*, stats_path: str, me_path: str, token_path: str) -> APIRouter:
    """The console's routes, for the API paths the page should call.

    ``stats_path`` is the report API's base with its version filled in, ``me_path`` the
    endpoint that describes the signed-in client, ``token_path`` the token endpoint.
    """
    assets = Assets()
    page = Asset.of(
        render_page(stats_path=stats_path, me_path=me_path, token_path=token_path),
        media_type="text/html; charset=utf-8",
        cache_control="no-cache",
    )
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def root() -> Response:
        return RedirectResponse(CONSOLE_PATH, status_code=302)

    @router.get(f"{CONSOLE_PATH}/")
    async def console_slash() -> Response:
        return RedirectResponse(CONSOLE_PATH, status_code=302)

    @router.get(CONSOLE_PATH)
    async def console_page(request: Request) -> Response:
        return _asset_response(request, page)

    @router.get(f"{STATIC_PATH}/{{name}}")
    async def console_static(request: Request, name: str) -> Response:
        if assets.loaded(name):
            asset = assets.get(name)
        else:  # the chart library's first request reads 4.8 MB: not on the event loop
            asset = await run_in_threadpool(assets.get, name)
        if asset is None:
            raise ProblemError.single(ErrorCode.ROUTE_NOT_FOUND, f"no console file '{name[:64]}'")
        return _asset_response(request, asset)

    return router
