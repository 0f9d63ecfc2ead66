"""Demo traffic and the quick start: back-fill simulated history, keep live events flowing
in-process, and the ``curl`` session that ``mpo serve --demo`` prints and the README shows.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from mpo_realtime.domain.jobs import Client, Role, WriteScope
from mpo_realtime.pacing import TICK_SECONDS, paced_counts
from mpo_realtime.services import Services
from mpo_realtime.store.simulator import Simulator, World

__all__ = [
    "QUICK_START",
    "Backfill",
    "backfill",
    "hours",
    "ensure_demo_client",
    "live_traffic",
    "quick_start",
]

log = logging.getLogger(__name__)

#: The quick start as the README shows it (``quick_start()`` fills in another port, host
#: or data dir). The advertiser is the demo world's first (seed 7): the same in every
#: fresh data dir. ``tests/integration/test_quick_start.py`` runs the README's copy.
QUICK_START = """\
PORT=${PORT:-8080}
BASE=http://127.0.0.1:$PORT
STATS=$BASE/preview/marketing-solutions/marketplace-performance-outcomes/stats
eval "$(.venv/bin/mpo demo-env)"  # sets MPO_CLIENT_ID and MPO_CLIENT_SECRET
field() { python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }

TOKEN=$(curl -s $BASE/oauth2/token -d grant_type=client_credentials \\
  -d client_id=$MPO_CLIENT_ID -d client_secret=$MPO_CLIENT_SECRET | field access_token)
AUTH="Authorization: Bearer $TOKEN"
EXPORT=$(curl -s -H "$AUTH" -H 'Content-Type: application/json' $STATS/realtime-reports/export \\
  -d '{"data": {"type": "RealTimeProductReportJob", "attributes": {"advertiserIds": ["993543"],
       "dimensions": ["campaignId", "hour"], "lookbackWindow": 180}}}' | field exportId)
while [ "$(curl -s -H "$AUTH" $STATS/report-jobs/$EXPORT | field status)" = Pending ]; do
  sleep 5  # the API asks for at least 5 s between polls
done
curl -s -H "$AUTH" $STATS/realtime-reports/$EXPORT -o report.csv
head -5 report.csv
"""


def quick_start(
    *,
    port: int = 8080,
    host: str = "127.0.0.1",
    data_dir: Path = Path("var"),
    mpo: str = ".venv/bin/mpo",
) -> str:
    """:data:`QUICK_START` for a server on ``host:port`` with its data in ``data_dir``."""
    text = QUICK_START.replace("${PORT:-8080}", f"${{PORT:-{port}}}")
    if host not in ("127.0.0.1", "0.0.0.0", "::", ""):
        text = text.replace("http://127.0.0.1:", f"http://{host}:")
    command = f"{mpo} demo-env"
    if data_dir != Path("var"):
        command += f" --data-dir {shlex.quote(str(data_dir))}"
    return text.replace(".venv/bin/mpo demo-env", command)


@dataclass(frozen=True)
class Backfill:
    """What a back-fill found and did, with an honest sentence for people."""

    latest_before: datetime | None
    start: datetime
    end: datetime
    rows: int
    seconds: float

    def describe(self, now: datetime) -> str:
        span = f"{_clock(self.start, now)} to {_clock(self.end, now)} UTC"
        done = f"{self.rows:,} roll-up rows in {self.seconds:.1f}s"
        if self.latest_before is None:
            span_hours = (self.end - self.start).total_seconds() / 3600
            return f"back-filled {hours(span_hours)} of simulated traffic ({span}): {done}"
        age = _age(now - self.latest_before - timedelta(minutes=1))
        has = f"the store has data up to {_clock(self.latest_before, now)} UTC ({age} ago)"
        if self.start >= self.end:
            return f"{has}: nothing to back-fill"
        return f"{has}; back-filled {span}: {done}"


def hours(count: float) -> str:
    """``1 hour``, ``0.5 hours``, ``3 hours``."""
    return f"{count:g} hour" if count == 1 else f"{count:g} hours"


def _clock(moment: datetime, now: datetime) -> str:
    return f"{moment:%H:%M}" if moment.date() == now.date() else f"{moment:%Y-%m-%d %H:%M}"


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def backfill(services: Services, simulator: Simulator, *, hours: float, now: datetime) -> Backfill:
    """Fill simulated minutes from the last stored one (at most ``hours`` back) to now."""
    started = time.perf_counter()
    end = now.replace(second=0, microsecond=0)
    start = end - timedelta(hours=hours)
    latest = services.events.latest_minute()
    if latest is not None:
        start = max(start, latest + timedelta(minutes=1))
    rows = 0
    if start < end:
        for batch in simulator.backfill(start, end):
            rows += services.events.append(batch)
    return Backfill(latest, start, end, rows, time.perf_counter() - started)


def ensure_demo_client(services: Services, world: World) -> dict[str, object]:
    """A client scoped to every simulated advertiser, kept in the data dir across runs."""
    path = services.settings.demo_client_path
    if path.exists():
        saved: dict[str, object] = orjson.loads(path.read_bytes())
        client = services.jobs.get_client(str(saved["client_id"]))
        if client is not None and client.active:
            return saved
    advertisers = [a.advertiser_id for a in world.advertisers]
    client, secret = services.clients.create(
        "demo", advertiser_ids=advertisers, roles=[Role.REPORT, Role.INGEST], now=datetime.now(UTC)
    )
    saved = _describe(client, secret)
    path.write_bytes(orjson.dumps(saved, option=orjson.OPT_INDENT_2))
    path.chmod(0o600)
    return saved


def _describe(client: Client, secret: str) -> dict[str, object]:
    return {
        "client_id": client.client_id,
        "client_secret": secret,
        "advertiser_ids": [str(a) for a in client.advertiser_ids],
    }


async def live_traffic(
    services: Services, simulator: Simulator, *, events_per_second: int, total: int | None = None
) -> int:
    """Ingest simulated events through the same path as HTTP ingestion.

    Runs until cancelled, or until ``total`` events are stored; returns how many were.
    """
    stored = due = 0
    started = time.monotonic()
    for tick, count in enumerate(paced_counts(events_per_second, total), start=1):
        if count:
            stored += await _ingest(services, simulator, count)
        due += count
        if total is not None and due >= total:
            break
        await asyncio.sleep(max(0.0, started + tick * TICK_SECONDS - time.monotonic()))
    return stored


async def _ingest(services: Services, simulator: Simulator, count: int) -> int:
    events = simulator.events(datetime.now(UTC), count)
    try:
        request = services.ingestor.prepare(
            orjson.dumps(events),
            now_ms=int(time.time() * 1000),
            client_id="demo",
            # The simulator writes its own world's advertisers, and only those.
            scope=WriteScope(frozenset(a.advertiser_id for a in simulator.world.advertisers)),
            idempotency_key=None,
        )
        stored = asyncio.ensure_future(services.ingestor.store_async(request))
        try:
            await asyncio.shield(stored)
        except asyncio.CancelledError:
            # A batch handed to the store is seen through when the task is cancelled (a
            # graceful stop): its rows are stored, and no waiter is cancelled under the
            # writer.
            await stored
            raise
    except Exception:
        log.exception("demo traffic batch failed")
        return 0
    return len(events)
