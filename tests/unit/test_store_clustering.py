"""Clustering (``DuckDBEventStore``, "clustering"): settled UTC days are rewritten folded and
in (advertiser, campaign, minute) order, without changing any sum, in bounded steps, once.
"""

from __future__ import annotations

import logging
import math
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension
from mpo_realtime.store.base import IngestRequest
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from tests.reference import Event, expected_rows, rollup_table

DAY0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)
#: far enough ahead that every stored day is settled
LATER = DAY0 + timedelta(days=30)


@pytest.fixture
def store(quiet_store: DuckDBEventStore) -> DuckDBEventStore:
    return quiet_store


def _events(days: int, per_day: int, seed: int = 1) -> list[Event]:
    """Rows of a few advertisers and campaigns, in arrival (minute) order, keys repeating."""
    rng = random.Random(seed)
    events = [
        Event(
            DAY0 + timedelta(days=d, minutes=rng.randrange(1440)),
            advertiser_id=rng.choice([30, 10, 20]),
            partner_id=1,
            campaign_id=rng.choice([7, 5, 6]),
            seller_id=rng.choice([1, 2]),
            product_id=f"p{rng.randrange(5)}",
            displays=rng.randrange(1, 4),
            clicks=rng.randrange(2),
            cost=Decimal(rng.randrange(0, 10**6)) / 10**6,
        )
        for d in range(days)
        for _ in range(per_day)
    ]
    return sorted(events, key=lambda e: e.minute)


def _layout(store: DuckDBEventStore) -> list[tuple[Any, ...]]:
    """(day, advertiser, campaign, minute) of every stored row, in storage order."""
    return list(
        store.call(
            lambda conn: conn.execute(
                "SELECT date_trunc('day', minute), advertiser_id, campaign_id, minute"
                " FROM rollup ORDER BY rowid"
            ).fetchall()
        )
    )


def _marks(store: DuckDBEventStore) -> list[datetime]:
    rows = store.call(lambda conn: conn.execute("SELECT day FROM clustered_days").fetchall())
    return sorted(row[0] for row in rows)


def _report(store: DuckDBEventStore, events: list[Event]) -> tuple[list[Any], list[Any]]:
    plan = QueryPlan(
        start=DAY0,
        end=DAY0 + 10 * DAY,
        advertiser_ids=(10, 20, 30),
        dimensions=(Dimension.DAY, Dimension.ADVERTISER_ID, Dimension.PRODUCT_ID),
    )
    got = [tuple(r.values()) for b in store.aggregate(plan) for r in b.to_pylist()]
    return got, expected_rows(events, plan)


def _maintain_all(store: DuckDBEventStore, now: datetime = LATER) -> int:
    """Maintenance steps until none is waiting (compaction of what was written, then
    clustering); how many."""
    steps = 1
    while store.maintain(now):
        steps += 1
    return steps


def _compacted(store: DuckDBEventStore, now: datetime = LATER) -> None:
    while store.compact(now):
        pass


def test_settled_days_are_rewritten_in_advertiser_order_with_the_same_sums(
    tmp_path: Path,
) -> None:
    events = _events(days=3, per_day=400)
    store = DuckDBEventStore(tmp_path / "events.duckdb", maintenance_interval=1e9)
    try:
        store.append(rollup_table(events))
        store.append(rollup_table(events[:500]))  # some keys twice: folded by the rewrite
        totals = store.totals()
        _compacted(store)
        assert _maintain_all(store) == 3  # one step per day, each under the step's rows
        layout = _layout(store)
        # every day's rows together, and in (advertiser, campaign, minute) order within it
        assert [row[0] for row in layout] == sorted(row[0] for row in layout)
        assert layout == sorted(layout)
        assert store.totals() == {**totals, "rows": len(layout)}
        assert len(layout) < totals["rows"]  # duplicates folded
        got, expected = _report(store, events + events[:500])
        assert got == expected
        assert _marks(store) == [DAY0, DAY0 + DAY, DAY0 + 2 * DAY]
        assert not store.maintain(LATER)  # nothing left
    finally:
        store.close()


