"""The ClickHouse store's SQL on a current ClickHouse engine (``chdb``) as on 18.16.

The tests' server is Debian's ClickHouse 18.16; ``chdb`` embeds a current release in
process. The same tables are created and the same rendered queries run on both, and their
answers must equal DuckDB's: "works on current releases" is checked, not assumed. ``chdb`` is
an optional test dependency (``make`` installs it where it can); without it this test skips.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, Metric
from mpo_realtime.store.clickhouse_rows import pre_aggregated
from mpo_realtime.store.clickhouse_sql import SCHEMA, render_aggregate
from mpo_realtime.store.clickhouse_store import ClickHouseEventStore
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from tests.conftest import clickhouse_database
from tests.reference import Event, rollup_table
from tests.services import Service
from tests.unit.test_store_aggregate import ANCHORS, PRODUCTS

chdb_session = pytest.importorskip(
    "chdb.session", reason="chdb (a current ClickHouse engine) is not installed: pip install chdb"
)

DIMENSIONS = (
    Dimension.MINUTE,
    Dimension.HOUR,
    Dimension.DAY,
    Dimension.WEEK,
    Dimension.MONTH,
    Dimension.YEAR,
    Dimension.PRODUCT_ID,
)


def _events() -> list[Event]:
    events = []
    for n, (anchor, _) in enumerate(ANCHORS.items()):
        for i in range(0, 3 * 1440, 13):
            events.append(
                Event(
                    anchor + timedelta(minutes=i - 1440),
                    1 + (i + n) % 2,
                    10,
                    100 + i % 3,
                    7,
                    PRODUCTS[(i + n) % len(PRODUCTS)],
                    i % 7,
                    i % 3,
                    Decimal(i % 13) / 8,
                )
            )
    return events


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + "".join(_escape(c) for c in value) + "'"
    return str(value)


def _escape(char: str) -> str:
    if char in "\\'":
        return "\\" + char
    if ord(char) < 0x20:
        return f"\\x{ord(char):02x}"
    return char


@pytest.fixture(scope="module")
def current() -> Iterator[Any]:
    """A chdb session holding the store's tables and the events' roll-up rows."""
    with tempfile.TemporaryDirectory() as path:
        session = chdb_session.Session(path)
        session.query("CREATE DATABASE IF NOT EXISTS mpo")
        for statement in SCHEMA:
            session.query(statement.format(db="mpo"))
        rows = pre_aggregated(rollup_table(_events()))
        minutes = rows["minute"].cast(pa.int64()).to_pylist()
        values = [
            f"({m // 1_000_000}, {r['advertiser_id']}, {r['partner_id']}, {r['campaign_id']},"
            f" {r['seller_id']}, {_literal(r['product_id'])}, {r['displays']}, {r['clicks']},"
            f" {r['cost_nanos']}, 1)"
            for m, r in zip(minutes, rows.to_pylist(), strict=True)
        ]
        session.query(
            "INSERT INTO mpo.rollup (minute, advertiser_id, partner_id, campaign_id, seller_id,"
            " product_id, displays, clicks, cost_nanos, batch_id) VALUES " + ", ".join(values)
        )
        yield session
        session.close()


def _parsed(row: tuple[Any, ...], plan: QueryPlan) -> tuple[Any, ...]:
    """A result row with decimals as values (current releases print fewer trailing zeros)."""
    width = len(plan.dimensions)
    dims = [
        str(v) if d is Dimension.PRODUCT_ID else int(v)
        for d, v in zip(plan.dimensions, row[:width], strict=True)
    ]
    return (*dims, *(Decimal(v) for v in row[width:]))


def _current_rows(session: Any, plan: QueryPlan) -> list[tuple[Any, ...]]:
    table = session.query(render_aggregate(plan, "mpo.rollup"), "ArrowTable")
    return [_parsed(tuple(r.values()), plan) for r in table.to_pylist()]


def _duckdb_rows(store: DuckDBEventStore, plan: QueryPlan) -> list[tuple[Any, ...]]:
    batches = list(store.aggregate(plan))
    rows = []
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for batch in batches:
        for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
            rows.append(
                tuple(
                    int((v - epoch).total_seconds()) if isinstance(v, datetime) else v for v in row
                )
            )
    return rows


def _plans() -> Iterator[QueryPlan]:
    for anchor, zone in ANCHORS.items():
        for dimension in DIMENSIONS:
            yield QueryPlan(
                start=anchor - timedelta(hours=20, seconds=30),
                end=anchor + timedelta(hours=30),
                advertiser_ids=(1,),
                dimensions=(Dimension.CAMPAIGN_ID, dimension),
                metrics=(Metric.COST, Metric.CLICKS, Metric.DISPLAYS),
                timezone=zone,
            )


def test_rendered_sql_answers_alike_on_current_clickhouse_18_16_and_duckdb(
    current: Any, clickhouse_service: Service
) -> None:
    duck = DuckDBEventStore(":memory:")
    with clickhouse_database(clickhouse_service) as url:
        store = ClickHouseEventStore(url)
        try:
            duck.append(rollup_table(_events()))
            store.append(rollup_table(_events()))
            for plan in _plans():
                expected = _duckdb_rows(duck, plan)
                assert expected, plan
                old = store._query(render_aggregate(plan, f"`{store.database}`.rollup"))
                assert [_parsed(r, plan) for r in old] == expected, plan
                assert _current_rows(current, plan) == expected, plan
        finally:
            store.close()
            duck.close()
