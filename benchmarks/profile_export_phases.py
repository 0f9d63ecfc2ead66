"""Where a large export's time goes: query, formatting, writing, against DuckDB's COPY.

In process, on a copy of a store made by ``bench_exports.py --build-store``, under the
server's default DuckDB memory limit (160 MB), the report of ``bench_exports.py``'s
throughput leg (all advertisers, its five dimensions, the whole store), steps in turn:

* ``query``: the store's read (in parts past the limit), Arrow batches read and dropped;
* ``copy_parts``: DuckDB's ``COPY (<part>) TO 'x.csv' (HEADER)`` of the same parts;
* ``csv_typed`` / ``json_typed``: typed rows + the Python writer (the default);
* ``csv_lines`` / ``json_lines``: the engine-made text + ``write_lines``;
* ``group_then_sort`` / ``group_then_ranges4`` / ``group_then_ranges8``: the design
  "group once, then sort" (2026-11-30), batches read and dropped: the aggregate into a
  temporary table (``CREATE TEMP TABLE ... AS``, one scan, spilled), then one ``ORDER BY``
  over it, or 4 or 8 ranges of its sort order (quantiles of a 20,000-row sample of it),
  each sorted by a query of its own;
* ``query_unbounded``: the store's SQL as one query on a second copy of the file, DuckDB
  without a memory limit (what the benchmark's unbounded ``COPY`` runs).

Usage: ``.venv/bin/python benchmarks/profile_export_phases.py STORE OUTDIR
query,copy_parts,csv_typed``. Prints one JSON line per step: wall and CPU seconds of
the process (CPU seconds are what a shared machine does not blur).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, FileFormat
from mpo_realtime.exports.writers import WriteResult, write_export, write_lines
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from mpo_realtime.store.plan_sql import render_aggregate

DIMENSIONS = "advertiserId,campaignId,sellerId,productId,day"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    source, out, steps = sys.argv[1], Path(sys.argv[2]), sys.argv[3].split(",")
    db = out / "profile.duckdb"
    shutil.copyfile(source, db)
    store = DuckDBEventStore(db, memory_limit="160MB", maintenance_interval=1e9)
    advertisers = store.call(
        lambda c: c.execute("SELECT DISTINCT advertiser_id FROM rollup ORDER BY 1").fetchall()
    )
    low, high = store.call(
        lambda c: c.execute("SELECT min(minute), max(minute) FROM rollup").fetchall()[0]
    )
    plan = QueryPlan(
        start=low,
        end=high + timedelta(minutes=1),
        advertiser_ids=tuple(a[0] for a in advertisers),
        dimensions=tuple(Dimension(d) for d in DIMENSIONS.split(",")),
    )
    path = out / "profile.out"

    def query() -> dict[str, Any]:
        return {"rows": sum(batch.num_rows for batch in store.aggregate(plan))}

    def typed(file_format: FileFormat) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            with path.open("wb") as sink:
                result = write_export(
                    store.aggregate(plan),
                    columns=plan.columns,
                    file_format=file_format,
                    timezone=plan.timezone,
                    sink=sink,
                )
            return _result(result)

        return run

    def lines(file_format: FileFormat) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            with path.open("wb") as sink:
                result = write_lines(
                    store.export_lines(plan, file_format),
                    columns=plan.columns,
                    file_format=file_format,
                    sink=sink,
                )
            return _result(result)

        return run

    def copy_parts() -> dict[str, Any]:
        cursor = store._cursor()  # noqa: SLF001 - the store's own read cursor and parts
        params = {"start": plan.start, "end": plan.end}
        try:
            cursor.execute("BEGIN TRANSACTION")
            count = store._input_rows(cursor, plan, params)  # noqa: SLF001
            parts = store._parts(cursor, plan, params, count, store.part_rows)  # noqa: SLF001
            for i, (part, bounds) in enumerate(parts):
                target = f"{path}.{i}"
                cursor.execute(
                    f"COPY ({render_aggregate(plan, part=part)}) TO '{target}' (HEADER)",
                    {**params, **bounds},
                )
        finally:
            cursor.close()
        size = 0
        for i in range(len(parts)):
            size += os.path.getsize(f"{path}.{i}")
            os.unlink(f"{path}.{i}")
        return {"parts": len(parts), "bytes": size}

    keys = ", ".join(f'"{d.value}"' for d in plan.dimensions)
    struct = "{" + ", ".join(f"'k{i}': \"{d.value}\"" for i, d in enumerate(plan.dimensions)) + "}"

    def drained(cursor: Any, sql: str, values: dict[str, Any]) -> int:
        reader = cursor.sql(sql, params=values).to_arrow_reader(16_384)
        return sum(batch.num_rows for batch in reader)

    def group_then_sort(ranges: int) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            cursor = store._cursor()  # noqa: SLF001 - a read cursor of the store
            try:
                cursor.execute("BEGIN TRANSACTION")
                started = time.perf_counter()
                cursor.execute(
                    f"CREATE TEMP TABLE grouped AS {render_aggregate(plan, ordered=False)}",
                    {"start": plan.start, "end": plan.end},
                )
                grouped = round(time.perf_counter() - started, 2)
                if ranges == 1:
                    return {"rows": drained(cursor, f"SELECT * FROM grouped ORDER BY {keys}", {})}
                cuts = [i / ranges for i in range(1, ranges)]
                bounds = cursor.execute(
                    f"SELECT quantile_disc({struct}, {cuts}) FROM grouped"
                    " USING SAMPLE reservoir(20000 ROWS) REPEATABLE (7)"
                ).fetchall()[0][0]
                edges = [None, *bounds, None]
                rows = 0
                for low, high in zip(edges, edges[1:], strict=False):
                    where, values = [], {}
                    if low is not None:
                        where.append(f"{struct} >= $low")
                        values["low"] = low
                    if high is not None:
                        where.append(f"{struct} < $high")
                        values["high"] = high
                    sql = f"SELECT * FROM grouped WHERE {' AND '.join(where)} ORDER BY {keys}"
                    rows += drained(cursor, sql, values)
                return {"rows": rows, "group_s": grouped}
            finally:
                cursor.execute("ROLLBACK")
                cursor.close()

        return run

    def query_unbounded() -> dict[str, Any]:
        second = out / "unbounded.duckdb"
        shutil.copyfile(source, second)
        con = duckdb.connect(str(second), read_only=True)
        try:
            con.execute("SET TimeZone = 'UTC'")
            return {
                "rows": drained(con, render_aggregate(plan), {"start": plan.start, "end": plan.end})
            }
        finally:
            con.close()
            second.unlink()

    table: dict[str, Callable[[], dict[str, Any]]] = {
        "group_then_sort": group_then_sort(1),
        "group_then_ranges4": group_then_sort(4),
        "group_then_ranges8": group_then_sort(8),
        "query_unbounded": query_unbounded,
        "query": query,
        "copy_parts": copy_parts,
        "csv_typed": typed(FileFormat.CSV),
        "json_typed": typed(FileFormat.JSON),
        "csv_lines": lines(FileFormat.CSV),
        "json_lines": lines(FileFormat.JSON),
    }
    head = {"part_rows": store.part_rows}
    print(json.dumps(head | {"load": os.getloadavg()}), flush=True)
    peak = _PeakRss()
    try:
        for step in steps:
            peak.reset()
            started, cpu = time.perf_counter(), _cpu()
            extra = table[step]()
            wall = round(time.perf_counter() - started, 2)
            figures = {"step": step, "wall_s": wall, "cpu_s": round(_cpu() - cpu, 2)}
            figures |= {"rss_peak_mb": peak.mb, "load": os.getloadavg()[0]}
            print(json.dumps(figures | extra), flush=True)
    finally:
        peak.stop()
        store.close()
        path.unlink(missing_ok=True)
        db.unlink()


class _PeakRss:
    """The process's largest RSS since the last ``reset``, sampled every 50 ms."""

    def __init__(self) -> None:
        self._peak = 0
        self._done = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            with Path("/proc/self/statm").open() as statm:
                self._peak = max(
                    self._peak, int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
                )

    def reset(self) -> None:
        self._peak = 0

    @property
    def mb(self) -> int:
        return round(self._peak / 1e6)

    def stop(self) -> None:
        self._done.set()


def _result(result: WriteResult) -> dict[str, Any]:
    return {"rows": result.rows, "bytes": result.bytes}


if __name__ == "__main__":
    main()
