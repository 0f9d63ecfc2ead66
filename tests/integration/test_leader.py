"""The sweeper's leadership on PostgreSQL: one process at a time, taken over when it dies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from mpo_realtime.exports.jobstore import SqlJobStore
from mpo_realtime.exports.leader import SWEEPER_LOCK_KEY, ClusterLeader
from tests.conftest import fresh_postgres_database


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_admin_url) as url:
        yield url


@pytest.fixture
def stores(postgres_url: str) -> Iterator[list[SqlJobStore]]:
    """Two job stores on one database: as two worker processes have."""
    opened = [SqlJobStore(postgres_url) for _ in range(2)]
    yield opened
    for store in opened:
        store.close()


@pytest.fixture
def leaders(stores: list[SqlJobStore]) -> Iterator[list[ClusterLeader]]:
    """A leader on each store; their lock connections closed after the test, whatever
    it did."""
    made = [ClusterLeader(store) for store in stores]
    yield made
    for leader in made:
        leader.release()


def test_leader_one_process_at_a_time(leaders: list[ClusterLeader]) -> None:
    first, second = leaders

    assert first.lead() is True
    assert second.lead() is False
    assert first.lead() is True  # still the leader: it holds the lock

    first.release()
    assert second.lead() is True
    assert first.lead() is False
    second.release()


def test_leader_taken_over_when_the_leaders_session_dies(
    leaders: list[ClusterLeader], postgres_url: str
) -> None:
    """A leader process killed by SIGKILL leaves its session, which PostgreSQL ends."""
    first, second = leaders
    assert first.lead() is True
    admin = create_engine(postgres_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            ended = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND ((classid::bigint << 32) | objid::bigint) = :key"
                ),
                {"key": SWEEPER_LOCK_KEY},
            ).all()
    finally:
        admin.dispose()
    assert ended == [(True,)]

    assert second.lead() is True
    assert first.lead() is False  # notices its lost session and cannot take it back
    second.release()


def test_leader_on_sqlite_is_always_this_process() -> None:
    store = SqlJobStore("sqlite:///:memory:")
    try:
        assert ClusterLeader(store).lead() is True
        assert ClusterLeader(store).lead() is True
    finally:
        store.close()
