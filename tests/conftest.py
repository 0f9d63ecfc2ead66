"""Shared pytest fixtures."""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from mpo_realtime.domain.jobs import Job
from mpo_realtime.exports.jobstore import SqlJobStore

# ---------------------------------------------------------------------------------------
# Job store fixtures: database URLs (SQLite and PostgreSQL), a migrated store, jobs.
#
# PostgreSQL must be reachable (CI provides it): its parameters fail, never skip, when it
# is not. Set MPO_TEST_POSTGRES_URL to point at another server; each test gets a database
# of its own, created from that URL's and dropped afterwards.
# ---------------------------------------------------------------------------------------

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: ``created_at`` of the first job a ``job_factory`` makes; each next one is a second later.
JOB_EPOCH = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """URL of a PostgreSQL database allowed to create and drop other databases."""
    url = os.environ.get("MPO_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(select(1))
    except SQLAlchemyError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {url} (set MPO_TEST_POSTGRES_URL): {exc}")
    finally:
        engine.dispose()
    return url


@contextlib.contextmanager
def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database next to ``admin_url``'s; dropped (connections and all) after."""
    name = f"mpo_test_{secrets.token_hex(6)}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with engine.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def job_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty job store database, once per backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    with fresh_postgres_database(admin_url) as url:
        yield url


@pytest.fixture
def job_store(job_store_url: str) -> Iterator[SqlJobStore]:
    """A migrated, empty job store on each backend."""
    store = SqlJobStore(job_store_url)
    store.migrate()
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def job_factory() -> Callable[..., Job]:
    """``make(**overrides) -> Job``: a Pending job with fresh ids, one second newer each."""
    sequence = itertools.count()

    def make(**overrides: Any) -> Job:
        values: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "client_id": "client-a",
            "advertiser_ids": (101, 102),
            "cache_key": uuid.uuid4().hex,
            "spec": {"dimensions": ["advertiserId"], "metrics": ["clicks"], "zone": "UTC"},
            "file_format": "csv",
            "created_at": JOB_EPOCH + timedelta(seconds=next(sequence)),
        }
        values.update(overrides)
        return Job(**values)

    return make


# --------------------------------------------------------------------- end job store fixtures


@pytest.fixture
def steady_minute() -> None:
    """Start clear of a minute boundary, so per-minute budgets count in one window.

    ``limits``' sliding-window counter weighs the previous minute just under 1 right
    after the boundary, and ``floor`` then lets one more request through: a budget test
    whose requests straddle the boundary would see an extra answer.
    """
    into_minute = time.time() % 60
    if into_minute > 50:
        time.sleep(60.5 - into_minute)
