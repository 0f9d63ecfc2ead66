"""Idempotency keys on ClickHouse hold across processes and crashes.

A keyed request is stored in two steps, an intent then the rows tagged with its batch
(``store/clickhouse_store.py``). A real writer process is killed by SIGKILL after each step;
the retry, in another process, must count the request exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

from mpo_realtime.store.base import IdempotencyConflict, IngestReceipt
from mpo_realtime.store.clickhouse_store import ClickHouseEventStore
from tests.conftest import clickhouse_database
from tests.integration.clickhouse_crash import EVENTS, request
from tests.services import Service

ROOT = Path(__file__).resolve().parents[2]
#: Short for the tests (the default is 20 s), but not so short that a busy machine breaks
#: the protocol's premise (an insert times out at a third of the lease, well before it
#: ends): at 2 s, two full test runs at once on 2 cores once stored a key twice.
LEASE = 5.0
TIMEOUT = 60.0


@pytest.fixture
def url(clickhouse_service: Service) -> Iterator[str]:
    with clickhouse_database(clickhouse_service, flush_interval=0.01, lease=LEASE) as url:
        yield url


def _totals(url: str) -> dict[str, int | Decimal]:
    store = ClickHouseEventStore(url)
    try:
        return store.totals()
    finally:
        store.close()


ONCE = {"displays": EVENTS, "clicks": 3, "cost": Decimal("3.300000000")}


def _crash_at(url: str, key: str, step: str) -> None:
    """Run the writer process until it kills itself at ``step``."""
    process = subprocess.run(
        [sys.executable, "-m", "tests.integration.clickhouse_crash", url, key, step],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr


def test_retry_after_a_crash_once_rows_are_stored_is_a_duplicate(url: str) -> None:
    _crash_at(url, "client:k1", "rows")
    assert {k: v for k, v in _totals(url).items() if k != "rows"} == ONCE
    store = ClickHouseEventStore(url)
    try:
        receipt = store.submit(request("client:k1")).result(timeout=TIMEOUT)
        assert receipt == IngestReceipt(EVENTS, duplicate=True)
    finally:
        store.close()
    assert {k: v for k, v in _totals(url).items() if k != "rows"} == ONCE


def test_retry_after_a_crash_before_the_rows_stores_them_once(url: str) -> None:
    """The dead writer's intent is waited for until its lease ends, then stored anew."""
    _crash_at(url, "client:k2", "intents")
    assert _totals(url)["rows"] == 0  # the intent alone: nothing counted
    store = ClickHouseEventStore(url)
    try:
        started = time.monotonic()
        receipt = store.submit(request("client:k2")).result(timeout=TIMEOUT)
        assert receipt == IngestReceipt(EVENTS, duplicate=False)
        assert time.monotonic() - started < LEASE + 5
        # and again: now a duplicate
        again = store.submit(request("client:k2")).result(timeout=TIMEOUT)
        assert again == IngestReceipt(EVENTS, duplicate=True)
    finally:
        store.close()
    assert {k: v for k, v in _totals(url).items() if k != "rows"} == ONCE


def test_same_key_through_two_processes_at_once_counts_once(url: str) -> None:
    """Two stores (as two API processes) get the same keyed request together, many times."""
    first, second = ClickHouseEventStore(url), ClickHouseEventStore(url)
    try:

        def send(store: ClickHouseEventStore) -> IngestReceipt:
            return store.submit(request("client:k3")).result(timeout=TIMEOUT)

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(send, store) for _ in range(4) for store in (first, second)]
            receipts = [f.result() for f in futures]
        assert sum(not r.duplicate for r in receipts) == 1
        assert all(r.events == EVENTS for r in receipts)
    finally:
        first.close()
        second.close()
    assert {k: v for k, v in _totals(url).items() if k != "rows"} == ONCE


def test_same_key_with_another_body_is_a_conflict_in_another_process(url: str) -> None:
    first, second = ClickHouseEventStore(url), ClickHouseEventStore(url)
    try:
        first.submit(request("client:k4")).result(timeout=TIMEOUT)
        with pytest.raises(IdempotencyConflict):
            second.submit(request("client:k4", digest="body-2")).result(timeout=TIMEOUT)
    finally:
        first.close()
        second.close()
