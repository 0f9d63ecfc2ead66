"""Compaction folds duplicate roll-up keys in steps, without changing any sum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mpo_realtime.store.duckdb_store import DuckDBEventStore
from tests.reference import Event, rollup_table

START = datetime(2026, 11, 1, tzinfo=UTC)


def test_store_compaction_in_steps_folds_duplicates_and_keeps_sums() -> None:
    events = [
        Event(START + timedelta(minutes=m), 1, 2, 3 + m % 2, 4, f"p{m % 3}", 5, m % 2, 0.25)
        for m in range(120)
    ]
    store = DuckDBEventStore(":memory:")
    try:
        for _ in range(3):  # the same rows three times: three rows per key
            store.append(rollup_table(events))
        before = store.totals()
        assert before["rows"] == 360
        now = START + timedelta(days=1)
        steps = 1
        while store.compact(now, step=timedelta(minutes=15)):
            steps += 1
        after = store.totals()
        assert steps == 8
        assert after == {**before, "rows": 120}
        assert not store.compact(now)  # nothing left to fold
    finally:
        store.close()


def test_store_compaction_leaves_live_minutes_alone() -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    live = [Event(now - timedelta(minutes=1), 1, 2, 3, 4, "p", 1, 0, 0.0)]
    store = DuckDBEventStore(":memory:")
    try:
        store.append(rollup_table(live))
        store.append(rollup_table(live))
        assert not store.compact(now)
        assert store.totals()["rows"] == 2  # still being written to: folded later
    finally:
        store.close()
