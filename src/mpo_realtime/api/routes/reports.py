"""The three endpoints of the MPO Real-Time Asynchronous API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import partial
from typing import Annotated, Any

import anyio
import anyio.to_thread
import orjson
from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from starlette.responses import FileResponse, Response

from mpo_realtime.api.batcher import Batcher
from mpo_realtime.api.body import read_body
from mpo_realtime.api.deps import ReportClient, report_client, services_of
from mpo_realtime.api.direct import DirectHandler
from mpo_realtime.api.errors import problem_json, trace_id_of
from mpo_realtime.api.schemas import (
    REPORT_REQUEST_SCHEMA,
    ExportStatus,
    ExportStatusEnvelope,
)
from mpo_realtime.domain.errors import Problem
from mpo_realtime.domain.jobs import Job, JobStatus
from mpo_realtime.exports.service import CreatedExport, poll_retry_after

__all__ = ["BASE", "direct_routes", "router", "warning_header"]

BASE = "/{version}/marketing-solutions/marketplace-performance-outcomes/stats"
#: the documented switch to the JSON:API-style envelope that generated clients expect
ENVELOPE_HEADER = "X-MPO-Envelope"
#: says on a create answer whether an identical export was reused (``true``) or not
REUSED_HEADER = "X-MPO-Reused"

#: Creates run at most this many at once per process, in worker threads of their own
#: budget. A create may wait for the job store (SQLite's one writer, a PostgreSQL row
#: lock, a pool connection); under AnyIO's shared limit of 40 threads a burst of them
#: took every thread, and polls of Pending jobs, token checks and downloads queued
#: behind it. Creates beyond this number wait on the event loop, holding no thread.
CREATE_THREADS = 8

router = APIRouter(prefix=BASE, tags=["reports"])


def _create_limiter(request: Request) -> anyio.CapacityLimiter:
    """The app's limiter of concurrent creates (made on first use, in its event loop)."""
    state = request.app.state
    limiter: anyio.CapacityLimiter | None = getattr(state, "create_limiter", None)
    if limiter is None:
        limiter = state.create_limiter = anyio.CapacityLimiter(CREATE_THREADS)
    return limiter


def _job_reads(request: Request) -> Batcher[str, Job | None]:
    """The app's batcher of job reads: concurrent polls of unfinished jobs, one query."""
    state = request.app.state
    batcher: Batcher[str, Job | None] | None = getattr(state, "job_reads", None)
    if batcher is None:
        exports = services_of(request).exports

        async def read(keys: Sequence[str]) -> Mapping[str, Job | None]:
            return await run_in_threadpool(exports.read_jobs, keys)

        batcher = state.job_reads = Batcher(read)
    return batcher


EnvelopeHeader = Annotated[
    str | None,
    Header(
        alias=ENVELOPE_HEADER,
        description="'jsonapi' wraps answers as {data: {type, attributes}, warnings, errors}",
    ),
]


def _message(job: Job) -> str | None:
    if job.status is JobStatus.EXPIRED:
        return "the export has expired and its file was deleted"
    return job.message


def _status_response(
    job: Job,
    request: Request,
    *,
    envelope: str | None,
    warnings: tuple[Problem, ...] = (),
    retry_after: int | None = None,
    extra_headers: dict[str, str] | None = None,
) -> Response:
    attributes: dict[str, Any] = {
        "exportId": job.id,
        "status": job.status.value,
        "message": _message(job),
    }
    trace = trace_id_of(request)
    body: dict[str, Any]
    jsonapi = (envelope or "").lower() == "jsonapi"
    if jsonapi:
        body = {
            "data": {"type": "RealTimeProductReportJobStatus", "attributes": attributes},
            "warnings": [problem_json(w, trace) for w in warnings],
            "errors": [],
        }
    else:
        # the source's three fields, plus the warnings when there are some
        body = attributes
        if warnings:
            body["warnings"] = [problem_json(w, trace) for w in warnings]
    headers = dict(extra_headers or {})
    if retry_after is not None and job.status is JobStatus.PENDING:
        headers["Retry-After"] = str(retry_after)
    if warnings and not jsonapi and (value := warning_header(warnings)):
        headers["Warning"] = value
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


def _max_age(cache_control: str | None) -> timedelta | None:
    """The oldest reuse a create accepts: ``no-cache`` none, ``max-age=N`` N seconds."""
    ages = []
    for directive in (cache_control or "").lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name == "no-cache":
            ages.append(0)
        elif name == "max-age" and value.strip().strip('"').isdigit():
            ages.append(int(value.strip().strip('"')))
    return timedelta(seconds=min(ages)) if ages else None


def _reuse_headers(created: CreatedExport) -> dict[str, str]:
    """Headers that say whether an export was reused and how old it is (the official
    SDK ignores headers it does not know; an unknown body member would fail it)."""
    if not created.reused:
        return {REUSED_HEADER: "false"}
    return {REUSED_HEADER: "true", "Age": str(created.age_seconds)}


