"""A writer process that dies by SIGKILL at a chosen step of a ClickHouse flush.

``python -m tests.integration.clickhouse_crash URL KEY STEP``: submits :func:`request` with
idempotency key ``KEY`` and kills itself when the flush reaches ``STEP`` (``intents``: the
key's intent is recorded, its rows are not; ``rows``: the rows are stored, no answer given).
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mpo_realtime.store.base import IngestRequest
from mpo_realtime.store.clickhouse_store import ClickHouseEventStore
from tests.reference import Event, rollup_table

MINUTE = datetime(2026, 3, 8, 6, 58, tzinfo=UTC)
EVENTS = 30


def request(key: str, digest: str = "body-1") -> IngestRequest:
    """The same 30 events each time: 30 displays, 3 clicks, cost 3.3 in all."""
    events = [
        Event(
            MINUTE + timedelta(minutes=i % 4),
            1,
            10,
            100,
            7,
            "p",
            1,
            int(i % 10 == 0),
            Decimal("0.11"),
        )
        for i in range(EVENTS)
    ]
    return IngestRequest(rollup_table(events), EVENTS, key, digest)


def main() -> None:
    url, key, step = sys.argv[1:4]
    store = ClickHouseEventStore(url)

    def die(name: str) -> None:
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)

    store.step_hook = die
    store.submit(request(key)).result(timeout=60)
    raise SystemExit(f"the flush never reached step {step!r}")


if __name__ == "__main__":
    main()
