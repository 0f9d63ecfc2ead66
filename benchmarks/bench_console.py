"""The console with a 1M-row export: does the page stay responsive, how long until it shows?

A real ``mpo serve`` on a store holding ``--rows`` roll-up rows in the last hour (one per
product; product i has seller i % 18181 and minute i % 55, so that seller and minute
make nearly as many distinct pairs as products), and Debian's Chromium driven by
Playwright. Reports of about ``--rows`` rows each are run through the page:

* ``productId`` (a bar chart of the top 20), JSON and CSV;
* ``sellerId, minute`` (a line chart: top 10 sellers and "others"), JSON.

First a 20-row report, whose longest main-thread task is the chart library's start.
For each: the export's time to Done, the file's size, the data worker's download and
read time, the time from "Run report" until chart and table are drawn, the longest task
on the page's main thread meanwhile (a "long task" over 50 ms is what a reader feels
as a freeze), then the time to sort the table by cost and to show its last page, and
the browser's memory (RSS of all its processes). Last, the server's time to send the
last export plain and gzip-encoded (browsers always accept gzip).

    .venv/bin/python benchmarks/bench_console.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from _harness import STATS, create_client, get_token, print_table, running_server

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the browser harness lives in tests/
    sys.path.insert(0, str(ROOT))

from mpo_realtime.store.base import ROLLUP_SCHEMA  # noqa: E402
from mpo_realtime.store.duckdb_store import DuckDBEventStore  # noqa: E402
from tests.integration.browser import chromium  # noqa: E402

ADVERTISER = 321
#: collects the page's long tasks (main thread busy > 50 ms) from the start
LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
}).observe({ type: 'longtask', buffered: true });
"""


def build_store(path: Path, rows: int) -> None:
    """``rows`` roll-up rows in the last hour: product i, seller i % 18181, minute i % 55."""
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    store = DuckDBEventStore(path, maintenance_interval=1e9)
    try:
        step = 250_000
        for first in range(0, rows, step):
            ids = range(first, min(rows, first + step))
            table = pa.Table.from_pydict(
                {
                    "minute": [end - timedelta(minutes=i % 55) for i in ids],
                    "advertiser_id": [ADVERTISER] * len(ids),
                    "partner_id": [7] * len(ids),
                    "campaign_id": [1000 + i % 20 for i in ids],
                    "seller_id": [i % 18_181 for i in ids],
                    "product_id": [f"SKU-{i:07d}" for i in ids],
                    "displays": [1 + i % 97 for i in ids],
                    "clicks": [i % 7 for i in ids],
                    "cost": [(i % 1000) / 997 for i in ids],
                    "seller_name": [None] * len(ids),
                },
                schema=ROLLUP_SCHEMA,
            )
            store.append(table)
    finally:
        store.close()


