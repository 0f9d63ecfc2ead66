"""The Prometheus scrape endpoint and the labels the HTTP layer counts requests under.

The metrics themselves live in :mod:`mpo_realtime.metrics` (built by the composition
root); ``api/edge.py`` times each request and counts it there by route template.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from starlette.responses import Response

from mpo_realtime.metrics import Metrics

__all__ = ["ACCESS_LOGGER", "METHODS", "UNMATCHED", "router"]

#: Logger of the per-request access lines.
ACCESS_LOGGER = "mpo_realtime.access"
#: Route label of requests that matched no route (any path: one label value).
UNMATCHED = "unmatched"

#: Method label values; any other method is counted as ``OTHER``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus scrape endpoint (text format 0.0.4)."""
    metrics: Metrics = request.app.state.services.metrics
    body = await run_in_threadpool(metrics.exposition)
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
