"""Shared pytest fixtures."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest
from hypothesis import Phase, settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from mpo_realtime.domain.jobs import Job
from mpo_realtime.exports.jobstore import SqlJobStore
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from tests import services
from tests.services import Service, Unavailable

# `make mutate` (mutmut) runs the tests once per mutant: every property test then draws
# the same examples for every mutant, so that a mutant's verdict never depends on luck,
# and keeps no example database between mutants. Nor does it shrink a failing example:
# the first one decides the verdict, and shrinking (minutes at the lowest priority) ran
# killed mutants into mutmut's wall-clock timeout.
if "MUTANT_UNDER_TEST" in os.environ:
    settings.register_profile(
        "mutmut",
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    settings.load_profile("mutmut")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under mutmut, run a mutant's tests fastest first, stopping at the first failure.

    mutmut's fork server passes a mutant's tests in no particular order (only its plain
    fork runner sorts them): a mutant that a 0.1 s test kills could first run the 25 s
    property test. The durations are those of mutmut's own statistics run.
    """
    if "MUTANT_UNDER_TEST" not in os.environ:
        return
    stats = Path("mutmut-stats.json")  # mutmut runs the tests in mutants/
    if not stats.is_file():
        return
    durations = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))


@pytest.fixture
def server_in_kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone is not UTC: nothing may depend on it."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# ---------------------------------------------------------------------------------------
# Services: PostgreSQL, Redis and ClickHouse (tests/services.py). Each is the server at its
# standard address when it answers (or at MPO_TEST_POSTGRES_URL, MPO_TEST_REDIS_URL,
# MPO_TEST_CLICKHOUSE_URL with MPO_TEST_CLICKHOUSE_HTTP_URL), else a throwaway one started
# for the session, else its tests are skipped with the reason in the summary. With
# CI=true such a skip is a failure: CI must run every test.
# ---------------------------------------------------------------------------------------


@pytest.fixture
def quiet_store(tmp_path: Path) -> Iterator[DuckDBEventStore]:
    """An event store in a file of its own, whose maintenance runs only when a test asks
    (``compact``, ``maintain``)."""
    opened = DuckDBEventStore(tmp_path / "events.duckdb", maintenance_interval=1e9)
    try:
        yield opened
    finally:
        opened.close()


def service_unavailable(reason: str) -> NoReturn:
    """Skip the test for a missing service; fail it on CI, where every service must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: service tests must run, not be skipped)")
    pytest.skip(reason)


#: what the session used, for the summary: "PostgreSQL: throwaway server at ..."
_USED: list[str] = []


def _service(start: Callable[[], Service]) -> Iterator[Service]:
    try:
        service = start()
    except Unavailable as exc:
        _USED.append(f"unavailable: {exc}")
        service_unavailable(str(exc))
    kind = "throwaway server" if service.throwaway else "running server"
    _USED.append(f"{service.name}: {kind} at {service.url}")
    try:
        yield service
    finally:
        service.stop()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    # The order of this run (pytest-randomly), so that a failure that depends on the
    # order can be replayed with pytest --randomly-seed=N (-q hides the header that says it).
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int) and not getattr(config.option, "randomly_dont_reorganize", False):
        terminalreporter.write_sep("-", "order")
        terminalreporter.write_line(f"random order: replay it with pytest --randomly-seed={seed}")
    if _USED:
        terminalreporter.write_sep("-", "services")
        for line in _USED:
            terminalreporter.write_line(line)
    # How many examples of the independent oracle compared a non-empty file (with or
    # without -s): a property test that mostly compares empty files proves little.
    oracle = sys.modules.get("tests.acceptance.test_oracle")
    lines = oracle.summary_lines() if oracle is not None else []
    if lines:
        terminalreporter.write_sep("-", "oracle")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def postgres_service() -> Iterator[Service]:
    url = os.environ.get("MPO_TEST_POSTGRES_URL", services.DEFAULT_POSTGRES_URL)
    yield from _service(lambda: services.postgres(url))


@pytest.fixture(scope="session")
def redis_service() -> Iterator[Service]:
    url = os.environ.get("MPO_TEST_REDIS_URL", services.DEFAULT_REDIS_URL)
    yield from _service(lambda: services.redis_server(url))


@pytest.fixture(scope="session")
def clickhouse_service() -> Iterator[Service]:
    url = os.environ.get("MPO_TEST_CLICKHOUSE_URL", services.DEFAULT_CLICKHOUSE_URL)
    http_url = os.environ.get("MPO_TEST_CLICKHOUSE_HTTP_URL", services.DEFAULT_CLICKHOUSE_HTTP_URL)
    yield from _service(lambda: services.clickhouse(url, http_url))


@pytest.fixture(scope="session")
def redis_url(redis_service: Service) -> str:
    """``redis://host:port/db`` of a Redis server; use a unique key namespace per test."""
    return redis_service.url


# ---------------------------------------------------------------------------------------
# Job store fixtures: database URLs (SQLite and PostgreSQL), a migrated store, jobs.
# Each PostgreSQL test gets a database of its own, created and dropped around it.
# ---------------------------------------------------------------------------------------

#: ``created_at`` of the first job a ``job_factory`` makes; each next one is a second later.
JOB_EPOCH = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def postgres_admin_url(postgres_service: Service) -> str:
    """URL of a PostgreSQL database allowed to create and drop other databases."""
    return postgres_service.url


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


class ManualClock:
    """Epoch seconds that move only when a test moves them: the rate limiter's clock.

    Budgets then count in one window however long a test takes (no waiting for a new
    minute, no extra answer when requests straddle a window's end), and every reset
    time and ``Retry-After`` is a fixed number the test can compute.
    """

    def __init__(self, start: float | None = None) -> None:
        # by default half a minute into the current minute: never on a window's edge
        self.now = float(int(time.time()) // 60 * 60 + 30) if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# ---------------------------------------------------------------------------------------
# ClickHouse databases: one name prefix per test run, one database per test (or example),
# dropped after, so runs and tests never see each other's data.
# ---------------------------------------------------------------------------------------

_CLICKHOUSE_RUN = f"mpo_test_{secrets.token_hex(4)}"
_CLICKHOUSE_SEQUENCE = itertools.count()


@contextlib.contextmanager
def clickhouse_database(service: Service, **options: float) -> Iterator[str]:
    """The ``clickhouse://`` URL of a new database on ``service`` (created by the store),
    with the store's ``options`` (``flush_interval``, ``lease``); dropped after."""
    name = f"{_CLICKHOUSE_RUN}_{next(_CLICKHOUSE_SEQUENCE)}"
    base = service.url.rsplit("/", 1)[0]
    query = "&".join(f"{key}={value}" for key, value in options.items())
    try:
        yield f"{base}/{name}" + (f"?{query}" if query else "")
    finally:
        # a busy server may take a while to drop a database of many parts
        services.clickhouse_query(service, f"DROP DATABASE IF EXISTS `{name}`", timeout=120)


@pytest.fixture
def clickhouse_url(clickhouse_service: Service) -> Iterator[str]:
    """URL of an empty ClickHouse database of this test's own, quick to flush."""
    with clickhouse_database(clickhouse_service, flush_interval=0.01) as url:
        yield url
