"""The export writers' time with Arrow's bundled mimalloc against glibc's malloc.

``python benchmarks/bench_writer_pool.py STORE``: reads the large report of
``bench_exports.py`` for the first 3 advertisers of STORE (a store built by
``bench_exports.py --build-store``, its JSON line in STORE.json; opened read-only) into
16,384-row batches, then times ``write_export`` of them to /dev/null 3 times per format,
in a process per pool (Arrow picks its pool at start), the two alternated twice. Prints
one JSON line per process (wall and CPU seconds of each round).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime

import duckdb
import pyarrow as pa

from bench_exports import THROUGHPUT_DIMENSIONS, _literal_sql
from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, FileFormat
from mpo_realtime.exports.writers import write_export


def _one(path: str) -> None:
    with open(f"{path}.json") as f:
        store = json.load(f)
    plan = QueryPlan(
        start=datetime.fromisoformat(store["start"]),
        end=datetime.fromisoformat(store["end"]),
        advertiser_ids=tuple(sorted(int(a) for a in store["advertisers"][:3])),
        dimensions=tuple(Dimension(d) for d in THROUGHPUT_DIMENSIONS.split(",")),
    )
    con = duckdb.connect(path, read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    batches = list(con.sql(_literal_sql(plan)).to_arrow_reader(16_384))
    columns = batches[0].schema.names
    out: dict[str, object] = {
        "pool": pa.default_memory_pool().backend_name,
        "rows": sum(b.num_rows for b in batches),
    }
    for file_format in (FileFormat.CSV, FileFormat.JSON):
        rounds = []
        for _ in range(3):
            with open(os.devnull, "wb") as sink:
                cpu, wall = time.process_time(), time.perf_counter()
                write_export(
                    batches, columns=columns, file_format=file_format, timezone="UTC", sink=sink
                )
                rounds.append(
                    (round(time.perf_counter() - wall, 3), round(time.process_time() - cpu, 3))
                )
        out[file_format.value] = rounds
    print(json.dumps(out), flush=True)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[2] == "--one":
        _one(sys.argv[1])
        return
    for _ in range(2):
        for pool in ("mimalloc", "system"):
            env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": pool}
            subprocess.run([sys.executable, __file__, sys.argv[1], "--one"], env=env, check=True)


if __name__ == "__main__":
    main()
