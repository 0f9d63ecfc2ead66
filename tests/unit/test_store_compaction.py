"""Compaction folds duplicate roll-up keys in steps, without changing any sum or failing."""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest

from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension
from mpo_realtime.store.base import MAX_ROW_COST, IngestReceipt, IngestRequest
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from tests.reference import Event, expected_rows, rollup_table

START = datetime(2026, 11, 1, tzinfo=UTC)
LATER = START + timedelta(days=1)
BIGGEST = 2**63 - 1
QUARTER = Decimal("0.25")


def _rows(store: DuckDBEventStore, lo: datetime, hi: datetime) -> int:
    found = store.call(
        lambda conn: conn.execute(
            "SELECT count(*) FROM rollup WHERE minute >= $lo AND minute < $hi", {"lo": lo, "hi": hi}
        ).fetchone()
    )
    return int(found[0])


def test_store_compaction_in_steps_folds_duplicates_and_keeps_sums() -> None:
    events = [
        Event(
            START + timedelta(minutes=m), 1, 2, 3 + m % 2, 4, f"p{m % 3}", 5, m % 2, Decimal("0.25")
        )
        for m in range(120)
    ]
    store = DuckDBEventStore(":memory:")
    try:
        for _ in range(3):  # the same rows three times: three rows per key
            store.append(rollup_table(events))
        before = store.totals()
        assert before["rows"] == 360
        steps = 1
        while store.compact(LATER, step=timedelta(minutes=15)):
            steps += 1
        after = store.totals()
        assert steps == 8
        assert after == {**before, "rows": 120}
        assert after["cost"] == Decimal("90.00")  # 360 x 0.25, exactly
        assert not store.compact(LATER)  # nothing left to fold
    finally:
        store.close()


def test_store_compaction_leaves_live_minutes_alone() -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    live = [Event(now - timedelta(minutes=1), 1, 2, 3, 4, "p", 1, 0, Decimal(0))]
    store = DuckDBEventStore(":memory:")
    try:
        store.append(rollup_table(live))
        store.append(rollup_table(live))
        assert not store.compact(now)
        assert store.totals()["rows"] == 2  # still being written to: folded later
    finally:
        store.close()


def test_store_folds_only_what_fits_a_row_and_reports_exact_sums() -> None:
    # Flushes and compaction of one key and minute whose sums pass what a row holds:
    # the key keeps its rows (nothing fails), a key that fits is folded, and reports
    # sum past 64 bits exactly.
    big = Event(START, 1, 2, 3, 4, "big", BIGGEST, BIGGEST, MAX_ROW_COST)
    small = Event(START, 1, 2, 3, 4, "small", 1, 0, Decimal("0.1"))
    store = DuckDBEventStore(":memory:", flush_interval=0.001)
    try:
        for _ in range(3):
            request = IngestRequest(rollup_table([big, big, small, small]), events=4)
            assert store.submit(request).result(timeout=30) == IngestReceipt(4)
        assert store.totals()["rows"] == 3 * (2 + 1)  # big unfolded, small folded per flush
        store.compact(LATER)
        assert store.totals()["rows"] == 6 + 1  # big still unfolded, small one row
        plan = QueryPlan(
            start=START, end=LATER, advertiser_ids=(1,), dimensions=(Dimension.PRODUCT_ID,)
        )
        got = [tuple(r.values()) for b in store.aggregate(plan) for r in b.to_pylist()]
        assert got == expected_rows([big, small] * 6, plan)
        assert got[0] == ("big", 6 * BIGGEST, 6 * BIGGEST, 6 * MAX_ROW_COST)
        assert got[1] == ("small", 0, 6, Decimal("0.6"))
    finally:
        store.close()


def test_store_compaction_failure_is_logged_once_and_the_next_span_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = [
        Event(START + timedelta(minutes=m), 1, 2, 3, 4, "p", 1, 0, Decimal(1)) for m in range(30)
    ]
    store = DuckDBEventStore(":memory:")
    try:
        store.append(rollup_table(events))
        store.append(rollup_table(events))
        # A real engine error on the first span: the table the fold builds exists already.
        store.call(lambda conn: conn.execute("CREATE TEMP TABLE compacted (x INTEGER)"))
        with caplog.at_level(logging.ERROR, logger="mpo_realtime.store.duckdb_store"):
            assert store.compact(LATER, step=timedelta(minutes=15))  # more to do
            store.call(lambda conn: conn.execute("DROP TABLE compacted"))
            assert not store.compact(LATER, step=timedelta(minutes=15))
            assert not store.compact(LATER, step=timedelta(minutes=15))  # nothing retried
        failures = [r for r in caplog.records if "compaction of" in r.getMessage()]
        assert len(failures) == 1
        assert _rows(store, START, START + timedelta(minutes=15)) == 30  # left unfolded
        assert _rows(store, START + timedelta(minutes=15), LATER) == 15  # folded after it
        assert store.totals() == {"rows": 45, "displays": 60, "clicks": 0, "cost": Decimal(60)}
    finally:
        store.close()


def test_store_maintenance_waits_for_running_exports() -> None:
    """Scheduled compaction does not run while a report read streams, but runs after it."""
    old = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    events = [Event(old + timedelta(minutes=m), 1, 2, 3, 4, "p", 1, 0, QUARTER) for m in range(30)]
    store = DuckDBEventStore(":memory:", maintenance_interval=0.05)
    try:
        other = [Event(old, 9, 2, 3, 4, f"p{i}", 1, 0, QUARTER) for i in range(3)]
        store.append(rollup_table(other))
        store.compact()  # nothing left for maintenance but what comes below
        plan = QueryPlan(start=old, end=old + timedelta(hours=1), advertiser_ids=(9,))
        reading = cast(Generator[Any, None, None], store.aggregate(plan, batch_rows=1))
        assert next(reading).num_rows == 1  # an export under way
        for _ in range(2):  # two rows per key, for maintenance to fold
            store.append(rollup_table(events))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert (
                _rows(store, old, old + timedelta(days=1)) == 63
            )  # not folded while the read runs
            time.sleep(0.05)
        reading.close()
        deadline = time.monotonic() + 10.0
        while _rows(store, old, old + timedelta(days=1)) != 33 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _rows(store, old, old + timedelta(days=1)) == 33  # folded once the read ended
    finally:
        store.close()


def test_store_maintenance_waits_for_exports_only_so_long() -> None:
    old = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    events = [Event(old + timedelta(minutes=m), 1, 2, 3, 4, "p", 1, 0, QUARTER) for m in range(30)]
    store = DuckDBEventStore(":memory:", maintenance_interval=0.05)
    store.maintenance_max_delay = 0.5
    try:
        other = [Event(old, 9, 2, 3, 4, f"p{i}", 1, 0, QUARTER) for i in range(3)]
        store.append(rollup_table(other))
        store.compact()  # nothing left for maintenance but what comes below
        plan = QueryPlan(start=old, end=old + timedelta(hours=1), advertiser_ids=(9,))
        reading = cast(Generator[Any, None, None], store.aggregate(plan, batch_rows=1))
        next(reading)
        for _ in range(2):
            store.append(rollup_table(events))
        deadline = time.monotonic() + 10.0
        while _rows(store, old, old + timedelta(days=1)) != 33 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (
            _rows(store, old, old + timedelta(days=1)) == 33
        )  # a read left open does not hold it off
        reading.close()
    finally:
        store.close()
