"""CPU time of one poll inside the app, without HTTP: the direct path against FastAPI's.

The real app and services (DuckDB, SQLite) in this process, one ``Done`` export; the
ASGI app is called directly in a loop, with the access log on (written to a file) as
``mpo serve`` has it. The same requests go through the app as served (the poll answered
by ``api/direct.py``) and through the same app without the direct dispatch (FastAPI's
router and parameter solver): the ratio is this run's baseline. Thread CPU time, best
of ``--batches`` batches, so that other work on a shared machine counts little.

    .venv/bin/python benchmarks/bench_poll_cpu.py [--polls 20000] [--batches 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from collections.abc import MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from _harness import STATS, print_table
from mpo_realtime.api.app import create_app
from mpo_realtime.domain.jobs import Role
from mpo_realtime.logs import configure_logging
from mpo_realtime.services import Services
from mpo_realtime.settings import Settings


def _scope(path: str, token: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _cost(app: FastAPI, scope: dict[str, Any], polls: int, batches: int) -> float:
    """Best per-poll thread CPU seconds over ``batches`` batches."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    statuses: list[int] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(200):  # warm up
        await app(dict(scope, state={}), receive, send)
    best = float("inf")
    size = max(1, polls // batches)
    for _ in range(batches):
        started = time.thread_time()
        for _ in range(size):
            await app(dict(scope, state={}), receive, send)
        best = min(best, (time.thread_time() - started) / size)
    if set(statuses) != {200}:
        raise RuntimeError(f"polls answered {sorted(set(statuses))}")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--polls", type=int, default=20000)
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="mpo-bench-poll-cpu-") as tmp,
        (Path(tmp) / "server.log").open("w") as log,
    ):
        configure_logging(logging.INFO, stream=log)
        settings = Settings(data_dir=Path(tmp))
        services = Services.open(settings)
        try:
            served = create_app(settings, services=services, background=False)
            routed = create_app(settings, services=services, background=False, direct=False)
            client, secret = services.clients.create(
                "bench",
                advertiser_ids=[321],
                roles=[Role.REPORT],
                now=datetime.now(UTC),
                requests_per_minute=10**9,
            )
            with TestClient(served) as http, TestClient(routed):
                token = http.post(
                    "/oauth2/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": client.client_id,
                        "client_secret": secret,
                    },
                ).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                body = {"data": {"attributes": {"advertiserIds": ["321"], "lookbackWindow": 60}}}
                export_id = http.post(
                    f"{STATS}/realtime-reports/export", json=body, headers=headers
                ).json()["exportId"]
                services.runner.run_one()
                path = f"{STATS}/report-jobs/{export_id}"
                if http.get(path, headers=headers).json()["status"] != "Done":
                    raise RuntimeError("the export did not finish")
                scope = _scope(path, token)
                direct = asyncio.run(_cost(served, scope, args.polls, args.batches))
                router = asyncio.run(_cost(routed, scope, args.polls, args.batches))
        finally:
            services.close()
            for handler in logging.getLogger().handlers:
                handler.close()  # writes the kept lines while the log file is still open
    print_table(
        f"CPU per Done poll in the app, no HTTP (best of {args.batches} batches)",
        ["path", "µs per poll", "polls per CPU second"],
        [
            ["as served (api/direct.py)", f"{direct * 1e6:.1f}", f"{1 / direct:,.0f}"],
            ["FastAPI router and solver", f"{router * 1e6:.1f}", f"{1 / router:,.0f}"],
        ],
    )
    print(f"\nrouted / direct: {router / direct:.2f}")
    print(json.dumps({"direct_us": direct * 1e6, "routed_us": router * 1e6}))


if __name__ == "__main__":
    main()
