"""What clustering (settled days rewritten in advertiser order) does for reads.

``python benchmarks/bench_clustering.py STORE OUTDIR``: STORE is a store made by
``bench_exports.py --build-store ... --as-appended`` (rows in arrival order; its JSON line
in STORE.json). On a copy in OUTDIR, opened as the server opens it (160 MB, 2 threads):

1. reads before: 40 reports of one advertiser (dimensions ``campaignId, sellerId``) over
   24 h and over 13 days, p50 and p90 of each; then the large report of
   ``bench_exports.py`` (all advertisers, five dimensions, the whole store) read in parts,
   batches dropped, wall and CPU seconds;
2. the maintenance a server runs after writes, step by step until none is waiting
   (compaction, then clustering): steps, wall and CPU seconds, the longest step (what
   ingestion waits for at most);
3. the same reads after.

Prints one JSON line per measurement. CPU seconds are the process's (the engine's
threads included), which a shared machine blurs less than wall time.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension
from mpo_realtime.store.duckdb_store import DuckDBEventStore

LARGE_DIMENSIONS = "advertiserId,campaignId,sellerId,productId,day"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record | {"load": round(os.getloadavg()[0], 2)}), flush=True)


def _one_advertiser(store: DuckDBEventStore, described: dict[str, Any], label: str) -> None:
    advertisers = sorted(int(a) for a in described["advertisers"])
    end = datetime.fromisoformat(described["end"])
    for days in (1, 13):
        took = []
        for i in range(40):
            # a minute apart, so that no two reports are the same
            start = end - timedelta(days=days + 1) + timedelta(minutes=i)
            plan = QueryPlan(
                start=start,
                end=start + timedelta(days=days),
                advertiser_ids=(advertisers[i % len(advertisers)],),
                dimensions=(Dimension.CAMPAIGN_ID, Dimension.SELLER_ID),
            )
            started = time.perf_counter()
            sum(batch.num_rows for batch in store.aggregate(plan))
            took.append((time.perf_counter() - started) * 1000)
        took.sort()
        _emit(
            {
                "step": f"{label}: one advertiser, {days} day(s)",
                "p50_ms": round(statistics.median(took), 1),
                "p90_ms": round(took[35], 1),
            }
        )


def _large(store: DuckDBEventStore, described: dict[str, Any], label: str) -> None:
    plan = QueryPlan(
        start=datetime.fromisoformat(described["start"]),
        end=datetime.fromisoformat(described["end"]),
        advertiser_ids=tuple(sorted(int(a) for a in described["advertisers"])),
        dimensions=tuple(Dimension(d) for d in LARGE_DIMENSIONS.split(",")),
    )
    started, cpu = time.perf_counter(), _cpu()
    rows = sum(batch.num_rows for batch in store.aggregate(plan))
    _emit(
        {
            "step": f"{label}: the large report's read",
            "rows": rows,
            "wall_s": round(time.perf_counter() - started, 2),
            "cpu_s": round(_cpu() - cpu, 2),
        }
    )


def main() -> None:
    source, out = sys.argv[1], Path(sys.argv[2])
    described = json.loads(Path(f"{source}.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    path = out / "clustering.duckdb"
    shutil.copyfile(source, path)
    store = DuckDBEventStore(path, memory_limit="160MB", threads=2, maintenance_interval=1e9)
    try:
        _one_advertiser(store, described, "before")
        _large(store, described, "before")
        steps, longest = 0, 0.0
        started, cpu = time.perf_counter(), _cpu()
        more = True
        while more:
            began = time.perf_counter()
            more = store.maintain()
            longest = max(longest, time.perf_counter() - began)
            steps += 1
        _emit(
            {
                "step": "maintenance (compaction, then clustering)",
                "steps": steps,
                "wall_s": round(time.perf_counter() - started, 2),
                "cpu_s": round(_cpu() - cpu, 2),
                "longest_step_s": round(longest, 2),
            }
        )
        _one_advertiser(store, described, "after")
        _large(store, described, "after")
    finally:
        store.close()
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
