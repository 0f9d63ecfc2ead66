"""Export jobs and API clients as plain data.

A :class:`Job` is one asynchronous export as the job store holds it; a :class:`Client`
is one holder of API credentials with its advertiser scope and roles. Both are frozen:
change one with :meth:`Job.evolve` or by asking the store, never in place. Datetimes are
timezone-aware UTC everywhere.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Client", "Job", "JobStatus", "Role", "WriteScope", "describe_scope"]


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
    limits for this client; ``None`` means the default applies. ``advertiser_ids`` bound
    what the client reads and, with the ingest role, writes; ``ingest_any_advertiser``
    (an explicit operator setting, never a default) lets a trusted producer write events
    of every advertiser. It widens nothing else: reports stay within ``advertiser_ids``.
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
    ingest_any_advertiser: bool = False

    @property
    def active(self) -> bool:
        """Whether the client has not been revoked."""
        return self.revoked_at is None

    def covers(self, advertiser_ids: Iterable[int]) -> bool:
        """Whether the client's scope includes every one of ``advertiser_ids``."""
        return set(advertiser_ids) <= set(self.advertiser_ids)

    @property
    def write_scope(self) -> WriteScope:
        """The advertisers whose events this client may ingest."""
        if self.ingest_any_advertiser:
            return WriteScope(any_advertiser=True)
        return WriteScope(frozenset(self.advertiser_ids))


@dataclass(frozen=True, slots=True)
class WriteScope:
    """Advertisers whose events a producer may store; every one for a trusted producer.

    Every path that stores events for somebody checks its rows against one of these
    before they are queued for the store.
    """

    advertiser_ids: frozenset[int] = frozenset()
    any_advertiser: bool = False

    def outside(self, advertiser_ids: Iterable[int]) -> list[int]:
        """The advertisers of ``advertiser_ids`` this scope does not cover, ascending."""
        if self.any_advertiser:
            return []
        return sorted(set(advertiser_ids) - self.advertiser_ids)

    def describe(self) -> str:
        """The scope in words, for error messages (long scopes abbreviated)."""
        if self.any_advertiser:
            return "every advertiser"
        return describe_scope(sorted(self.advertiser_ids))


#: advertisers named in full by :func:`describe_scope`; the rest are counted
_SCOPE_NAMED = 10


def describe_scope(advertiser_ids: Sequence[int]) -> str:
    """``advertisers 321, 322`` or, for a long scope, the first ones and a count."""
    if not advertiser_ids:
        return "no advertiser"
    named = ", ".join(str(a) for a in advertiser_ids[:_SCOPE_NAMED])
    noun = "advertiser" if len(advertiser_ids) == 1 else "advertisers"
    rest = len(advertiser_ids) - _SCOPE_NAMED
    if rest > 0:
        return f"{len(advertiser_ids):,} {noun}: {named} and {rest:,} more"
    return f"{noun} {named}"
