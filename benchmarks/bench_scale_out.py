"""HTTP ingest into ClickHouse through one API process against two, same data, one run.

A scale-out deployment of this run's own (``benchmarks/_cluster.py``: a ClickHouse database,
a PostgreSQL database, a Redis prefix; two ``mpo serve --no-runner`` processes on two
ports, no workers). Then, for each ``--concurrency`` (requests in flight in all),
alternating for ``--rounds`` rounds so that both layouts see the same moments of this
shared machine:

* **1 API**: two load processes (the load of ``bench_ingest.py``: the same pre-serialised
  1,000-event bodies, httpx on asyncio), each with half the requests in flight, both
  against API 1 (API 2 idles);
* **2 APIs**: the same two load processes, one against each API.

The load processes are started first and begin sending at an agreed moment, so that the
measured window holds the load only. For each phase: events/s accepted, the mean time in
the system by Little's law (requests in flight / requests per second), p99 latency, CPU
seconds and run-queue wait (runnable, waiting for a core) of each API process and of
ClickHouse (when throwaway), CPU of the load processes, and the machine's busy and steal
share (``/proc/stat``), so that a bound can be named. At the end, with every answer in,
the displays stored in ClickHouse must equal the displays acknowledged.

Usage: ``.venv/bin/python benchmarks/bench_scale_out.py [--seconds 20] [--rounds 2]
[--concurrency 32,128]``. Prints a table and one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _cluster import running_cluster
from _harness import CpuWindow, get_token, print_table, start_server, stop_process
from bench_ingest import _bodies, _load
from mpo_realtime.store.clickhouse_store import ClickHouseEventStore
from mpo_realtime.store.simulator import World

__all__ = ["main"]

EVENTS_PER_BODY = 1000


def _load_process(
    url: str,
    token: str,
    bodies: list[bytes],
    displays: list[int],
    concurrency: int,
    seconds: float,
    start_at: float,
    out: Any,
) -> None:
    """One load process: wait for ``start_at`` (wall clock), then post for ``seconds``."""
    time.sleep(max(0.0, start_at - time.time()))
    result = asyncio.run(
        _load(
            url,
            token,
            bodies,
            displays,
            concurrency=concurrency,
            duration=seconds,
            events_per_body=EVENTS_PER_BODY,
        )
    )
    out.put(result)


def _phase(
    pids: dict[str, int],
    targets: list[str],
    token: str,
    bodies: tuple[list[bytes], list[int]],
    seconds: float,
    concurrency: int,
) -> dict[str, Any]:
    """One load process per target URL, started together; their figures and the CPU spent
    from the moment they start sending to the last answer."""
    context = multiprocessing.get_context("spawn")
    queue: Any = context.Queue()
    start_at = time.time() + 5.0  # time for the spawned processes to import
    loads = [
        context.Process(
            target=_load_process,
            args=(url, token, *bodies, concurrency, seconds, start_at, queue),
        )
        for url in targets
    ]
    for process in loads:
        process.start()
    try:
        time.sleep(max(0.0, start_at - time.time()))
        window = CpuWindow(pids)
        window.start()
        results = [queue.get(timeout=seconds + 180) for _ in loads]
        used = window.stop()
    finally:
        for process in loads:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    elapsed = max(r["elapsed_s"] for r in results)
    events = sum(r["events"] for r in results)
    return {
        "events": events,
        "displays": sum(r["displays"] for r in results),
        "ambiguous": sum(r["requests_ambiguous"] for r in results),
        "statuses": [r["statuses"] for r in results],
        "elapsed_s": elapsed,
        "events_per_s": round(events / elapsed),
        "latency_p50_ms": [r["latency"]["p50_ms"] for r in results],
        "latency_p99_ms": [r["latency"]["p99_ms"] for r in results],
        "in_flight": concurrency * len(targets),
        # Little's law: the mean time a request spends in the system
        "mean_latency_ms": round(
            concurrency * len(targets) * EVENTS_PER_BODY / events * elapsed * 1000, 1
        )
        if events
        else None,
        "cpu_s": used["cpu_s"],
        # runnable but waiting for a core (summed over threads): the machine's contention
        "runqueue_wait_s": used["runqueue_wait_s"],
        "load_cpu_s": round(sum(r["load_cpu_s"] for r in results), 2),
        "machine_busy": used["machine_busy"],
        "machine_steal": used["machine_steal"],
    }


def _children(pid: int, expected: int = 2, timeout: float = 60) -> list[int]:
    """The child PIDs of ``pid`` (``/proc/PID/task/*/children``), once there are ``expected``."""
    deadline = time.monotonic() + timeout
    while True:
        found = sorted(
            int(child)
            for children in Path(f"/proc/{pid}/task").glob("*/children")
            for child in children.read_text().split()
        )
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop ``mpo serve --processes`` by its PID, then any child it left, by theirs."""
    children = _children(process.pid, expected=0)
    stop_process(process, 60.0, signal.SIGTERM)
    for child in children:
        # only if that PID is still one of the group's API processes (not a new process)
        with contextlib.suppress(OSError):
            if b"--listen-fd" in Path(f"/proc/{child}/cmdline").read_bytes():
                os.kill(child, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load per phase")
    parser.add_argument("--rounds", type=int, default=2, help="1-API/2-API pairs, alternated")
    parser.add_argument(
        "--concurrency", default="32,128", help="requests in flight in all, comma-separated"
    )
    parser.add_argument(
        "--no-one-port",
        dest="one_port",
        action="store_false",
        help="leave out the `mpo serve --processes 2` layout",
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    world = World.generate(seed=7)
    advertisers = [a.advertiser_id for a in world.advertisers]
    figures: dict[str, Any] = {
        "benchmark": "scale-out ingest",
        "load_average_start": os.getloadavg(),
        "cpus": os.cpu_count(),
        "seconds": args.seconds,
        "phases": [],
    }
    bodies = _bodies(32, EVENTS_PER_BODY, datetime.now(UTC))
    with (
        tempfile.TemporaryDirectory(prefix="mpo-bench-scale-") as tmp,
        running_cluster(Path(tmp), apis=2, workers=0) as cluster,
        contextlib.ExitStack() as stack,
    ):
        client = cluster.create_client("ingest", advertisers, ingest=True)
        token = get_token(cluster.urls[0], client["client_id"], client["client_secret"])
        acked = 0
        ambiguous = 0
        engine = {"clickhouse": cluster.clickhouse_pid} if cluster.clickhouse_pid else {}
        apart = {"api1": cluster.apis[0].pid, "api2": cluster.apis[1].pid, **engine}
        layouts: list[tuple[str, list[str], dict[str, int]]] = [
            ("1 API", [cluster.urls[0]] * 2, apart),
            ("2 APIs", cluster.urls, apart),
        ]
        if args.one_port:
            # `mpo serve --processes 2`: two API processes accepting on one port
            group_dir = Path(tmp) / "api-group"
            group_dir.mkdir()
            group = start_server(
                group_dir, args=["--no-runner", "--processes", "2"], base_env=cluster.env
            )
            stack.callback(_stop_group, group.process)
            children = _children(group.pid)
            together = {f"proc{i + 1}": pid for i, pid in enumerate(children)}
            together.update(supervisor=group.pid, **engine)
            layouts.append(("2 processes, one port", [group.url] * 2, together))
        for level in levels:
            for round_ in range(args.rounds):
                for layout, targets, pids in layouts:
                    print(f"{level} in flight, round {round_ + 1}: {layout}", flush=True)
                    phase = _phase(pids, targets, token, bodies, args.seconds, level // 2)
                    phase.update(layout=layout, round=round_ + 1, load_average=os.getloadavg())
                    figures["phases"].append(phase)
                    acked += phase["displays"]
                    ambiguous += phase["ambiguous"]
        store = ClickHouseEventStore(cluster.event_store_url)
        try:
            stored = int(store.totals()["displays"])
        finally:
            store.close()
        figures["check"] = {
            "acked_displays": acked,
            "stored_displays": stored,
            "equal": acked == stored,
            "exact_comparison": ambiguous == 0,
        }
    figures["load_average_end"] = os.getloadavg()
    rows = []
    for p in figures["phases"]:
        rows.append(
            [
                p["in_flight"],
                p["round"],
                p["layout"],
                f"{p['events_per_s']:,}",
                p["mean_latency_ms"],
                " / ".join(str(v) for v in p["latency_p99_ms"]),
                " ".join(f"{k} {v}" for k, v in p["cpu_s"].items()),
                " ".join(f"{k} {v}" for k, v in p["runqueue_wait_s"].items()),
                p["load_cpu_s"],
                p["machine_busy"],
                p["machine_steal"],
                round(p["load_average"][0], 1),
            ]
        )
    print_table(
        f"HTTP ingest into ClickHouse, {args.seconds:g} s per phase",
        ["in flight", "round", "layout", "events/s", "mean ms (Little)", "p99 ms"]
        + ["CPU s", "waiting for a core s", "load CPU s", "machine busy", "steal", "load avg"],
        rows,
    )
    ratios: dict[str, dict[str, list[float]]] = {}
    for level in levels:
        at = [p for p in figures["phases"] if p["in_flight"] == level]
        ones = [p for p in at if p["layout"] == "1 API"]
        for layout in {p["layout"] for p in at} - {"1 API"}:
            others = [p for p in at if p["layout"] == layout]
            ratios.setdefault(layout, {})[str(level)] = [
                round(b["events_per_s"] / a["events_per_s"], 2)
                for a, b in zip(ones, others, strict=True)
            ]
    figures["ratio_over_1_api"] = ratios
    print(f"\nagainst 1 API, round by round, by requests in flight: {ratios}")
    print(f"check: {figures['check']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
