"""The job store's statements for fair claims and export reuse (SQLAlchemy Core).

Built here, run by ``SqlJobStore`` (see its module docstring for why each is atomic).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, Select, Update, and_, func, literal, not_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from mpo_realtime.domain.jobs import Job, JobStatus
from mpo_realtime.exports.jobtables import JOBS, REUSE, UtcDateTime

__all__ = ["PENDING", "claim_statement", "lease_free", "reused_job", "slot_live", "take_slot"]

PENDING = JOBS.c.status == JobStatus.PENDING.value
_REUSABLE = (JobStatus.PENDING.value, JobStatus.DONE.value)


def lease_free(now: datetime, jobs: FromClause = JOBS) -> ColumnElement[bool]:
    return or_(jobs.c.lease_owner.is_(None), jobs.c.lease_expires_at <= now)


def _running_of(
    candidate: FromClause, *, now: datetime, owner: str | None = None
) -> ColumnElement[int]:
    """Jobs of ``candidate``'s client running now (under ``owner``'s lease, if given)."""
    running = JOBS.alias("running")
    conditions = [
        running.c.client_id == candidate.c.client_id,
        running.c.status == JobStatus.PENDING.value,
        running.c.lease_owner.is_not(None),
        running.c.lease_expires_at > now,
    ]
    if owner is not None:
        conditions.append(running.c.lease_owner == owner)
    return select(func.count()).select_from(running).where(*conditions).scalar_subquery()


def _last_start_of(candidate: FromClause) -> ColumnElement[datetime]:
    """When a job of ``candidate``'s client was last started (NULL: never)."""
    served = JOBS.alias("served")
    # ``ORDER BY ... LIMIT 1`` rather than ``max()``: one seek in the (client_id,
    # started_at) index on both engines, where SQLite's max() scanned the client's rows.
    return (
        select(served.c.started_at)
        .where(served.c.client_id == candidate.c.client_id, served.c.started_at.is_not(None))
        .order_by(served.c.started_at.desc())
        .limit(1)
        .scalar_subquery()
    )


def slot_live(now: datetime, fresh_after: datetime | None) -> list[ColumnElement[bool]]:
    """The reuse slot's export may still be handed out (read on the slot row alone)."""
    conditions = [
        or_(REUSE.c.reusable_until.is_(None), REUSE.c.reusable_until > now),
        or_(REUSE.c.expires_at.is_(None), REUSE.c.expires_at > now),
    ]
    if fresh_after is not None:
        conditions.append(REUSE.c.created_at > fresh_after)
    return conditions


def reused_job(cache_key: str) -> Select[Any]:
    return (
        select(JOBS)
        .join(REUSE, REUSE.c.job_id == JOBS.c.id)
        .where(REUSE.c.cache_key == cache_key, JOBS.c.status.in_(_REUSABLE))
    )


def claim_statement(
    *, owner: str, now: datetime, lease: timedelta, max_running: int | None
) -> Update:
    """``UPDATE ... RETURNING`` that leases the next job in fair order (see
    ``SqlJobStore.claim_next``)."""
    # The client first, from one row per client with a claimable job (so the fair
    # order costs a few lookups per waiting client, not per waiting job) ...
    waiting_jobs = JOBS.alias("waiting_jobs")
    waiting = (
        select(waiting_jobs.c.client_id, func.min(waiting_jobs.c.created_at).label("oldest"))
        .where(waiting_jobs.c.status == JobStatus.PENDING.value, lease_free(now, waiting_jobs))
        .group_by(waiting_jobs.c.client_id)
        .subquery("waiting")
    )
    capped = []
    if max_running is not None:
        capped.append(_running_of(waiting, now=now, owner=owner) < max_running)
    next_client = (
        select(waiting.c.client_id)
        .where(*capped)
        .order_by(
            _running_of(waiting, now=now),
            _last_start_of(waiting).asc().nulls_first(),
            waiting.c.oldest,
            waiting.c.client_id,
        )
        .limit(1)
        .scalar_subquery()
    )
    # ... then its oldest claimable job.
    candidate = JOBS.alias("candidate")
    chosen = (
        select(candidate.c.id)
        .where(
            candidate.c.client_id == next_client,
            candidate.c.status == JobStatus.PENDING.value,
            lease_free(now, candidate),
        )
        .order_by(candidate.c.created_at, candidate.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(JOBS)
        .where(JOBS.c.id == chosen, PENDING, lease_free(now))
        .values(
            lease_owner=owner,
            lease_expires_at=now + lease,
            started_at=func.coalesce(JOBS.c.started_at, literal(now, UtcDateTime())),
            attempts=JOBS.c.attempts + 1,
        )
        .returning(*JOBS.c)
    )


def take_slot(job: Job, *, now: datetime, fresh_after: datetime | None, dialect: str) -> Insert:
    """Upsert that gives ``job`` its cache key's slot unless the slot's export is still
    live; returns the slot's ``job_id`` when taken, no row otherwise."""
    slot = {
        "cache_key": job.cache_key,
        "job_id": job.id,
        "created_at": job.created_at,
        "reusable_until": job.reusable_until,
        "expires_at": None,
    }
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    proposed = dialect_insert(REUSE).values(slot)
    return proposed.on_conflict_do_update(
        index_elements=[REUSE.c.cache_key],
        set_={name: proposed.excluded[name] for name in slot if name != "cache_key"},
        where=not_(and_(*slot_live(now, fresh_after))),
    ).returning(REUSE.c.job_id)
