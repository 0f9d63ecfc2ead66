"""The export use cases: create, status, download. Knows nothing of HTTP."""

from __future__ import annotations

import hashlib
import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from mpo_realtime.domain.errors import ErrorCode, Problem, ProblemError
from mpo_realtime.domain.jobs import Client, Job, JobStatus, describe_scope
from mpo_realtime.domain.plan import plan_for
from mpo_realtime.domain.report import FileFormat, ReportSpec, parse_report_request
from mpo_realtime.exports.files import FileStore
from mpo_realtime.exports.jobstore import SqlJobStore
from mpo_realtime.exports.ratelimit import RateLimiter, per_hour
from mpo_realtime.store.base import EventStore

__all__ = [
    "WRITE_VISIBILITY_MARGIN",
    "Clock",
    "CreatedExport",
    "Download",
    "ExportService",
    "file_name_for",
    "poll_retry_after",
    "utcnow",
]

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def file_name_for(job: Job) -> str:
    return f"{job.id}.{job.file_format}"


def poll_retry_after(job: Job, *, now: datetime, ceiling: int) -> int:
    """Seconds a client should wait before polling a Pending ``job`` again.

    As old as the job is, at least 1 and at most ``ceiling``: most exports are Done
    within a second, so a young job's client comes back after 1 s rather than the full
    ``ceiling``, and a long export's clients settle at ``ceiling``.
    """
    age = (now - job.created_at).total_seconds()
    return max(1, min(ceiling, math.ceil(age)))


