"""Where a large export's time goes: query, formatting, writing, against DuckDB's COPY.

In process, on a copy of a store made by ``bench_exports.py --build-store``, under the
server's default DuckDB memory limit (160 MB), the report of ``bench_exports.py``'s
throughput leg (all advertisers, its five dimensions, the whole store), steps in turn:

* ``query``: the store's read (in parts past the limit), Arrow batches read and dropped;
* ``copy_parts``: DuckDB's ``COPY (<part>) TO 'x.csv' (HEADER)`` of the same parts;
* ``csv_typed`` / ``json_typed``: typed rows + the Python writer (the default);
* ``csv_lines`` / ``json_lines``: the engine-made text + ``write_lines``.

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
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

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
            parts = store._parts(cursor, plan, params)  # noqa: SLF001
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

    table: dict[str, Callable[[], dict[str, Any]]] = {
        "query": query,
        "copy_parts": copy_parts,
        "csv_typed": typed(FileFormat.CSV),
        "json_typed": typed(FileFormat.JSON),
        "csv_lines": lines(FileFormat.CSV),
        "json_lines": lines(FileFormat.JSON),
    }
    print(json.dumps({"part_rows": store.part_rows, "load": os.getloadavg()}), flush=True)
    try:
        for step in steps:
            started, cpu = time.perf_counter(), _cpu()
            extra = table[step]()
            wall = round(time.perf_counter() - started, 2)
            print(
                json.dumps({"step": step, "wall_s": wall, "cpu_s": round(_cpu() - cpu, 2)} | extra)
            )
    finally:
        store.close()
        path.unlink(missing_ok=True)
        db.unlink()


def _result(result: WriteResult) -> dict[str, Any]:
    return {"rows": result.rows, "bytes": result.bytes}


if __name__ == "__main__":
    main()
