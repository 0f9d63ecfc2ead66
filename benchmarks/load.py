"""Load test: 200 concurrent report clients for 60 s while ingest runs at 20k events/s.

Two deployments (``--deployment``):

* ``embedded`` (the default): one real ``mpo serve`` on loopback over a DuckDB file;
* ``scale-out``: ``--apis`` API processes (``mpo serve --no-runner``, one port each) and
  ``--workers`` ``mpo worker`` processes over ClickHouse, PostgreSQL and Redis, with a
  database and key prefix of this run's own (``benchmarks/_cluster.py``); report clients
  and ingest requests are spread evenly over the API processes, as a load balancer would.

This process is the load: report clients create exports (a few distinct requests, so most
are cache hits) and poll them every ``--poll-interval`` seconds, as the source tells
integrators to, each over an HTTP connection of its own, through a minimal HTTP/1.1
client (``RawHttp``) so that the load process's own CPU stays out of the latencies it
measures (``--client-http httpx``: an httpx client each, as integrators use it, about 1 ms
of this process's CPU a request; ``--client-pool shared``: one httpx pool per API
process, as this script first did, which costs the load process most of its CPU); a
second process sends 1,000-event ingest batches at ``--ingest-rate``.
Everything is bounded by ``--seconds``. Every process started is stopped by its PID at
the end, also on failure. Then the store is checked: the displays and clicks stored since
the start equal those of the acknowledged requests, and every acknowledged request's
idempotency key is recorded once, with its event count (nothing lost, nothing doubled).
The poll p99 is also printed after the first 5 s and per 10 s of the run (is the tail
the start's burst of creates?). The targets (poll p99 <= 250 ms, no 5xx, exactly once)
are printed met or not; the exit status is 1 when a 5xx was answered or an event was
lost or doubled (unless an ingest request got no answer at all: then the comparison is
inexact, and the output says so).

    .venv/bin/python benchmarks/load.py [--deployment scale-out] [--clients 200] \
        [--seconds 60] [--ingest-rate 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import multiprocessing
import os
import random
import ssl
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import duckdb
import httpx
import orjson
import pyarrow as pa

from _harness import (
    STATS,
    CpuWindow,
    create_client,
    get_token,
    print_table,
    running_server,
    summary_ms,
)
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from mpo_realtime.store.simulator import Simulator, World

POLL_P99_TARGET_MS = 250.0

#: a pre-serialised ingest body: bytes, events, displays, clicks
Body = tuple[bytes, int, int, int]


class Tally:
    def __init__(self) -> None:
        self.status: collections.Counter[str] = collections.Counter()
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.acked_events = 0
        self.acked_displays = 0
        self.acked_clicks = 0
        self.acked_requests = 0
        self.transport_errors = 0
        self.feeder_cpu_s = 0.0
        #: ingest requests without an answer: stored or not, nobody knows
        self.ingest_transport_errors = 0
        #: monotonic time the clients started; each poll's start, seconds after it
        self.t0 = time.monotonic()
        self.poll_started: list[float] = []
        #: every report request: kind, status, start (seconds after ``t0``), seconds
        self.requests: list[tuple[str, int, float, float]] = []

    def record(self, kind: str, status: int, seconds: float) -> None:
        self.status[f"{kind} {status}"] += 1
        self.latency[kind].append(seconds)
        start = time.monotonic() - seconds - self.t0
        self.requests.append((kind, status, start, seconds))
        if kind == "poll":
            self.poll_started.append(start)

    def poll_p99_over_time(self, skip: float = 5.0, window: float = 10.0) -> dict[str, Any]:
        """Poll p99 (ms) after the first ``skip`` seconds, and per ``window`` seconds.

        Says whether the tail is the start's burst of creates or spread over the run.
        """
        polls = list(zip(self.poll_started, self.latency["poll"], strict=True))
        after = [s for t, s in polls if t >= skip]
        windows: dict[int, list[float]] = collections.defaultdict(list)
        for t, s in polls:
            windows[int(t // window)].append(s)
        return {
            f"after_{skip:g}s": summary_ms(after)["p99_ms"] if after else None,
            f"per_{window:g}s": [
                summary_ms(windows[i])["p99_ms"] if windows[i] else None
                for i in range(max(windows, default=-1) + 1)
            ],
        }


@dataclass(frozen=True, slots=True)
class RawAnswer:
    """The part of an ``httpx.Response`` the report clients read."""

    status_code: int
    content: bytes

    def json(self) -> Any:
        return orjson.loads(self.content)


class RawHttp:
    """A minimal HTTP/1.1 client on one keep-alive connection: the load's own instrument.

    httpx costs this process about 1 ms of CPU per request; with 200 clients on one event
    loop, a herd of polls due together (all clients poll 1 s after their first create)
    then waits for the loop to send and read every one of them, about 200 ms on this
    machine, whatever the server does. This sends a request and reads its answer with
    asyncio streams (status line, headers, ``Content-Length`` body; the API never chunks
    these answers) for a few tens of microseconds, so that the latencies measured are the
    server's. ``--client-http httpx`` keeps the httpx clients. Failures raise httpx's own
    transport errors, which the clients count as before.
    """

    def __init__(self, base_url: str, timeout: float = 30) -> None:
        url = httpx.URL(base_url)
        self._host, self._port = url.host, url.port or 80
        self._timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawHttp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def get(self, path: str, *, headers: dict[str, str]) -> RawAnswer:
        return await self._request("GET", path, headers, b"")

    async def post(self, path: str, *, json: Any, headers: dict[str, str]) -> RawAnswer:
        return await self._request("POST", path, headers, orjson.dumps(json))

    async def _request(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> RawAnswer:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if method == "POST":
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        try:
            async with asyncio.timeout(self._timeout):
                if self._writer is None:
                    self._reader, self._writer = await asyncio.open_connection(
                        self._host, self._port
                    )
                assert self._reader is not None
                self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
                status_line = await self._reader.readline()
                if not status_line:
                    raise ConnectionResetError("the server closed the connection")
                status = int(status_line.split()[1])
                length, close = 0, False
                while (line := await self._reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "connection":
                        close = value.strip().lower() == "close"
                    elif name == "transfer-encoding":
                        raise ValueError(f"unexpected Transfer-Encoding: {value.strip()}")
                content = await self._reader.readexactly(length)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            await self.aclose()
            raise httpx.ReadError(f"{method} {path}: {exc!r}") from exc
        if close:
            await self.aclose()
        return RawAnswer(status, content)


async def report_client(
    http: httpx.AsyncClient | RawHttp,
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
    urls: list[str],
    headers: dict[str, str],
    bodies: list[Body],
    rate: int,
    seconds: float,
    tally: Tally,
) -> None:
    """Open loop: a 1,000-event request every 1000/rate s, at most 48 in flight, to the
    API processes in turn."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    gate = asyncio.Semaphore(48)

    async def send(http: httpx.AsyncClient, index: int) -> None:
        body, events, displays, clicks = bodies[index % len(bodies)]
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
            tally.acked_clicks += clicks
            tally.acked_requests += 1

    async with contextlib.AsyncExitStack() as stack:
        https = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, timeout=30, limits=limits)
            )
            for url in urls
        ]
        start = time.monotonic()
        deadline = start + seconds
        pending: list[asyncio.Task[None]] = []
        index = 0
        while time.monotonic() < deadline:
            await asyncio.sleep(max(0.0, start + index * 1000 / rate - time.monotonic()))
            await gate.acquire()
            pending.append(asyncio.create_task(send(https[index % len(https)], index)))
            index += 1
        await asyncio.wait_for(asyncio.gather(*pending), 120)