def browser_rss_mb(profile_marker: str = "mpo-chromium-") -> float:
    """Resident memory of every Chromium process of this run (its profile in argv)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if profile_marker not in (proc / "cmdline").read_text(errors="replace"):
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def measure(page: Any, *, dimensions: list[str], bucket: str, file_format: str) -> dict[str, Any]:
    for box in page.locator("input[name=dimension]").all():
        box.set_checked(box.get_attribute("value") in dimensions)
    page.get_by_label("Time bucket").select_option(bucket)
    page.get_by_label("Lookback window").fill("60")
    page.get_by_label(file_format, exact=True).check()
    page.evaluate("window.__longTasks = []")
    before = page.get_attribute("#result", "data-export-id") or ""
    started = time.perf_counter()
    page.get_by_role("button", name="Run report").click()
    page.wait_for_function(
        "(b) => { const r = document.querySelector('#result');"
        " return r.dataset.state === 'ready' && r.dataset.exportId !== b; }",
        arg=before,
        timeout=600_000,
    )
    shown = time.perf_counter() - started
    result = page.evaluate("() => ({...document.querySelector('#result').dataset})")
    status = page.inner_text("#job-status")
    long_tasks = page.evaluate("window.__longTasks")
    # Sort by cost (largest first), then the last page.
    cost = page.evaluate(
        "() => [...document.querySelectorAll('#rows th')]"
        ".findIndex(t => t.textContent.startsWith('cost'))"
    )
    started = time.perf_counter()
    page.get_by_role("button", name="cost", exact=True).click()
    page.wait_for_function(
        "(c) => document.querySelector('#rows').dataset.view === `${c}:true:0`", arg=cost
    )
    sort = time.perf_counter() - started
    last = None
    if int(result["rows"]) > int(page.get_by_label("Rows per page").input_value()):
        started = time.perf_counter()
        page.get_by_role("button", name="Last").click()
        page.wait_for_function(
            "() => Number(document.querySelector('#rows').dataset.view.split(':')[2]) > 0"
        )
        last = round(time.perf_counter() - started, 2)
    return {
        "report": f"{','.join(dimensions + ([bucket] if bucket else []))} {file_format}",
        "rows": int(result["rows"]),
        "file MB": round(int(result["bytes"]) / 1e6, 1),
        "job": status.split(" · ")[0].removeprefix("Done in "),
        "worker fetch s": round(int(result["fetchMs"]) / 1000, 2),
        "worker read s": round(int(result["readMs"]) / 1000, 2),
        "click to drawn s": round(shown, 2),
        "longest main-thread task ms": round(max(long_tasks, default=0)),
        "sort by cost s": round(sort, 2),
        "last page s": "-" if last is None else last,
        "browser RSS MB": round(browser_rss_mb()),
    }


def download_times(url: str, token: str, export_id: str) -> dict[str, float]:
    """One export downloaded plain and gzip-encoded: what the encoding costs the server."""
    times = {}
    for encoding in ("identity", "gzip"):
        headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": encoding}
        started = time.perf_counter()
        with httpx.stream(
            "GET", f"{url}{STATS}/realtime-reports/{export_id}", headers=headers, timeout=600
        ) as answer:
            for _ in answer.iter_raw():
                pass
        times[encoding] = time.perf_counter() - started
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-console-") as scratch:
        data_dir = Path(scratch)
        started = time.perf_counter()
        build_store(data_dir / "events.duckdb", args.rows)
        print(f"store: {args.rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
        client = create_client(data_dir, "bench", [ADVERTISER])
        with running_server(data_dir, env={"MPO_EVENT_STORE_MEMORY_LIMIT": "1GB"}) as server:
            with chromium(locale="en-US", timezone_id="UTC") as context:
                context.add_init_script(LONG_TASKS)
                page = context.new_page()
                page.set_default_timeout(600_000)
                page.goto(f"{server.url}/console")
                page.get_by_label("Client ID").fill(client["client_id"])
                page.get_by_label("Client secret").fill(client["client_secret"])
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_selector("#workspace:not([hidden])")
                idle_rss = browser_rss_mb()
                # A 20-row report first: its longest task is the chart library's start.
                rows = [measure(page, dimensions=["campaignId"], bucket="", file_format="JSON")]
                rows += [
                    measure(page, dimensions=["productId"], bucket="", file_format="JSON"),
                    measure(page, dimensions=["productId"], bucket="", file_format="CSV"),
                    measure(page, dimensions=["sellerId"], bucket="minute", file_format="JSON"),
                ]
                export_id = page.get_attribute("#result", "data-export-id")
            token = get_token(server.url, client["client_id"], client["client_secret"])
            downloads = download_times(server.url, token, str(export_id))
    print(f"\nbrowser RSS after sign-in, before any report: {idle_rss:.0f} MB")
    print(
        "server download of the last export: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in downloads.items())
    )
    print_table(
        f"console with a {args.rows:,}-row store (times in seconds unless said)",
        list(rows[0]),
        [list(row.values()) for row in rows],
    )


if __name__ == "__main__":
    main()
