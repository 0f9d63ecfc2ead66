"""``mpo migrate-events``: the embedded store's roll-up copied into ClickHouse, verified,
idempotent and resumable per day."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from mpo_realtime.cli import app
from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, FileFormat
from mpo_realtime.exports.writers import write_export
from mpo_realtime.store.clickhouse_store import ClickHouseEventStore
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from mpo_realtime.store.migrate import _batch_id
from tests.reference import Event, rollup_table

START = datetime(2026, 3, 27, tzinfo=UTC)


def _events() -> list[Event]:
    return [
        Event(
            START + timedelta(minutes=17 * i),
            1 + i % 2,
            10,
            100 + i % 3,
            7,
            "SKU-" + "xyz"[i % 3],
            i % 9,
            i % 4,
            Decimal(i % 7) / 8 if i % 7 else Decimal("0.000000001"),
        )
        for i in range(3 * 1440 // 17)
    ]


def _file(store: DuckDBEventStore | ClickHouseEventStore, plan: QueryPlan) -> bytes:
    sink = io.BytesIO()
    write_export(
        store.aggregate(plan),
        columns=plan.columns,
        file_format=FileFormat.CSV,
        timezone=plan.timezone,
        sink=sink,
    )
    return sink.getvalue()


def test_migrate_events_copies_verifies_and_resumes(tmp_path: Path, clickhouse_url: str) -> None:
    path = tmp_path / "events.duckdb"
    duck = DuckDBEventStore(path)
    events = _events()
    duck.append(rollup_table(events[:100]))
    duck.append(rollup_table(events[100:]))
    duck.append(rollup_table(events[:10]))  # the same keys twice: sums, not duplicates
    duck.close()
    source = f"duckdb:///{path}"
    runner = CliRunner()

    first = runner.invoke(app, ["migrate-events", "--from", source, "--to", clickhouse_url])
    assert first.exit_code == 0, first.output
    assert first.output.count(" copied ") == 3, first.output
    assert "verified:" in first.output

    duck = DuckDBEventStore(path)
    click = ClickHouseEventStore(clickhouse_url)
    try:
        assert {k: v for k, v in click.totals().items() if k != "rows"} == {
            k: v for k, v in duck.totals().items() if k != "rows"
        }
        plan = QueryPlan(
            start=START,
            end=START + timedelta(days=3),
            advertiser_ids=(1, 2),
            dimensions=(Dimension.ADVERTISER_ID, Dimension.PRODUCT_ID, Dimension.HOUR),
            timezone="Europe/Paris",
        )
        assert _file(click, plan) == _file(duck, plan)
        # a copy of the second day that died half-way: part of the day's batch only
        second = START + timedelta(days=1)
        partial = [e for e in events if second <= e.minute < second + timedelta(hours=3)]
        click.delete_batch(_batch_id(second), second, second + timedelta(days=1))
        click.store_batch(rollup_table(partial), _batch_id(second))
    finally:
        duck.close()
        click.close()

    again = runner.invoke(app, ["migrate-events", "--from", source, "--to", clickhouse_url])
    assert again.exit_code == 0, again.output
    assert again.output.count(" present ") == 2, again.output
    assert again.output.count(" recopied ") == 1, again.output

    duck, click = DuckDBEventStore(path), ClickHouseEventStore(clickhouse_url)
    try:
        assert {k: v for k, v in click.totals().items() if k != "rows"} == {
            k: v for k, v in duck.totals().items() if k != "rows"
        }
    finally:
        duck.close()
        click.close()


def test_migrate_events_refuses_a_missing_source(tmp_path: Path, clickhouse_url: str) -> None:
    answer = CliRunner().invoke(
        app,
        [
            "migrate-events",
            "--from",
            f"duckdb:///{tmp_path / 'none.duckdb'}",
            "--to",
            clickhouse_url,
        ],
    )
    assert answer.exit_code == 1
    assert "no event store at" in answer.output