def test_a_day_is_clustered_only_once_settled(store: DuckDBEventStore) -> None:
    events = _events(days=2, per_day=50)
    store.append(rollup_table(events))
    _compacted(store)
    # the second day ends at DAY0 + 2 days, and minutes stay live for 2 more
    assert not store.maintain(DAY0 + 2 * DAY - timedelta(minutes=1))  # day 1 only
    assert _marks(store) == [DAY0]
    assert not store.maintain(DAY0 + 2 * DAY + timedelta(minutes=1))
    assert _marks(store) == [DAY0]
    assert not store.maintain(DAY0 + 2 * DAY + timedelta(minutes=2))
    assert _marks(store) == [DAY0, DAY0 + DAY]


def test_clustering_waits_for_compaction_of_the_day(store: DuckDBEventStore) -> None:
    # Compaction after clustering would move the minutes it folds to the table's end, so
    # a day written to since the last compaction is folded first, then clustered.
    events = _events(days=1, per_day=300)
    store.append(rollup_table(events))
    store.submit(IngestRequest(rollup_table(events[:50]), 50)).result(timeout=30)
    steps = 0
    while store.maintain(LATER):
        steps += 1
        if _marks(store):
            break
    # every 15-minute compaction step came first; the last one clustered too
    span = events[-1].minute - events[0].minute + timedelta(minutes=1)
    assert steps == math.ceil(span / timedelta(minutes=15)) - 1
    assert _marks(store) == [DAY0]
    assert _layout(store) == sorted(_layout(store))
    got, expected = _report(store, events + events[:50])
    assert got == expected


def test_large_days_take_several_steps_and_one_advertiser_is_never_cut(
    store: DuckDBEventStore,
) -> None:
    events = _events(days=1, per_day=600)
    store.cluster_step_rows = 150  # about 200 rows per advertiser: one step each
    store.append(rollup_table(events))
    _compacted(store)
    assert _maintain_all(store) == 3
    assert _layout(store) == sorted(_layout(store))
    got, expected = _report(store, events)
    assert got == expected


