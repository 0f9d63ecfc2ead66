"""Benchmark ingestion: bulk appends, HTTP ingest throughput, and freshness.

Three parts, each with a baseline measured in the same run:

* ``bulk``: rows/s of ``DuckDBEventStore.append`` on Arrow tables made by the simulator's
  back-fill, against DuckDB's own ``INSERT INTO t SELECT ... FROM arrow_table`` into a bare
  table of the roll-up schema (maintenance held off meanwhile). Then the compaction that
  maintenance would run on the appended span, and how long an ingest request waits
  behind it.
* ``http``: a real ``mpo serve`` on 127.0.0.1 and a separate load process (this script in
  ``--load-worker`` mode, httpx on asyncio) posting pre-serialised 1,000-event bodies for a
  bounded time; events/s, request latency, then (server stopped) the stored displays must
  equal the displays sent. Baselines: the in-process ceilings of parsing
  (``Ingestor.prepare``) and of the store's group commit (``submit``), same run.
  Freshness through HTTP follows on the same server: ingest answer -> export created ->
  Done -> downloaded file contains the event.
* ``fresh``: in-process, a ``DuckDBEventStore`` fed with background traffic; for each
  single-event request, submit -> answer (bounded by the flush interval) and answer ->
  visible to ``aggregate()``.

Usage: ``.venv/bin/python benchmarks/bench_ingest.py`` (``--quick`` for a smoke run).
Prints tables, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import duckdb
import httpx
import orjson
import pyarrow as pa

from _harness import (
    BENCH_SERVER_ENV,
    STATS,
    cpu_seconds,
    create_client,
    get_token,
    print_table,
    running_server,
    summary_ms,
)
from mpo_realtime.domain.jobs import WriteScope
from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension
from mpo_realtime.store.base import IngestReceipt, IngestRequest
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from mpo_realtime.store.ingest import Ingestor
from mpo_realtime.store.simulator import Simulator, World

__all__ = ["main"]

SEED = 7
#: the roll-up table's columns, in order (the Arrow rows also carry seller_name)
ROLLUP_COLUMNS = (
    "minute, advertiser_id, partner_id, campaign_id, seller_id, product_id, displays, clicks, cost"
)
BARE_SCHEMA = """CREATE TABLE rollup (
    minute TIMESTAMPTZ NOT NULL, advertiser_id BIGINT NOT NULL, partner_id BIGINT NOT NULL,
    campaign_id BIGINT NOT NULL, seller_id BIGINT NOT NULL, product_id VARCHAR NOT NULL,
    displays BIGINT NOT NULL, clicks BIGINT NOT NULL, cost DECIMAL(18, 9) NOT NULL)"""


def _world() -> World:
    return World.generate(seed=SEED)


def _now() -> datetime:
    return datetime.now(UTC)


# -- bulk append --------------------------------------------------------------------------


def _make_tables(total_rows: int, batch_rows: int) -> list[pa.Table]:
    simulator = Simulator(_world(), seed=SEED, displays_per_minute=200_000)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    tables: list[pa.Table] = []
    made = 0
    for batch in simulator.backfill(start, start + timedelta(days=7), batch_rows=batch_rows):
        batch = batch.slice(0, min(batch.num_rows, total_rows - made))
        tables.append(pa.Table.from_batches([batch]))
        made += batch.num_rows
        if made >= total_rows:
            break
    return tables


def _probe_query(store: DuckDBEventStore, tables: list[pa.Table]) -> float:
    """Best of 3: one advertiser, one hour in the middle of the data, by campaign."""
    first = tables[len(tables) // 2]
    minute = first.column("minute")[0].as_py()
    plan = QueryPlan(
        start=minute,
        end=minute + timedelta(hours=1),
        advertiser_ids=(int(first.column("advertiser_id")[0].as_py()),),
        dimensions=(Dimension.CAMPAIGN_ID,),
    )
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _batch in store.aggregate(plan):
            pass
        best = min(best, time.perf_counter() - started)
    return best


def _time_store_appends(path: Path, tables: list[pa.Table]) -> dict[str, float]:
    """Appends (timed), then a probe query, a compaction of everything and the probe again."""
    store = DuckDBEventStore(path, maintenance_interval=1e9)
    try:
        started = time.perf_counter()
        for table in tables:
            store.append(table)
        appended = time.perf_counter() - started
        before = _probe_query(store, tables)
        # What the writer's maintenance does within 30 s of an append: fold the whole
        # appended span. Meanwhile a one-row ingest request waits behind it.
        compact_s: list[float] = []

        def compact() -> None:
            started = time.perf_counter()
            store.compact()
            compact_s.append(time.perf_counter() - started)

        compactor = threading.Thread(target=compact, name="compactor")
        compactor.start()
        time.sleep(0.05)
        started = time.perf_counter()
        store.submit(IngestRequest(tables[0].slice(0, 1), 1)).result(timeout=600)
        stalled = time.perf_counter() - started
        compactor.join(timeout=600)
        after = _probe_query(store, tables)
        return {
            "append": appended,
            "compact": compact_s[0],
            "ingest_wait": stalled,
            "query": before,
            "query_after": after,
        }
    finally:
        store.close()


def _time_bare_inserts(path: Path, tables: list[pa.Table]) -> float:
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(BARE_SCHEMA)
        started = time.perf_counter()
        for arrow_table in tables:
            con.register("arrow_table", arrow_table)
            con.execute(f"INSERT INTO rollup SELECT {ROLLUP_COLUMNS} FROM arrow_table")
            con.unregister("arrow_table")
        return time.perf_counter() - started
    finally:
        con.close()


def bench_bulk(rows: int, batch_sizes: list[int], repeat: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for batch_rows in batch_sizes:
        started = time.perf_counter()
        tables = _make_tables(rows, batch_rows)
        made = sum(t.num_rows for t in tables)
        print(
            f"bulk: simulated {made:,} rows in {len(tables)} tables of <= {batch_rows:,}"
            f" in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        store_s: list[float] = []
        bare_s: list[float] = []
        extra: list[dict[str, float]] = []
        for attempt in range(repeat):
            with tempfile.TemporaryDirectory(prefix="mpo-bench-bulk-") as tmp:
                # Alternate the order so that neither side always runs on a warm cache.
                if attempt % 2 == 0:
                    bare_s.append(_time_bare_inserts(Path(tmp) / "bare.duckdb", tables))
                    extra.append(_time_store_appends(Path(tmp) / "store.duckdb", tables))
                else:
                    extra.append(_time_store_appends(Path(tmp) / "store.duckdb", tables))
                    bare_s.append(_time_bare_inserts(Path(tmp) / "bare.duckdb", tables))
                store_s.append(extra[-1]["append"])
        best_store, best_bare = min(store_s), min(bare_s)
        results.append(
            {
                "rows": made,
                "batch_rows": batch_rows,
                "store_seconds": [round(s, 3) for s in store_s],
                "bare_seconds": [round(s, 3) for s in bare_s],
                "store_rows_per_s": round(made / best_store),
                "bare_rows_per_s": round(made / best_bare),
                "ratio_time_store_vs_bare": round(best_store / best_bare, 2),
                "compact_seconds": round(min(e["compact"] for e in extra), 3),
                "ingest_wait_during_compact_seconds": round(
                    max(e["ingest_wait"] for e in extra), 3
                ),
                "probe_query_ms_before_compact": round(min(e["query"] for e in extra) * 1000, 1),
                "probe_query_ms_after_compact": round(
                    min(e["query_after"] for e in extra) * 1000, 1
                ),
            }
        )
        del tables
    return results


# -- HTTP ingest: load worker (a separate process) --------------------------------------


def _bodies(count: int, events: int, now: datetime) -> tuple[list[bytes], list[int]]:
    simulator = Simulator(_world(), seed=SEED)
    bodies: list[bytes] = []
    displays: list[int] = []
    for i in range(count):
        generated = simulator.events(now - timedelta(milliseconds=i), events)
        bodies.append(orjson.dumps(generated))
        displays.append(sum(cast(int, e["displays"]) for e in generated))
    return bodies, displays


async def _load(
    url: str,
    token: str,
    bodies: list[bytes],
    displays: list[int],
    *,
    concurrency: int,
    duration: float,
    events_per_body: int,
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: collections.Counter[str] = collections.Counter()
    totals = {"ok": 0, "events": 0, "displays": 0, "ambiguous": 0}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    deadline = time.monotonic() + duration
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as http:

        async def worker(first: int) -> None:
            index = first
            while time.monotonic() < deadline:
                body = bodies[index % len(bodies)]
                sent_displays = displays[index % len(bodies)]
                index += concurrency
                started = time.perf_counter()
                try:
                    answer = await http.post("/ingest/v1/events", content=body, headers=headers)
                except httpx.HTTPError as exc:
                    # The request may or may not have been stored: the check can't be exact.
                    statuses[type(exc).__name__] += 1
                    totals["ambiguous"] += 1
                    await asyncio.sleep(0.05)
                    continue
                latencies.append(time.perf_counter() - started)
                statuses[str(answer.status_code)] += 1
                if answer.status_code == 200 and answer.json().get("accepted") == events_per_body:
                    totals["ok"] += 1
                    totals["events"] += events_per_body
                    totals["displays"] += sent_displays
                elif answer.status_code >= 500:
                    totals["ambiguous"] += 1
                    await asyncio.sleep(0.05)

        cpu0 = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    return {
        "elapsed_s": round(elapsed, 3),
        "requests_ok": totals["ok"],
        "requests_ambiguous": totals["ambiguous"],
        "statuses": dict(statuses),
        "events": totals["events"],
        "displays": totals["displays"],
        "events_per_s": round(totals["events"] / elapsed),
        "latency": summary_ms(latencies),
        "load_cpu_s": round(cpu, 2),
    }


def load_worker(args: argparse.Namespace) -> None:
    """``--load-worker``: post bodies to ``--url`` and print one JSON line of results."""
    token = os.environ["MPO_BENCH_TOKEN"]
    bodies, displays = _bodies(args.bodies, args.events_per_request, _now())
    result = asyncio.run(
        _load(
            args.url,
            token,
            bodies,
            displays,
            concurrency=args.concurrency,
            duration=args.duration,
            events_per_body=args.events_per_request,
        )
    )
    print(json.dumps(result), flush=True)


# -- HTTP ingest: in-process ceilings (baselines of the same run) -----------------------


def _scope(world: World) -> WriteScope:
    """The scope of the benchmark's ingest client: every advertiser of the world."""
    return WriteScope(frozenset(a.advertiser_id for a in world.advertisers))


