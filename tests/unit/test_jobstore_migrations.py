"""The job store's Alembic migrations, on SQLite and PostgreSQL: they build the schema
the tables describe, and an upgrade from 0001 keeps existing clients and reuse going."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import alembic.command
import alembic.config
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, insert
from sqlalchemy.pool import NullPool

from mpo_realtime.domain.jobs import Job, JobStatus, Role
from mpo_realtime.exports import jobstore
from mpo_realtime.exports.jobstore import JOBS, METADATA, SqlJobStore
from mpo_realtime.exports.jobtables import job_values

JobFactory = Callable[..., Job]
NOW = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
MIGRATIONS = Path(jobstore.__file__).with_name("migrations")


def _alembic(url: str, command: str, revision: str) -> None:
    """Run an Alembic command on ``url`` the way ``SqlJobStore.migrate`` does."""
    config = alembic.config.Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            getattr(alembic.command, command)(config, revision)
    finally:
        engine.dispose()


def test_migrations_build_the_schema_the_tables_describe(job_store_url: str) -> None:
    store = SqlJobStore(job_store_url)
    store.migrate()
    store.close()
    engine = create_engine(job_store_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": False, "compare_server_default": False}
            )
            differences = compare_metadata(context, METADATA)
    finally:
        engine.dispose()

    assert differences == []


def test_migration_0002_keeps_clients_and_the_newest_reusable_job_of_each_key(
    job_store_url: str, job_factory: JobFactory
) -> None:
    _alembic(job_store_url, "upgrade", "0001")
    old_done = job_factory(
        cache_key="k", status=JobStatus.DONE, expires_at=NOW + timedelta(hours=1)
    )
    newest = job_factory(cache_key="k", status=JobStatus.DONE, expires_at=NOW + timedelta(hours=2))
    failed = job_factory(cache_key="k", status=JobStatus.FAILURE)
    pending = job_factory(cache_key="p")
    engine = create_engine(job_store_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            for job in (old_done, newest, failed, pending):
                connection.execute(insert(JOBS).values(job_values(job)))
            connection.exec_driver_sql(
                "INSERT INTO api_clients (client_id, name, secret_hash, advertiser_ids, roles,"
                " created_at) VALUES ('c1', 'old', 'h', '[321]', '[\"ingest\"]',"
                " '2026-03-01 00:00:00')"
            )
    finally:
        engine.dispose()

    store = SqlJobStore(job_store_url)
    try:
        store.migrate()
        client = store.get_client("c1")
        assert client is not None
        assert (client.roles, client.ingest_any_advertiser) == (frozenset({Role.INGEST}), False)
        assert store.find_reusable("k", now=NOW) == newest
        assert store.find_reusable("p", now=NOW) == pending
        assert store.at_head()
    finally:
        store.close()


def test_migration_0002_downgrades_cleanly(job_store_url: str) -> None:
    store = SqlJobStore(job_store_url)
    store.migrate()
    store.close()

    _alembic(job_store_url, "downgrade", "0001")
    _alembic(job_store_url, "upgrade", "head")

    store = SqlJobStore(job_store_url)
    try:
        assert store.at_head()
    finally:
        store.close()
