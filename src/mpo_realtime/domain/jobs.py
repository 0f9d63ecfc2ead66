"""Export jobs and API clients as plain data.

A :class:`Job` is one asynchronous export as the job store holds it; a :class:`Client`
is one holder of API credentials with its advertiser scope and roles. Both are frozen:
change one with :meth:`Job.evolve` or by asking the store, never in place. Datetimes are
timezone-aware UTC everywhere.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Client", "Job", "JobStatus", "Role"]


class JobStatus(enum.StrEnum):
    """Lifecycle of an export, with the source's spelling of each status."""

    PENDING = "Pending"
    DONE = "Done"
    FAILURE = "Failure"
    EXPIRED = "Expired"


class Role(enum.StrEnum):
    """What a client may do: request reports, or push events."""

    REPORT = "report"
    INGEST = "ingest"


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One export job.

    ``advertiser_ids`` are the advertisers the report covers: a client sees the job only
    if its scope covers all of them. ``cache_key`` and ``spec`` are opaque to the store.
    A job may be reused by identical requests while ``reusable_until`` (if set) and
    ``expires_at`` (if set) are both in the future. ``lease_owner`` and
    ``lease_expires_at`` say which runner works on it and until when.
    """

    id: str
    client_id: str
    advertiser_ids: tuple[int, ...]
    cache_key: str
    spec: dict[str, Any]
    file_format: str
    status: JobStatus = JobStatus.PENDING
    message: str | None = None
    created_at: datetime
    reusable_until: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int = 0
    row_count: int | None = None
    byte_size: int | None = None
    file_name: str | None = None
    query_seconds: float | None = None
    write_seconds: float | None = None

    def evolve(self, **changes: Any) -> Job:
        """A copy of this job with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True, kw_only=True)
class Client:
    """An API client: credentials (hashed), advertiser scope, roles and rate overrides.

    ``requests_per_minute`` and ``exports_per_hour`` override the server's default
    limits for this client; ``None`` means the default applies.
    """

    client_id: str
    name: str
    secret_hash: str
    advertiser_ids: tuple[int, ...]
    roles: frozenset[Role]
    created_at: datetime
    revoked_at: datetime | None = None
    requests_per_minute: int | None = None
    exports_per_hour: int | None = None

    @property
    def active(self) -> bool:
        """Whether the client has not been revoked."""
        return self.revoked_at is None

    def covers(self, advertiser_ids: Iterable[int]) -> bool:
        """Whether the client's scope includes every one of ``advertiser_ids``."""
        return set(advertiser_ids) <= set(self.advertiser_ids)
