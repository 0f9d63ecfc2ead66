"""Demo traffic: back-fill simulated history, then keep live events flowing in-process."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import orjson

from mpo_realtime.domain.jobs import Client, Role, WriteScope
from mpo_realtime.services import Services
from mpo_realtime.store.simulator import Simulator, World

__all__ = ["DEMO_CLIENT_FILE", "backfill", "ensure_demo_client", "live_traffic"]

log = logging.getLogger(__name__)
DEMO_CLIENT_FILE = "demo-client.json"


def backfill(services: Services, simulator: Simulator, *, hours: float, now: datetime) -> int:
    """Fill simulated minutes from the last stored one (at most ``hours`` back) to now."""
    end = now.replace(second=0, microsecond=0)
    start = end - timedelta(hours=hours)
    latest = services.events.latest_minute()
    if latest is not None:
        start = max(start, latest + timedelta(minutes=1))
    rows = 0
    for batch in simulator.backfill(start, end):
        rows += services.events.append(batch)
    return rows


def ensure_demo_client(services: Services, world: World) -> dict[str, object]:
    """A client scoped to every simulated advertiser, kept in the data dir across runs."""
    path = services.settings.data_dir / DEMO_CLIENT_FILE
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


async def live_traffic(services: Services, simulator: Simulator, *, events_per_second: int) -> None:
    """Ingest simulated events through the same path as HTTP ingestion, until cancelled."""
    tick = 0.5
    per_tick = max(1, int(events_per_second * tick))
    # The simulator writes its own world's advertisers, and only those.
    scope = WriteScope(frozenset(a.advertiser_id for a in simulator.world.advertisers))
    while True:
        started = time.monotonic()
        events = simulator.events(datetime.now(UTC), per_tick)
        try:
            request = services.ingestor.prepare(
                orjson.dumps(events),
                now_ms=int(time.time() * 1000),
                client_id="demo",
                scope=scope,
                idempotency_key=None,
            )
            await services.ingestor.store_async(request)
        except Exception:
            log.exception("demo traffic batch failed")
        await asyncio.sleep(max(0.0, tick - (time.monotonic() - started)))