def _prepare_ceiling(bodies: list[bytes], events_per_body: int) -> dict[str, Any]:
    ingestor = Ingestor(store=cast(Any, None))
    scope = _scope(_world())
    now_ms = int(time.time() * 1000)
    started = time.perf_counter()
    cpu0 = time.process_time()
    for body in bodies:
        ingestor.prepare(body, now_ms=now_ms, client_id="bench", scope=scope, idempotency_key=None)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    events = len(bodies) * events_per_body
    return {
        "events": events,
        "events_per_s": round(events / elapsed),
        "events_per_cpu_s": round(events / cpu) if cpu else None,
        "ms_per_request": round(elapsed / len(bodies) * 1000, 2),
    }


def _store_ceiling(tmp: Path, requests: list[IngestRequest], rounds: int) -> dict[str, Any]:
    store = DuckDBEventStore(tmp / "ceiling.duckdb")
    try:
        futures: list[Future[IngestReceipt]] = []
        started = time.perf_counter()
        for _ in range(rounds):
            futures += [store.submit(r) for r in requests]
        for future in futures:
            future.result(timeout=300)
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    events = sum(r.events for r in requests) * rounds
    return {"events": events, "events_per_s": round(events / elapsed)}


# -- HTTP ingest and HTTP freshness ------------------------------------------------------


