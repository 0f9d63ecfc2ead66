"""Ingestion: parsed events to roll-up rows, handed to the event store's micro-batcher."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mpo_realtime.domain.errors import ErrorCode, Problem, ProblemError
from mpo_realtime.domain.events import EventBatch, parse_events
from mpo_realtime.domain.jobs import WriteScope
from mpo_realtime.store.base import (
    ROLLUP_SCHEMA,
    EventStore,
    IngestReceipt,
    IngestRequest,
    cost_array,
)

__all__ = ["Ingestor", "batch_to_table"]

_MS_PER_MINUTE = 60_000
#: advertisers outside the scope named one by one in a refusal; the rest are counted
_OUTSIDE_NAMED = 20


def batch_to_table(batch: EventBatch) -> pa.Table:
    """Columns of parsed events as roll-up rows (one per event, minute-truncated)."""
    ms = np.asarray(batch.ts_ms, dtype=np.int64)
    minutes = (ms // _MS_PER_MINUTE) * _MS_PER_MINUTE * 1000
    columns = [
        pa.array(minutes, type=pa.timestamp("us", tz="UTC")),
        pa.array(batch.advertiser_id, type=pa.int64()),
        pa.array(batch.partner_id, type=pa.int64()),
        pa.array(batch.campaign_id, type=pa.int64()),
        pa.array(batch.seller_id, type=pa.int64()),
        pa.array(batch.product_id, type=pa.string()),
        pa.array(batch.displays, type=pa.int64()),
        pa.array(batch.clicks, type=pa.int64()),
        cost_array(batch.cost_nanos),
        pa.array(batch.seller_name, type=pa.string()),
    ]
    return pa.Table.from_arrays(columns, schema=ROLLUP_SCHEMA)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ingestor:
    """Validates ingest bodies and stores them all-or-nothing."""

    store: EventStore
    max_events: int = 100_000
    retention_ms: int = 45 * 86_400_000

    def prepare(
        self,
        body: bytes,
        *,
        now_ms: int,
        client_id: str,
        scope: WriteScope,
        idempotency_key: str | None,
    ) -> IngestRequest:
        """Parse, convert and check against ``scope``; nothing is stored on any error.

        Bad input raises ``EventBatchError``; an event of an advertiser outside
        ``scope`` refuses the whole request with ``insufficient-accountpermissions``.
        """
        batch = parse_events(
            body, now_ms=now_ms, min_ms=now_ms - self.retention_ms, max_events=self.max_events
        )
        table = batch_to_table(batch)
        _check_scope(table, scope)
        key = f"{client_id}:{idempotency_key}" if idempotency_key else None
        digest = hashlib.blake2b(body, digest_size=16).hexdigest() if key else None
        return IngestRequest(table, len(batch), key, digest)

    async def store_async(self, request: IngestRequest) -> IngestReceipt:
        """Wait until the rows are durable and visible."""
        return await asyncio.wrap_future(self.store.submit(request))


def _check_scope(table: pa.Table, scope: WriteScope) -> None:
    """Refuse rows of advertisers outside ``scope``, naming them and where they first occur."""
    if scope.any_advertiser:
        return
    column = table["advertiser_id"]
    outside = scope.outside(pc.unique(column).to_pylist())
    if not outside:
        return
    # Rows are the events in body order (blank NDJSON lines are no events, so the
    # position is named in words rather than as a line pointer).
    problems = [
        Problem(
            ErrorCode.INSUFFICIENT_PERMISSIONS,
            f"advertiser {advertiser} (first in event {pc.index(column, advertiser).as_py() + 1}"
            f" of the request) is not in the scope of this client, which may write events of "
            f"{scope.describe()}; nothing was stored",
        )
        for advertiser in outside[:_OUTSIDE_NAMED]
    ]
    if len(outside) > _OUTSIDE_NAMED:
        more = len(outside) - _OUTSIDE_NAMED
        problems.append(
            Problem(
                ErrorCode.INSUFFICIENT_PERMISSIONS,
                f"{more} more advertiser(s) outside the scope not listed; nothing was stored",
            )
        )
    raise ProblemError(problems)
