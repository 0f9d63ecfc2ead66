"""Load test: 200 concurrent report clients for 60 s while ingest runs at 20k events/s.

A real ``mpo serve`` on loopback (stopped by its PID at the end). This process is the
load: report clients create exports (a few distinct requests, so most are cache hits)
and poll them every ``--poll-interval`` seconds, as the source tells integrators to;
a second process sends 1,000-event ingest batches at ``--ingest-rate``. Everything is bounded by
``--seconds``. At the end the server is stopped and the store is checked: every
acknowledged event is there, exactly once.

    .venv/bin/python benchmarks/load.py [--clients 200] [--seconds 60] [--ingest-rate 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from _harness import STATS, create_client, get_token, print_table, running_server, summary_ms
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from mpo_realtime.store.simulator import Simulator, World


class Tally:
    def __init__(self) -> None:
        self.status: collections.Counter[str] = collections.Counter()
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.acked_events = 0
        self.acked_displays = 0
        self.transport_errors = 0

    def record(self, kind: str, status: int, seconds: float) -> None:
        self.status[f"{kind} {status}"] += 1
        self.latency[kind].append(seconds)


async def report_client(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    advertisers: list[int],
    deadline: float,
    poll_interval: float,
    tally: Tally,
    rng: random.Random,
) -> None:
    export_id: str | None = None
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            if export_id is None or rng.random() < 0.05:
                body = {
                    "data": {
                        "attributes": {
                            "advertiserIds": [str(rng.choice(advertisers))],
                            "dimensions": rng.choice([["campaignId"], ["sellerId", "hour"]]),
                            "lookbackWindow": rng.choice([60, 120, 180]),
                        }
                    }
                }
                answer = await http.post(
                    f"{STATS}/realtime-reports/export", json=body, headers=headers
                )
                tally.record("create", answer.status_code, time.monotonic() - started)
                if answer.status_code == 200:
                    export_id = answer.json()["exportId"]
            else:
                answer = await http.get(f"{STATS}/report-jobs/{export_id}", headers=headers)
                tally.record("poll", answer.status_code, time.monotonic() - started)
        except httpx.HTTPError:
            tally.transport_errors += 1
        await asyncio.sleep(max(0.0, poll_interval - (time.monotonic() - started)))


async def ingest(
    url: str,
    headers: dict[str, str],
    bodies: list[tuple[bytes, int, int]],
    rate: int,
    seconds: float,
    tally: Tally,
) -> None:
    """Open loop: a 1,000-event request every 1000/rate s, at most 48 in flight."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    gate = asyncio.Semaphore(48)

    async def send(http: httpx.AsyncClient, index: int) -> None:
        body, events, displays = bodies[index % len(bodies)]
        started = time.monotonic()
        try:
            answer = await http.post(
                "/ingest/v1/events",
                content=body,
                headers={**headers, "Idempotency-Key": f"load-{index}"},
            )
        except httpx.HTTPError:
            tally.transport_errors += 1
            return
        finally:
            gate.release()
        tally.record("ingest", answer.status_code, time.monotonic() - started)
        if answer.status_code == 200 and not answer.json()["duplicate"]:
            tally.acked_events += events
            tally.acked_displays += displays

    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        start = time.monotonic()
        deadline = start + seconds
        pending: list[asyncio.Task[None]] = []
        index = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(max(0.0, start + index * 1000 / rate - time.monotonic()))
            await gate.acquire()
            pending.append(asyncio.create_task(send(http, index)))
            index += 1
        await asyncio.wait_for(asyncio.gather(*pending), 120)


def ingest_process(
    url: str,
    headers: dict[str, str],
    bodies: list[tuple[bytes, int, int]],
    rate: int,
    seconds: float,
    out: Any,
) -> None:
    """The ingest load in a process of its own, so report clients cannot starve it."""
    tally = Tally()
    asyncio.run(ingest(url, headers, bodies, rate, seconds, tally))
    out.put(
        (
            dict(tally.status),
            tally.latency["ingest"],
            tally.acked_events,
            tally.acked_displays,
            tally.transport_errors,
        )
    )


