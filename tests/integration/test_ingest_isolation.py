"""One client's ingest body cannot fail, poison or bloat the others (a real server)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from mpo_realtime.store.duckdb_store import DuckDBEventStore
from tests.integration.server import Server, create_client

pytestmark = pytest.mark.slow
TIMEOUT = 60.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A server, stopped by its PID whatever happens; ``clients`` made before it starts."""
    started = Server(tmp_path)
    yield started
    started.kill()


def _event(advertiser: str, minute: datetime, **values: Any) -> dict[str, Any]:
    return {
        "timestamp": minute.isoformat(),
        "advertiserId": advertiser,
        "partnerId": "1",
        "campaignId": "2",
        "sellerId": "3",
        "productId": "SKU-1",
        "displays": 1,
        "clicks": 0,
        "cost": 0.1,
        **values,
    }


def _concurrently(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls at once (a barrier releases them together); their answers in order."""
    barrier = threading.Barrier(len(calls))
    answers: list[httpx.Response | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait(TIMEOUT)
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert all(answer is not None for answer in answers), "a request never returned"
    return [answer for answer in answers if answer is not None]


def _totals(data_dir: Path) -> dict[str, Any]:
    store = DuckDBEventStore(data_dir / "events.duckdb")
    try:
        return store.totals()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("poison", "status"),
    [
        # The batch: 1,100 events of one key with displays = 2**53. Each event is
        # over the per-event cap now, so the request is refused before any flush.
        pytest.param({"displays": 2**53}, 400, id="over-the-caps"),
        pytest.param({"cost": 1e308}, 400, id="poisoned-cost"),
        # At the caps: valid, and its sums pass what one row holds (1.1e9 > 1e9 cost):
        # the flush keeps that key's rows apart instead of failing.
        pytest.param({"displays": 10**6, "clicks": 10**6, "cost": 10**6}, 200, id="at-the-caps"),
    ],
)
def test_ingest_one_clients_extreme_batch_leaves_the_others_stored(
    tmp_path: Path, server: Server, poison: dict[str, Any], status: int
) -> None:
    heavy = create_client(tmp_path, "321", "--ingest")
    light = create_client(tmp_path, "322", "--ingest")
    server.start()
    heavy_headers, light_headers = server.token(heavy), server.token(light)
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    batch = orjson.dumps([_event("321", minute, **poison)] * 1_100)
    singles = [orjson.dumps([_event("322", minute + timedelta(seconds=i))]) for i in range(5)]
    with httpx.Client(base_url=server.base, timeout=TIMEOUT) as http:

        def post(body: bytes, headers: dict[str, str]) -> Callable[[], httpx.Response]:
            return lambda: http.post("/ingest/v1/events", content=body, headers=headers)

        answers = _concurrently(
            post(batch, heavy_headers), *(post(body, light_headers) for body in singles)
        )
    heavy_answer, *light_answers = answers
    assert heavy_answer.status_code == status, heavy_answer.text
    if status == 400:
        errors = heavy_answer.json()["errors"]
        assert {e["code"] for e in errors} == {"invalid-events"}
        assert "(per event)" in errors[0]["detail"]
    assert [(a.status_code, a.json()) for a in light_answers] == [
        (200, {"accepted": 1, "duplicate": False})
    ] * 5
    server.stop()
    totals = _totals(tmp_path)
    stored = 1_100 if status == 200 else 0
    per_event = {"displays": 1, "clicks": 0, "cost": 0.1, **poison} if stored else {}
    assert totals["displays"] == 5 + stored * per_event.get("displays", 0)
    assert totals["clicks"] == stored * per_event.get("clicks", 0)
    assert totals["cost"] == Decimal("0.5") + stored * Decimal(per_event.get("cost", 0))


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


#: bodies under the 16 MiB limit whose values would each become a Python object
TINY_VALUE_BODIES = {
    "ndjson-numbers": b"1\n" * 8_000_000,
    "array-numbers": b"[" + b"1," * 7_999_999 + b"1]",
    "array-objects": b"[" + b"{}," * 5_333_332 + b"{}]",
}


def test_ingest_memory_stays_bounded_for_bodies_of_tiny_values(
    tmp_path: Path, server: Server
) -> None:
    client = create_client(tmp_path, "321", "--ingest")
    server.start()
    assert server.process is not None
    headers = server.token(client)
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    with httpx.Client(base_url=server.base, timeout=TIMEOUT) as http:
        warm = http.post(
            "/ingest/v1/events", content=orjson.dumps([_event("321", minute)]), headers=headers
        )
        assert warm.status_code == 200
        before = _peak_rss(server.process.pid)
        for name, body in TINY_VALUE_BODIES.items():
            assert len(body) < 16 * 1024 * 1024, name
            answer = http.post("/ingest/v1/events", content=body, headers=headers)
            assert answer.status_code == 400, (name, answer.text)
            assert "100000 events" in answer.json()["errors"][0]["detail"], name
        grown = _peak_rss(server.process.pid) - before
    # Before the fix the first body alone took the server from 349 MB to 1.23 GB. Reading
    # a 16 MB body holds it about twice; a bound of 12 times its size is generous.
    assert grown < 12 * 16 * 1024 * 1024, f"peak memory grew by {grown / 2**20:.0f} MiB"