def _fresh_event(world: World, product: str, moment: datetime) -> dict[str, object]:
    advertiser = world.advertisers[0]
    ms = int(moment.timestamp() * 1000)
    return {
        "timestamp": f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z",
        "advertiserId": str(advertiser.advertiser_id),
        "partnerId": str(advertiser.partner_id),
        "campaignId": str(advertiser.campaigns[0].campaign_id),
        "sellerId": str(advertiser.sellers[0].seller_id),
        "productId": product,
        "displays": 1,
        "clicks": 0,
        "cost": 0,
        "sellerName": advertiser.sellers[0].name,
    }


def _http_freshness(
    url: str, token: str, world: World, count: int, max_seconds: float
) -> dict[str, Any]:
    """Ingest one event, then export (create, poll every 10 ms, download) until it shows."""
    headers = {"Authorization": f"Bearer {token}"}
    advertiser = world.advertisers[0]
    run = uuid.uuid4().hex[:8]
    to_done: list[float] = []
    ack_to_file: list[float] = []
    ingest_s: list[float] = []
    missing = 0
    sent_displays = 0
    deadline = time.monotonic() + max_seconds
    with httpx.Client(base_url=url, timeout=30.0) as http:
        for i in range(count):
            if time.monotonic() > deadline:
                break
            product = f"FRESH-{run}-{i:05d}"
            moment = _now()
            body = orjson.dumps([_fresh_event(world, product, moment)])
            started = time.perf_counter()
            answer = http.post(
                "/ingest/v1/events",
                content=body,
                headers={**headers, "Content-Type": "application/json"},
            )
            acked = time.perf_counter()
            answer.raise_for_status()
            sent_displays += 1
            ingest_s.append(acked - started)
            # A startDate unique to this iteration (by i microseconds) so that the export
            # cache never answers with an older export.
            start = moment.replace(second=0, microsecond=0) - timedelta(minutes=1, microseconds=i)
            attributes = {
                "advertiserIds": [str(advertiser.advertiser_id)],
                "campaignIds": [str(advertiser.campaigns[0].campaign_id)],
                "dimensions": ["productId"],
                "startDate": start.isoformat(),
            }
            created = http.post(
                f"{STATS}/realtime-reports/export",
                json={"data": {"type": "RealTimeProductReportJob", "attributes": attributes}},
                headers=headers,
            )
            created.raise_for_status()
            export_id = created.json()["exportId"]
            status = created.json()["status"]
            poll_deadline = time.monotonic() + 30.0
            while status == "Pending" and time.monotonic() < poll_deadline:
                time.sleep(0.01)
                polled = http.get(f"{STATS}/report-jobs/{export_id}", headers=headers)
                polled.raise_for_status()
                status = polled.json()["status"]
            if status != "Done":
                raise RuntimeError(f"export {export_id} ended {status}")
            done = time.perf_counter()
            file = http.get(f"{STATS}/realtime-reports/{export_id}", headers=headers)
            file.raise_for_status()
            downloaded = time.perf_counter()
            if product not in file.text:
                missing += 1
                continue
            to_done.append(done - acked)
            ack_to_file.append(downloaded - acked)
    return {
        "iterations": len(ingest_s),
        "missing_in_file": missing,
        "ingest_request": summary_ms(ingest_s),
        "ack_to_done": summary_ms(to_done),
        "ack_to_downloaded": summary_ms(ack_to_file),
        "displays_sent": sent_displays,
    }


