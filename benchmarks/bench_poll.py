"""Poll throughput: ``GET /report-jobs/{id}`` at 200 concurrent connections, with wrk.

A real ``mpo serve`` on loopback; `wrk` (Debian package ``wrk``) is the load process.
Closed-loop clients without pauses measure the most the server answers (its latency is
then connections / throughput, Little's law); paced clients, each pausing at random
(``--pause-ms`` on average) between polls, measure the latency at the target load of
about 2,000 polls a second. The polls:

- one ``Done`` export with one token: every answer comes from the finished-job cache and
  the verified-token cache (the cheapest poll there is);
- ``Done`` exports of ``--clients`` clients, ``--exports`` each, each request a random
  (export, token) pair: the caches hold many entries, the rate limiter many keys;
- ``Pending`` exports, as many and spread the same way: every poll reads the job store
  (the server runs no export runners in the measured phase, so they stay Pending).

``GET /health`` (no auth, no store) is measured beside them as a reference only: it goes
through FastAPI's router while the poll takes the direct path (``api/direct.py``), so it
is not the ceiling of the HTTP stack.

    .venv/bin/python benchmarks/bench_poll.py [--connections 200] [--seconds 10] [--rounds 5]
        [--clients 20] [--exports 5]

Health and poll runs alternate, and medians with their ranges are reported with the
CPU steal time of the measured period: on a shared virtual machine one run says little.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
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


def wrk(
    url: str,
    *,
    connections: int,
    seconds: int,
    headers: dict[str, str],
    script: Path | None = None,
) -> dict[str, Any]:
    """Run wrk once; requests/s, p50/p99 latency and non-2xx count."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        command += ["--script", str(script)]
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


