"""The event store interface: what every backend (DuckDB, ClickHouse) offers."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pyarrow as pa

from mpo_realtime.domain.plan import QueryPlan

__all__ = [
    "ROLLUP_SCHEMA",
    "Catalog",
    "EventStore",
    "IdempotencyConflict",
    "IngestReceipt",
    "IngestRequest",
]

#: one row of the minute roll-up; also the shape ingestion hands to a store
ROLLUP_SCHEMA = pa.schema(
    [
        pa.field("minute", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("advertiser_id", pa.int64(), nullable=False),
        pa.field("partner_id", pa.int64(), nullable=False),
        pa.field("campaign_id", pa.int64(), nullable=False),
        pa.field("seller_id", pa.int64(), nullable=False),
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("displays", pa.int64(), nullable=False),
        pa.field("clicks", pa.int64(), nullable=False),
        pa.field("cost", pa.float64(), nullable=False),
        pa.field("seller_name", pa.string(), nullable=True),
    ]
)


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """One acknowledged-or-nothing unit of ingestion."""

    rows: pa.Table
    #: events in the request (rows may be fewer once pre-aggregated)
    events: int
    #: scoped idempotency key (client and header), with a digest of the body
    idempotency_key: str | None = None
    body_digest: str | None = None


@dataclass(frozen=True, slots=True)
class IngestReceipt:
    events: int
    #: the key was seen before: nothing was stored this time
    duplicate: bool = False


class IdempotencyConflict(Exception):
    """The idempotency key was used before with a different body."""


@dataclass(frozen=True, slots=True)
class Catalog:
    """Entities seen for a set of advertisers."""

    campaign_ids: frozenset[int]
    seller_ids: frozenset[int]
    partner_ids: frozenset[int]


class EventStore(Protocol):
    """Minute roll-up of ad events: micro-batched writes, exact aggregate reads."""

    def submit(self, request: IngestRequest) -> Future[IngestReceipt]:
        """Queue rows for the next flush; the future resolves once they are durable."""
        ...

    def append(self, rows: pa.Table | pa.RecordBatchReader) -> int:
        """Bulk path: store rows now, without idempotency (back-fill, imports)."""
        ...

    def aggregate(self, plan: QueryPlan, *, batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        """Stream the plan's result as record batches (columns named as in the API)."""
        ...

    def catalog(self, advertiser_ids: tuple[int, ...]) -> Catalog: ...

    def purge(self, before: datetime) -> int:
        """Delete roll-up rows older than ``before``; returns rows deleted."""
        ...

    def totals(self) -> dict[str, float]:
        """Sums of every metric over the whole store (checks and health)."""
        ...

    def latest_minute(self) -> datetime | None: ...

    def last_write(
        self, advertiser_ids: tuple[int, ...], start: datetime, end: datetime
    ) -> datetime | None:
        """When events of ``advertiser_ids`` in ``[start, end)`` were last stored, or None.

        Kept per advertiser and UTC hour of the events, stamped in the transaction that
        stores them (ingest flushes and bulk appends alike), so the answer may name an
        earlier write of the same hour: never a time before the newest one. An export
        created after this time has every event of its interval (reuse relies on it).
        """
        ...

    def close(self) -> None: ...
