"""``mpo report`` end to end, and the Python client's cost over hand-written HTTP calls.

Two servers on the same three hours of simulated traffic (what ``make run`` back-fills),
with reuse of relative requests off (``MPO_CACHE_WINDOW_SECONDS=0``) so that every report
runs its export job: one as shipped (a Pending poll answers ``Retry-After: 5``), one with
``MPO_POLL_RETRY_AFTER_SECONDS=0`` so that what is measured there is the client itself,
not the wait the server asks for. The report is the README's: one advertiser,
``campaignId`` x ``hour``, the last 60 minutes, CSV.

1. In this process, alternating, ``--runs`` times each: the report by hand-written HTTP
   calls (``raw_report.py``: token fetched once, a poll every 10 ms, ``Retry-After``
   ignored, more often than the API's document allows) and by ``ReportClient.export``
   (token cached). Wall time and this process's CPU time per report.
2. Whole processes (start to file written), alternating: ``mpo report ... -o FILE``
   against ``python benchmarks/raw_report.py`` making the same calls.

``--hold S`` keeps the servers up for S seconds after the runs and prints what a
whole-process timer needs to time the two commands.

    .venv/bin/python benchmarks/bench_report.py [--runs 20] [--hold 0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from _harness import MPO, create_client, print_table, running_server
from mpo_realtime.client import PollPolicy, ReportClient, ReportOptions
from mpo_realtime.store.simulator import World
from raw_report import raw_report, token_of

HERE = Path(__file__).resolve().parent


def _median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}"


def _spread_ms(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{ordered[0] * 1000:.1f}-{ordered[-1] * 1000:.1f}"


def _timed(fn: Callable[[], bytes]) -> tuple[float, float, bytes]:
    wall, cpu = time.perf_counter(), time.process_time()
    content = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, content


def in_process(
    shipped: str, unpaced: str, creds: dict[str, str], advertiser: str, runs: int
) -> None:
    fast = PollPolicy(first=0.01, factor=2.0, maximum=10.0)
    client_id, secret = creds["client_id"], creds["client_secret"]
    report: ReportOptions = {
        "advertiser_ids": [advertiser],
        "dimensions": ["campaignId", "hour"],
        "lookback_window": 60,
    }
    seen: list[str] = []
    with (
        httpx.Client(base_url=unpaced, timeout=30) as http,
        ReportClient(unpaced, client_id, secret, poll=fast) as quick,
        ReportClient(unpaced, client_id, secret) as default_unpaced,
        ReportClient(shipped, client_id, secret) as default_shipped,
    ):
        token = token_of(http, client_id, secret)
        for client in (quick, default_unpaced, default_shipped):
            client.authenticate()
        calls: dict[str, Callable[[], bytes]] = {
            "raw HTTP, a poll every 10 ms (Retry-After 0)": lambda: raw_report(
                http, token, advertiser, 60
            ),
            "ReportClient, PollPolicy(first=0.01) (Retry-After 0)": lambda: (
                quick.export(**report).content
            ),
            "ReportClient, default polling (Retry-After 0)": lambda: (
                default_unpaced.export(**report).content
            ),
            "ReportClient, default polling (as shipped: Retry-After 5)": lambda: (
                default_shipped.export(**report, on_status=lambda s: seen.append(s.status)).content
            ),
        }
        results: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in calls}
        pendings = 0
        for _ in range(runs):
            seen.clear()
            for name, call in calls.items():
                wall, cpu, content = _timed(call)
                assert content.startswith(b'"campaignId","hour"'), content[:100]
                results[name][0].append(wall)
                results[name][1].append(cpu)
            pendings += seen[1:].count("Pending") > 0  # a poll answered Pending
    rows = [
        [name, len(walls), _median_ms(walls), _spread_ms(walls), _median_ms(cpus)]
        for name, (walls, cpus) in results.items()
    ]
    print_table(
        f"one report in process ({runs} runs each, alternating)",
        ["how", "n", "wall p50 ms", "wall min-max ms", "CPU p50 ms"],
        rows,
    )
    print(f"  as shipped, a poll answered Pending (then 5 s waited) in {pendings} of {runs} runs")


def whole_process(
    servers: dict[str, str], creds: dict[str, str], advertiser: str, runs: int
) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "report.csv"
        report = ["--advertiser", advertiser, "--dimensions", "campaignId,hour", "--lookback", "60"]
        commands = {
            "mpo report -o FILE": [MPO, "report", *report, "-o", str(out)],
            "python raw_report.py": [
                sys.executable,
                str(HERE / "raw_report.py"),
                advertiser,
                "60",
                str(out),
            ],
        }
        for label, url in servers.items():
            env = {
                **os.environ,
                "MPO_URL": url,
                "MPO_CLIENT_ID": creds["client_id"],
                "MPO_CLIENT_SECRET": creds["client_secret"],
            }
            walls: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(runs):
                for name, command in commands.items():
                    out.unlink(missing_ok=True)
                    started = time.perf_counter()
                    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
                    walls[name].append(time.perf_counter() - started)
                    assert out.read_bytes().startswith(b'"campaignId","hour"')
            for name, w in walls.items():
                rows.append([name, label, len(w), _median_ms(w), _spread_ms(w)])
    print_table(
        f"one report as a whole process, start to file written ({runs} runs each, alternating)",
        ["command", "server", "n", "wall p50 ms", "wall min-max ms"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--hold", type=float, default=0.0, help="Seconds to keep the server.")
    args = parser.parse_args()
    # the servers are stopped by the ``with`` blocks, also when the run is told to stop
    # (a script started in the background of a shell ignores SIGINT otherwise)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    advertisers = [a.advertiser_id for a in World.generate(seed=7).advertisers]
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        subprocess.run(
            [MPO, "simulate", "--hours", "3", "--seed", "7", "--data-dir", str(data_dir)],
            check=True,
            capture_output=True,
        )
        creds = create_client(data_dir, "bench", advertisers)
        unpaced_dir = Path(scratch) / "unpaced"
        shutil.copytree(data_dir, unpaced_dir)  # the same events, clients and signing key
        env = {"MPO_CACHE_WINDOW_SECONDS": "0"}
        unpaced_env = {**env, "MPO_POLL_RETRY_AFTER_SECONDS": "0"}
        with (
            running_server(data_dir, env=env) as shipped,
            running_server(unpaced_dir, env=unpaced_env) as unpaced,
        ):
            advertiser = str(advertisers[0])
            in_process(shipped.url, unpaced.url, creds, advertiser, args.runs)
            servers = {"as shipped": shipped.url, "Retry-After 0": unpaced.url}
            whole_process(servers, creds, advertiser, args.runs)
            if args.hold:
                print(f"\nMPO_CLIENT_ID={creds['client_id']}")
                print(f"MPO_CLIENT_SECRET={creds['client_secret']}")
                print(f"MPO_URL={shipped.url} (as shipped) or {unpaced.url} (Retry-After 0)")
                print(f"ADVERTISER={advertiser}")
                sys.stdout.flush()
                time.sleep(args.hold)


if __name__ == "__main__":
    main()
