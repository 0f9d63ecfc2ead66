"""The job store's tables (SQLAlchemy Core) and the conversion of their rows.

The schema itself is made by the Alembic migrations beside this module; these tables
describe it to the queries, and a test checks that both agree.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.engine import RowMapping

from mpo_realtime.domain.jobs import Client, Job, JobStatus, Role

__all__ = [
    "CLIENTS",
    "JOBS",
    "METADATA",
    "REUSE",
    "UtcDateTime",
    "client_row",
    "client_values",
    "job_row",
    "job_values",
]


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC; naive values are refused on write.

    SQLite keeps no offset and hands back naive values: those are UTC by construction
    and get their ``tzinfo`` back on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the job store needs aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


METADATA = MetaData()

JOBS = Table(
    "export_jobs",
    METADATA,
    Column("id", String(36), primary_key=True),
    Column("client_id", String(64), nullable=False),
    # JSON array text, in the job's order; visibility is decided by the caller.
    Column("advertiser_ids", Text, nullable=False),
    Column("cache_key", String(128), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("file_format", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("reusable_until", UtcDateTime, nullable=True),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("lease_owner", String(255), nullable=True),
    Column("lease_expires_at", UtcDateTime, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("row_count", BigInteger, nullable=True),
    Column("byte_size", BigInteger, nullable=True),
    Column("file_name", String(255), nullable=True),
    Column("query_seconds", Float, nullable=True),
    Column("write_seconds", Float, nullable=True),
    Index("ix_export_jobs_status_created_at", "status", "created_at"),
    Index("ix_export_jobs_cache_key", "cache_key"),
    Index("ix_export_jobs_lease_expires_at", "lease_expires_at"),
    Index("ix_export_jobs_client_id_created_at", "client_id", "created_at"),
    # The fair claim order: a client's running jobs and its latest start.
    Index("ix_export_jobs_client_id_status_created_at", "client_id", "status", "created_at"),
    Index("ix_export_jobs_client_id_started_at", "client_id", "started_at"),
)

CLIENTS = Table(
    "api_clients",
    METADATA,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("secret_hash", String(255), nullable=False),
    Column("advertiser_ids", Text, nullable=False),
    Column("roles", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("requests_per_minute", Integer, nullable=True),
    Column("exports_per_hour", Integer, nullable=True),
    Column("ingest_any_advertiser", Boolean, nullable=False, server_default=false()),
)

#: The export that identical requests (one cache key) reuse: at most one per key, taken
#: and replaced by one atomic upsert. ``created_at``, ``reusable_until`` and
#: ``expires_at`` repeat the job's, so that the upsert decides on this row alone: under
#: PostgreSQL's READ COMMITTED an upsert sees the newest version of the row it conflicts
#: with, but its subqueries would read an older snapshot of the jobs.
REUSE = Table(
    "export_reuse",
    METADATA,
    Column("cache_key", String(128), primary_key=True),
    Column("job_id", String(36), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("reusable_until", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Index("ix_export_reuse_job_id", "job_id"),
)


def _ids_json(ids: tuple[int, ...]) -> str:
    return json.dumps(list(ids), separators=(",", ":"))


def _ids(raw: str) -> tuple[int, ...]:
    return tuple(int(i) for i in json.loads(raw))


def job_values(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "client_id": job.client_id,
        "advertiser_ids": _ids_json(job.advertiser_ids),
        "cache_key": job.cache_key,
        "spec": job.spec,
        "file_format": job.file_format,
        "status": job.status.value,
        "message": job.message,
        "created_at": job.created_at,
        "reusable_until": job.reusable_until,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "expires_at": job.expires_at,
        "lease_owner": job.lease_owner,
        "lease_expires_at": job.lease_expires_at,
        "attempts": job.attempts,
        "row_count": job.row_count,
        "byte_size": job.byte_size,
        "file_name": job.file_name,
        "query_seconds": job.query_seconds,
        "write_seconds": job.write_seconds,
    }


def job_row(row: RowMapping) -> Job:
    values = dict(row)
    values["advertiser_ids"] = _ids(values["advertiser_ids"])
    values["status"] = JobStatus(values["status"])
    return Job(**values)


def client_values(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "secret_hash": client.secret_hash,
        "advertiser_ids": _ids_json(client.advertiser_ids),
        "roles": json.dumps(sorted(role.value for role in client.roles)),
        "created_at": client.created_at,
        "revoked_at": client.revoked_at,
        "requests_per_minute": client.requests_per_minute,
        "exports_per_hour": client.exports_per_hour,
        "ingest_any_advertiser": client.ingest_any_advertiser,
    }


def client_row(row: RowMapping) -> Client:
    values = dict(row)
    values["advertiser_ids"] = _ids(values["advertiser_ids"])
    values["roles"] = frozenset(Role(role) for role in json.loads(values["roles"]))
    values["ingest_any_advertiser"] = bool(values["ingest_any_advertiser"])
    return Client(**values)