def bench_http(args: argparse.Namespace) -> dict[str, Any]:
    world = _world()
    advertisers = [a.advertiser_id for a in world.advertisers]
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mpo-bench-http-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()

        # Baselines of this run: what one core does without HTTP.
        bodies, _ = _bodies(24, args.events_per_request, _now())
        result["prepare_ceiling"] = _prepare_ceiling(bodies, args.events_per_request)
        ingestor = Ingestor(store=cast(Any, None))
        now_ms = int(time.time() * 1000)
        prepared = [
            ingestor.prepare(
                b, now_ms=now_ms, client_id="bench", scope=_scope(world), idempotency_key=None
            )
            for b in bodies
        ]
        result["store_ceiling"] = _store_ceiling(Path(tmp), prepared, rounds=20)
        print(
            "http: in-process ceilings: prepare"
            f" {result['prepare_ceiling']['events_per_s']:,} events/s,"
            f" store submit {result['store_ceiling']['events_per_s']:,} events/s",
            flush=True,
        )

        client = create_client(data_dir, "bench", advertisers, ingest=True)
        displays_sent = 0
        # --event-store-url clickhouse://...: the same run against the ClickHouse store
        store_env = {"MPO_EVENT_STORE_URL": args.event_store_url} if args.event_store_url else {}
        with running_server(data_dir, env=store_env) as server:
            token = get_token(server.url, client["client_id"], client["client_secret"])
            cpu0 = cpu_seconds(server.pid)
            command = [sys.executable, str(Path(__file__).resolve()), "--load-worker"]
            command += ["--url", server.url, "--duration", str(args.duration)]
            command += ["--concurrency", str(args.concurrency), "--bodies", str(args.bodies)]
            command += ["--events-per-request", str(args.events_per_request)]
            print(
                f"http: load worker: {args.concurrency} in flight for {args.duration:g} s"
                f" against pid {server.pid} at {server.url}",
                flush=True,
            )
            worker = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=args.duration + 180,
                env={**os.environ, "MPO_BENCH_TOKEN": token},
                check=False,
            )
            if worker.returncode != 0:
                raise RuntimeError(f"load worker failed:\n{worker.stderr[-3000:]}")
            load = json.loads(worker.stdout.strip().splitlines()[-1])
            server_cpu = cpu_seconds(server.pid) - cpu0
            load["server_cpu_s"] = round(server_cpu, 2)
            load["events_per_server_cpu_s"] = round(load["events"] / server_cpu)
            displays_sent += load["displays"]
            result["load"] = load
            print(
                f"http: {load['events_per_s']:,} events/s; now freshness through exports",
                flush=True,
            )
            fresh = _http_freshness(
                server.url, token, world, args.fresh_http_n, max_seconds=args.fresh_max_seconds
            )
            displays_sent += fresh["displays_sent"]
            result["freshness_http"] = fresh
        # The server is stopped: its DuckDB file may be opened here.
        if args.event_store_url:
            from mpo_realtime.store.clickhouse_store import ClickHouseEventStore

            shared = ClickHouseEventStore(args.event_store_url)
            try:
                totals = shared.totals()
            finally:
                shared.close()
        else:
            store = DuckDBEventStore(data_dir / "events.duckdb")
            try:
                totals = store.totals()
            finally:
                store.close()
        exact = load["requests_ambiguous"] == 0
        result["check"] = {
            "displays_sent": displays_sent,
            "displays_stored": int(totals["displays"]),
            "equal": int(totals["displays"]) == displays_sent,
            "exact_comparison": exact,
        }
    return result


