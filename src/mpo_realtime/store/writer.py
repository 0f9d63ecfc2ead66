"""What every store's writer thread shares, whatever the engine behind it.

Each store queues requests from the event loop and one writer thread stores them in
flushes: the rows are conformed to the roll-up schema, the requests that arrived
within one flush interval are gathered into a flush, and every waiter is answered
exactly once, even when it gave up first.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mpo_realtime.store.base import ROLLUP_SCHEMA

__all__ = ["conformed", "gathered", "settle"]


def conformed(rows: pa.Table) -> pa.Table:
    """``rows`` with exactly the roll-up schema, checked; ValueError says what is wrong.

    Costs must arrive exact (a decimal type): a float would be rounded by a cast here,
    unseen. Required columns hold no nulls; counts and costs are not negative.
    """
    if not rows.schema.equals(ROLLUP_SCHEMA):
        cost = rows.schema.field("cost").type if "cost" in rows.schema.names else None
        if cost is not None and not pa.types.is_decimal(cost):
            raise ValueError(f"cost must be a decimal amount, not {cost}")
        rows = rows.select(ROLLUP_SCHEMA.names).cast(ROLLUP_SCHEMA)
    for column in ROLLUP_SCHEMA:
        if not column.nullable and rows[column.name].null_count:
            raise ValueError(f"{column.name} must not be null")
    for name in ("displays", "clicks", "cost"):
        low = pc.min(rows[name]).as_py()
        if low is not None and low < 0:
            raise ValueError(f"{name} must not be negative")
    return rows


def settle(future: Future[Any], result: Any = None, error: BaseException | None = None) -> None:
    """Answer a waiter once; a future already answered or cancelled is left alone."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def gathered(pending: queue.Queue[object], first: object | None, window: float) -> Iterator[object]:
    """``first``, then whatever else arrives on ``pending`` within ``window`` seconds.

    One flush's worth of queued items; the caller stops early (``break``) on a stop
    sentinel or once the flush is large enough. Nothing when ``first`` is None.
    """
    deadline = time.monotonic() + window
    item = first
    while item is not None:
        yield item
        remaining = deadline - time.monotonic()
        try:
            item = pending.get(timeout=remaining) if remaining > 0 else None
        except queue.Empty:
            item = None
