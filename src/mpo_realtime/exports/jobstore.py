"""The job store: export jobs and API clients in SQLite or PostgreSQL.

One code path serves both engines through SQLAlchemy Core. Every change is one atomic
statement, or a few in one transaction where a job and its reuse slot change together.

**Claims.** A claim is one ``UPDATE ... RETURNING`` whose target is chosen by a
subquery, in a fair order: the Pending job of the client with the fewest running jobs,
then of the client served least recently, then the oldest; a client holding
``max_running`` of the claimer's runners is passed over (see :meth:`claim_next`).
PostgreSQL claimers first take a transaction-scoped advisory lock, so that each claim
counts running jobs with every earlier claim committed (under READ COMMITTED the
``UPDATE`` reads a snapshot taken after the lock); ``FOR UPDATE SKIP LOCKED`` passes
over rows other writers hold. SQLite serialises writers with its database write lock,
which the statement takes before it reads. The outer ``WHERE`` repeats the "pending
and lease free" test, so a row whose lease was taken meanwhile is never claimed twice.

**Reuse.** Identical requests share one cache key, and ``export_reuse`` holds one slot
per key: the job they reuse. A new export takes the slot with one upsert
(``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` the old slot is no longer live), and its
job row is inserted in the same transaction; concurrent identical creates, in threads
or processes, conflict on the key, so exactly one of them inserts and the others read
its job (:meth:`create_or_reuse`). Failing or expiring a job frees its slot.

SQLite runs in WAL mode with a busy timeout (set on every new connection), so readers
do not block the writer and concurrent writers wait instead of failing. Datetimes are
stored in UTC and always come back timezone-aware.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import alembic.command
import alembic.config
import alembic.script
import alembic.util
from sqlalchemy import (
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from mpo_realtime.domain.errors import StoreError
from mpo_realtime.domain.jobs import Client, Job, JobStatus
from mpo_realtime.exports.jobqueries import (
    PENDING,
    claim_statement,
    reused_job,
    slot_live,
    take_slot,
)
from mpo_realtime.exports.jobtables import (
    CLIENTS,
    JOBS,
    METADATA,
    REUSE,
    client_row,
    client_values,
    job_row,
    job_values,
)

__all__ = ["CLIENTS", "JOBS", "METADATA", "REUSE", "SqlJobStore"]

#: How long an SQLite writer waits for the write lock before giving up.
_SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Key of the PostgreSQL advisory lock that serialises concurrent ``migrate()`` calls.
_MIGRATION_LOCK_KEY = 0x6D706F5F6A6F6273  # "mpo_jobs"
#: Key of the PostgreSQL advisory lock that serialises claims (see the module docstring).
_CLAIM_LOCK_KEY = 0x6D706F5F636C6D73  # "mpo_clms"
#: Attempts of :meth:`SqlJobStore.create_or_reuse` when the slot's job vanishes under it.
_REUSE_ATTEMPTS = 5
_CONNECT_TIMEOUT_SECONDS = 10
_MIGRATIONS = Path(__file__).with_name("migrations")


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

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for parts that need a connection of their own
        (:class:`~mpo_realtime.exports.leader.ClusterLeader`)."""
        return self._engine

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
            connection.execute(insert(JOBS).values(job_values(job)))

    def get_job(self, job_id: str) -> Job | None:
        with self._begin("read a job") as connection:
            row = connection.execute(select(JOBS).where(JOBS.c.id == job_id)).mappings().first()
        return None if row is None else job_row(row)

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, Job]:
        """The jobs of ``job_ids`` that exist, by id: one query for all of them.

        Its error is the one :meth:`get_job` gives: the batch of polls it answers (see
        ``api/batcher.py``) fails as a single poll's read would.
        """
        if len(job_ids) == 1:  # a lone poll: the plain query, no list to expand
            job = self.get_job(job_ids[0])
            return {} if job is None else {job.id: job}
        if not job_ids:
            return {}
        query = select(JOBS).where(JOBS.c.id.in_(list(dict.fromkeys(job_ids))))
        with self._begin("read a job") as connection:
            rows = connection.execute(query).mappings().all()
        return {job.id: job for job in map(job_row, rows)}

    def find_reusable(
        self, cache_key: str, *, now: datetime, fresh_after: datetime | None = None
    ) -> Job | None:
        """The Pending or Done job that requests with ``cache_key`` reuse now, if any.

        Only a job made by :meth:`create_or_reuse` holds a key's slot. It is reused while
        its ``reusable_until`` (if set) and ``expires_at`` (if set) are in the future and,
        with ``fresh_after``, only if it was created after that moment.
        """
        query = reused_job(cache_key).where(*slot_live(now, fresh_after))
        with self._begin("look up a reusable job") as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else job_row(row)

    def create_or_reuse(
        self,
        job: Job,
        *,
        now: datetime,
        fresh_after: datetime | None = None,
        before_commit: Callable[[], None] | None = None,
    ) -> tuple[Job, bool]:
        """Insert ``job`` unless its cache key's slot holds a job to reuse; ``(job, reused)``.

        Atomic across threads and processes: of concurrent calls with one cache key, one
        inserts its job and the others return that job. A slot is replaced when its job
        may no longer be reused (see :meth:`find_reusable`: ``now`` and ``fresh_after``
        decide). ``before_commit`` runs only when ``job`` is about to be inserted, inside
        the transaction: whatever it raises undoes the insert (an export quota).
        """
        take = take_slot(job, now=now, fresh_after=fresh_after, dialect=self._engine.dialect.name)
        for _ in range(_REUSE_ATTEMPTS):
            with self._begin("create a job") as connection:
                # First statement of the transaction: SQLite takes its write lock here,
                # PostgreSQL waits here for a concurrent holder of the key to finish.
                if connection.execute(take).scalar_one_or_none() == job.id:
                    connection.execute(insert(JOBS).values(job_values(job)))
                    if before_commit is not None:
                        before_commit()
                    return job, False
                row = connection.execute(reused_job(job.cache_key)).mappings().first()
            if row is not None:
                return job_row(row), True
            # The slot's job failed between the two statements: take the slot again.
        raise StoreError("job store could not settle the reuse of an export; retry")

    def claim_next(
        self,
        *,
        owner: str,
        now: datetime,
        lease: timedelta,
        max_running: int | None = None,
    ) -> Job | None:
        """Lease the next Pending job whose lease is free to ``owner``, or ``None``.

        Fair between clients: the job of the client with the fewest running jobs comes
        first, then that of the client whose last job started longest ago (or never),
        then the oldest. With ``max_running``, a client that already holds that many
        jobs leased to ``owner`` (one runner process) is passed over, so that no client
        can occupy every runner of a process. The claim sets the lease until
        ``now + lease``, ``started_at`` on the first claim and counts the attempt. See
        the module docstring for why two claimers never get the same job while its
        lease holds.
        """
        claim = claim_statement(owner=owner, now=now, lease=lease, max_running=max_running)
        with self._begin("claim a job") as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK_KEY}
                )
            row = connection.execute(claim).mappings().first()
        return None if row is None else job_row(row)

    def renew_lease(self, job_id: str, *, owner: str, until: datetime) -> bool:
        """Extend ``owner``'s lease on a Pending job; ``False`` if it is not theirs."""
        statement = (
            update(JOBS)
            .where(JOBS.c.id == job_id, PENDING, JOBS.c.lease_owner == owner)
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
            .where(JOBS.c.id == job_id, PENDING, JOBS.c.lease_owner == owner)
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
        slot = update(REUSE).where(REUSE.c.job_id == job_id).values(expires_at=expires_at)
        with self._begin("finish a job") as connection:
            if connection.execute(statement).rowcount != 1:
                return False
            connection.execute(slot)
            return True

    def fail_job(self, job_id: str, *, owner: str | None, now: datetime, message: str) -> bool:
        """Mark a Pending job Failure with ``message``.

        With an ``owner``, only while the job is leased to that owner (as for
        :meth:`finish_job`: nobody else has claimed it since); without one (an operator,
        or a job that can never run), whoever holds it.
        """
        conditions = [JOBS.c.id == job_id, PENDING]
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
            if connection.execute(statement).rowcount != 1:
                return False
            # A failed export is never reused: identical requests make a new one.
            connection.execute(delete(REUSE).where(REUSE.c.job_id == job_id))
            return True

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
            expired = [row["id"] for row in rows]
            if expired:
                connection.execute(delete(REUSE).where(REUSE.c.job_id.in_(expired)))
        return sorted((job_row(row) for row in rows), key=lambda job: (job.created_at, job.id))

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
            connection.execute(insert(CLIENTS).values(client_values(client)))

    def get_client(self, client_id: str) -> Client | None:
        query = select(CLIENTS).where(CLIENTS.c.client_id == client_id)
        with self._begin("read a client") as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else client_row(row)

    def list_clients(self) -> list[Client]:
        """Every client, revoked ones included, oldest first."""
        query = select(CLIENTS).order_by(CLIENTS.c.created_at, CLIENTS.c.client_id)
        with self._begin("list clients") as connection:
            rows = connection.execute(query).mappings().all()
        return [client_row(row) for row in rows]

    def revoke_client(self, client_id: str, *, now: datetime) -> bool:
        """Revoke an active client; ``False`` if unknown or already revoked."""
        statement = (
            update(CLIENTS)
            .where(CLIENTS.c.client_id == client_id, CLIENTS.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        with self._begin("revoke a client") as connection:
            return connection.execute(statement).rowcount == 1