def ingest_process(
    urls: list[str],
    headers: dict[str, str],
    bodies: list[Body],
    rate: int,
    seconds: float,
    out: Any,
) -> None:
    """The ingest load in a process of its own, so report clients cannot starve it."""
    tally = Tally()
    cpu = time.process_time()
    asyncio.run(ingest(urls, headers, bodies, rate, seconds, tally))
    tally.feeder_cpu_s = time.process_time() - cpu
    out.put(
        (
            dict(tally.status),
            tally.latency["ingest"],
            (tally.acked_events, tally.acked_displays, tally.acked_clicks, tally.acked_requests),
            tally.transport_errors,
            tally.feeder_cpu_s,
        )
    )


async def run(
    args: argparse.Namespace,
    urls: list[str],
    report_headers: list[dict[str, str]],
    ingest_headers: dict[str, str],
    advertisers: list[int],
    bodies: list[Body],
) -> Tally:
    tally = Tally()
    async with contextlib.AsyncExitStack() as stack:
        https: list[httpx.AsyncClient | RawHttp]
        if args.client_pool == "shared":
            # one pool per API process for all the clients (how this script began)
            limits = httpx.Limits(
                max_connections=args.clients + 50, max_keepalive_connections=args.clients + 50
            )
            shared = [
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url=url, timeout=30, limits=limits)
                )
                for url in urls
            ]
            https = [shared[i % len(urls)] for i in range(args.clients)]
        elif args.client_http == "raw":
            https = [
                await stack.enter_async_context(RawHttp(urls[i % len(urls)]))
                for i in range(args.clients)
            ]
        else:
            # Each report client has an HTTP client and connection of its own, as
            # independent integrators do. httpx's pool looks at every one of its
            # connections for each request, so one pool of 200 connections cost this
            # process most of its CPU and delayed answers the server had already sent.
            single = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            tls = ssl.create_default_context()  # unused on http://; made once, not 200 times
            https = [
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        base_url=urls[i % len(urls)], timeout=30, limits=single, verify=tls
                    )
                )
                for i in range(args.clients)
            ]
        deadline = time.monotonic() + args.seconds
        tally.t0 = time.monotonic()
        rng = random.Random(7)
        tasks = [
            report_client(
                https[i],
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
            args=(urls, ingest_headers, bodies, args.ingest_rate, args.seconds, results),
        )
        feeder.start()
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), args.seconds + 120)
            status, latency, acked, errors, feeder_cpu = await asyncio.to_thread(
                results.get, True, 180
            )
        finally:
            feeder.join(timeout=30)
            if feeder.is_alive():
                feeder.kill()
    tally.status.update(status)
    tally.latency["ingest"] = latency
    (tally.acked_events, tally.acked_displays, tally.acked_clicks, tally.acked_requests) = acked
    tally.transport_errors += errors
    tally.ingest_transport_errors = errors
    tally.feeder_cpu_s = feeder_cpu
    return tally


