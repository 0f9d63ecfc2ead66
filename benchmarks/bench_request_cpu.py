"""Server CPU per request, one request at a time: the service demand behind the load figures.

For each deployment, in one run: a poll of a ``Done`` export, a create answered from the
export cache (the same request again), and a 1,000-event ingest request (a new
``Idempotency-Key`` each), each sent ``--requests`` times in a row by one client, so that
nothing queues. Reported: CPU seconds of the server processes per request (the API
process; in the scale-out deployment also ClickHouse when throwaway) and the wall time
per request. Deployments:

* ``embedded``: one ``mpo serve`` (DuckDB, SQLite, in-memory rate limits);
* ``scale-out``: one ``mpo serve --no-runner`` and one ``mpo worker`` over ClickHouse,
  PostgreSQL and Redis (``benchmarks/_cluster.py``);
* ``scale-out, memory limits``: the same with ``MPO_RATE_LIMIT_STORAGE_URL=memory://``
  (not a valid multi-process setting: it shows what the shared rate limits cost).

Usage: ``.venv/bin/python benchmarks/bench_request_cpu.py [--requests 300]``. Prints a
table and one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from _cluster import running_cluster
from _harness import STATS, cpu_seconds, create_client, get_token, print_table, running_server
from mpo_realtime.store.simulator import Simulator, World

__all__ = ["main"]


@contextlib.contextmanager
def _deployment(
    name: str, root: Path, advertisers: list[int]
) -> Iterator[tuple[str, dict[str, int], dict[str, Any], dict[str, Any]]]:
    """(URL, server PIDs, report client, ingest client) of a running deployment."""
    if name == "embedded":
        reporter = create_client(root, "report", advertisers)
        ingester = create_client(root, "ingest", advertisers, ingest=True)
        with running_server(root) as server:
            yield server.url, {"api": server.pid}, reporter, ingester
        return
    env = {"MPO_RATE_LIMIT_STORAGE_URL": "memory://"} if "memory" in name else {}
    with running_cluster(root, apis=1, workers=1, env=env) as cluster:
        pids = {"api": cluster.apis[0].pid}
        if cluster.clickhouse_pid is not None:
            pids["clickhouse"] = cluster.clickhouse_pid
        reporter = cluster.create_client("report", advertisers)
        ingester = cluster.create_client("ingest", advertisers, ingest=True)
        yield cluster.urls[0], pids, reporter, ingester


def _measure(
    pids: dict[str, int], count: int, send: Callable[[int], httpx.Response]
) -> dict[str, Any]:
    send(-1)  # a warm-up
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    statuses: dict[int, int] = {}
    for index in range(count):
        status = send(index).status_code
        statuses[status] = statuses.get(status, 0) + 1
    wall = time.perf_counter() - started
    cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
    return {
        "statuses": statuses,
        "cpu_ms_per_request": {name: round(v / count * 1000, 3) for name, v in cpu.items()},
        "wall_ms_per_request": round(wall / count * 1000, 3),
    }


def _senders(
    http: httpx.Client,
    requests: int,
    export_id: str,
    report: dict[str, str],
    ingest: dict[str, str],
    create: dict[str, Any],
    body: bytes,
) -> dict[str, tuple[int, Callable[[int], httpx.Response]]]:
    """Each kind of request: how many to send and how to send the i-th."""

    def poll(_: int) -> httpx.Response:
        return http.get(f"{STATS}/report-jobs/{export_id}", headers=report)

    def create_again(_: int) -> httpx.Response:
        return http.post(f"{STATS}/realtime-reports/export", json=create, headers=report)

    def ingest_one(index: int) -> httpx.Response:
        headers = {**ingest, "Idempotency-Key": f"cpu-{index}"}
        return http.post("/ingest/v1/events", content=body, headers=headers)

    return {
        "poll Done": (requests, poll),
        "create, cache hit": (requests, create_again),
        "ingest, 1,000 events": (max(1, requests // 5), ingest_one),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    world = World.generate(seed=7)
    advertisers = [a.advertiser_id for a in world.advertisers]
    body = orjson.dumps(Simulator(world, seed=7).events(datetime.now(UTC), 1000))
    create = {
        "data": {
            "attributes": {
                "advertiserIds": [str(advertisers[0])],
                "dimensions": ["campaignId"],
                "lookbackWindow": 60,
            }
        }
    }
    figures: dict[str, Any] = {"load_average_start": os.getloadavg(), "deployments": {}}
    for name in ("embedded", "scale-out", "scale-out, memory limits"):
        with (
            tempfile.TemporaryDirectory(prefix="mpo-bench-cpu-") as tmp,
            _deployment(name, Path(tmp), advertisers) as (url, pids, reporter, ingester),
            httpx.Client(base_url=url, timeout=60) as http,
        ):
            report = {
                "Authorization": "Bearer "
                + get_token(url, reporter["client_id"], reporter["client_secret"])
            }
            ingest = {
                "Authorization": "Bearer "
                + get_token(url, ingester["client_id"], ingester["client_secret"])
            }
            export_id = http.post(
                f"{STATS}/realtime-reports/export", json=create, headers=report
            ).json()["exportId"]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                polled = http.get(f"{STATS}/report-jobs/{export_id}", headers=report)
                if polled.json().get("status") == "Done":
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError(f"{name}: the export never finished")
            results = {
                kind: _measure(pids, count, send)
                for kind, (count, send) in _senders(
                    http, args.requests, export_id, report, ingest, create, body
                ).items()
            }
            figures["deployments"][name] = results
            print(f"{name}: done", flush=True)
    figures["load_average_end"] = os.getloadavg()
    rows = []
    for name, results in figures["deployments"].items():
        for kind, result in results.items():
            rows.append(
                [
                    name,
                    kind,
                    " ".join(f"{k} {v}" for k, v in result["cpu_ms_per_request"].items()),
                    result["wall_ms_per_request"],
                    result["statuses"],
                ]
            )
    print_table(
        f"server CPU per request, {args.requests} in a row (ingest: a fifth as many)",
        ["deployment", "request", "CPU ms per request", "wall ms", "statuses"],
        rows,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