def test_marks_last_across_restarts_and_older_stores_are_clustered_when_opened(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.duckdb"
    events = _events(days=2, per_day=100)
    store = DuckDBEventStore(path, maintenance_interval=1e9)
    try:
        store.append(rollup_table(events))
        _maintain_all(store)
        # As a store made before clustering: rows, and no marks for their days.
        store.call(
            lambda conn: conn.execute("DELETE FROM clustered_days WHERE day > $d", {"d": DAY0})
        )
    finally:
        store.close()
    store = DuckDBEventStore(path, maintenance_interval=1e9)
    try:
        assert _marks(store) == [DAY0]
        assert not store.maintain(LATER)  # the unmarked day, found when the store opened
        assert _marks(store) == [DAY0, DAY0 + DAY]
        assert not store.maintain(LATER)
    finally:
        store.close()


def test_rows_arriving_for_a_clustered_day_are_kept_and_counted(store: DuckDBEventStore) -> None:
    events = _events(days=1, per_day=100)
    late = _events(days=1, per_day=20, seed=2)
    store.append(rollup_table(events))
    _maintain_all(store)
    store.append(rollup_table(late))
    _compacted(store)
    assert not store.maintain(LATER)  # a day is clustered once
    got, expected = _report(store, events + late)
    assert got == expected


def test_purge_forgets_the_marks_of_purged_days(store: DuckDBEventStore) -> None:
    store.append(rollup_table(_events(days=4, per_day=20)))
    _compacted(store)
    _maintain_all(store)
    store.purge(DAY0 + 3 * DAY)
    # marks are kept a day longer than the rows, as write marks are an hour longer
    assert _marks(store) == [DAY0 + 2 * DAY, DAY0 + 3 * DAY]


def test_a_failed_step_is_logged_and_the_day_left_as_it_was(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = _events(days=2, per_day=50)
    store = DuckDBEventStore(tmp_path / "events.duckdb", maintenance_interval=1e9)
    try:
        store.append(rollup_table(events))
        _compacted(store)
        before = _layout(store)
        # A real engine error: the table the fold builds exists already.
        store.call(lambda conn: conn.execute("CREATE TEMP TABLE compacted (x INTEGER)"))
        with caplog.at_level(logging.ERROR, logger="mpo_realtime.store.duckdb_store"):
            assert store.maintain(LATER)  # the first day failed; the second is waiting
        store.call(lambda conn: conn.execute("DROP TABLE compacted"))
        assert not store.maintain(LATER)
        assert [r for r in caplog.records if "clustering of" in r.getMessage()]
        assert _marks(store) == [DAY0 + DAY]
        assert sorted(r for r in _layout(store) if r[0] == DAY0) == sorted(
            r for r in before if r[0] == DAY0
        )
        got, expected = _report(store, events)
        assert got == expected
    finally:
        store.close()


def test_maintenance_clusters_settled_days_on_its_own(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "events.duckdb", maintenance_interval=0.05)
    try:
        store.append(rollup_table(_events(days=2, per_day=50)))
        store.compact()  # at once, rather than in the maintenance's 15-minute steps
        deadline = time.monotonic() + 30
        while _marks(store) != [DAY0, DAY0 + DAY]:
            assert time.monotonic() < deadline, _marks(store)
            time.sleep(0.02)
        assert _layout(store) == sorted(_layout(store))
    finally:
        store.close()


def test_row_groups_of_a_clustered_day_hold_one_advertiser_each(store: DuckDBEventStore) -> None:
    # What clustering is for: DuckDB skips row groups by the min/max of advertiser_id.
    # Two advertisers, 300,000 rows each (row groups are 122,880 rows), interleaved.
    relation = duckdb.sql(
        "SELECT $day::TIMESTAMPTZ + to_minutes((i % 1440)::BIGINT) AS minute,"
        " 1 + i % 2 AS advertiser_id, 1 AS partner_id, 1 AS campaign_id, 1 AS seller_id,"
        " NULL::VARCHAR AS seller_name, 'p' || (i // 2)::VARCHAR AS product_id,"
        " 1 AS displays, 0 AS clicks, 0.5::DECIMAL(18, 9) AS cost FROM range(600000) t(i)",
        params={"day": DAY0},
    )
    assert relation is not None
    rows = relation.arrow()
    store.append(rows.read_all() if isinstance(rows, pa.RecordBatchReader) else rows)

    def spans() -> list[tuple[int, int]]:
        found = store.call(
            lambda conn: conn.execute(
                "SELECT stats FROM pragma_storage_info('rollup')"
                " WHERE column_name = 'advertiser_id' AND segment_type = 'BIGINT'"
            ).fetchall()
        )
        return [(s[0]["min"], s[0]["max"]) for s in found if "min" in s[0]]

    store.call(lambda conn: conn.execute("CHECKPOINT"))
    assert all(low != high for low, high in spans())  # interleaved: every group both
    _maintain_all(store)
    store.call(lambda conn: conn.execute("CHECKPOINT"))
    mixed = [span for span in spans() if span[0] != span[1]]
    assert len(mixed) <= 1  # only the group where advertiser 1 ends and 2 begins
    assert store.totals()["displays"] == 600_000


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    days=st.integers(1, 3),
    step_rows=st.integers(1, 300),
    interleave=st.booleans(),
)
def test_clustering_in_any_steps_keeps_every_report_exact(
    seed: int, days: int, step_rows: int, interleave: bool
) -> None:
    events = _events(days=days, per_day=120, seed=seed)
    store = DuckDBEventStore(":memory:", maintenance_interval=1e9)
    store.cluster_step_rows = step_rows
    try:
        store.append(rollup_table(events[::2]))
        if interleave:  # rows arriving between steps
            _compacted(store)
            store.maintain(LATER)
        store.append(rollup_table(events[1::2]))
        _compacted(store)
        _maintain_all(store)
        got, expected = _report(store, events)
        assert got == expected
    finally:
        store.close()
