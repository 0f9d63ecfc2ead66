"""Which configured stores several processes can share, and refusing the ones they cannot.

The embedded stores belong to one process: DuckDB locks its file for one writer, SQLite
is a file on one machine, and ``memory://`` rate limits live in one process's memory.
Several API processes (``mpo serve --processes N``) and workers (``mpo worker``) need
the shared engines: ClickHouse, PostgreSQL and Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpo_realtime.domain.errors import MpoError
from mpo_realtime.settings import Settings

__all__ = ["NotShared", "require_shared", "signing_key_warning", "unshared_stores"]

_UNSHARED_EVENT_STORES = ("duckdb:",)
_UNSHARED_JOB_STORES = ("sqlite:",)
_UNSHARED_RATE_LIMITS = ("memory:",)


class NotShared(MpoError):
    """A configured store cannot be shared between processes."""


@dataclass(frozen=True, slots=True)
class Unshared:
    setting: str
    url: str
    why: str
    fix: str

    def describe(self) -> str:
        return f"{self.setting}={self.url}: {self.why}; {self.fix}"


def unshared_stores(settings: Settings, *, rate_limits: bool = True) -> list[Unshared]:
    """The configured stores that one process owns (empty: every store is shared).

    ``rate_limits=False`` leaves rate limits out (a worker serves no requests).
    """
    found = []
    events = settings.resolved_event_store_url
    if events.startswith(_UNSHARED_EVENT_STORES):
        found.append(
            Unshared(
                "MPO_EVENT_STORE_URL",
                events,
                "a DuckDB file is written by one process only",
                "set MPO_EVENT_STORE_URL=clickhouse://HOST:9000/DATABASE",
            )
        )
    jobs = settings.resolved_job_store_url
    if jobs.startswith(_UNSHARED_JOB_STORES):
        found.append(
            Unshared(
                "MPO_JOB_STORE_URL",
                jobs,
                "SQLite is a file of one machine, not a server",
                "set MPO_JOB_STORE_URL=postgresql+psycopg://USER@HOST:5432/DATABASE",
            )
        )
    limits = settings.rate_limit_storage_url
    if rate_limits and limits.startswith(_UNSHARED_RATE_LIMITS):
        found.append(
            Unshared(
                "MPO_RATE_LIMIT_STORAGE_URL",
                limits,
                "each process would count its own budget, multiplying every limit",
                "set MPO_RATE_LIMIT_STORAGE_URL=redis://HOST:6379/0",
            )
        )
    return found


def require_shared(settings: Settings, what: str, *, rate_limits: bool = True) -> None:
    """Raise :class:`NotShared`, naming every store to change, unless all are shared."""
    found = unshared_stores(settings, rate_limits=rate_limits)
    if not found:
        return
    lines = "\n".join(f"  - {u.describe()}" for u in found)
    raise NotShared(
        f"{what} needs stores that several processes can share, and these are not:\n{lines}\n"
        "The embedded deployment is one process: run `mpo serve` alone "
        "(see docs/scale-out.md)."
    )


def signing_key_warning(settings: Settings) -> str | None:
    """A warning when processes on other machines would sign with another key.

    Without ``MPO_SIGNING_KEY`` each machine keeps its own key in its data directory, so
    a token issued by an API process on one machine is refused on another. That is
    harmless in the embedded deployment and wrong in a shared one.
    """
    if settings.signing_key or settings.resolved_job_store_url.startswith(_UNSHARED_JOB_STORES):
        return None
    return (
        "MPO_SIGNING_KEY is not set: access tokens are signed with the key in "
        f"{settings.data_dir / 'signing.key'}, which API processes on other machines do "
        "not have; set the same MPO_SIGNING_KEY on every machine (docs/scale-out.md)"
    )
