"""Simulated events sent to a running server's ingest endpoint (``mpo simulate --target``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from mpo_realtime.pacing import TICK_SECONDS, paced_counts

__all__ = ["send_events"]


def send_events(
    target: str,
    client_id: str,
    secret: str,
    simulator: Any,
    *,
    rate: int,
    total: int | None,
    duration: float,
    batch: int,
) -> int:
    """Send events to ``target``; returns how many were stored.

    With a ``rate``, events go out paced (see :func:`paced_counts`) in requests of at
    most ``batch``, ``total`` of them exactly when it is given; without one, requests of
    ``batch`` events follow each other for ``duration`` seconds (0: until interrupted).
    An answer that is not a success raises ``httpx.HTTPStatusError``.
    """
    with httpx.Client(base_url=target, timeout=30) as http:
        headers = _ingest_headers(http, client_id, secret)
        if rate:
            return _send_paced(http, headers, simulator, rate=rate, total=total, batch=batch)
        return _send_unpaced(http, headers, simulator, duration=duration, batch=batch)


def _ingest_headers(http: httpx.Client, client_id: str, secret: str) -> dict[str, str]:
    answer = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    answer.raise_for_status()
    return {
        "Authorization": f"Bearer {answer.json()['access_token']}",
        "Content-Type": "application/json",
    }


def _post_events(http: httpx.Client, headers: dict[str, str], simulator: Any, count: int) -> int:
    events = simulator.events(datetime.now(UTC), count)
    http.post("/ingest/v1/events", content=orjson.dumps(events), headers=headers).raise_for_status()
    return len(events)


def _send_paced(
    http: httpx.Client,
    headers: dict[str, str],
    simulator: Any,
    *,
    rate: int,
    total: int | None,
    batch: int,
) -> int:
    sent = 0
    started = time.monotonic()
    for tick, due in enumerate(paced_counts(rate, total), start=1):
        while due > 0:
            count = _post_events(http, headers, simulator, min(batch, due))
            sent += count
            due -= count
        if total is not None and sent >= total:
            break
        time.sleep(max(0.0, started + tick * TICK_SECONDS - time.monotonic()))
    return sent


def _send_unpaced(
    http: httpx.Client, headers: dict[str, str], simulator: Any, *, duration: float, batch: int
) -> int:
    deadline = time.monotonic() + duration if duration else float("inf")
    sent = 0
    while time.monotonic() < deadline:
        sent += _post_events(http, headers, simulator, batch)
    return sent