class _LruCache:
    """A small thread-safe LRU map of finished jobs by the ID clients poll them with."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Job | None:
        with self._lock:
            job = self._items.get(key)
            if job is not None:
                self._items.move_to_end(key)
            return job

    def put(self, key: str, job: Job) -> None:
        with self._lock:
            self._items[key] = job
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


#: Time allowed for a write to become visible after the store stamped it (the stamp is
#: taken in the write's transaction, just before its commit): a settled export is only
#: reused if it was created at least this long after the last write into its interval.
WRITE_VISIBILITY_MARGIN = timedelta(seconds=1)
#: the resolution of datetimes: ``a > b - _TICK`` is ``a >= b``
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class CreatedExport:
    """The answer to a create: the job, whether it was reused, and how old it is."""

    job: Job
    reused: bool
    warnings: tuple[Problem, ...]
    #: seconds since the job was created (0 for a new one): its data may miss events
    #: stored since then
    age_seconds: int = 0


@dataclass(frozen=True, slots=True)
class Download:
    path: Path
    content_type: str
    filename: str
    size: int


class ExportService:
    """Validates requests, enforces scope, reuses identical exports, reads job state."""

    def __init__(
        self,
        *,
        jobs: SqlJobStore,
        events: EventStore,
        files: FileStore,
        cache_window: timedelta = timedelta(seconds=60),
        settle: timedelta = timedelta(minutes=10),
        retention: timedelta = timedelta(days=45),
        max_ids: int = 10_000,
        clock: Clock = utcnow,
        on_created: Callable[[], None] | None = None,
        limiter: RateLimiter | None = None,
        exports_per_hour: int = 500,
    ) -> None:
        self.jobs = jobs
        self.events = events
        self.files = files
        self.cache_window = cache_window
        self.settle = settle
        self.retention = retention
        self.max_ids = max_ids
        self.clock = clock
        self.on_created = on_created
        self.limiter = limiter
        self._finished = _LruCache(10_000)
        self.exports_per_hour = exports_per_hour

    def create(
        self, client: Client, body: bytes, *, max_age: timedelta | None = None
    ) -> CreatedExport:
        """Validate, check scope, then reuse an identical export or create a new one.

        An identical export is reused while its rules allow (see ``docs/api.md``:
        relative requests within ``cache_window``, settled absolute intervals until
        expiry unless a later write touched them, never Failure or Expired). With
        ``max_age`` (the client's ``Cache-Control``), only an export at most that old
        is reused; ``timedelta(0)`` always makes a new one. Only new exports spend the
        hourly quota; concurrent identical creates make one export.
        """
        now = self.clock()
        spec = parse_report_request(body, now=now, retention=self.retention, max_ids=self.max_ids)
        self._check_scope(client, spec)
        cache_key = self._cache_key(client, spec)
        relative = spec.lookback_window is not None or spec.open_ended
        settled = not relative and spec.end <= now - self.settle
        fresh_after = self._fresh_after(spec, settled=settled, now=now, max_age=max_age)
        if fresh_after is None or fresh_after < now:
            reusable = self.jobs.find_reusable(cache_key, now=now, fresh_after=fresh_after)
            if reusable is not None:
                return self._reused(reusable, spec, now)
        job = Job(
            id=str(uuid.uuid4()),
            client_id=client.client_id,
            advertiser_ids=spec.advertiser_ids,
            cache_key=cache_key,
            spec={"plan": plan_for(spec).to_json(), "request": spec.canonical_attributes()},
            file_format=spec.file_format.value,
            created_at=now,
            reusable_until=None if settled else now + self.cache_window,
        )
        stored, reused = self.jobs.create_or_reuse(
            job, now=now, fresh_after=fresh_after, before_commit=lambda: self._spend_quota(client)
        )
        if reused:
            return self._reused(stored, spec, now)
        if self.on_created is not None:
            self.on_created()
        return CreatedExport(stored, False, spec.warnings)

    def _fresh_after(
        self, spec: ReportSpec, *, settled: bool, now: datetime, max_age: timedelta | None
    ) -> datetime | None:
        """Exports created at or before this moment may not be reused (None: any age)."""
        moments = []
        if max_age is not None:
            # An export exactly ``max_age`` old is still acceptable (as in HTTP caching).
            moments.append(now - max(max_age, timedelta(0)) - _TICK)
        if settled:
            # Reused until expiry, so a late event into the interval must end the reuse.
            written = self.events.last_write(spec.advertiser_ids, spec.start, spec.end)
            if written is not None:
                moments.append(written + WRITE_VISIBILITY_MARGIN)
        return max(moments, default=None)

    @staticmethod
    def _reused(job: Job, spec: ReportSpec, now: datetime) -> CreatedExport:
        age = max(0, int((now - job.created_at).total_seconds()))
        return CreatedExport(job, True, spec.warnings, age_seconds=age)

    def _spend_quota(self, client: Client) -> None:
        if self.limiter is None:
            return
        quota = client.exports_per_hour or self.exports_per_hour
        self.limiter.check(
            "exports",
            client.client_id,
            per_hour(quota),
            f"hourly quota of {quota} new exports reached (identical requests stay free)",
        )

    def _check_scope(self, client: Client, spec: ReportSpec) -> None:
        allowed = describe_scope(client.advertiser_ids)
        # In the order of the request, each pointer at the advertiser's first place in it.
        outside = [
            Problem(
                ErrorCode.INSUFFICIENT_PERMISSIONS,
                f"advertiser {advertiser} is not in the scope of this client, which may "
                f"use {allowed}",
                f"/data/attributes/advertiserIds/{position}",
            )
            for position, advertiser in spec.advertisers_as_requested
            if not client.covers((advertiser,))
        ]
        if outside:
            raise ProblemError(outside, list(spec.warnings))
        filters = (
            ("campaignIds", "campaign", spec.campaign_ids),
            ("sellerIds", "seller", spec.seller_ids),
            ("partnerIds", "partner", spec.partner_ids),
        )
        if not any(ids for _, _, ids in filters):
            return
        catalog = self.events.catalog(spec.advertiser_ids)
        known = {
            "campaignIds": catalog.campaign_ids,
            "sellerIds": catalog.seller_ids,
            "partnerIds": catalog.partner_ids,
        }
        problems = [
            Problem(
                ErrorCode.CAMPAIGN_NOT_IN_SCOPE,
                f"none of the {noun}s in {name} belongs to the requested advertisers",
                f"/data/attributes/{name}",
            )
            for name, noun, ids in filters
            if ids and known[name].isdisjoint(ids)
        ]
        if problems:
            raise ProblemError(problems, list(spec.warnings))

    @staticmethod
    def _cache_key(client: Client, spec: ReportSpec) -> str:
        # Same canonical request from the same advertiser scope is the same export (the
        # canonical attributes name the end of a closed interval, and only of one).
        material = {"scope": list(client.advertiser_ids), **spec.canonical_attributes()}
        return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def status(self, client: Client, job_id: str) -> Job:
        """The job as ``client`` may see it; an unseen or unknown job is export-not-found."""
        return self.status_of(client, job_id, self.jobs.get_job(self.job_key(job_id)))

    def job_key(self, job_id: str) -> str:
        """The job store's id of ``job_id`` (no I/O); a malformed one is export-not-found."""
        try:
            return str(uuid.UUID(job_id))
        except ValueError:
            raise self._not_found(job_id) from None

    def read_jobs(self, job_keys: Sequence[str]) -> dict[str, Job | None]:
        """The stored jobs of ``job_keys`` (from :meth:`job_key`), None if unknown: one read.

        :meth:`status` of many polls at once is :meth:`job_key` of each, this once for
        all of them, then :meth:`status_of` of each (``api/routes/reports.py``).
        """
        found = self.jobs.get_jobs(job_keys)
        return {key: found.get(key) for key in job_keys}

    def status_of(self, client: Client, job_id: str, job: Job | None) -> Job:
        """:meth:`status` given the stored job of ``job_id`` (None if there is none)."""
        return self._as_of_now(self._visible(client, job_id, job))

    def cached_status(self, client: Client, job_id: str) -> Job | None:
        """:meth:`status` without I/O, for a job known to be finished; None otherwise.

        A finished job (Done, Failure, Expired) never changes again but for Done turning
        Expired, which follows from its ``expires_at``; so polls of finished jobs, the
        bulk of polling, need not reach the job store.
        """
        job = self._finished.get(job_id)
        if job is None:
            return None
        if not client.covers(job.advertiser_ids):
            raise self._not_found(job_id)
        return self._as_of_now(job)

    def _as_of_now(self, job: Job) -> Job:
        if job.status is JobStatus.DONE and job.expires_at and job.expires_at <= self.clock():
            return job.evolve(status=JobStatus.EXPIRED)
        return job

    def download(self, client: Client, job_id: str) -> Download:
        job = self.status(client, job_id)
        if job.status is JobStatus.PENDING:
            raise ProblemError.single(
                ErrorCode.EXPORT_NOT_READY, "the export is still Pending; poll report-jobs first"
            )
        if job.status is JobStatus.FAILURE:
            raise ProblemError.single(
                ErrorCode.EXPORT_FAILED, f"the export failed: {job.message or 'unknown error'}"
            )
        name = job.file_name or file_name_for(job)
        path = self.files.path(name)
        if job.status is JobStatus.EXPIRED or not path.is_file():
            raise ProblemError.single(
                ErrorCode.EXPORT_ALREADY_EXPIRED, "the export file has been permanently deleted"
            )
        file_format = FileFormat(job.file_format)
        stamp = job.created_at.strftime("%Y%m%dT%H%M%SZ")
        return Download(
            path=path,
            content_type=file_format.content_type,
            filename=f"realtime-report-{stamp}-{job.id[:8]}.{file_format.value}",
            size=path.stat().st_size,
        )

    @staticmethod
    def _not_found(job_id: str) -> ProblemError:
        return ProblemError.single(
            ErrorCode.EXPORT_NOT_FOUND, f"export {job_id[:64]} does not exist or is not visible"
        )

    def _visible(self, client: Client, job_id: str, job: Job | None) -> Job:
        if job is None or not client.covers(job.advertiser_ids):
            raise self._not_found(job_id)
        if job.status is not JobStatus.PENDING:
            self._finished.put(job_id, job)
        return job
