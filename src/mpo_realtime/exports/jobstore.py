"""The job store: export jobs and API clients in SQLite or PostgreSQL.

One code path serves both engines through SQLAlchemy Core. Every operation is a single
statement, so each is atomic on its own: a claim is one ``UPDATE ... RETURNING`` whose
target is chosen by a subquery. PostgreSQL locks that row with ``FOR UPDATE SKIP
LOCKED`` so concurrent claimers (threads or other processes) pass over it; SQLite
ignores the locking clause and serialises writers with its database write lock, which
the statement takes before it reads. The outer ``WHERE`` repeats the "pending and lease
free" test, so a row whose lease was taken meanwhile is never claimed twice.

SQLite runs in WAL mode with a busy timeout (set on every new connection), so readers
do not block the writer and concurrent writers wait instead of failing. Datetimes are
stored in UTC and always come back timezone-aware.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import alembic.command
import alembic.config
import alembic.script
import alembic.util
from sqlalchemy import (
    JSON,
    BigInteger,
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
    create_engine,
    event,
    func,
    insert,
    inspect,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, Connection, Engine, RowMapping, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.sql.elements import ColumnElement

from mpo_realtime.domain.errors import StoreError
from mpo_realtime.domain.jobs import Client, Job, JobStatus, Role

__all__ = ["CLIENTS", "JOBS", "METADATA", "SqlJobStore"]

#: How long an SQLite writer waits for the write lock before giving up.
_SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Key of the PostgreSQL advisory lock that serialises concurrent ``migrate()`` calls.
_MIGRATION_LOCK_KEY = 0x6D706F5F6A6F6273  # "mpo_jobs"
_CONNECT_TIMEOUT_SECONDS = 10
_MIGRATIONS = Path(__file__).with_name("migrations")


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
)


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn SQLAlchemy (and driver) errors into :class:`StoreError`, keeping the cause."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"job store could not {action}: {exc}") from exc


def _engine_url(url: str) -> URL:
    parsed = make_url(url)
    # ``postgresql://`` means psycopg 3 here, the driver we ship, not SQLAlchemy's psycopg2.
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _on_sqlite_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _ids_json(ids: tuple[int, ...]) -> str:
    return json.dumps(list(ids), separators=(",", ":"))


def _ids(raw: str) -> tuple[int, ...]:
    return tuple(int(i) for i in json.loads(raw))


def _job_values(job: Job) -> dict[str, Any]:
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


def _job(row: RowMapping) -> Job:
    values = dict(row)
    values["advertiser_ids"] = _ids(values["advertiser_ids"])
    values["status"] = JobStatus(values["status"])
    return Job(**values)


def _client_values(client: Client) -> dict[str, Any]:
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
    }


def _client(row: RowMapping) -> Client:
    values = dict(row)
    values["advertiser_ids"] = _ids(values["advertiser_ids"])
    values["roles"] = frozenset(Role(role) for role in json.loads(values["roles"]))
    return Client(**values)


_PENDING = JOBS.c.status == JobStatus.PENDING.value


def _lease_free(now: datetime) -> ColumnElement[bool]:
    return or_(JOBS.c.lease_owner.is_(None), JOBS.c.lease_expires_at <= now)


class SqlJobStore:
    """Export jobs and API clients behind SQLAlchemy Core (SQLite or PostgreSQL).

    Parameters
    ----------
    url:
        ``sqlite:///path``, ``postgresql://...`` or ``postgresql+psycopg://...``.
    echo:
        Log every statement (SQLAlchemy's ``echo``).

    Call :meth:`migrate` once before use and :meth:`close` at the end. The store is
    safe to share between threads; every failure is raised as :class:`StoreError`.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        with _translated("open the database"):
            parsed = _engine_url(url)
            options: dict[str, Any] = {"echo": echo}
            if parsed.get_backend_name() == "sqlite":
                if parsed.database in (None, "", ":memory:"):
                    # One shared connection, or every thread would see its own empty database.
                    options["poolclass"] = StaticPool
                    options["connect_args"] = {"check_same_thread": False}
            else:
                options["pool_pre_ping"] = True
                if "connect_timeout" not in parsed.query:
                    # An unreachable server fails a ping or a request instead of hanging it.
                    options["connect_args"] = {"connect_timeout": _CONNECT_TIMEOUT_SECONDS}
            self._engine: Engine = create_engine(parsed, **options)
        if self._engine.dialect.name == "sqlite":
            event.listen(self._engine, "connect", _on_sqlite_connect)

    # -- lifecycle -------------------------------------------------------------------

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic ``upgrade head``); idempotent."""
        config = alembic.config.Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with _translated("migrate the schema"), self._engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    # Several processes may start at once; one migrates, the others wait.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                config.attributes["connection"] = connection
                alembic.command.upgrade(config, "head")
        except alembic.util.CommandError as exc:
            raise StoreError(f"job store could not migrate the schema: {exc}") from exc

    def at_head(self) -> bool:
        """Whether the schema is at the newest migration, the one :meth:`migrate` applies."""
        config = alembic.config.Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        try:
            heads = set(alembic.script.ScriptDirectory.from_config(config).get_heads())
        except alembic.util.CommandError as exc:
            raise StoreError(f"job store could not read its migrations: {exc}") from exc
        # Read Alembic's table directly: its MigrationContext logs two lines per call.
        with self._begin("read the schema revision") as connection:
            if not inspect(connection).has_table("alembic_version"):
                return False
            current = connection.scalars(text("SELECT version_num FROM alembic_version"))
            return set(current) == heads

    def ping(self) -> bool:
        """Whether the database answers a trivial query."""
        try:
            with self._engine.connect() as connection:
                connection.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    @contextlib.contextmanager
    def _begin(self, action: str) -> Iterator[Connection]:
        with _translated(action), self._engine.begin() as connection:
            yield connection

    # -- jobs ------------------------------------------------------------------------

    def create_job(self, job: Job) -> None:
        """Insert a new job; an existing id is a :class:`StoreError`."""
        with self._begin("create a job") as connection:
            connection.execute(insert(JOBS).values(_job_values(job)))

    def get_job(self, job_id: str) -> Job | None:
        with self._begin("read a job") as connection:
            row = connection.execute(select(JOBS).where(JOBS.c.id == job_id)).mappings().first()
        return None if row is None else _job(row)

    def find_reusable(self, cache_key: str, *, now: datetime) -> Job | None:
        """The newest Pending or Done job with ``cache_key`` that may still be reused."""
        query = (
            select(JOBS)
            .where(
                JOBS.c.cache_key == cache_key,
                JOBS.c.status.in_([JobStatus.PENDING.value, JobStatus.DONE.value]),
                or_(JOBS.c.reusable_until.is_(None), JOBS.c.reusable_until > now),
                or_(JOBS.c.expires_at.is_(None), JOBS.c.expires_at > now),
            )
            .order_by(JOBS.c.created_at.desc(), JOBS.c.id.desc())
            .limit(1)
        )
        with self._begin("look up a reusable job") as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else _job(row)

    def claim_next(self, *, owner: str, now: datetime, lease: timedelta) -> Job | None:
        """Lease the oldest Pending job whose lease is free to ``owner``, or ``None``.

        The claim sets the lease until ``now + lease``, ``started_at`` on the first claim
        and counts the attempt. See the module docstring for why two claimers never get
        the same job while its lease holds.
        """
        candidate = (
            select(JOBS.c.id)
            .where(_PENDING, _lease_free(now))
            .order_by(JOBS.c.created_at, JOBS.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claim = (
            update(JOBS)
            .where(JOBS.c.id == candidate, _PENDING, _lease_free(now))
            .values(
                lease_owner=owner,
                lease_expires_at=now + lease,
                started_at=func.coalesce(JOBS.c.started_at, literal(now, UtcDateTime())),
                attempts=JOBS.c.attempts + 1,
            )
            .returning(*JOBS.c)
        )
        with self._begin("claim a job") as connection:
            row = connection.execute(claim).mappings().first()
        return None if row is None else _job(row)

    def renew_lease(self, job_id: str, *, owner: str, until: datetime) -> bool:
        """Extend ``owner``'s lease on a Pending job; ``False`` if it is not theirs."""
        statement = (
            update(JOBS)
            .where(JOBS.c.id == job_id, _PENDING, JOBS.c.lease_owner == owner)
            .values(lease_expires_at=until)
        )
        with self._begin("renew a lease") as connection:
            return connection.execute(statement).rowcount == 1

    def finish_job(
        self,
        job_id: str,
        *,
        owner: str,
        now: datetime,
        row_count: int,
        byte_size: int,
        file_name: str,
        expires_at: datetime,
        query_seconds: float,
        write_seconds: float,
    ) -> bool:
        """Mark a job Done; ``False`` unless it is still Pending and leased by ``owner``.

        A lease that ran out still counts as long as nobody claimed the job since: the
        work is done, and a new claimer would have replaced ``lease_owner``.
        """
        statement = (
            update(JOBS)
            .where(JOBS.c.id == job_id, _PENDING, JOBS.c.lease_owner == owner)
            .values(
                status=JobStatus.DONE.value,
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
                row_count=row_count,
                byte_size=byte_size,
                file_name=file_name,
                expires_at=expires_at,
                query_seconds=query_seconds,
                write_seconds=write_seconds,
            )
        )
        with self._begin("finish a job") as connection:
            return connection.execute(statement).rowcount == 1

    def fail_job(self, job_id: str, *, owner: str | None, now: datetime, message: str) -> bool:
        """Mark a Pending job Failure with ``message``.

        With an ``owner``, only while the job is leased to that owner (as for
        :meth:`finish_job`: nobody else has claimed it since); without one (an operator,
        or a job that can never run), whoever holds it.
        """
        conditions = [JOBS.c.id == job_id, _PENDING]
        if owner is not None:
            conditions.append(JOBS.c.lease_owner == owner)
        statement = (
            update(JOBS)
            .where(*conditions)
            .values(
                status=JobStatus.FAILURE.value,
                message=message,
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        with self._begin("fail a job") as connection:
            return connection.execute(statement).rowcount == 1

    def expire_due(self, *, now: datetime) -> list[Job]:
        """Turn every Done job with ``expires_at <= now`` Expired and return them so."""
        statement = (
            update(JOBS)
            .where(JOBS.c.status == JobStatus.DONE.value, JOBS.c.expires_at <= now)
            .values(status=JobStatus.EXPIRED.value)
            .returning(*JOBS.c)
        )
        with self._begin("expire jobs") as connection:
            rows = connection.execute(statement).mappings().all()
        return sorted((_job(row) for row in rows), key=lambda job: (job.created_at, job.id))

    def count_created(self, client_id: str, *, since: datetime, exclude_reused: bool = True) -> int:
        """Jobs ``client_id`` created at or after ``since`` (the hourly export quota).

        A cache hit hands out an existing job and writes no row, so reused exports never
        count here; ``exclude_reused`` only states that and must stay ``True``.
        """
        if not exclude_reused:
            raise ValueError("the job store records no reuses; only exclude_reused=True works")
        query = (
            select(func.count())
            .select_from(JOBS)
            .where(JOBS.c.client_id == client_id, JOBS.c.created_at >= since)
        )
        with self._begin("count jobs") as connection:
            return int(connection.execute(query).scalar_one())

    def status_counts(self) -> dict[JobStatus, int]:
        """Number of jobs in every status (zero for a status no job has)."""
        query = select(JOBS.c.status, func.count()).group_by(JOBS.c.status)
        with self._begin("count jobs by status") as connection:
            rows = connection.execute(query).all()
        counts = dict.fromkeys(JobStatus, 0)
        for status, count in rows:
            counts[JobStatus(status)] = int(count)
        return counts

    # -- clients ---------------------------------------------------------------------

    def create_client(self, client: Client) -> None:
        """Insert a new client; an existing id is a :class:`StoreError`."""
        with self._begin("create a client") as connection:
            connection.execute(insert(CLIENTS).values(_client_values(client)))

    def get_client(self, client_id: str) -> Client | None:
        query = select(CLIENTS).where(CLIENTS.c.client_id == client_id)
        with self._begin("read a client") as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else _client(row)

    def list_clients(self) -> list[Client]:
        """Every client, revoked ones included, oldest first."""
        query = select(CLIENTS).order_by(CLIENTS.c.created_at, CLIENTS.c.client_id)
        with self._begin("list clients") as connection:
            rows = connection.execute(query).mappings().all()
        return [_client(row) for row in rows]

    def revoke_client(self, client_id: str, *, now: datetime) -> bool:
        """Revoke an active client; ``False`` if unknown or already revoked."""
        statement = (
            update(CLIENTS)
            .where(CLIENTS.c.client_id == client_id, CLIENTS.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        with self._begin("revoke a client") as connection:
            return connection.execute(statement).rowcount == 1
