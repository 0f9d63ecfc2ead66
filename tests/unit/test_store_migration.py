"""A store file written before costs were exact opens, converted in place."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, Metric
from mpo_realtime.store.duckdb_store import DuckDBEventStore

MINUTE = datetime(2026, 11, 18, 10, tzinfo=UTC)
#: the roll-up table exactly as the version before exact costs created it
LEGACY_ROLLUP = """CREATE TABLE rollup (
    minute TIMESTAMPTZ NOT NULL,
    advertiser_id BIGINT NOT NULL,
    partner_id BIGINT NOT NULL,
    campaign_id BIGINT NOT NULL,
    seller_id BIGINT NOT NULL,
    product_id VARCHAR NOT NULL,
    displays BIGINT NOT NULL,
    clicks BIGINT NOT NULL,
    cost DOUBLE NOT NULL
)"""
#: (advertiser, product, cost) as yesterday's float sums left them, poison included
LEGACY_ROWS = [
    (321, "a", 200.2292309999999),
    (321, "a", 0.1 + 0.2),
    (321, "b", 7.563909000000001),
    (321, "b", 5.0),
    (999, "poison", 1e308),
    (999, "poison", float("nan")),
    (999, "poison", -1.0),
    (999, "fine", 0.000001),
]


def _legacy_store(path: Path) -> None:
    conn = duckdb.connect(str(path))
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute(LEGACY_ROLLUP)
    for advertiser, product, cost in LEGACY_ROWS:
        conn.execute(
            "INSERT INTO rollup VALUES ($m, $a, 1, 2, 3, $p, 1, 1, $c)",
            {"m": MINUTE, "a": advertiser, "p": product, "c": cost},
        )
    conn.close()


def _report(store: DuckDBEventStore, advertiser: int) -> list[tuple[object, ...]]:
    plan = QueryPlan(
        start=MINUTE,
        end=MINUTE + timedelta(minutes=1),
        advertiser_ids=(advertiser,),
        dimensions=(Dimension.PRODUCT_ID,),
        metrics=(Metric.DISPLAYS, Metric.COST),
    )
    return [tuple(row.values()) for batch in store.aggregate(plan) for row in batch.to_pylist()]


def test_store_opens_a_legacy_file_and_converts_costs_to_decimals(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "events.duckdb"
    _legacy_store(path)
    with caplog.at_level(logging.WARNING, logger="mpo_realtime.store.duckdb_store"):
        store = DuckDBEventStore(path)
    try:
        # float noise is rounded away at 9 decimals; sums are exact from then on
        assert _report(store, 321) == [
            ("a", 2, Decimal("200.529231")),
            ("b", 2, Decimal("12.563909")),
        ]
        # costs no decimal can hold are moved aside, not lost, and poison no report
        assert _report(store, 999) == [("fine", 1, Decimal("0.000001"))]
        quarantined = store.call(
            lambda conn: conn.execute("SELECT count(*) FROM rollup_quarantine").fetchone()
        )
        assert quarantined == (3,)
        assert "3 roll-up rows" in caplog.text
        assert store.compact(MINUTE + timedelta(days=1)) is False
    finally:
        store.close()
    # Converted once: opening again changes nothing.
    reopened = DuckDBEventStore(path)
    try:
        assert reopened.totals()["rows"] == 5
        kind = reopened.call(
            lambda conn: conn.execute(
                "SELECT data_type FROM duckdb_columns() WHERE table_name = 'rollup'"
                " AND column_name = 'cost'"
            ).fetchone()
        )
        assert kind == ("DECIMAL(18,9)",)
    finally:
        reopened.close()
