"""One rate-limit hit on Redis in this process: one Lua script against ``limits``' two.

``RateLimiter.hit`` on a Redis storage runs one script (``RedisWindows``); without it,
the same limiter makes ``limits``' two calls (``acquire_sliding_window_entry``, then
``get_sliding_window``), two round trips. Measured: CPU (``time.process_time``) and wall
time per hit, ``--hits`` hits in a row on one key, alternated for ``--rounds`` rounds.

Usage: ``.venv/bin/python benchmarks/bench_ratelimit.py [--url redis://127.0.0.1:6379/0]``.
Prints one line per round and way, and one JSON line. Keys go under a prefix of their
own, cleared at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid

from mpo_realtime.exports.ratelimit import RateLimiter, per_minute


def measure(url: str, one_script: bool, hits: int) -> dict[str, float]:
    limiter = RateLimiter(url, namespace=f"bench-{uuid.uuid4().hex}")
    if not one_script:
        limiter._redis_windows = None  # the fallback: limits' own two calls
    item = per_minute(10**9)  # never refused: every hit does the same work
    limiter.hit("report", "k", item)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(hits):
        limiter.hit("report", "k", item)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    limiter.reset()
    return {"cpu_us": round(cpu / hits * 1e6, 1), "wall_us": round(wall / hits * 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--hits", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ways = {"two round trips": False, "one script": True}
    load_average = os.getloadavg()
    figures: dict[str, list[dict[str, float]]] = {way: [] for way in ways}
    for _ in range(args.rounds):
        for way, one_script in ways.items():
            hit = measure(args.url, one_script, args.hits)
            print(f"{way}: CPU {hit['cpu_us']} µs, wall {hit['wall_us']} µs per hit")
            figures[way].append(hit)
    print(
        json.dumps(
            {
                "load_average_start": load_average,
                "load_average_end": os.getloadavg(),
                "per_hit": figures,
            }
        )
    )


if __name__ == "__main__":
    main()
