"""Benchmark the streamed export writers against DuckDB's own COPY ... TO.

Builds a table shaped like a productId report (advertiserId, productId, clicks,
displays, cost), sorted as the contract orders rows, then times
:func:`mpo_realtime.exports.writers.write_export` to CSV and JSON into a temp file
against DuckDB's ``COPY (SELECT * FROM tbl) TO ... (HEADER)`` / ``(ARRAY true)``
of the same Arrow table registered in an in-memory DuckDB.

Usage: ``.venv/bin/python benchmarks/bench_writers.py --rows 10000000``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mpo_realtime.domain.report import FileFormat
from mpo_realtime.exports.writers import write_export
from mpo_realtime.store.base import cost_array

__all__ = ["build_table", "main"]

#: rows per batch handed to write_export: DuckDB's fetch_record_batch default
BATCH_ROWS = 1_000_000


def build_table(rows: int, seed: int = 7) -> pa.Table:
    """A productId-report-like table of ``rows`` rows, sorted by its dimensions."""
    rng = np.random.default_rng(seed)
    advertisers = rng.integers(1, 2_000, rows, dtype=np.int64)
    # Realistic product IDs: a mix of retailer SKUs ("SKU-004211-BLK-XL"), ASIN-like
    # codes ("B07XJ8C8F5") and numeric catalogue IDs, with ~rows/10 distinct values.
    catalogue = max(rows // 10, 1)
    product_no = rng.integers(0, catalogue, rows, dtype=np.int64)
    style = product_no % 3
    number = pa.array(product_no)
    sku = pc.binary_join_element_wise(
        "SKU-",
        pc.utf8_lpad(number.cast(pa.string()), 6, "0"),
        pc.take(pa.array(["-BLK-XL", "-WHT-M", "-RED-S", "-NAVY-L"]), pa.array(product_no % 4)),
        "",
    )
    asin = pc.binary_join_element_wise("B0", pc.utf8_lpad(pc.cast(number, pa.string()), 8, "X"), "")
    numeric = pc.cast(pc.add(number, 100_000_000_000), pa.string())
    product = pc.case_when(
        pa.StructArray.from_arrays(
            [pa.array(style == 0), pa.array(style == 1)], names=["sku", "asin"]
        ),
        sku,
        asin,
        numeric,
    )
    clicks = rng.poisson(40, rows).astype(np.int64)
    displays = clicks * rng.integers(20, 2_000, rows, dtype=np.int64)
    # Summed costs use their 9 decimals; some are whole cents. Types as a report hands
    # them over: exact sums, counts as 38-digit integers, cost with 9 decimals.
    nanos = np.rint(rng.gamma(2.0, 400.0, rows) * 1e9).astype(np.int64)
    cents = rng.random(rows) < 0.3
    nanos[cents] = nanos[cents] // 10_000_000 * 10_000_000
    table = pa.table(
        {
            "advertiserId": advertisers,
            "productId": product,
            "clicks": pa.array(clicks).cast(pa.decimal128(38, 0)),
            "displays": pa.array(displays).cast(pa.decimal128(38, 0)),
            "cost": cost_array(nanos).cast(pa.decimal128(38, 9)),
        }
    )
    return table.sort_by([("advertiserId", "ascending"), ("productId", "ascending")])


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    """Parse ``--rows`` and print the timings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    started = time.perf_counter()
    table = build_table(args.rows)
    print(f"built {table.num_rows:,} rows in {time.perf_counter() - started:.1f} s")
    columns = table.column_names

    con = duckdb.connect(":memory:")
    con.register("tbl", table)
    with tempfile.TemporaryDirectory() as tmp:
        for file_format, copy_options in (
            (FileFormat.CSV, "HEADER"),
            (FileFormat.JSON, "ARRAY true"),
        ):
            ours_path = Path(tmp) / f"ours.{file_format}"
            duck_path = Path(tmp) / f"duck.{file_format}"

            def ours(path: Path = ours_path, fmt: FileFormat = file_format) -> None:
                with path.open("wb") as sink:
                    write_export(
                        table.to_reader(max_chunksize=BATCH_ROWS),
                        columns=columns,
                        file_format=fmt,
                        timezone="UTC",
                        sink=sink,
                    )

            def duck(path: Path = duck_path, options: str = copy_options) -> None:
                con.execute(f"COPY (SELECT * FROM tbl) TO '{path}' ({options})")

            ours_s = _timed(ours)
            duck_s = _timed(duck)
            print(
                f"{file_format.value.upper():4} write_export {ours_s:6.2f} s"
                f" ({os.path.getsize(ours_path) / 1e6:7.1f} MB)"
                f" | duckdb COPY {duck_s:6.2f} s"
                f" ({os.path.getsize(duck_path) / 1e6:7.1f} MB)"
                f" | ratio {ours_s / duck_s:.2f}x"
            )
    con.close()


if __name__ == "__main__":
    main()