async def run(
    args: argparse.Namespace,
    url: str,
    report_headers: list[dict[str, str]],
    ingest_headers: dict[str, str],
    advertisers: list[int],
    bodies: list[tuple[bytes, int, int]],
) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + args.seconds
    limits = httpx.Limits(
        max_connections=args.clients + 50, max_keepalive_connections=args.clients + 50
    )
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        rng = random.Random(7)
        tasks = [
            report_client(
                http,
                report_headers[i % len(report_headers)],
                advertisers,
                deadline,
                args.poll_interval,
                tally,
                random.Random(rng.random()),
            )
            for i in range(args.clients)
        ]
        results: Any = multiprocessing.Queue()
        feeder = multiprocessing.Process(
            target=ingest_process,
            args=(url, ingest_headers, bodies, args.ingest_rate, args.seconds, results),
        )
        feeder.start()
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), args.seconds + 120)
            status, latency, events, displays, errors = await asyncio.to_thread(
                results.get, True, 180
            )
        finally:
            feeder.join(timeout=30)
            if feeder.is_alive():
                feeder.kill()
    tally.status.update(status)
    tally.latency["ingest"] = latency
    tally.acked_events, tally.acked_displays = events, displays
    tally.transport_errors += errors
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--ingest-rate", type=int, default=20_000)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    args = parser.parse_args()
    world = World.generate(seed=7)
    simulator = Simulator(world, seed=7)
    advertisers = [a.advertiser_id for a in world.advertisers]
    now = datetime.now(UTC)
    bodies = []
    for i in range(200):
        events = simulator.events(now - timedelta(seconds=i % 50), 1000)
        bodies.append((orjson.dumps(events), len(events), sum(int(e["displays"]) for e in events)))  # type: ignore[call-overload]
    with tempfile.TemporaryDirectory(prefix="mpo-load-") as tmp:
        data_dir = Path(tmp)
        store = DuckDBEventStore(data_dir / "events.duckdb")
        for batch in simulator.backfill(now - timedelta(hours=3), now - timedelta(minutes=1)):
            store.append(batch)
        base_displays = store.totals()["displays"]
        store.close()
        reporters = [create_client(data_dir, f"report-{i}", advertisers) for i in range(10)]
        ingester = create_client(data_dir, "ingest", advertisers, ingest=True)
        with running_server(data_dir) as server:
            tokens = [get_token(server.url, c["client_id"], c["client_secret"]) for c in reporters]
            report_headers = [{"Authorization": f"Bearer {t}"} for t in tokens]
            token = get_token(server.url, ingester["client_id"], ingester["client_secret"])
            tally = asyncio.run(
                run(
                    args,
                    server.url,
                    report_headers,
                    {"Authorization": f"Bearer {token}"},
                    advertisers,
                    bodies,
                )
            )
        store = DuckDBEventStore(data_dir / "events.duckdb")
        stored = store.totals()["displays"] - base_displays
        store.close()
    server_errors = sum(n for key, n in tally.status.items() if key.split()[1].startswith("5"))
    rows = [[kind, *summary_ms(values).values()] for kind, values in sorted(tally.latency.items())]
    print_table(
        f"load: {args.clients} clients, {args.seconds:g} s, ingest {args.ingest_rate}/s",
        ["request", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        rows,
    )
    print_table("answers", ["request status", "count"], sorted(tally.status.items()))
    result = {
        "answers": dict(tally.status),
        "latency": {k: summary_ms(v) for k, v in tally.latency.items()},
        "server_errors": server_errors,
        "transport_errors": tally.transport_errors,
        "ingested_events_per_s": round(tally.acked_events / args.seconds),
        "acked_displays": tally.acked_displays,
        "stored_displays": stored,
        "lost_or_doubled": stored - tally.acked_displays,
    }
    print(f"\n5xx: {server_errors}; acked displays {tally.acked_displays}, stored {stored}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