def spread_script(path: Path, polls: list[tuple[str, str]], pause_ms: int | None) -> Path:
    """A wrk script sending each request to a random ``(path, token)`` of ``polls``."""
    entries = ",\n".join(f'  {{"{url}", "Bearer {token}"}}' for url, token in polls)
    lines = [
        f"local polls = {{\n{entries}\n}}",
        "request = function()",
        "  local poll = polls[math.random(#polls)]",
        '  return wrk.format("GET", poll[1], {["Authorization"] = poll[2]})',
        "end",
    ]
    if pause_ms is not None:
        lines += ["function delay()", f"  return math.random(0, {2 * pause_ms})", "end"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _create_exports(url: str, token: str, count: int, *, offset: int, wait_done: bool) -> list[str]:
    """``count`` distinct exports of one client (distinct lookback windows: no reuse)."""
    ids = []
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        for n in range(count):
            attributes = {"advertiserIds": ["321"], "lookbackWindow": 60 + offset + n}
            answer = http.post(
                f"{STATS}/realtime-reports/export", json={"data": {"attributes": attributes}}
            )
            answer.raise_for_status()
            ids.append(answer.json()["exportId"])
        deadline = time.monotonic() + 120
        for export_id in ids if wait_done else []:
            while http.get(f"{STATS}/report-jobs/{export_id}").json()["status"] != "Done":
                if time.monotonic() > deadline:
                    raise RuntimeError(f"export {export_id} not Done in time")
                time.sleep(0.05)
    return ids


def steal_jiffies() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[7], sum(fields)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rps = sorted(r["requests_per_s"] for r in runs)
    p99 = sorted(r["p99_ms"] for r in runs)
    return {
        "requests_per_s": statistics.median(rps),
        "requests_per_s_range": [rps[0], rps[-1]],
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(p99),
        "p99_ms_range": [p99[0], p99[-1]],
        "non_2xx": sum(r["non_2xx"] for r in runs),
        "socket_errors": sorted({r["socket_errors"] for r in runs}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="wrk runs of each request")
    parser.add_argument(
        "--pause-ms", type=int, default=90, help="pause of each paced client between polls"
    )
    parser.add_argument("--clients", type=int, default=20, help="clients of the spread polls")
    parser.add_argument("--exports", type=int, default=5, help="exports of each kind per client")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    with tempfile.TemporaryDirectory(prefix="mpo-bench-poll-") as tmp:
        data_dir = Path(tmp)
        client = create_client(data_dir, "poll", [321])
        others = [create_client(data_dir, f"poll-{n}", [321]) for n in range(args.clients)]
        # Phase 1, with export runners: the Done exports.
        with running_server(data_dir) as server:
            token = get_token(server.url, client["client_id"], client["client_secret"])
            (export_id,) = _create_exports(server.url, token, 1, offset=0, wait_done=True)
            done_ids = {}
            for other in others:
                other_token = get_token(server.url, other["client_id"], other["client_secret"])
                done_ids[other["client_id"]] = _create_exports(
                    server.url, other_token, args.exports, offset=1, wait_done=True
                )
        # Phase 2, measured, without runners: new exports stay Pending.
        with running_server(data_dir, env={"MPO_RUNNER_CONCURRENCY": "0"}) as server:
            token = get_token(server.url, client["client_id"], client["client_secret"])
            headers = {"Authorization": f"Bearer {token}"}
            done: list[tuple[str, str]] = []
            pending: list[tuple[str, str]] = []
            for other in others:
                other_token = get_token(server.url, other["client_id"], other["client_secret"])
                for other_export in done_ids[other["client_id"]]:
                    done.append((f"{STATS}/report-jobs/{other_export}", other_token))
                for other_export in _create_exports(
                    server.url, other_token, args.exports, offset=1000, wait_done=False
                ):
                    pending.append((f"{STATS}/report-jobs/{other_export}", other_token))
            # each connection pauses before its next request, at random (uniform, mean
            # --pause-ms) so that the clients do not poll in lockstep
            paced = data_dir / "paced.lua"
            paced.write_text(
                f"function delay()\n  return math.random(0, {2 * args.pause_ms})\nend\n"
            )
            poll_url = f"{server.url}{STATS}/report-jobs/{export_id}"
            done_script = spread_script(data_dir / "done.lua", done, None)
            pending_script = spread_script(data_dir / "pending.lua", pending, None)
            targets: dict[str, tuple[str, dict[str, str], Path | None]] = {
                "health": (f"{server.url}/health", {}, None),
                "poll": (poll_url, headers, None),
                "paced": (poll_url, headers, paced),
                "done_spread": (server.url, {}, done_script),
                "pending_spread": (server.url, {}, pending_script),
            }
            for url, extra, script in targets.values():  # warm up
                wrk(url, connections=args.connections, seconds=2, headers=extra, script=script)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
            steal_before = steal_jiffies()
            # alternated, so that all see the same moments of a shared machine
            for _ in range(args.rounds):
                for name, (url, extra, script) in targets.items():
                    runs[name].append(
                        wrk(
                            url,
                            connections=args.connections,
                            seconds=args.seconds,
                            headers=extra,
                            script=script,
                        )
                    )
            steal_after = steal_jiffies()
    steal = 100 * (steal_after[0] - steal_before[0]) / max(1, steal_after[1] - steal_before[1])
    health, poll, paced_poll, done_spread, pending_spread = (
        _summary(runs[name])
        for name in ("health", "poll", "paced", "done_spread", "pending_spread")
    )
    rows = [
        [
            name,
            f"{r['requests_per_s']:.0f}",
            "{:.0f}-{:.0f}".format(*r["requests_per_s_range"]),
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            "{:.1f}-{:.1f}".format(*r["p99_ms_range"]),
            r["non_2xx"],
            ",".join(r["socket_errors"]),
        ]
        for name, r in (
            ("GET /health (reference: router path), no pause", health),
            ("poll, 1 Done export, 1 token, no pause", poll),
            (f"poll, 1 Done export, 1 token, pauses of {args.pause_ms} ms", paced_poll),
            (f"poll, {len(done)} Done exports of {args.clients} clients, no pause", done_spread),
            (f"poll, {len(pending)} Pending exports (job store), no pause", pending_spread),
        )
    ]
    print_table(
        f"poll throughput, {args.connections} connections, {args.rounds} x {args.seconds} s "
        f"each (medians; CPU steal {steal:.1f} %)",
        ["request", "req/s", "range", "p50 ms", "p99 ms", "p99 range", "non-2xx", "socket err"],
        rows,
    )
    ratio = poll["requests_per_s"] / health["requests_per_s"]
    print(f"\npoll / health throughput: {ratio:.2f} (not a ceiling: different paths)")
    summary = {
        "health": health,
        "poll": poll,
        "paced": paced_poll,
        "done_spread": done_spread,
        "pending_spread": pending_spread,
        "ratio": round(ratio, 3),
        "steal_pct": steal,
    }
    print(json.dumps({**summary, "runs": runs}))


if __name__ == "__main__":
    main()