def _stored(totals: dict[str, Any], keys: tuple[Any, ...]) -> dict[str, int]:
    """The store's figures the check compares: sums of the roll-up, and the ingest keys
    of this script's requests (how many rows, how many distinct keys, their events)."""
    return {
        "displays": int(totals["displays"]),
        "clicks": int(totals["clicks"]),
        "key_rows": int(keys[0]),
        "keys": int(keys[1]),
        "key_events": int(keys[2] or 0),
    }


#: the store keys a request as "CLIENT_ID:Idempotency-Key"
KEYS_SQL = (
    "SELECT count(*), count(DISTINCT key), sum(events) FROM {table} WHERE key LIKE '%:load-%'"
)


def run_embedded(
    args: argparse.Namespace,
    advertisers: list[int],
    simulator: Simulator,
    bodies: list[Body],
    now: datetime,
) -> tuple[Tally, dict[str, int], dict[str, int], dict[str, Any]]:
    """One ``mpo serve`` over a DuckDB file; the store read before and after the load."""
    with tempfile.TemporaryDirectory(prefix="mpo-load-") as tmp:
        data_dir = Path(tmp)
        store = DuckDBEventStore(data_dir / "events.duckdb")
        for batch in simulator.backfill(now - timedelta(hours=3), now - timedelta(minutes=1)):
            store.append(batch)
        base = _stored(store.totals(), (0, 0, 0))
        store.close()
        reporters = [create_client(data_dir, f"report-{i}", advertisers) for i in range(10)]
        ingester = create_client(data_dir, "ingest", advertisers, ingest=True)
        with running_server(data_dir) as server:
            layout: dict[str, Any] = {"deployment": "embedded", "pids": {"api": [server.pid]}}
            tally, layout["cpu"] = _load_through(
                args, [server.url], {"api": server.pid}, reporters, ingester, advertisers, bodies
            )
        # the server is stopped: its DuckDB file may be opened here
        store = DuckDBEventStore(data_dir / "events.duckdb")
        totals = store.totals()
        store.close()
        connection = duckdb.connect(str(data_dir / "events.duckdb"), read_only=True)
        try:
            keys = connection.execute(KEYS_SQL.format(table="ingest_keys")).fetchone()
        finally:
            connection.close()
        assert keys is not None
    return tally, base, _stored(totals, tuple(keys)), layout


