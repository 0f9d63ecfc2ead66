"""Crashes for real: SIGKILL during ingest and during an export, a corrupt store at start."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from mpo_realtime.store.simulator import Simulator, World
from tests.integration.server import Server, create_client, mpo

pytestmark = pytest.mark.slow
STATS = "/preview/marketing-solutions/marketplace-performance-outcomes/stats"


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Every server a test starts is stopped by its PID, whatever happens."""
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


def _batches(count: int, size: int) -> list[tuple[str, bytes, int]]:
    simulator = Simulator(World.generate(seed=3), seed=3)
    now = datetime.now(UTC) - timedelta(minutes=2)
    out = []
    for index in range(count):
        events = simulator.events(now + timedelta(milliseconds=index), size)
        displays = sum(int(e["displays"]) for e in events)  # type: ignore[call-overload]
        out.append((f"batch-{index}", orjson.dumps(events), displays))
    return out


def test_sigkill_during_ingest_loses_no_acknowledged_event_and_counts_none_twice(
    tmp_path: Path, servers: list[Server]
) -> None:
    world = World.generate(seed=3)
    advertisers = ",".join(str(a.advertiser_id) for a in world.advertisers)
    client = create_client(tmp_path, advertisers, "--ingest")
    batches = _batches(300, 200)
    server = Server(tmp_path).start()
    servers.append(server)
    headers = server.token(client)
    acked: set[str] = set()
    killed = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=server.base, timeout=10) as http:
            for key, body, _ in batches:
                if killed.is_set():
                    return
                try:
                    answer = http.post(
                        "/ingest/v1/events",
                        content=body,
                        headers={**headers, "Idempotency-Key": key},
                    )
                except httpx.HTTPError:
                    return
                if answer.status_code == 200:
                    acked.add(key)

    # Two senders race on the same keys, as a client's overlapping retries would.
    senders = [threading.Thread(target=send) for _ in range(2)]
    for thread in senders:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acked) < 60 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    killed.set()
    for thread in senders:
        thread.join(timeout=30)
    assert 60 <= len(acked) < len(batches)
    # What the killed server had made durable: the acknowledged batches and perhaps some
    # whose answer was lost with it.
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    try:
        stored_before = store.totals()["displays"]
    finally:
        store.close()
    acked_displays = sum(displays for key, _, displays in batches if key in acked)
    assert stored_before >= acked_displays

    restarted = Server(tmp_path).start()
    servers.append(restarted)
    headers = restarted.token(client)
    duplicate_displays = 0
    with httpx.Client(base_url=restarted.base, timeout=30) as http:
        # The client retries everything it has no answer for, with the same keys.
        for key, body, displays in batches:
            if key in acked:
                continue
            answer = http.post(
                "/ingest/v1/events", content=body, headers={**headers, "Idempotency-Key": key}
            )
            assert answer.status_code == 200, answer.text
            if answer.json()["duplicate"]:
                duplicate_displays += displays
        # an acknowledged batch sent again is a duplicate too, and stores nothing
        key, body, _ = next(batch for batch in batches if batch[0] in acked)
        again = http.post(
            "/ingest/v1/events", content=body, headers={**headers, "Idempotency-Key": key}
        )
        assert again.json()["duplicate"] is True
    restarted.stop()
    # "duplicate" was answered exactly for the batches stored before the kill
    assert duplicate_displays == stored_before - acked_displays
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    try:
        assert store.totals()["displays"] == sum(displays for _, _, displays in batches)
    finally:
        store.close()


def _poll(server: Server, headers: dict[str, str], export_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    status = "Pending"
    while status == "Pending" and time.monotonic() < deadline:
        answer = httpx.get(
            f"{server.base}{STATS}/report-jobs/{export_id}", headers=headers, timeout=10
        )
        status = answer.json()["status"]
        time.sleep(0.1)
    return status


def test_sigkill_during_export_serves_no_partial_file_and_finishes_after_restart(
    tmp_path: Path, servers: list[Server]
) -> None:
    world = World.generate(seed=5, products=20_000)
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    start = end - timedelta(hours=2)
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    try:
        for batch in Simulator(world, seed=5, displays_per_minute=30_000).backfill(start, end):
            store.append(batch)
        plan = QueryPlan(
            start=start,
            end=end,
            advertiser_ids=tuple(sorted(a.advertiser_id for a in world.advertisers)),
            dimensions=(Dimension.ADVERTISER_ID, Dimension.CAMPAIGN_ID, Dimension.PRODUCT_ID),
        )
        expected_rows = sum(b.num_rows for b in store.aggregate(plan))
    finally:
        store.close()
    client = create_client(tmp_path, ",".join(str(a) for a in plan.advertiser_ids))
    settings = {"lease_seconds": "1", "runner_concurrency": "1"}
    server = Server(tmp_path, **settings).start()
    servers.append(server)
    headers = server.token(client)
    body: dict[str, Any] = {
        "data": {
            "attributes": {
                "advertiserIds": [str(a) for a in plan.advertiser_ids],
                "dimensions": ["advertiserId", "campaignId", "productId"],
                "startDate": start.isoformat(),
                "endDate": end.isoformat(),
                "fileFormat": "json",
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
    assert any(partial_dir.iterdir()), "the export never started writing"
    server.kill()
    left_behind = set(partial_dir.iterdir())
    final = tmp_path / "exports" / f"{export_id}.json"
    assert not final.exists()

    restarted = Server(tmp_path, **settings).start()
    servers.append(restarted)
    # What the dead process left is cleared at start (a new run may be writing its own).
    assert not left_behind & set(partial_dir.iterdir())
    download = httpx.get(
        f"{restarted.base}{STATS}/realtime-reports/{export_id}", headers=headers, timeout=30
    )
    assert download.status_code in (200, 409)  # never a partial file
    assert _poll(restarted, headers, export_id, timeout=120) == "Done"
    download = httpx.get(
        f"{restarted.base}{STATS}/realtime-reports/{export_id}", headers=headers, timeout=60
    )
    assert download.status_code == 200
    assert orjson.loads(download.content)["rows"] == expected_rows > 50_000


def test_corrupt_event_store_is_a_clear_error_at_start(tmp_path: Path) -> None:
    (tmp_path / "events.duckdb").write_bytes(b"this is not a duckdb file" * 1000)
    done = mpo("serve", "--port", "1", data_dir=tmp_path)
    assert done.returncode == 1
    assert "event store" in done.stderr and "corrupt" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_event_store_locked_by_another_process_is_a_clear_error(
    tmp_path: Path, servers: list[Server]
) -> None:
    servers.append(Server(tmp_path).start())
    done = mpo("simulate", "--hours", "1", data_dir=tmp_path)
    assert done.returncode == 1
    assert "another process" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_event_store_beside_exports_is_a_clear_error(tmp_path: Path) -> None:
    client = create_client(tmp_path, "321")
    server = Server(tmp_path).start()
    try:
        body = {"data": {"attributes": {"advertiserIds": ["321"], "lookbackWindow": 60}}}
        answer = httpx.post(
            f"{server.base}{STATS}/realtime-reports/export",
            json=body,
            headers=server.token(client),
            timeout=30,
        )
        assert answer.status_code == 200
    finally:
        server.stop()
    (tmp_path / "events.duckdb").unlink()
    done = mpo("serve", "--port", "1", data_dir=tmp_path)
    assert done.returncode == 1
    assert "event store" in done.stderr and "missing" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    # The operator's way out is explicit.
    allowed = Server(tmp_path, allow_new_event_store="true").start()
    allowed.stop()