#: the longest ``Warning`` header sent; the body holds every warning whole
WARNING_HEADER_MAX = 2000


def _quoted(text: str) -> str:
    """``text`` as an HTTP quoted-string of printable ASCII.

    Details quote client input (an unknown attribute's name), which may hold any
    character: non-ASCII ones are escaped (``€`` as ``\u20ac``), control characters
    too, so that the header always encodes and never splits.
    """
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    printable = "".join(c if " " <= c <= "~" else f"\\x{ord(c):02x}" for c in escaped)
    return '"' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"'


def warning_header(warnings: Sequence[Problem]) -> str:
    """The ``Warning`` header (code 299) of ``warnings``: printable ASCII, bounded.

    As many warnings as fit in ``WARNING_HEADER_MAX`` characters (each detail cut to
    200 characters), possibly none; the body always holds them all.
    """
    kept: list[str] = []
    size = 0
    for warning in warnings:
        item = f"299 mpo {_quoted(warning.detail[:200])}"
        if size + len(item) + 2 > WARNING_HEADER_MAX:
            break
        kept.append(item)
        size += len(item) + 2
    return ", ".join(kept)


@router.post(
    "/realtime-reports/export",
    response_model=ExportStatus | ExportStatusEnvelope,
    openapi_extra={"requestBody": REPORT_REQUEST_SCHEMA},
    operation_id="create_realtime_product_report",
)
async def create_export(
    request: Request,
    client: ReportClient,
    envelope: EnvelopeHeader = None,
    cache_control: Annotated[
        str | None,
        Header(
            alias="Cache-Control",
            description="'no-cache' makes a new export instead of reusing an identical one; "
            "'max-age=N' reuses only an export at most N seconds old",
        ),
    ] = None,
) -> Response:
    """Create an export job; identical recent requests return the existing export.

    A reused export is answered with ``X-MPO-Reused: true`` and ``Age`` (seconds since
    it was created); a new one with ``X-MPO-Reused: false``.
    """
    services = services_of(request)
    settings = services.settings
    body = await read_body(
        request, limit=settings.report_max_body_bytes, timeout=settings.body_read_timeout_seconds
    )
    create = partial(services.exports.create, client, body, max_age=_max_age(cache_control))
    created = await anyio.to_thread.run_sync(create, limiter=_create_limiter(request))
    return _status_response(
        created.job,
        request,
        envelope=envelope,
        warnings=created.warnings,
        extra_headers=_reuse_headers(created),
    )


@router.get(
    "/report-jobs/{reportId}",
    response_model=ExportStatus | ExportStatusEnvelope,
    operation_id="get_marketplace_performance_outcomes_export_status",
)
async def export_status(
    request: Request,
    client: ReportClient,
    reportId: str,  # noqa: N803 - the source's name
    envelope: EnvelopeHeader = None,
) -> Response:
    """Poll an export: Pending, Done, Failure or Expired."""
    services = services_of(request)
    exports = services.exports
    job = exports.cached_status(client, reportId)
    if job is None:
        # not known to be finished: read with the other polls waiting now (api/batcher.py)
        stored = await _job_reads(request).get(exports.job_key(reportId))
        job = exports.status_of(client, reportId, stored)
    retry = poll_retry_after(
        job, now=exports.clock(), ceiling=services.settings.poll_retry_after_seconds
    )
    return _status_response(job, request, envelope=envelope, retry_after=retry)


@router.get(
    "/realtime-reports/{reportId}",
    responses={
        200: {
            "description": "The export file",
            "content": {
                "text/csv": {},
                "application/json": {},
                "application/vnd.apache.parquet": {},
            },
        },
    },
    response_class=Response,
    operation_id="get_realtime_product",
)
async def download_export(
    request: Request,
    client: ReportClient,
    reportId: str,  # noqa: N803 - the source's name
) -> Response:
    """Download a Done export's file (gzip-encoded when the client accepts it)."""
    services = services_of(request)
    download = await run_in_threadpool(services.exports.download, client, reportId)
    return _Download(
        download.path,
        media_type=download.content_type,
        filename=download.filename,
        content_disposition_type="attachment",
    )


#: bytes read from an export file per step; the gzip middleware compresses steps of this
#: size in a worker thread (``api/app.py``)
DOWNLOAD_CHUNK = 256 * 1024


class _Download(FileResponse):
    chunk_size = DOWNLOAD_CHUNK


async def _poll_directly(request: Request) -> Response:
    """``export_status`` with its parameters read as FastAPI reads them."""
    params = request.path_params
    client = await report_client(request, params["version"])
    envelope = request.headers.get(ENVELOPE_HEADER)
    return await export_status(request, client, params["reportId"], envelope)


def direct_routes() -> list[tuple[APIRoute, DirectHandler]]:
    """The routes answered by ``DirectDispatch`` (see ``api/direct.py``): the poll."""
    poll = next(
        route
        for route in router.routes
        if isinstance(route, APIRoute) and route.endpoint is export_status
    )
    return [(poll, _poll_directly)]
