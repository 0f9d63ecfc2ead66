"""Copy the embedded store's roll-up into ClickHouse: ``mpo migrate-events``.

One UTC day at a time, each day as one batch whose ``batch_id`` is derived from the day, so
that the copy is idempotent and resumable: a day whose batch already holds the source's sums
is skipped, a day half-copied (a copy that died) is deleted and copied again. Every day is
verified after its copy: the batch's displays, clicks and cost must equal the source's to
the last nano-unit. Rows are pre-aggregated on the way, as ingest does: fewer rows, same sums.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa

from mpo_realtime.domain.errors import StoreError
from mpo_realtime.domain.money import COST_SCALE
from mpo_realtime.store.base import ROLLUP_SCHEMA
from mpo_realtime.store.clickhouse_store import ClickHouseEventStore

__all__ = ["DayCopy", "migrate_events"]

_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DayCopy:
    """What happened to one UTC day."""

    day: datetime
    #: "copied", "recopied" (a partial copy was replaced) or "present" (done before)
    action: str
    source_rows: int
    target_rows: int
    displays: int
    clicks: int
    cost: Decimal


def _batch_id(day: datetime) -> int:
    """The day's batch: the same on every run, apart from any ingest batch (random)."""
    digest = hashlib.blake2b(f"mpo-migrate:{day.date().isoformat()}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") >> 1


def _source(url: str) -> duckdb.DuckDBPyConnection:
    if not url.startswith("duckdb:///"):
        raise StoreError(f"--from must be duckdb:///path, not {url!r}")
    path = Path(url.removeprefix("duckdb:///"))
    if not path.exists():
        raise StoreError(f"no event store at {path}")
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise StoreError(
            f"cannot open {path}: {exc}. Stop the service that uses it (or copy the file) first."
        ) from exc
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def migrate_events(source_url: str, target_url: str) -> Iterator[DayCopy]:
    """Copy every day of the DuckDB store at ``source_url`` into ClickHouse; one result a day.

    Raises :class:`StoreError` when a day's copy does not hold the source's sums.
    """
    source = _source(source_url)
    target = ClickHouseEventStore(target_url)
    try:
        days = [
            row[0]
            for row in source.execute(
                "SELECT DISTINCT date_trunc('day', minute)::TIMESTAMPTZ AS d FROM rollup ORDER BY d"
            ).fetchall()
        ]
        for day in days:
            yield _copy_day(source, target, day.astimezone(UTC))
    finally:
        target.close()
        source.close()


def _copy_day(
    source: duckdb.DuckDBPyConnection, target: ClickHouseEventStore, day: datetime
) -> DayCopy:
    end = day + _DAY
    found = source.execute(
        "SELECT count(*), coalesce(sum(displays), 0)::HUGEINT, coalesce(sum(clicks), 0)::HUGEINT,"
        " coalesce(sum(cost), 0)::DECIMAL(38, 9) FROM rollup WHERE minute >= $lo AND minute < $hi",
        {"lo": day, "hi": end},
    ).fetchall()[0]
    rows, displays, clicks, cost = int(found[0]), int(found[1]), int(found[2]), Decimal(found[3])
    wanted = (displays, clicks, int(cost.scaleb(COST_SCALE)))
    batch = _batch_id(day)
    present = target.batch_sums(batch, day, end)
    action = "copied"
    if present[0] and present[1:] == wanted:
        return DayCopy(day, "present", rows, present[0], displays, clicks, cost)
    if present[0]:
        target.delete_batch(batch, day, end)  # a copy that died half-way: start the day again
        action = "recopied"
    table: pa.Table = source.sql(
        "SELECT minute, advertiser_id, partner_id, campaign_id, seller_id, product_id,"
        " displays, clicks, cost, NULL::VARCHAR AS seller_name"
        " FROM rollup WHERE minute >= $lo AND minute < $hi",
        params={"lo": day, "hi": end},
    ).to_arrow_table()
    target.store_batch(table.cast(ROLLUP_SCHEMA), batch)
    stored = target.batch_sums(batch, day, end)
    if stored[1:] != wanted:
        raise StoreError(
            f"day {day.date()}: ClickHouse holds displays, clicks, cost nano-units {stored[1:]}"
            f" after the copy, the source {wanted}; run the command again"
        )
    return DayCopy(day, action, rows, stored[0], displays, clicks, cost)
