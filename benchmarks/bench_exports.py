"""Benchmark exports end to end through a real ``mpo serve``: job latency and throughput.

1. Build a store of ``--rows`` roll-up rows (default 20M) with the simulator's back-fill
   and ``DuckDBEventStore.append``, in a fresh temporary data dir, in a separate process
   (the big simulated world's memory goes away with it), then close it.
2. Job latency: ``--jobs`` (default 30) 24 h reports for one advertiser, dimensions
   campaignId and sellerId, each ``startDate`` one minute later than the previous one so
   that the export cache never answers; create, poll every 10 ms until Done.
3. Export throughput: one large report across every advertiser (default dimensions
   advertiserId, campaignId, sellerId, productId, day over the whole store, ~10M rows)
   as CSV and as JSON, create -> Done through the API (to the server's Done record,
   polled every 0.5 s), while the server's RSS is sampled every 50 ms. Baseline of the
   same run, right after each API export (server idle): a
   separate process opens a copy of the DuckDB file read-only and runs DuckDB's bare
   ``COPY (same SQL) TO 'x.csv' (HEADER)`` or ``COPY (same SQL) TO 'x.json'``, with the
   SQL of ``render_aggregate(QueryPlan(...))`` and its parameters substituted, under the
   server's own DuckDB memory limit (``--server-memory-limit``, else the default
   ``MPO_EVENT_STORE_MEMORY_LIMIT``), spilling beside it, as the store configures DuckDB.
   Where that one COPY runs out of memory, the failure is recorded and the COPY timed
   again without a limit. ``--repeat`` pairs per format (best of each reported);
   ``--memory-limit X``: once more, the CSV COPY under DuckDB ``memory_limit`` X.

Why the extra dimensions: the simulator draws products with a Zipf law (exponent 1.05),
so a 20M-row store holds only ~3M distinct (advertiser, product) pairs; adding campaignId,
sellerId and day (all allowed with productId) gives ~10M output rows from the same store.
``--dimensions advertiserId,productId`` runs the narrower report instead.

Usage: ``.venv/bin/python benchmarks/bench_exports.py`` (``--quick``: < 1 min smoke run).
Prints tables, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from _harness import (
    BENCH_SERVER_ENV,
    STATS,
    RssSampler,
    cpu_seconds,
    create_client,
    get_token,
    print_table,
    running_server,
    summary_ms,
)
from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension
from mpo_realtime.settings import Settings
from mpo_realtime.store.base import IngestRequest
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from mpo_realtime.store.plan_sql import render_aggregate
from mpo_realtime.store.simulator import Simulator, World

__all__ = ["main"]

SEED = 1
LATENCY_DIMENSIONS = ["campaignId", "sellerId"]
THROUGHPUT_DIMENSIONS = "advertiserId,campaignId,sellerId,productId,day"


def _now() -> datetime:
    return datetime.now(UTC)


# -- store build (a separate process) -----------------------------------------------------


def _world(products: int) -> World:
    return World.generate(seed=SEED, partners=4, advertisers_per_partner=5, products=products)


def _maintain(store: DuckDBEventStore, args: argparse.Namespace) -> float:
    """The maintenance a server runs on its own within minutes of the writes: compaction,
    then each settled day rewritten in advertiser order (clustering). Its seconds."""
    if args.as_appended:
        return 0.0
    started = time.perf_counter()
    while store.compact(step=timedelta(hours=6)):
        pass
    while store.maintain():
        pass
    return round(time.perf_counter() - started, 1)


def build_store(args: argparse.Namespace) -> None:
    """``--build-store PATH``: back-fill ``--rows`` rows ending at ``--end``; print JSON."""
    started = time.perf_counter()
    world = _world(args.products)
    end = datetime.fromisoformat(args.end)
    start = end - timedelta(days=args.days)
    minutes = args.days * 1440
    # Calibrate the display rate: rows per display from 24 minutes spread over a day.
    guess = args.rows / minutes * 1.1
    probe = Simulator(world, seed=SEED, displays_per_minute=guess)
    sampled = sum(
        probe.minute_rows(start + timedelta(minutes=60 * h + 7)).num_rows for h in range(24)
    )
    rate = args.rows / minutes / (sampled / (24 * guess))
    simulator = Simulator(world, seed=SEED, displays_per_minute=rate)
    prepared = time.perf_counter() - started
    rows = 0
    if args.build == "ingest":
        # As live traffic writes it: requests of 10,000 rows through the store's ingest
        # path (group commit, pre-aggregation, write marks), with its maintenance running;
        # then maintenance is let finish, as on a server idle for a while.
        store = DuckDBEventStore(args.build_store)
        try:
            waiting: list[Any] = []
            for batch in simulator.backfill(start, end, batch_rows=10_000):
                table = pa.Table.from_batches([batch])
                waiting.append(store.submit(IngestRequest(table, table.num_rows)))
                rows += table.num_rows
                while len(waiting) > 16:
                    waiting.pop(0).result()
            for future in waiting:
                future.result()
            while store.compact(step=timedelta(hours=6)):
                pass
            maintained = _maintain(store, args)
        finally:
            store.close()
    else:
        # No maintenance during the appends (compaction would fold nothing here: one row
        # per key and minute already); it runs once they are done, as on a server.
        store = DuckDBEventStore(args.build_store, maintenance_interval=1e9)
        try:
            for batch in simulator.backfill(start, end, batch_rows=1_000_000):
                rows += store.append(batch)
            maintained = _maintain(store, args)
        finally:
            store.close()
    print(
        json.dumps(
            {
                "rows": rows,
                "build": args.build,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "displays_per_minute": round(rate, 1),
                "advertisers": [a.advertiser_id for a in world.advertisers],
                "products_per_advertiser": args.products,
                "world_seconds": round(prepared, 1),
                "layout": "as appended" if args.as_appended else "maintained",
                "maintenance_seconds": maintained,
                "build_seconds": round(time.perf_counter() - started, 1),
                "file_bytes": os.path.getsize(args.build_store),
            }
        ),
        flush=True,
    )


# -- COPY baseline (a separate process) ---------------------------------------------------


def copy_baseline(args: argparse.Namespace) -> None:
    """``--copy-baseline DB``: DuckDB's bare COPY of ``--sql-file`` to CSV and JSON."""
    sql = Path(args.sql_file).read_text()
    out = Path(args.out_dir)
    con = duckdb.connect(args.copy_baseline, read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    result: dict[str, Any] = {}
    chosen = args.formats.split(",")
    known = (("csv", " (HEADER)"), ("json", ""), ("parquet", " (FORMAT PARQUET)"))
    formats = [f for f in known if f[0] in chosen]
    if args.copy_memory_limit:
        # The server's own conditions: its memory limit, spilling beside the file, and
        # scan order not kept (its ORDER BY orders), as the store configures DuckDB.
        con.execute(f"SET memory_limit = '{args.copy_memory_limit}'")
        con.execute(f"SET temp_directory = '{out / 'spill'}'")
        con.execute("SET preserve_insertion_order = false")
        result["memory_limit"] = args.copy_memory_limit
    for name, options in formats:
        path = out / f"baseline.{name}"
        started = time.perf_counter()
        try:
            con.execute(f"COPY ({sql}) TO '{path}'{options}")
        except duckdb.OutOfMemoryException as exc:
            # DuckDB's one query does not fit the limit: say so, and time it unbounded
            result[f"{name}_limited_error"] = str(exc).splitlines()[0]
            result[f"{name}_limited_failed_after"] = round(time.perf_counter() - started, 3)
            con.execute("RESET memory_limit")
            started = time.perf_counter()
            con.execute(f"COPY ({sql}) TO '{path}'{options}")
            if args.copy_memory_limit:
                con.execute(f"SET memory_limit = '{args.copy_memory_limit}'")
        result[f"{name}_seconds"] = round(time.perf_counter() - started, 3)
        result[f"{name}_bytes"] = path.stat().st_size
        # DuckDB writes CSV with a header line, JSON as one object per line
        result[f"{name}_rows"] = (
            _data_rows(path, name) if name == "parquet" else _lines(path) - (name == "csv")
        )
        path.unlink()
    con.close()
    result["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result), flush=True)


def _server_timings(jobs_db: Path) -> dict[str, Any]:
    """What the runner recorded per job: seconds to the first batch and writing the rest."""
    with contextlib.closing(sqlite3.connect(jobs_db)) as con:
        rows = con.execute(
            "SELECT id, file_format, row_count, query_seconds, write_seconds FROM export_jobs"
            " ORDER BY created_at"
        ).fetchall()
    return {
        export_id: {"format": fmt, "rows": count, "query_s": query, "write_s": write}
        for export_id, fmt, count, query, write in rows
    }


def _literal_sql(plan: QueryPlan) -> str:
    """The store's SQL for ``plan`` with its parameters written in as literals."""
    sql = render_aggregate(plan)
    sql = sql.replace("$start", f"TIMESTAMPTZ '{plan.start.isoformat()}'")
    return sql.replace("$end", f"TIMESTAMPTZ '{plan.end.isoformat()}'")


# -- API helpers --------------------------------------------------------------------------


def _create(http: httpx.Client, headers: dict[str, str], attributes: dict[str, Any]) -> str:
    body = {"data": {"type": "RealTimeProductReportJob", "attributes": attributes}}
    answer = http.post(f"{STATS}/realtime-reports/export", json=body, headers=headers)
    answer.raise_for_status()
    export_id: str = answer.json()["exportId"]
    return export_id


def _wait_done(
    http: httpx.Client, headers: dict[str, str], export_id: str, interval: float, timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = http.get(f"{STATS}/report-jobs/{export_id}", headers=headers)
        answer.raise_for_status()
        status: str = answer.json()["status"]
        if status != "Pending":
            return status
        time.sleep(interval)
    return "Timeout"


def _job_latency(
    url: str, token: str, advertiser: int, start: datetime, jobs: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    seconds: list[float] = []
    statuses: dict[str, int] = {}
    ids: list[str] = []
    with httpx.Client(base_url=url, timeout=60.0) as http:
        for i in range(jobs):
            begin = start + timedelta(minutes=i)
            attributes = {
                "advertiserIds": [str(advertiser)],
                "dimensions": LATENCY_DIMENSIONS,
                "startDate": begin.isoformat(),
                "endDate": (begin + timedelta(hours=24)).isoformat(),
            }
            started = time.perf_counter()
            export_id = _create(http, headers, attributes)
            status = _wait_done(http, headers, export_id, interval=0.01, timeout=120.0)
            seconds.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            ids.append(export_id)
    return {
        "jobs": jobs,
        "statuses": statuses,
        "create_to_done": summary_ms(seconds),
        "first_ms": round(seconds[0] * 1000, 1) if seconds else None,
        "seconds": [round(s, 4) for s in seconds],
        "export_ids": ids,
    }


def _lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            lines += chunk.count(b"\n")
    return lines


def _data_rows(path: Path, file_format: str) -> int:
    """Data rows of an export file: CSV lines minus the header, JSON's ``rows``, or
    the row count of a Parquet footer."""
    if file_format == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    if file_format == "json":
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 64))
            tail = f.read().decode()
        return int(tail.rsplit('"rows":', 1)[1].rstrip("}"))
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            lines += chunk.count(b"\n")
    return lines - 1


#: Polls of a throughput export's status. Its time is taken to the server's own Done
#: record (``finished_at``), so a slower poll costs the figure nothing; polls every 50 ms
#: cost ~0.9 CPU s per 10 s export (server and this process) on the 2 cores the export
#: needs (docs/benchmarks.md, "Where the server's extra second went").
THROUGHPUT_POLL_SECONDS = 0.5


def _finished_at(jobs_db: Path, export_id: str) -> float | None:
    """When the server recorded the job Done (``finished_at``, UTC), as a Unix time."""
    with contextlib.closing(sqlite3.connect(f"file:{jobs_db}?mode=ro", uri=True)) as con:
        row = con.execute("SELECT finished_at FROM export_jobs WHERE id = ?", (export_id,))
        found = row.fetchone()
    if not found or found[0] is None:
        return None
    return datetime.fromisoformat(str(found[0])).replace(tzinfo=UTC).timestamp()


def _api_export(
    http: httpx.Client,
    headers: dict[str, str],
    pid: int,
    data_dir: Path,
    attributes: dict[str, Any],
    timeout: float,
) -> dict[str, Any]:
    """One export create -> Done through the API, with the server's RSS sampled meanwhile.

    ``seconds``: from just before the create request to the server's Done record, on
    this machine's one clock; ``seen_seconds``: until a poll saw Done (every
    :data:`THROUGHPUT_POLL_SECONDS`). CPU seconds of the server and of this process
    meanwhile show what the measuring costs.
    """
    file_format = attributes["fileFormat"]
    own = resource.getrusage(resource.RUSAGE_SELF)
    server_cpu = cpu_seconds(pid)
    with RssSampler(pid, interval=0.05) as rss:
        created = time.time()
        started = time.perf_counter()
        export_id = _create(http, headers, attributes)
        status = _wait_done(
            http, headers, export_id, interval=THROUGHPUT_POLL_SECONDS, timeout=timeout
        )
        seen = time.perf_counter() - started
    mine = resource.getrusage(resource.RUSAGE_SELF)
    done_at = _finished_at(data_dir / "jobs.sqlite3", export_id)
    path = data_dir / "exports" / f"{export_id}.{file_format}"
    entry: dict[str, Any] = {
        "export_id": export_id,
        "status": status,
        "seconds": round(done_at - created, 3) if done_at is not None else round(seen, 3),
        "seen_seconds": round(seen, 3),
        "server_cpu_s": round(cpu_seconds(pid) - server_cpu, 2),
        "bench_cpu_s": round(mine.ru_utime + mine.ru_stime - own.ru_utime - own.ru_stime, 2),
        "rss_before_mb": round(rss.start_kb / 1024, 1),
        "rss_peak_mb": round(rss.peak_kb / 1024, 1),
        "vm_hwm_mb": round((rss.hwm_kb() or 0) / 1024, 1),
        "rss_samples": rss.samples,
    }
    if status == "Done" and path.is_file():
        entry["bytes"] = path.stat().st_size
        entry["rows"] = _data_rows(path, file_format)
        path.unlink()  # room on the disk for the next one
    return entry


def _throughput(
    url: str,
    token: Callable[[], str],
    pid: int,
    data_dir: Path,
    attributes: dict[str, Any],
    *,
    baseline_command: list[str],
    repeat: int,
    timeout: float,
    formats: list[str],
) -> dict[str, Any]:
    """Per format and repeat: the API export, then at once the baseline COPY (server idle).

    Interleaving keeps each pair close in time on a shared machine. Repeats move
    ``endDate`` on by a minute (past the data, so the same rows) to miss the cache.
    """
    end = datetime.fromisoformat(attributes["endDate"])
    result: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=60.0) as http:
        for file_format in formats:
            runs: list[dict[str, Any]] = []
            for attempt in range(repeat):
                moved = (end + timedelta(minutes=attempt)).isoformat()
                # a fresh token each time: 10M-row runs outlast a token's 15 minutes
                headers = {"Authorization": f"Bearer {token()}"}
                entry = _api_export(
                    http,
                    headers,
                    pid,
                    data_dir,
                    {**attributes, "fileFormat": file_format, "endDate": moved},
                    timeout,
                )
                base = _run_json([*baseline_command, "--formats", file_format], timeout=3600)
                entry["baseline_memory_limit"] = base.get("memory_limit")
                entry["baseline_limited_error"] = base.get(f"{file_format}_limited_error")
                entry["baseline_seconds"] = base[f"{file_format}_seconds"]
                entry["baseline_bytes"] = base[f"{file_format}_bytes"]
                entry["baseline_max_rss_mb"] = round(base["max_rss_kb"] / 1024, 1)
                # the same rows as DuckDB's own COPY, in each format: else the timing
                # compares different work, and the run stops
                entry["baseline_rows"] = base[f"{file_format}_rows"]
                if entry.get("rows") != entry["baseline_rows"]:
                    raise RuntimeError(
                        f"{file_format}: the API export has {entry.get('rows')} rows, DuckDB's"
                        f" COPY {entry['baseline_rows']}"
                    )
                entry["ratio"] = round(entry["seconds"] / entry["baseline_seconds"], 2)
                runs.append(entry)
                limited = (
                    f" (under {entry['baseline_memory_limit']}: FAILED,"
                    f" {entry['baseline_limited_error']}; this is unbounded)"
                    if entry["baseline_limited_error"]
                    else f" (under {entry['baseline_memory_limit'] or 'no limit'})"
                )
                print(
                    f"exports: {file_format} #{attempt + 1}: API {entry['status']} in"
                    f" {entry['seconds']:.2f} s (seen {entry['seen_seconds']:.2f} s;"
                    f" {entry.get('rows', 0):,} rows, server peak RSS"
                    f" {entry['rss_peak_mb']:.0f} MB, CPU s server {entry['server_cpu_s']:.1f}"
                    f" / bench {entry['bench_cpu_s']:.2f}); COPY"
                    f" {entry['baseline_seconds']:.2f} s" + limited,
                    flush=True,
                )
            best = min(runs, key=lambda r: r["seconds"])
            best_base = min(r["baseline_seconds"] for r in runs)
            result[file_format] = {
                "runs": runs,
                "rows": best.get("rows"),
                "bytes": best.get("bytes"),
                "seconds": best["seconds"],
                "baseline_seconds": best_base,
                "baseline_bytes": runs[0]["baseline_bytes"],
                "baseline_max_rss_mb": max(r["baseline_max_rss_mb"] for r in runs),
                "ratio": round(best["seconds"] / best_base, 2),
                "ratios": [r["ratio"] for r in runs],
                "rss_peak_mb": max(r["rss_peak_mb"] for r in runs),
                "rows_equal_baseline": all(r.get("rows") == r["baseline_rows"] for r in runs),
            }
    return result


# -- live ingest (a separate process) -----------------------------------------------------


def _start_ingest(
    url: str, data_dir: Path, advertisers: list[int], args: argparse.Namespace
) -> tuple[multiprocessing.Process, str, float, float]:
    """``load.py``'s open-loop ingest at ``--ingest-rate`` events/s, 1,000-event requests,
    into live minutes (outside the exported interval: the export's rows do not change)."""
    from load import ingest_process  # noqa: PLC0415 - only this mode needs it

    client = create_client(data_dir, "bench-ingest", advertisers, ingest=True)
    token = get_token(url, client["client_id"], client["client_secret"])
    simulator = Simulator(_world(args.products), seed=SEED + 1)
    now = _now()
    bodies = []
    for i in range(100):
        events = simulator.events(now - timedelta(seconds=i % 50), 1000)
        displays = sum(int(str(e["displays"])) for e in events)
        clicks = sum(int(str(e["clicks"])) for e in events)
        bodies.append((orjson.dumps(events), len(events), displays, clicks))
    out: Any = multiprocessing.Queue()
    headers = {"Authorization": f"Bearer {token}"}
    feeder = multiprocessing.Process(
        target=ingest_process,
        args=([url], headers, bodies, args.ingest_rate, args.ingest_seconds, out),
    )
    feeder.start()
    time.sleep(5.0)  # let the ingest reach its rate (and the store its maintenance)
    return feeder, url, _stored_events(url), time.monotonic()


def _stored_events(url: str) -> float:
    """The server's count of events stored by ingestion (its /metrics)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith("mpo_ingest_events_total "):
            return float(line.split()[1])
    return float("nan")


def _stop_ingest(started: tuple[multiprocessing.Process, str, float, float]) -> dict[str, Any]:
    """Stop the ingest process we started (by its own handle); the rate the server stored."""
    feeder, url, events_before, since = started
    events = _stored_events(url) - events_before
    seconds = time.monotonic() - since
    if feeder.is_alive():
        feeder.terminate()
    feeder.join(timeout=30)
    return {
        "events_stored": int(events),
        "seconds": round(seconds, 1),
        "events_per_s": round(events / seconds),
    }


# -- main ---------------------------------------------------------------------------------


def _run_json(command: list[str], timeout: float) -> dict[str, Any]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command[2:4]} failed:\n{done.stderr[-3000:]}")
    parsed: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return parsed


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "benchmark": "exports",
        "started": _now().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "server_env": BENCH_SERVER_ENV,
    }
    script = str(Path(__file__).resolve())
    dimensions = [d.strip() for d in args.dimensions.split(",") if d.strip()]
    formats = [f.strip().lower() for f in args.export_formats.split(",") if f.strip()]
    with tempfile.TemporaryDirectory(prefix="mpo-bench-exports-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        db = data_dir / "events.duckdb"
        # Data ends at the start of today (UTC): settled, within retention.
        end = _now().replace(hour=0, minute=0, second=0, microsecond=0)
        command = [sys.executable, script, "--build-store", str(db), "--rows", str(args.rows)]
        command += ["--days", str(args.days), "--products", str(args.products)]
        command += ["--end", end.isoformat(), "--build", args.build]
        command += ["--as-appended"] if args.as_appended else []
        if args.store_from:
            # a store this script built before (``--build-store``), and its JSON line
            shutil.copyfile(args.store_from, db)
            store = json.loads(Path(f"{args.store_from}.json").read_text())
            if store["end"] != end.isoformat():
                raise SystemExit(f"{args.store_from} ends at {store['end']}, not {end}")
        else:
            print(f"exports: building a store of ~{args.rows:,} rows ...", flush=True)
            store = _run_json(command, timeout=3600)
        results["store"] = store
        print(
            f"exports: {store['rows']:,} rows over {args.days} days in"
            f" {store['build_seconds']} s ({store['file_bytes'] / 1e6:.0f} MB)",
            flush=True,
        )
        advertisers = [int(a) for a in store["advertisers"]]
        start = datetime.fromisoformat(store["start"])
        one = create_client(data_dir, "bench-one", advertisers[:1])
        every = create_client(data_dir, "bench-all", advertisers)
        throughput_attributes = {
            "advertiserIds": [str(a) for a in advertisers],
            "dimensions": dimensions,
            "startDate": store["start"],
            "endDate": store["end"],
        }
        # The baseline reads a copy of the closed (checkpointed) file, so that it can run
        # right after each API export while the server keeps the original open.
        copy = Path(tmp) / "baseline.duckdb"
        shutil.copyfile(db, copy)
        plan = QueryPlan(
            start=start,
            end=datetime.fromisoformat(store["end"]),
            advertiser_ids=tuple(sorted(advertisers)),
            dimensions=tuple(Dimension(d) for d in dimensions),
        )
        sql_file = Path(tmp) / "query.sql"
        sql_file.write_text(_literal_sql(plan))
        results["sql"] = sql_file.read_text()
        baseline_command = [sys.executable, script, "--copy-baseline", str(copy)]
        baseline_command += ["--sql-file", str(sql_file), "--out-dir", tmp]
        # DuckDB's COPY under the server's own memory limit (same threads: the defaults)
        server_limit = args.server_memory_limit or Settings().event_store_memory_limit
        baseline_command += ["--copy-memory-limit", server_limit]
        results["server_memory_limit"] = server_limit
        server_env = (
            {"MPO_EVENT_STORE_MEMORY_LIMIT": args.server_memory_limit}
            if args.server_memory_limit
            else {}
        )
        with running_server(data_dir, env=server_env) as server:
            token_one = get_token(server.url, one["client_id"], one["client_secret"])
            print(f"exports: server pid {server.pid}; {args.jobs} latency jobs", flush=True)
            results["latency"] = _job_latency(
                server.url, token_one, advertisers[0], start + timedelta(hours=1), args.jobs
            )
            feeder = None
            if args.ingest_rate:
                feeder = _start_ingest(server.url, data_dir, advertisers, args)
                results["ingest_rate"] = args.ingest_rate
            try:
                results["throughput"] = _throughput(
                    server.url,
                    lambda: get_token(server.url, every["client_id"], every["client_secret"]),
                    server.pid,
                    data_dir,
                    throughput_attributes,
                    baseline_command=baseline_command,
                    repeat=args.repeat,
                    timeout=args.export_timeout,
                    formats=formats,
                )
            finally:
                if feeder is not None:
                    results["ingest"] = _stop_ingest(feeder)
        if args.memory_limit:
            print(f"exports: baseline CSV COPY under memory_limit {args.memory_limit} ...")
            limited = _run_json(
                [*baseline_command[:-1], args.memory_limit, "--formats", "csv"],
                timeout=3600,
            )
            results["baseline_memory_limited"] = limited
        timings = _server_timings(data_dir / "jobs.sqlite3")
        results["server_timings"] = timings
        latency_query = [timings[i]["query_s"] for i in results["latency"]["export_ids"]]
        results["latency"]["server_query"] = summary_ms(latency_query)
        for file_format in formats:
            for entry in results["throughput"][file_format]["runs"]:
                own = timings.get(entry["export_id"], {})
                entry["server_query_s"] = own.get("query_s")
                entry["server_write_s"] = own.get("write_s")
    return results


def _print_latency(results: dict[str, Any]) -> None:
    store = results["store"]
    latency = results["latency"]["create_to_done"]
    print_table(
        f"Job latency: {results['latency']['jobs']} x 24 h report, one advertiser, campaignId +"
        f" sellerId; store {store['rows']:,} rows (target p50 <= 300 ms)",
        ["p50 ms", "p90 ms", "max ms", "first ms", "statuses"],
        [
            [
                latency["p50_ms"],
                latency["p90_ms"],
                latency["max_ms"],
                results["latency"]["first_ms"],
                results["latency"]["statuses"],
            ]
        ],
    )


def _report(results: dict[str, Any]) -> None:
    store = results["store"]
    if results["latency"]["jobs"]:
        _print_latency(results)
    rows = []
    targets = {"csv": 1.25, "json": 1.5, "parquet": 1.25}
    for file_format, entry in results["throughput"].items():
        target = targets[file_format]
        rows.append(
            [
                file_format.upper(),
                f"{entry.get('rows', 0):,}",
                f"{entry['seconds']:.2f}",
                f"{entry['baseline_seconds']:.2f}",
                f"{entry['ratio']:.2f}x (<= {target}x)",
                f"{entry.get('bytes', 0) / 1e6:.0f} / {entry['baseline_bytes'] / 1e6:.0f}",
                f"{entry['rss_peak_mb']:.0f} (< 500)",
            ]
        )
    condition = (
        f"under {results['ingest_rate']:,} events/s of HTTP ingest"
        if results.get("ingest_rate")
        else "idle"
    )
    print_table(
        f"Export throughput ({store.get('build', 'bulk')}-built store of {store['rows']:,}"
        f" rows, {condition}): create -> Done through the API vs DuckDB COPY of the same query",
        ["format", "rows", "API s", "COPY s", "ratio", "MB API / COPY", "server peak RSS MB"],
        rows,
    )
    if results.get("ingest"):
        ingest = results["ingest"]
        print(
            f"  live ingest meanwhile: {ingest['events_stored']:,} events stored in"
            f" {ingest['seconds']} s ({ingest['events_per_s']:,} events/s)"
        )
    for file_format, entry in results["throughput"].items():
        print(
            f"  {file_format.upper()}: ratios of the {len(entry['ratios'])} interleaved pairs"
            f" {entry['ratios']}; baseline COPY process max RSS {entry['baseline_max_rss_mb']:.0f}"
            " MB; rows equal to the COPY's: " + str(entry["rows_equal_baseline"])
        )
        for run in entry["runs"]:
            if run.get("server_query_s") is not None:
                print(
                    f"    runner: {run['server_query_s']:.2f} s to the first batch (query),"
                    f" {run['server_write_s']:.2f} s streaming the rest"
                )
    limited = results.get("baseline_memory_limited")
    if limited:
        print(
            f"  baseline CSV COPY with memory_limit {limited['memory_limit']}:"
            f" {limited['csv_seconds']:.2f} s, max RSS {limited['max_rss_kb'] / 1024:.0f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, < 1 min")
    parser.add_argument("--rows", type=int, default=20_000_000, help="roll-up rows in the store")
    parser.add_argument("--days", type=int, default=14, help="days of data in the store")
    parser.add_argument("--products", type=int, default=500_000, help="per advertiser")
    parser.add_argument("--jobs", type=int, default=30, help="job latency: number of jobs")
    parser.add_argument("--repeat", type=int, default=2, help="throughput: API/COPY pairs")
    parser.add_argument("--dimensions", default=THROUGHPUT_DIMENSIONS)
    parser.add_argument("--export-formats", default="csv,json,parquet")
    parser.add_argument(
        "--build",
        choices=["bulk", "ingest"],
        default="bulk",
        help="store built by bulk append, or through the ingest path in 10,000-row requests",
    )
    parser.add_argument(
        "--ingest-rate",
        type=int,
        default=0,
        help="events/s ingested over HTTP during the throughput exports and COPYs (0: idle)",
    )
    parser.add_argument(
        "--as-appended",
        action="store_true",
        help="leave the built store in arrival order, without the maintenance a server runs"
        " after writes (the layout before clustering)",
    )
    parser.add_argument("--ingest-seconds", type=float, default=3600.0, help=argparse.SUPPRESS)
    parser.add_argument("--export-timeout", type=float, default=900.0)
    parser.add_argument(
        "--store-from",
        default="",
        help="copy this store (made by --build-store, its JSON line in PATH.json) instead"
        " of building one",
    )
    # internal: the separate build and baseline processes
    parser.add_argument("--build-store", help=argparse.SUPPRESS)
    parser.add_argument("--end", help=argparse.SUPPRESS)
    parser.add_argument("--copy-baseline", help=argparse.SUPPRESS)
    parser.add_argument("--sql-file", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    parser.add_argument("--formats", default="csv,json", help=argparse.SUPPRESS)
    parser.add_argument("--copy-memory-limit", default="", help=argparse.SUPPRESS)
    parser.add_argument(
        "--memory-limit",
        default="",
        help="also run the CSV baseline COPY under this DuckDB memory_limit ('': skip);"
        " the server's own limit is --server-memory-limit",
    )
    parser.add_argument(
        "--server-memory-limit",
        default="",
        help="the server's MPO_EVENT_STORE_MEMORY_LIMIT ('': its default)",
    )
    args = parser.parse_args()
    if args.build_store:
        build_store(args)
        return
    if args.copy_baseline:
        copy_baseline(args)
        return
    if args.quick:
        args.rows = min(args.rows, 1_000_000)
        args.days = 2
        args.products = min(args.products, 20_000)
        args.jobs = min(args.jobs, 5)
        args.repeat = 1
    results = run(args)
    _report(results)
    print(json.dumps(results, default=str), flush=True)


if __name__ == "__main__":
    main()
