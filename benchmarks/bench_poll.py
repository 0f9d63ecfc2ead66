"""Poll throughput: ``GET /report-jobs/{id}`` at 200 concurrent connections, with wrk.

A real ``mpo serve`` on loopback; `wrk` (Debian package ``wrk``) is the load process.
The same run measures ``GET /health`` (no auth, no store) as the baseline of what the
HTTP stack alone gives on this machine.

    .venv/bin/python benchmarks/bench_poll.py [--connections 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from _harness import STATS, create_client, get_token, print_table, running_server

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, *, connections: int, seconds: int, headers: dict[str, str]) -> dict[str, Any]:
    """Run wrk once; requests/s, p50/p99 latency and non-2xx count."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(command + [url], capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    if "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    latency = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)\s*$", out, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)$", out, re.MULTILINE)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else "none",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="mpo-bench-poll-") as tmp:
        data_dir = Path(tmp)
        client = create_client(data_dir, "poll", [321])
        with running_server(data_dir) as server:
            token = get_token(server.url, client["client_id"], client["client_secret"])
            headers = {"Authorization": f"Bearer {token}"}
            body = {"data": {"attributes": {"advertiserIds": ["321"], "lookbackWindow": 60}}}
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
                export_id = http.post(f"{STATS}/realtime-reports/export", json=body).json()[
                    "exportId"
                ]
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    if http.get(f"{STATS}/report-jobs/{export_id}").json()["status"] == "Done":
                        break
                    time.sleep(0.05)
            health = wrk(
                f"{server.url}/health",
                connections=args.connections,
                seconds=args.seconds,
                headers={},
            )
            poll = wrk(
                f"{server.url}{STATS}/report-jobs/{export_id}",
                connections=args.connections,
                seconds=args.seconds,
                headers=headers,
            )
    rows = [
        [
            name,
            f"{r['requests_per_s']:.0f}",
            r["p50_ms"],
            r["p99_ms"],
            r["non_2xx"],
            r["socket_errors"],
        ]
        for name, r in (("GET /health (baseline)", health), ("GET report-jobs/{id}", poll))
    ]
    print_table(
        f"poll throughput, {args.connections} connections, {args.seconds} s each",
        ["request", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket errors"],
        rows,
    )
    ratio = poll["requests_per_s"] / health["requests_per_s"]
    print(f"\npoll / health throughput: {ratio:.2f}")
    print(json.dumps({"health": health, "poll": poll, "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
