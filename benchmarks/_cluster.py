"""The scale-out deployment on this machine, for benchmarks: ClickHouse, PostgreSQL, Redis,
API processes (``mpo serve --no-runner``) and workers (``mpo worker``).

Every run has data of its own: a new ClickHouse database, a new PostgreSQL database and a
Redis key prefix of its own (deleted, dropped and cleared at the end), so runs never see
each other's data. ClickHouse is ``MPO_BENCH_CLICKHOUSE_URL`` when set (a running server),
else a throwaway ``clickhouse-server`` from ``tests/services.py``; PostgreSQL and Redis are
the ones at their standard addresses, else throwaway ones. Every process started here is
stopped by its PID when the ``with`` block ends, also on error.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from clickhouse_driver import Client
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from _harness import MPO, Server, create_client, spawn, start_server, stop_process
from mpo_realtime.store.clickhouse_store import parse_url

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import services  # noqa: E402

__all__ = ["Cluster", "running_cluster"]


@dataclass
class Cluster:
    """A running scale-out deployment: its processes and the URLs of its stores."""

    root: Path
    env: dict[str, str]
    event_store_url: str
    job_store_url: str
    apis: list[Server] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: the throwaway ClickHouse server's PID (None for one given by MPO_BENCH_CLICKHOUSE_URL)
    clickhouse_pid: int | None = None

    @property
    def urls(self) -> list[str]:
        return [api.url for api in self.apis]

    @property
    def pids(self) -> dict[str, list[int]]:
        return {
            "api": [api.pid for api in self.apis],
            "worker": [w.pid for w in self.workers],
        }

    def create_client(
        self, name: str, advertisers: Sequence[int], *, ingest: bool = False
    ) -> dict[str, Any]:
        """``mpo clients create`` into the shared job store."""
        admin = self.root / "admin"
        admin.mkdir(exist_ok=True)
        return create_client(admin, name, advertisers, ingest=ingest, env=self.env)


def _clickhouse_client(url: str) -> Client:
    driver_url, _, _ = parse_url(url)
    return Client.from_url(driver_url)


def _wait_worker(process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mpo worker exited: {log.read_text(errors='replace')[-2000:]}")
        if "export runners and the sweeper" in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"mpo worker not ready: {log.read_text(errors='replace')[-2000:]}")


@contextlib.contextmanager
def running_cluster(
    root: Path,
    *,
    apis: int = 2,
    workers: int = 2,
    env: dict[str, str] | None = None,
    before_start: Any = None,
) -> Iterator[Cluster]:
    """Stores of this run's own, then ``apis`` API processes and ``workers`` workers.

    ``before_start(event_store_url)`` runs once the databases exist and before any process
    starts (to fill the event store, say). ``env`` adds settings for every process.
    """
    run = secrets.token_hex(4)
    with contextlib.ExitStack() as stack:
        # ClickHouse: a database of this run's own, on the given server or a throwaway one
        clickhouse_base = os.environ.get("MPO_BENCH_CLICKHOUSE_URL")
        clickhouse_pid = None
        if clickhouse_base is None:
            # port 1 answers nothing: always a throwaway server, never a stranger's
            service = services.clickhouse("clickhouse://127.0.0.1:1/default", "http://127.0.0.1:1")
            stack.callback(service.stop)
            clickhouse_base = service.url
            clickhouse_pid = service.process.pid if service.process else None
        event_store_url = clickhouse_base.rsplit("/", 1)[0] + f"/mpo_bench_{run}"
        database = event_store_url.rsplit("/", 1)[1]

        def drop_clickhouse() -> None:
            client = _clickhouse_client(event_store_url)
            try:
                client.execute(f"DROP DATABASE IF EXISTS `{database}`")
            finally:
                client.disconnect()

        stack.callback(drop_clickhouse)

        # PostgreSQL: a new database next to the standard one's
        postgres = services.postgres()
        stack.callback(postgres.stop)
        admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        stack.callback(admin.dispose)
        pg_name = f"mpo_bench_{run}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{pg_name}"'))

        def drop_postgres() -> None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))

        stack.callback(drop_postgres)
        job_store_url = (
            make_url(postgres.url).set(database=pg_name).render_as_string(hide_password=False)
        )

        # Redis: a key prefix of this run's own, cleared at the end
        redis_service = services.redis_server()
        stack.callback(redis_service.stop)
        namespace = f"mpo-bench-{run}"

        def clear_redis() -> None:
            client = redis.Redis.from_url(redis_service.url)
            try:
                keys = list(client.scan_iter(f"{namespace}:*", count=1000))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()

        stack.callback(clear_redis)

        process_env = {k: v for k, v in os.environ.items() if not k.startswith("MPO_")}
        process_env.update(
            {
                "MPO_EVENT_STORE_URL": event_store_url,
                "MPO_JOB_STORE_URL": job_store_url,
                "MPO_RATE_LIMIT_STORAGE_URL": redis_service.url,
                "MPO_RATE_LIMIT_NAMESPACE": namespace,
                "MPO_SIGNING_KEY": secrets.token_hex(32),
                "MPO_EXPORT_DIR": str(root / "exports"),
                **(env or {}),
            }
        )
        cluster = Cluster(root, process_env, event_store_url, job_store_url)
        cluster.clickhouse_pid = clickhouse_pid
        if before_start is not None:
            before_start(event_store_url)

        for index in range(apis):
            data_dir = root / f"api-{index + 1}"
            data_dir.mkdir(parents=True, exist_ok=True)
            server = start_server(data_dir, args=["--no-runner"], base_env=process_env)
            stack.callback(stop_process, server.process, 60.0)
            cluster.apis.append(server)
        for index in range(workers):
            data_dir = root / f"worker-{index + 1}"
            data_dir.mkdir(parents=True, exist_ok=True)
            log = data_dir / "worker.log"
            process = spawn([MPO, "worker", "--data-dir", str(data_dir)], log, process_env)
            # SIGTERM: running jobs finish or are released, then the worker ends
            stack.callback(stop_process, process, 60.0, signal.SIGTERM)
            cluster.workers.append(process)
            _wait_worker(process, log)
        yield cluster
