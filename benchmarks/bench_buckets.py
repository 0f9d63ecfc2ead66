"""Benchmark the time-bucket SQL: boundaries from the domain (now) against DuckDB's zones (before).

Until the tzdata change, ``store/plan_sql.py`` asked DuckDB's ICU time-zone functions
for every row's bucket (``timezone($tz, minute)``, ``date_trunc`` in the zone, and for
hours a ``CASE`` over the offset changes found by an hour-by-hour walk). Now the domain
computes the boundaries and the SQL is UTC arithmetic over a few pieces. This script
runs both on the same store and reports the query time of each and their ratio.

1. Build a DuckDB file of ``--rows`` roll-up rows (default 10M) spread over
   ``--days`` days (default 45, the retention) ending 2026-11-29, with 50 advertisers,
   in a temporary directory.
2. For each zone and bucket (hour, day, week, month), the report
   ``dimensions = [advertiserId, <bucket>]`` over the whole store, rendered by
   ``render_aggregate`` (now) and by the previous renderer reproduced below (before);
   and the same report without a time bucket (the floor: scan, filter and sum).
3. Each query is run ``--repeat`` times (default 5) into an Arrow table on one
   connection with ``--threads`` threads; the best time is kept. "bucket cost ratio"
   is (now - floor) / (before - floor): what the bucket itself costs, now against before.

Usage: ``.venv/bin/python benchmarks/bench_buckets.py`` (``--quick``: 1M rows).
Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from _harness import print_table
from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, Metric
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from mpo_realtime.store.plan_sql import render_aggregate

__all__ = ["main"]

END = datetime(2026, 11, 29, tzinfo=UTC)
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe")
BUCKETS = (Dimension.HOUR, Dimension.DAY, Dimension.WEEK, Dimension.MONTH)


# -- the renderer before the change (commit e478836), for comparison -----------------------


def _old_offset_changes(timezone: str, start: datetime, end: datetime) -> list[datetime]:
    zone = ZoneInfo(timezone)
    changes: list[datetime] = []
    low = start.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    while low < end:
        high = low + timedelta(hours=1)
        before = low.astimezone(zone).utcoffset()
        if before != high.astimezone(zone).utcoffset():
            moment = low + timedelta(minutes=1)
            while moment.astimezone(zone).utcoffset() == before:
                moment += timedelta(minutes=1)
            if moment <= end:
                changes.append(moment)
        low = high
    return changes


def _old_bucket(dimension: Dimension, plan: QueryPlan) -> str:
    local = "timezone($tz, minute)"
    if dimension is Dimension.HOUR:
        top = f"minute - to_minutes(extract('minute' FROM {local})::BIGINT)"
        changes = _old_offset_changes(plan.timezone, plan.start, plan.end)
        if not changes:
            return top
        latest = " ".join(
            f"WHEN minute >= TIMESTAMPTZ '{c.isoformat()}' THEN TIMESTAMPTZ '{c.isoformat()}'"
            for c in reversed(changes)
        )
        return f"greatest({top}, CASE {latest} END)"
    return f"timezone($tz, date_trunc('{dimension.value}', {local}))"


def _old_sql(plan: QueryPlan, dimension: Dimension) -> str:
    return (
        f'SELECT advertiser_id AS "advertiserId", {_old_bucket(dimension, plan)} AS "{dimension}",'
        ' sum(displays)::BIGINT AS "displays" FROM rollup WHERE minute >= $start'
        " AND minute < $end GROUP BY 1, 2 HAVING sum(displays)::BIGINT <> 0 ORDER BY 1, 2"
    )


# -- the run -------------------------------------------------------------------------------


def _build(path: Path, rows: int, days: int) -> None:
    DuckDBEventStore(str(path)).close()  # the schema, as the service creates it
    minutes = days * 1440
    con = duckdb.connect(str(path))
    con.execute(
        f"""INSERT INTO rollup
        SELECT TIMESTAMPTZ '{(END - timedelta(days=days)).isoformat()}'
                 + to_minutes((i * {minutes} // {rows})::BIGINT),
               i % 50 + 1, i % 4 + 1, i % 200 + 1, i % 500 + 1, 'p' || (i % 1000),
               i % 7 + 1, i % 3, (i % 100) / 10.0
        FROM range({rows}) t(i)"""
    )
    con.execute("CHECKPOINT")
    con.close()


def _best(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        con.sql(sql, params=params).to_arrow_table()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="1M rows, 2 repeats")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = 1_000_000, 2
    start = END - timedelta(days=args.days)
    figures: dict[str, Any] = {"rows": args.rows, "days": args.days, "cases": []}
    with tempfile.TemporaryDirectory(prefix="bench-buckets-") as tmp:
        path = Path(tmp) / "events.duckdb"
        began = time.perf_counter()
        _build(path, args.rows, args.days)
        figures["build_seconds"] = round(time.perf_counter() - began, 1)
        con = duckdb.connect(str(path), read_only=True)
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET threads = {args.threads}")
        params = {"start": start, "end": END}
        floor_plan = QueryPlan(
            start=start,
            end=END,
            advertiser_ids=(),
            dimensions=(Dimension.ADVERTISER_ID,),
            metrics=(Metric.DISPLAYS,),
        )
        floor = _best(con, render_aggregate(floor_plan), params, args.repeat)
        figures["floor_seconds"] = round(floor, 3)
        table: list[list[str]] = []
        for zone in ZONES:
            for dimension in BUCKETS:
                plan = QueryPlan(
                    start=start,
                    end=END,
                    advertiser_ids=(),
                    dimensions=(Dimension.ADVERTISER_ID, dimension),
                    metrics=(Metric.DISPLAYS,),
                    timezone=zone,
                )
                now_sql = render_aggregate(plan)
                now = _best(con, now_sql, params, args.repeat)
                before = _best(con, _old_sql(plan, dimension), {**params, "tz": zone}, args.repeat)
                pieces = len(plan.buckets(dimension))
                figures["cases"].append(
                    {
                        "zone": zone,
                        "bucket": str(dimension),
                        "pieces": pieces,
                        "before_seconds": round(before, 3),
                        "now_seconds": round(now, 3),
                    }
                )
                table.append(
                    [
                        zone,
                        str(dimension),
                        str(pieces),
                        f"{before:.3f}",
                        f"{now:.3f}",
                        f"{now / before:.2f}",
                        f"{(now - floor) / max(before - floor, 1e-9):.2f}",
                    ]
                )
        con.close()
    print_table(
        f"{args.rows:,} rows over {args.days} days; floor (no time bucket) {floor:.3f} s",
        ["zone", "bucket", "pieces", "before s", "now s", "now/before", "bucket cost ratio"],
        table,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
