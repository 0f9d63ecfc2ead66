"""Where a real ``mpo serve``'s memory goes under live ingest, and what a big export adds.

1. Copy a store built by ``bench_exports.py --build-store`` (``--store-from``; else an
   empty data dir) and start ``mpo serve`` with its defaults under ``_memprobe.py``,
   which writes a breakdown of the process's memory every ``--probe-interval`` seconds
   (RSS, glibc malloc, pyarrow's pool, DuckDB's own accounting, threads).
2. Ingest at ``--ingest-rate`` events/s over HTTP (``load.py``'s open-loop feeder,
   1,000-event requests) for ``--seconds`` (0: no ingest, the server idle).
3. Then, still under that ingest, ``--exports`` (e.g. ``csv,json``): the large report of
   ``bench_exports.py`` (~10M rows on a 20M-row store), create -> Done, the server's RSS
   sampled every 50 ms; then ``--after`` seconds more of ingest.

``--env K=V`` (repeatable) adds to the server's environment (e.g. ``MALLOC_ARENA_MAX=2``
to compare). Prints the breakdown over time, the exports' peaks, then one JSON line.

Usage: ``.venv/bin/python benchmarks/bench_server_memory.py --store-from S --seconds 180
--exports csv,json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from _harness import (
    BENCH_SERVER_ENV,
    Server,
    _wait_healthy,
    create_client,
    free_port,
    get_token,
    spawn,
    stop_process,
)
from bench_exports import THROUGHPUT_DIMENSIONS, _api_export, _start_ingest, _stop_ingest

__all__ = ["main"]

PROBE = str(Path(__file__).with_name("_memprobe.py"))


def _probe_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _start(data_dir: Path, probe_out: Path, args: argparse.Namespace) -> Server:
    port = free_port()
    command = [sys.executable, PROBE, str(probe_out), str(args.probe_interval), "--"]
    if args.no_probe:
        command = [str(Path(sys.executable).with_name("mpo"))]
    command += ["serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    extra = dict(item.split("=", 1) for item in args.env)
    env = {**os.environ, **BENCH_SERVER_ENV, **extra}
    process = spawn(command, data_dir / "server.log", env)
    server = Server(process, f"http://127.0.0.1:{port}", data_dir, data_dir / "server.log")
    try:
        _wait_healthy(server, 120.0)
    except BaseException:
        stop_process(process, grace=30.0)
        raise
    return server


def _wait(seconds: float, server: Server) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited:\n{server.log_tail()}")
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "benchmark": "server_memory",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_before": os.getloadavg(),
        "env": args.env,
    }
    with tempfile.TemporaryDirectory(prefix="mpo-bench-mem-", dir=args.tmp or None) as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        store: dict[str, Any] = {}
        if args.store_from:
            shutil.copyfile(args.store_from, data_dir / "events.duckdb")
            store = json.loads(Path(f"{args.store_from}.json").read_text())
        advertisers = [int(a) for a in store.get("advertisers", [])] or list(range(1, 21))
        if not store:
            from bench_exports import _world  # noqa: PLC0415

            advertisers = [a.advertiser_id for a in _world(args.products).advertisers]
        probe_out = Path(tmp) / "probe.jsonl"
        server = _start(data_dir, probe_out, args)
        marks: dict[str, float] = {"started": time.time()}
        try:
            every = create_client(data_dir, "bench-all", advertisers)
            feeder = None
            if args.ingest_rate and args.seconds:
                feeder = _start_ingest(server.url, data_dir, advertisers, args)
                marks["ingest"] = time.time()
            _wait(args.seconds, server)
            exports = []
            if args.exports and store:
                attributes = {
                    "advertiserIds": [str(a) for a in advertisers],
                    "dimensions": THROUGHPUT_DIMENSIONS.split(","),
                    "startDate": store["start"],
                    "endDate": store["end"],
                }
                end = datetime.fromisoformat(store["end"])
                with httpx.Client(base_url=server.url, timeout=60.0) as http:
                    for i, file_format in enumerate(args.exports.split(",")):
                        token = get_token(server.url, every["client_id"], every["client_secret"])
                        moved = (end + timedelta(minutes=i)).isoformat()
                        marks[f"export{i}:{file_format}"] = time.time()
                        entry = _api_export(
                            http,
                            {"Authorization": f"Bearer {token}"},
                            server.pid,
                            data_dir,
                            {**attributes, "fileFormat": file_format, "endDate": moved},
                            args.export_timeout,
                        )
                        entry["format"] = file_format
                        marks[f"export{i}:done"] = time.time()
                        exports.append(entry)
                        print(
                            f"export {file_format}: {entry['status']} {entry.get('rows', 0):,} rows"
                            f" in {entry['seconds']} s; RSS {entry['rss_before_mb']} ->"
                            f" peak {entry['rss_peak_mb']} MB",
                            flush=True,
                        )
                        _wait(args.between, server)
                _wait(args.after, server)
            if feeder is not None:
                results["ingest"] = _stop_ingest(feeder)
            time.sleep(args.probe_interval * 1.5)
        finally:
            stop_process(server.process, grace=60.0)
        results["exports"] = exports
        results["marks"] = marks
        results["probe"] = _probe_lines(probe_out)
        results["load_average_after"] = os.getloadavg()
        log = data_dir / "server.log"
        results["server_log_tail"] = log.read_text(errors="replace").splitlines()[-5:]
    return results


def _report(results: dict[str, Any]) -> None:
    probe = results["probe"]
    if not probe:
        print("no probe lines")
        return
    t0 = results["marks"]["started"]
    keys = [
        "rss_mb",
        "anon_mb",
        "file_mb",
        "glibc_used_mb",
        "glibc_free_mb",
        "glibc_arenas",
        "arrow_mb",
        "duckdb_mb",
        "os_threads",
        "gc_objects",
    ]
    print("s     " + " ".join(f"{k:>14}" for k in keys))
    for line in probe:
        if "error" in line:
            continue
        print(f"{line['t'] - t0:5.0f} " + " ".join(f"{line.get(k, ''):>14}" for k in keys))
    marks = {k: round(v - t0, 1) for k, v in results["marks"].items()}
    print("marks (s):", marks)
    if results.get("ingest"):
        print("ingest:", results["ingest"])
    for entry in results["exports"]:
        print(
            f"export {entry['format']}: {entry['status']} {entry.get('rows', 0):,} rows in"
            f" {entry['seconds']} s; RSS before {entry['rss_before_mb']} MB, peak"
            f" {entry['rss_peak_mb']} MB"
        )
    print(
        "load average before/after:", results["load_average_before"], results["load_average_after"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store-from", default="", help="a store built by bench_exports.py")
    parser.add_argument("--ingest-rate", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=180.0, help="ingest before exports")
    parser.add_argument("--exports", default="", help="formats exported after --seconds")
    parser.add_argument("--between", type=float, default=10.0, help="seconds between exports")
    parser.add_argument("--after", type=float, default=20.0, help="seconds after the exports")
    parser.add_argument("--probe-interval", type=float, default=5.0)
    parser.add_argument("--no-probe", action="store_true", help="plain mpo serve (RSS only)")
    parser.add_argument("--products", type=int, default=500_000)
    parser.add_argument("--export-timeout", type=float, default=900.0)
    parser.add_argument("--env", action="append", default=[], help="K=V for the server")
    parser.add_argument("--tmp", default="", help="where the data dir goes")
    parser.add_argument("--json-out", default="", help="also write the JSON here")
    args = parser.parse_args()
    args.ingest_seconds = 3600.0
    results = run(args)
    _report(results)
    text = json.dumps(results, default=str)
    if args.json_out:
        Path(args.json_out).write_text(text)
    print(text, flush=True)


if __name__ == "__main__":
    main()
