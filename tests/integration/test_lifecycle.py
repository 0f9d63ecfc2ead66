"""Starting and stopping ``mpo serve`` for real: a busy port, SIGTERM and Ctrl+C.

A stop by signal must answer what is in flight, keep every acknowledged event, close the
stores (DuckDB checkpointed: no write-ahead log left to replay), write the last log
lines and exit 0, without a traceback.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from mpo_realtime.domain.jobs import JobStatus
from mpo_realtime.exports.jobstore import SqlJobStore
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from mpo_realtime.store.simulator import Simulator, World
from tests.integration.server import Server, local_client

pytestmark = pytest.mark.slow
STATS = "/preview/marketing-solutions/marketplace-performance-outcomes/stats"


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Every server a test starts is stopped by its PID, whatever happens."""
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


def test_serve_on_a_busy_port_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "mpo_realtime", "serve", "--demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,  # a hang fails here
            cwd=tmp_path,
            check=False,
        )
    assert done.returncode == 1
    assert done.stdout == ""  # no quick start for a server that is not ours
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: port {port} on 127.0.0.1 is already in use")
    assert "make run PORT=" in line and "--port" in line and "MPO_PORT=" in line
    assert not (tmp_path / "var").exists(), "nothing may start before the port is ours"


def _events(simulator: Simulator, count: int) -> tuple[bytes, int]:
    events = simulator.events(datetime.now(UTC) - timedelta(minutes=1), count)
    return orjson.dumps(events), sum(int(e["displays"]) for e in events)  # type: ignore[call-overload]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_ingest_exits_0_and_keeps_every_acknowledged_event(
    tmp_path: Path, servers: list[Server], signum: signal.Signals
) -> None:
    world = World.generate(seed=3)
    client = local_client(
        tmp_path, ",".join(str(a.advertiser_id) for a in world.advertisers), ingest=True
    )
    server = Server(tmp_path, status_interval_seconds="0.2").start()
    servers.append(server)
    headers = server.token(client)
    simulator = Simulator(world, seed=3)
    acked: list[int] = []
    unanswered: list[int] = []
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=server.base, timeout=30) as http:
            while not stop.is_set():
                body, displays = _events(simulator, 50)
                try:
                    answer = http.post("/ingest/v1/events", content=body, headers=headers)
                except httpx.HTTPError:
                    unanswered.append(displays)  # stored or not: nobody was told
                    return
                if answer.status_code == 200:
                    acked.append(displays)
                else:
                    return

    senders = [threading.Thread(target=send) for _ in range(3)]
    for thread in senders:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acked) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(acked) >= 30, server.output[-2000:]
    server.signal(signum)
    status = server.wait(timeout=60)
    stop.set()
    for thread in senders:
        thread.join(timeout=30)

    output = server.output
    assert status == 0, output[-3000:]
    assert "Traceback" not in output and '"level":"ERROR"' not in output, output[-3000:]
    # the buffered log lines were written to the end
    assert "stopped: requests answered, stores closed" in output.splitlines()[-1]
    # DuckDB was closed and checkpointed: nothing to replay at the next open
    assert not (tmp_path / "events.duckdb.wal").exists()
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    try:
        stored = store.totals()["displays"]
    finally:
        store.close()
    assert sum(acked) <= stored <= sum(acked) + sum(unanswered)


def test_ctrl_c_during_start_up_exits_0_without_a_traceback(
    tmp_path: Path, servers: list[Server]
) -> None:
    # a day of demo history: the back-fill is still running when the signal comes
    server = Server(tmp_path, "--demo", "--demo-hours", "24").launch()
    servers.append(server)
    deadline = time.monotonic() + 60
    while not (tmp_path / "events.duckdb").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    server.signal(signal.SIGINT)
    assert server.wait(timeout=60) == 0, server.output[-3000:]
    assert "Traceback" not in server.output
    assert "stopped (SIGINT) during start-up" in server.output
    assert "listening on" not in server.output
    # the store it had opened was closed properly and opens again
    DuckDBEventStore(tmp_path / "events.duckdb").close()


def test_sigterm_releases_a_running_export_to_the_next_runner(
    tmp_path: Path, servers: list[Server]
) -> None:
    world = World.generate(seed=5, products=20_000)
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    start = end - timedelta(minutes=30)
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    try:
        for batch in Simulator(world, seed=5, displays_per_minute=30_000).backfill(start, end):
            store.append(batch)
    finally:
        store.close()
    advertisers = sorted(str(a.advertiser_id) for a in world.advertisers)
    client = local_client(tmp_path, ",".join(advertisers))
    # no grace: a job still running when the signal comes is released at once
    server = Server(tmp_path, shutdown_grace_seconds="0", runner_concurrency="1").start()
    servers.append(server)
    headers = server.token(client)
    body = {
        "data": {
            "attributes": {
                "advertiserIds": advertisers,
                "dimensions": ["advertiserId", "campaignId", "productId"],
                "startDate": start.isoformat(),
                "endDate": end.isoformat(),
            }
        }
    }
    created = httpx.post(
        f"{server.base}{STATS}/realtime-reports/export", json=body, headers=headers, timeout=30
    )
    export_id = created.json()["exportId"]
    partial_dir = tmp_path / "exports" / ".partial"
    deadline = time.monotonic() + 60
    while not any(partial_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert any(partial_dir.iterdir()), "the export never started"
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=60) == 0, server.output[-3000:]
    assert "Traceback" not in server.output

    jobs = SqlJobStore(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    try:
        job = jobs.get_job(export_id)
        assert job is not None
        if job.status is JobStatus.PENDING:
            # released: its lease ends now, not a lease period later, and no file is left
            assert "released for another runner" in server.output
            assert job.lease_expires_at is not None
            assert job.lease_expires_at <= datetime.now(UTC)
            assert not any(partial_dir.iterdir())
            assert jobs.claim_next(owner="next", now=datetime.now(UTC), lease=timedelta(seconds=60))
        else:
            # it finished in the moment the signal took to arrive: Done, never Failure
            assert job.status is JobStatus.DONE, job.message
    finally:
        jobs.close()
