"""The service fixtures: a running server is used, a missing one is started, else skipped.

The throwaway tests point the fixtures' functions at loopback ports where nothing listens,
as on a machine without the services: each must still hand out a working server, and
leave nothing behind once stopped.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from tests import services
from tests.conftest import service_unavailable
from tests.services import Service, Unavailable, clickhouse_query, free_port


def _throwaway(start: Callable[[], Service]) -> Service:
    try:
        return start()
    except Unavailable as exc:
        service_unavailable(str(exc))


def _assert_stopped(service: Service) -> None:
    assert service.process is not None and service.directory is not None
    pid = service.process.pid
    service.stop()
    assert service.process.returncode is not None, f"process {pid} still runs"
    assert not service.directory.exists()


def test_postgres_throwaway_where_nothing_listens() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    service = _throwaway(lambda: services.postgres(url))
    try:
        assert service.throwaway
        parsed = make_url(service.url)
        assert (parsed.host, parsed.username, parsed.database) == ("127.0.0.1", "postgres", "test")
        with psycopg.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
        ) as connection:
            connection.execute("CREATE TABLE t (x int)")
            connection.execute("INSERT INTO t VALUES (41), (1)")
            assert connection.execute("SELECT sum(x) FROM t").fetchone() == (42,)
    finally:
        _assert_stopped(service)


def test_redis_throwaway_where_nothing_listens() -> None:
    service = _throwaway(lambda: services.redis_server(f"redis://127.0.0.1:{free_port()}/0"))
    try:
        assert service.throwaway
        client = redis.Redis.from_url(service.url)
        try:
            assert client.incrby("mpo-test-counter", 42) == 42
        finally:
            client.close()
    finally:
        _assert_stopped(service)


def test_clickhouse_throwaway_where_nothing_listens() -> None:
    service = _throwaway(
        lambda: services.clickhouse(
            f"clickhouse://127.0.0.1:{free_port()}/mpo_test",
            f"http://127.0.0.1:{free_port()}",
        )
    )
    try:
        assert service.throwaway and service.url.endswith("/mpo_test")
        assert "mpo_test" in clickhouse_query(service, "SHOW DATABASES").split()
        answer = clickhouse_query(service, "SELECT toDecimal128(0.1, 9) + toDecimal128(0.2, 9)")
        assert answer.strip() == "0.300000000"
    finally:
        _assert_stopped(service)


def test_clickhouse_fixture_answers(clickhouse_service: Service) -> None:
    """The session's ClickHouse (here: always a throwaway one) pings and runs SQL."""
    assert clickhouse_service.http_url is not None
    with urllib.request.urlopen(f"{clickhouse_service.http_url}/ping", timeout=30) as ping:
        assert ping.read() == b"Ok.\n"
    major = clickhouse_query(clickhouse_service, "SELECT version()").strip().split(".")[0]
    assert int(major) >= 18


def test_postgres_and_redis_fixtures_answer(postgres_admin_url: str, redis_url: str) -> None:
    parsed = make_url(postgres_admin_url)
    with psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database
    ) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping()
    finally:
        client.close()


def test_a_missing_server_is_unavailable_with_the_package_to_install() -> None:
    with pytest.raises(Unavailable, match="apt-get install no-such-package"):
        services._binary("no-such-server-binary", package="no-such-package", name="Nothing")


@pytest.mark.parametrize(("ci", "outcome"), [("", "skip"), ("true", "fail")])
def test_an_unavailable_service_skips_except_on_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    monkeypatch.setenv("CI", ci)
    expected = pytest.skip.Exception if outcome == "skip" else pytest.fail.Exception
    with pytest.raises(expected, match="no server here"):
        service_unavailable("no server here")
