"""Pacing of live simulated traffic: how many events are due at each tick."""

from __future__ import annotations

import math
from collections.abc import Iterator

__all__ = ["TICK_SECONDS", "paced_counts"]

#: live traffic is sent in one batch (or a few) per tick
TICK_SECONDS = 0.5


def paced_counts(rate: int, total: int | None = None) -> Iterator[int]:
    """Events due at each tick (every :data:`TICK_SECONDS`) to send ``rate`` per second.

    The counts add up to ``total`` exactly (the last one partial), or go on forever
    without it; a rate that is not a multiple of the ticks still averages out exactly.
    """
    sent = 0
    tick = 1
    while total is None or sent < total:
        due = math.floor(rate * tick * TICK_SECONDS)
        if total is not None:
            due = min(due, total)
        yield due - sent
        sent = due
        tick += 1