# -- in-process freshness ----------------------------------------------------------------


def _feeder(
    store: DuckDBEventStore,
    requests: list[IngestRequest],
    rate: float,
    stop: threading.Event,
    max_seconds: float,
    futures: list[Future[IngestReceipt]],
) -> None:
    """Submit ``requests`` round-robin at ``rate`` events/s until ``stop``."""
    if rate <= 0:
        return
    per_request = requests[0].events
    period = per_request / rate
    deadline = time.monotonic() + max_seconds
    next_at = time.monotonic()
    index = 0
    while not stop.is_set() and time.monotonic() < deadline:
        futures.append(store.submit(requests[index % len(requests)]))
        index += 1
        next_at += period
        stop.wait(max(0.0, next_at - time.monotonic()))


def bench_fresh_store(args: argparse.Namespace) -> dict[str, Any]:
    world = _world()
    advertiser = world.advertisers[0]
    ingestor = Ingestor(store=cast(Any, None))
    bodies, _ = _bodies(16, 1000, _now())
    now_ms = int(time.time() * 1000)
    background = [
        ingestor.prepare(
            b, now_ms=now_ms, client_id="bench", scope=_scope(world), idempotency_key=None
        )
        for b in bodies
    ]
    submit_s: list[float] = []
    visible_s: list[float] = []
    first_query_hits = 0
    not_seen = 0
    with tempfile.TemporaryDirectory(prefix="mpo-bench-fresh-") as tmp:
        store = DuckDBEventStore(Path(tmp) / "fresh.duckdb", flush_interval=args.flush_interval)
        stop = threading.Event()
        futures: list[Future[IngestReceipt]] = []
        feeder = threading.Thread(
            target=_feeder,
            args=(store, background, args.fresh_load_rate, stop, args.fresh_max_seconds, futures),
            name="feeder",
            daemon=True,
        )
        feeder.start()
        try:
            run = uuid.uuid4().hex[:8]
            deadline = time.monotonic() + args.fresh_max_seconds
            for i in range(args.fresh_n):
                if time.monotonic() > deadline:
                    break
                product = f"FRESH-{run}-{i:05d}"
                moment = _now()
                body = orjson.dumps([_fresh_event(world, product, moment)])
                request = ingestor.prepare(
                    body,
                    now_ms=int(time.time() * 1000),
                    client_id="bench",
                    scope=_scope(world),
                    idempotency_key=None,
                )
                minute = moment.replace(second=0, microsecond=0)
                plan = QueryPlan(
                    start=minute,
                    end=minute + timedelta(minutes=1),
                    advertiser_ids=(advertiser.advertiser_id,),
                    campaign_ids=(advertiser.campaigns[0].campaign_id,),
                    dimensions=(Dimension.PRODUCT_ID,),
                )
                started = time.perf_counter()
                store.submit(request).result(timeout=30)
                acked = time.perf_counter()
                submit_s.append(acked - started)
                seen = False
                queries = 0
                while time.perf_counter() - acked < 5.0:
                    queries += 1
                    products: set[str] = set()
                    for batch in store.aggregate(plan):
                        products.update(batch.column("productId").to_pylist())
                    if product in products:
                        seen = True
                        break
                if not seen:
                    not_seen += 1
                    continue
                visible_s.append(time.perf_counter() - acked)
                first_query_hits += queries == 1
                # Spread the probes over the flush cycle instead of locking onto it.
                time.sleep(0.013 * (i % 7))
        finally:
            stop.set()
            feeder.join(timeout=10)
            background_errors = 0
            for future in futures:
                try:
                    future.result(timeout=60)
                except Exception:
                    background_errors += 1
            store.close()
    return {
        "flush_interval_s": args.flush_interval,
        "background_events_per_s": args.fresh_load_rate,
        "background_requests": len(futures),
        "background_errors": background_errors,
        "submit_to_answer": summary_ms(submit_s),
        "answer_to_visible": summary_ms(visible_s),
        "visible_on_first_query": first_query_hits,
        "not_visible_within_5s": not_seen,
    }


