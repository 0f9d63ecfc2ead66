"""The scale-out deployment as real processes: two API processes (``mpo serve --no-runner``)
and two workers (``mpo worker``) over PostgreSQL, Redis and ClickHouse, a database of this
run's own on each, and one export directory. Nothing is shared but what the docs say:
each process has its own data directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from mpo_realtime.domain.money import COST_SCALE
from mpo_realtime.store.base import ROLLUP_SCHEMA
from tests.conftest import clickhouse_database, fresh_postgres_database
from tests.integration.server import Server
from tests.services import Service

pytestmark = pytest.mark.slow

STATS = "/preview/marketing-solutions/marketplace-performance-outcomes/stats"
INGEST = "/ingest/v1/events"
LEASE_SECONDS = 3


class Worker:
    """``mpo worker`` as a child process; always stopped by its PID."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "worker.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mpo_realtime", "worker", "--data-dir", str(data_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 60) -> Worker:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited: {self.log.read_text()[-2000:]}")
            if "export runners and the sweeper" in self.log.read_text(errors="replace"):
                return self
            time.sleep(0.1)
        raise AssertionError(f"worker did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


@dataclass
class Cluster:
    env: dict[str, str]
    apis: list[Server]
    workers: list[Worker]
    job_store_url: str
    event_store_url: str
    root: Path

    def client(self, advertisers: str, *extra: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "mpo_realtime", "clients", "create", "test"]
            + ["--advertisers", advertisers, "--json", *extra]
            + ["--data-dir", str(self.root / "admin")],
            capture_output=True,
            text=True,
            timeout=120,
            env=self.env,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = orjson.loads(done.stdout)
        return result

    def job_row(self, job_id: str) -> dict[str, Any]:
        engine = create_engine(self.job_store_url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                row = (
                    connection.execute(
                        text("SELECT * FROM export_jobs WHERE id = :id"), {"id": job_id}
                    )
                    .mappings()
                    .one()
                )
        finally:
            engine.dispose()
        return dict(row)


@pytest.fixture(scope="module")
def cluster(
    postgres_service: Service,
    redis_service: Service,
    clickhouse_service: Service,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("scale-out")
    with (
        fresh_postgres_database(postgres_service.url) as job_store_url,
        clickhouse_database(clickhouse_service, flush_interval=0.05) as event_store_url,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MPO_")}
        env.update(
            {
                "MPO_JOB_STORE_URL": job_store_url,
                "MPO_EVENT_STORE_URL": event_store_url,
                "MPO_RATE_LIMIT_STORAGE_URL": redis_service.url,
                "MPO_RATE_LIMIT_NAMESPACE": f"mpo-test-{uuid.uuid4().hex}",
                "MPO_SIGNING_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
                "MPO_EXPORT_DIR": str(root / "exports"),
                "MPO_LEASE_SECONDS": str(LEASE_SECONDS),
                "MPO_RUNNER_CONCURRENCY": "2",
                "MPO_STATUS_INTERVAL_SECONDS": "0",
                "MPO_LOG_FORMAT": "text",
            }
        )
        apis: list[Server] = []
        workers: list[Worker] = []
        made = Cluster(env, apis, workers, job_store_url, event_store_url, root)
        try:
            for name in ("api-a", "api-b"):
                (root / name).mkdir()
                server = Server(root / name, "--no-runner")
                server.env = env
                apis.append(server.launch())
            workers += [Worker(root / name, env) for name in ("worker-1", "worker-2")]
            for server in apis:
                _wait_health(server)
            for worker in workers:
                worker.wait_ready()
            yield made
        finally:
            for server in apis:
                server.stop()
            for worker in workers:
                worker.stop()


def _wait_health(server: Server, timeout: float = 60) -> None:
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"API exited: {server.output[-2000:]}")
        try:
            if httpx.get(f"{server.base}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"API not ready: {server.output[-2000:]}")


def _event(advertiser: int, minute: datetime, campaign: int, clicks: int) -> dict[str, Any]:
    return {
        "timestamp": minute.isoformat().replace("+00:00", "Z"),
        "advertiserId": str(advertiser),
        "partnerId": "7",
        "campaignId": str(campaign),
        "sellerId": "5",
        "productId": "SKU-1",
        "displays": 2 * clicks,
        "clicks": clicks,
        "cost": 0.125,
    }


def _create(server: Server, headers: dict[str, str], attributes: dict[str, Any]) -> str:
    body = {"data": {"type": "RealTimeProductReportJob", "attributes": attributes}}
    answer = httpx.post(
        f"{server.base}{STATS}/realtime-reports/export", json=body, headers=headers, timeout=30
    )
    assert answer.status_code == 200, answer.text
    export_id: str = answer.json()["exportId"]
    return export_id


def _wait_done(server: Server, headers: dict[str, str], export_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{server.base}{STATS}/report-jobs/{export_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] != "Pending":
            assert answer.json()["status"] == "Done", answer.text
            return
        time.sleep(0.2)
    raise AssertionError(f"export {export_id} still Pending after {timeout} s")


def _download(server: Server, headers: dict[str, str], export_id: str) -> bytes:
    answer = httpx.get(
        f"{server.base}{STATS}/realtime-reports/{export_id}", headers=headers, timeout=120
    )
    assert answer.status_code == 200, answer.text
    return answer.content


def test_scale_out_export_created_on_one_api_is_polled_and_downloaded_on_the_other(
    cluster: Cluster,
) -> None:
    a, b = cluster.apis
    client = cluster.client("401", "--ingest")
    headers = a.token(client)  # signed by A, accepted by B: one MPO_SIGNING_KEY
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    events = [_event(401, minute, campaign, clicks) for campaign, clicks in ((1, 3), (2, 5))]
    stored = httpx.post(f"{a.base}{INGEST}", json=events, headers=headers, timeout=30)
    assert stored.status_code == 200, stored.text

    export_id = _create(
        a, headers, {"advertiserIds": ["401"], "dimensions": ["campaignId"], "lookbackWindow": 60}
    )
    _wait_done(b, headers, export_id, timeout=60)

    assert _download(b, headers, export_id) == (
        b'"campaignId","clicks","displays","cost"\n1,3,6,0.125\n2,5,10,0.125\n'
    )
    row = cluster.job_row(export_id)
    assert row["lease_owner"] is None and row["attempts"] == 1


@pytest.fixture
def steady_minute() -> None:
    """Start clear of a minute boundary, so the per-minute budget counts in one window.

    The API processes count in Redis on the real clock (a manual clock cannot reach
    another process): right after a boundary the sliding window weighs the previous
    minute just under 1 and lets one more request through, so a test whose requests
    straddle it would see an extra answer.
    """
    into_minute = time.time() % 60
    if into_minute > 50:
        time.sleep(60.5 - into_minute)


def test_scale_out_rate_limit_is_shared_by_both_apis(cluster: Cluster, steady_minute: None) -> None:
    client = cluster.client("402", "--requests-per-minute", "10")
    headers = cluster.apis[0].token(client)
    unknown = str(uuid.uuid4())
    answers = [
        httpx.get(f"{cluster.apis[i % 2].base}{STATS}/report-jobs/{unknown}", headers=headers)
        for i in range(16)
    ]
    # export-not-found is a 403 in this API (as in the source document)
    assert [a.status_code for a in answers] == [403] * 10 + [429] * 6, answers[0].text


def test_scale_out_ingest_through_both_apis_loses_and_doubles_nothing(cluster: Cluster) -> None:
    """Eight senders at once, alternating APIs; every keyed request is sent again through
    the other API (a client retrying after a lost answer), and counts once."""
    a, b = cluster.apis
    client = cluster.client("403", "--ingest")
    headers = a.token(client)
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    failures: list[str] = []

    def send(sender: int) -> None:
        with httpx.Client(timeout=60) as http:
            for batch in range(10):
                events = [_event(403, minute, sender, 1) for _ in range(50)]
                key = {"Idempotency-Key": f"sender-{sender}-batch-{batch}"}
                first, second = (a, b) if (sender + batch) % 2 else (b, a)
                for server in (first, second):
                    answer = http.post(
                        f"{server.base}{INGEST}", json=events, headers={**headers, **key}
                    )
                    if answer.status_code != 200:
                        failures.append(f"{answer.status_code} {answer.text}")

    senders = [threading.Thread(target=send, args=(s,)) for s in range(8)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(timeout=300)

    assert failures == []
    export_id = _create(
        b, headers, {"advertiserIds": ["403"], "dimensions": ["campaignId"], "lookbackWindow": 60}
    )
    _wait_done(a, headers, export_id, timeout=60)
    lines = _download(a, headers, export_id).decode().splitlines()
    assert lines[0] == '"campaignId","clicks","displays","cost"'
    # 8 senders x 10 batches x 50 events of 1 click each, every batch sent twice
    assert lines[1:] == [f"{s},500,1000,62.5" for s in range(8)]


def test_scale_out_worker_killed_mid_export_loses_nothing(cluster: Cluster) -> None:
    """SIGKILL the worker running a long export: the other worker runs it again, whole."""
    a, b = cluster.apis
    client = cluster.client("404")
    headers = a.token(client)
    rows = 400_000
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    _append_rows(cluster.event_store_url, advertiser=404, start=start, rows=rows)

    export_id = _create(
        a,
        headers,
        {
            "advertiserIds": ["404"],
            "dimensions": ["campaignId", "sellerId", "minute"],
            "fileFormat": "Json",
            "lookbackWindow": 1440,
        },
    )
    owner = _wait_claimed(cluster, export_id, timeout=30)
    victim = next(w for w in cluster.workers if f":{w.pid}:" in owner)
    os.kill(victim.pid, signal.SIGKILL)
    victim.process.wait(timeout=30)

    _wait_done(b, headers, export_id, timeout=120)
    row = cluster.job_row(export_id)
    assert row["attempts"] == 2
    content = _download(b, headers, export_id)
    body = orjson.loads(content)
    assert body["rows"] == len(body["data"]) == rows, content[:300]
    clicks = body["columns"].index("clicks")
    assert sum(row[clicks] for row in body["data"]) == rows
    survivor = next(w for w in cluster.workers if w is not victim)
    assert survivor.process.poll() is None
    # the cluster's other tests keep two workers
    cluster.workers[cluster.workers.index(victim)] = Worker(
        cluster.root / "worker-3", cluster.env
    ).wait_ready()


def _append_rows(url: str, *, advertiser: int, start: datetime, rows: int) -> None:
    """Roll-up rows straight into ClickHouse (the store's bulk path), one click each."""
    from mpo_realtime.store.clickhouse_store import ClickHouseEventStore

    minutes = 120
    table = pa.table(
        {
            "minute": [start + timedelta(minutes=i % minutes) for i in range(rows)],
            "advertiser_id": [advertiser] * rows,
            "partner_id": [1] * rows,
            "campaign_id": [i // minutes for i in range(rows)],
            "seller_id": [i % 7 for i in range(rows)],
            "product_id": ["p"] * rows,
            "seller_name": [None] * rows,
            "displays": [1] * rows,
            "clicks": [1] * rows,
            "cost": [Decimal(1).scaleb(-COST_SCALE)] * rows,
        },
        schema=ROLLUP_SCHEMA,
    )
    store = ClickHouseEventStore(url)
    try:
        store.append(table)
    finally:
        store.close()


def _wait_claimed(cluster: Cluster, export_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = cluster.job_row(export_id)
        assert row["status"] == "Pending", "the export ended before a worker could be killed"
        if row["lease_owner"]:
            return str(row["lease_owner"])
        time.sleep(0.02)
    raise AssertionError("no worker claimed the export")


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _wait_children(pid: int, count: int, timeout: float = 60) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = _children(pid)
        if len(children) == count:
            return children
        time.sleep(0.1)
    raise AssertionError(f"{pid} has children {_children(pid)}, not {count}")


def test_scale_out_serve_processes_shares_one_port_and_restarts_a_dead_one(
    cluster: Cluster,
) -> None:
    (cluster.root / "supervised").mkdir()
    server = Server(cluster.root / "supervised", "--processes", "2", "--no-runner")
    server.env = cluster.env
    server.launch()
    try:
        _wait_health(server)
        assert server.process is not None
        first = _wait_children(server.process.pid, 2)
        client = cluster.client("405")
        headers = server.token(client)  # and the cluster's own APIs accept it
        poll = f"{STATS}/report-jobs/{uuid.uuid4()}"
        assert httpx.get(f"{cluster.apis[0].base}{poll}", headers=headers).status_code == 403

        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        codes = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _children(server.process.pid) & first == first:
            time.sleep(0.05)
        while time.monotonic() < deadline:
            codes.add(httpx.get(f"{server.base}{poll}", headers=headers).status_code)
            now = _children(server.process.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.1)
        assert codes == {403}  # the other process answered meanwhile
        assert len(_children(server.process.pid) - first) == 1

        server.signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        assert "with 2 API processes" in server.output
        assert "exited with -9: starting it again" in server.output
    finally:
        server.kill()


@pytest.mark.parametrize(
    ("command", "named"),
    [
        (["serve", "--processes", "2"], "mpo serve --processes 2"),
        (["worker"], "mpo worker"),
    ],
)
def test_scale_out_refused_on_embedded_stores(
    tmp_path: Path, command: list[str], named: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPO_")}
    done = subprocess.run(
        [sys.executable, "-m", "mpo_realtime", *command, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: {named} needs stores that several processes")
    assert "MPO_EVENT_STORE_URL=duckdb:///" in done.stderr
    assert "MPO_JOB_STORE_URL=sqlite:///" in done.stderr
    assert ("MPO_RATE_LIMIT_STORAGE_URL=memory://" in done.stderr) is (command != ["worker"])
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing was made