def run_scale_out(
    args: argparse.Namespace,
    advertisers: list[int],
    simulator: Simulator,
    bodies: list[Body],
    now: datetime,
) -> tuple[Tally, dict[str, int], dict[str, int], dict[str, Any]]:
    """API processes and workers over ClickHouse, PostgreSQL and Redis of this run's own."""
    from _cluster import running_cluster
    from mpo_realtime.store.clickhouse_store import ClickHouseEventStore

    base: dict[str, int] = {}

    def backfill(url: str) -> None:
        store = ClickHouseEventStore(url)
        try:
            for batch in simulator.backfill(now - timedelta(hours=3), now - timedelta(minutes=1)):
                store.append(pa.Table.from_batches([batch]))
            base.update(_stored(store.totals(), (0, 0, 0)))
        finally:
            store.close()

    env = {"MPO_RUNNER_CONCURRENCY": str(args.runner_concurrency)}
    with (
        tempfile.TemporaryDirectory(prefix="mpo-load-") as tmp,
        running_cluster(
            Path(tmp), apis=args.apis, workers=args.workers, env=env, before_start=backfill
        ) as cluster,
    ):
        layout: dict[str, Any] = {
            "deployment": "scale-out",
            "apis": args.apis,
            "workers": args.workers,
            "runner_concurrency": args.runner_concurrency,
            "pids": cluster.pids,
        }
        reporters = [cluster.create_client(f"report-{i}", advertisers) for i in range(10)]
        ingester = cluster.create_client("ingest", advertisers, ingest=True)
        pids = {f"api{i + 1}": pid for i, pid in enumerate(cluster.pids["api"])}
        pids.update({f"worker{i + 1}": pid for i, pid in enumerate(cluster.pids["worker"])})
        if cluster.clickhouse_pid is not None:
            pids["clickhouse"] = cluster.clickhouse_pid
        tally, layout["cpu"] = _load_through(
            args, cluster.urls, pids, reporters, ingester, advertisers, bodies
        )
        # every acknowledged request was stored before its answer: read it all now
        store = ClickHouseEventStore(cluster.event_store_url)
        try:
            totals = store.totals()
            database = cluster.event_store_url.rsplit("/", 1)[1].split("?")[0]
            keys = store._query(KEYS_SQL.format(table=f"`{database}`.ingest_keys"))[0]
        finally:
            store.close()
    return tally, base, _stored(totals, tuple(keys)), layout