# -- main --------------------------------------------------------------------------------


def _report(results: dict[str, Any], args: argparse.Namespace) -> None:
    if "bulk" in results:
        print_table(
            f"Bulk append ({results['bulk'][0]['rows']:,} rows; best of {args.repeat};"
            " target >= 2,000,000 rows/s)",
            ["batch rows", "store.append rows/s", "bare INSERT rows/s", "time ratio"]
            + ["compact all s", "1-row ingest waits s", "1 h query ms before / after compact"],
            [
                [
                    f"{r['batch_rows']:,}",
                    f"{r['store_rows_per_s']:,}",
                    f"{r['bare_rows_per_s']:,}",
                    f"{r['ratio_time_store_vs_bare']:.2f}x",
                    r["compact_seconds"],
                    r["ingest_wait_during_compact_seconds"],
                    f"{r['probe_query_ms_before_compact']} / {r['probe_query_ms_after_compact']}",
                ]
                for r in results["bulk"]
            ],
        )
    if "http" in results:
        http = results["http"]
        load = http["load"]
        lat = load["latency"]
        check = http["check"]
        ceilings = (http["prepare_ceiling"]["events_per_s"], http["store_ceiling"]["events_per_s"])
        rows: list[list[object]] = [
            ["events/s accepted", f"{load['events_per_s']:,}"],
            ["requests ok / ambiguous", f"{load['requests_ok']} / {load['requests_ambiguous']}"],
            ["statuses", load["statuses"]],
            ["request p50 / p99 / max ms", f"{lat['p50_ms']} / {lat['p99_ms']} / {lat['max_ms']}"],
            ["server CPU s", load["server_cpu_s"]],
            ["events per server CPU s", f"{load['events_per_server_cpu_s']:,}"],
            ["load process CPU s", load["load_cpu_s"]],
            ["ceiling: prepare, 1 thread", f"{ceilings[0]:,} events/s"],
            ["ceiling: store submit", f"{ceilings[1]:,} events/s"],
            ["stored displays", f"{check['displays_stored']:,}"],
            ["sent displays", f"{check['displays_sent']:,}"],
            ["stored == sent", check["equal"]],
        ]
        print_table(
            f"HTTP ingest ({args.concurrency} in flight, {args.events_per_request} events per"
            f" request, {load['elapsed_s']} s; target >= 100,000 events/s)",
            ["measure", "value"],
            rows,
        )
        fresh = http["freshness_http"]
        print_table(
            f"Freshness through HTTP exports ({fresh['iterations']} probes)",
            ["interval", "p50 ms", "p99 ms", "max ms"],
            [
                [name, fresh[key]["p50_ms"], fresh[key]["p99_ms"], fresh[key]["max_ms"]]
                for name, key in (
                    ("ingest request (1 event)", "ingest_request"),
                    ("answer -> export Done", "ack_to_done"),
                    ("answer -> file downloaded", "ack_to_downloaded"),
                )
            ],
        )
    if "fresh" in results:
        fresh = results["fresh"]
        print_table(
            f"Freshness in process (flush_interval {fresh['flush_interval_s']} s, background"
            f" {fresh['background_events_per_s']:,} events/s; target p99 <= 1000 ms)",
            ["interval", "p50 ms", "p99 ms", "max ms"],
            [
                [name, fresh[key]["p50_ms"], fresh[key]["p99_ms"], fresh[key]["max_ms"]]
                for name, key in (
                    ("submit -> answer", "submit_to_answer"),
                    ("answer -> visible to aggregate()", "answer_to_visible"),
                )
            ],
        )
        print(
            f"  visible on the first query after the answer: {fresh['visible_on_first_query']}"
            f" of {fresh['answer_to_visible']['n']}; not visible within 5 s:"
            f" {fresh['not_visible_within_5s']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="bulk,http,fresh", help="parts to run, comma-separated")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--rows", type=int, default=5_000_000, help="bulk: rows appended")
    parser.add_argument("--batch-rows", default="100000,1000000", help="bulk: rows per append")
    parser.add_argument("--repeat", type=int, default=2, help="bulk: runs per batch size (best)")
    parser.add_argument("--duration", type=float, default=20.0, help="http: seconds of load")
    parser.add_argument("--concurrency", type=int, default=12, help="http: requests in flight")
    parser.add_argument("--events-per-request", type=int, default=1000)
    parser.add_argument("--bodies", type=int, default=32, help="http: distinct bodies cycled")
    parser.add_argument("--fresh-n", type=int, default=200, help="in-process freshness probes")
    parser.add_argument("--fresh-http-n", type=int, default=200, help="HTTP freshness probes")
    parser.add_argument("--fresh-load-rate", type=float, default=20_000.0)
    parser.add_argument("--fresh-max-seconds", type=float, default=120.0)
    parser.add_argument("--flush-interval", type=float, default=0.1)
    parser.add_argument(
        "--event-store-url", help="http: serve on this store (clickhouse://...; empty database)"
    )
    # internal: the separate load process
    parser.add_argument("--load-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_worker:
        load_worker(args)
        return
    if args.quick:
        args.rows = min(args.rows, 500_000)
        args.batch_rows = "100000"
        args.repeat = 1
        args.duration = min(args.duration, 5.0)
        args.fresh_n = min(args.fresh_n, 20)
        args.fresh_http_n = min(args.fresh_http_n, 10)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    results: dict[str, Any] = {
        "benchmark": "ingest",
        "started": _now().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "server_env": BENCH_SERVER_ENV,
    }
    if "bulk" in parts:
        sizes = [int(s) for s in args.batch_rows.split(",") if s.strip()]
        results["bulk"] = bench_bulk(args.rows, sizes, args.repeat)
    if "http" in parts:
        results["http"] = bench_http(args)
    if "fresh" in parts:
        results["fresh"] = bench_fresh_store(args)
    _report(results, args)
    print(json.dumps(results, default=str), flush=True)


if __name__ == "__main__":
    main()