def _load_through(
    args: argparse.Namespace,
    urls: list[str],
    pids: dict[str, int],
    reporters: list[dict[str, Any]],
    ingester: dict[str, Any],
    advertisers: list[int],
    bodies: list[Body],
) -> tuple[Tally, dict[str, Any]]:
    # tokens from the first API process; every one accepts them (one signing key)
    tokens = [get_token(urls[0], c["client_id"], c["client_secret"]) for c in reporters]
    report_headers = [{"Authorization": f"Bearer {t}"} for t in tokens]
    token = get_token(urls[0], ingester["client_id"], ingester["client_secret"])
    # CPU of the servers and of this (report clients') process over the load
    window = CpuWindow({**pids, "report clients": os.getpid()})
    window.start()
    tally = asyncio.run(
        run(args, urls, report_headers, {"Authorization": f"Bearer {token}"}, advertisers, bodies)
    )
    used = window.stop()
    used["cpu_s"]["ingest client"] = round(tally.feeder_cpu_s, 2)
    return tally, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deployment", choices=("embedded", "scale-out"), default="embedded")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--ingest-rate", type=int, default=20_000)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument(
        "--client-pool",
        choices=("own", "shared"),
        default="own",
        help="report clients: an HTTP connection pool each, or one shared per API process",
    )
    parser.add_argument(
        "--client-http",
        choices=("raw", "httpx"),
        default="raw",
        help="report clients' HTTP: a minimal HTTP/1.1 client each (the load's CPU kept out"
        " of the latencies), or httpx as integrators use it (about 1 ms of this process's"
        " CPU a request); --client-pool shared implies httpx",
    )
    parser.add_argument("--apis", type=int, default=2, help="scale-out: API processes")
    parser.add_argument("--workers", type=int, default=2, help="scale-out: mpo worker processes")
    parser.add_argument(
        "--runner-concurrency", type=int, default=2, help="scale-out: jobs at once per worker"
    )
    parser.add_argument(
        "--trace",
        type=Path,
        help="write every report request (kind, status, start s, latency ms) to this CSV",
    )
    args = parser.parse_args()
    world = World.generate(seed=7)
    simulator = Simulator(world, seed=7)
    advertisers = [a.advertiser_id for a in world.advertisers]
    now = datetime.now(UTC)
    bodies: list[Body] = []
    for i in range(200):
        events = simulator.events(now - timedelta(seconds=i % 50), 1000)
        bodies.append(
            (
                orjson.dumps(events),
                len(events),
                sum(int(cast(int, e["displays"])) for e in events),
                sum(int(cast(int, e["clicks"])) for e in events),
            )
        )
    load_average = os.getloadavg()
    started = datetime.now(UTC)
    runner = run_embedded if args.deployment == "embedded" else run_scale_out
    tally, base, after, layout = runner(args, advertisers, simulator, bodies, now)
    stored = {key: after[key] - base[key] for key in after}
    acked = {
        "displays": tally.acked_displays,
        "clicks": tally.acked_clicks,
        "key_rows": tally.acked_requests,
        "keys": tally.acked_requests,
        "key_events": tally.acked_events,
    }
    server_errors = sum(n for key, n in tally.status.items() if key.split()[1].startswith("5"))
    rows = [[kind, *summary_ms(values).values()] for kind, values in sorted(tally.latency.items())]
    print_table(
        f"load ({args.deployment}): {args.clients} clients, {args.seconds:g} s,"
        f" ingest {args.ingest_rate}/s",
        ["request", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"],
        rows,
    )
    print_table("answers", ["request status", "count"], sorted(tally.status.items()))
    print_table(
        "check: acknowledged against stored (since the start)",
        ["figure", "acknowledged", "stored", "equal"],
        [[key, acked[key], stored[key], acked[key] == stored[key]] for key in acked],
    )
    exact = all(acked[key] == stored[key] for key in acked)
    cpu = layout["cpu"]
    answered = sum(tally.status.values())
    servers = {
        k: v for k, v in cpu["cpu_s"].items() if not k.endswith("client") and k != "report clients"
    }
    cpu["server_cpu_s"] = round(sum(servers.values()), 2)
    cpu["server_cpu_ms_per_request"] = round(cpu["server_cpu_s"] / answered * 1000, 2)
    print_table(
        f"CPU over the load ({cpu['seconds']} s; machine busy {cpu['machine_busy']},"
        f" steal {cpu['machine_steal']}; load average {os.getloadavg()[0]:.1f})",
        ["process", "CPU s", "waiting for a core s"],
        [
            [name, value, cpu["runqueue_wait_s"].get(name, "")]
            for name, value in cpu["cpu_s"].items()
        ],
    )
    print(
        f"  servers: {cpu['server_cpu_s']} CPU s for {answered} answers,"
        f" {cpu['server_cpu_ms_per_request']} ms per request"
    )
    result = {
        **layout,
        "client_http": "httpx" if args.client_pool == "shared" else args.client_http,
        "started": started.isoformat(timespec="seconds"),
        "load_average_start": load_average,
        "load_average_end": os.getloadavg(),
        "answers": dict(tally.status),
        "latency": {k: summary_ms(v) for k, v in tally.latency.items()},
        "server_errors": server_errors,
        "transport_errors": tally.transport_errors,
        "ingested_events_per_s": round(tally.acked_events / args.seconds),
        "acked": acked,
        "stored": stored,
        "lost_or_doubled": stored["displays"] - tally.acked_displays,
        "exactly_once": exact,
        "ingest_without_answer": tally.ingest_transport_errors,
    }
    poll_p99 = summary_ms(tally.latency["poll"])["p99_ms"] if tally.latency["poll"] else None
    targets = {
        "poll p99 <= 250 ms": poll_p99 is not None and poll_p99 <= POLL_P99_TARGET_MS,
        "no 5xx": server_errors == 0,
        "every acknowledged event stored exactly once": exact,
    }
    result["poll_p99_ms"] = poll_p99
    over_time = tally.poll_p99_over_time()
    result["poll_p99_over_time_ms"] = over_time
    result["targets_met"] = targets
    print(
        f"\n5xx: {server_errors}; poll p99 {poll_p99} ms;"
        f" acknowledged displays {tally.acked_displays}, stored {stored['displays']}"
    )
    print(
        f"poll p99 after the first 5 s: {over_time['after_5s']} ms;"
        f" per 10 s: {over_time['per_10s']} ms"
    )
    for target, met in targets.items():
        print(f"  {target}: {'met' if met else 'NOT MET'}")
    if args.trace:
        with args.trace.open("w") as trace:
            trace.write("kind,status,start_s,latency_ms\n")
            for kind, status, start, seconds in sorted(tally.requests, key=lambda r: r[2]):
                trace.write(f"{kind},{status},{start:.4f},{seconds * 1000:.2f}\n")
    print(json.dumps(result))
    if not exact and tally.ingest_transport_errors:
        print(
            f"  (inexact: {tally.ingest_transport_errors} ingest requests got no answer;"
            " each may or may not have been stored)"
        )
    # a lost or doubled event, or a 5xx, is a defect: the exit status says so (a slow
    # poll on a busy machine is a figure, reported above)
    if server_errors or not (exact or tally.ingest_transport_errors):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
