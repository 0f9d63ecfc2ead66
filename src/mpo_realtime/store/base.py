"""The event store interface: what every backend (DuckDB, ClickHouse) offers.

Types, and why no sum can overflow them
---------------------------------------
A roll-up row holds ``displays`` and ``clicks`` as signed 64-bit integers and ``cost`` as
``DECIMAL(18, 9)`` (nano-units in 64 bits; ClickHouse ``Decimal64(9)``). Ingest caps
each event at ``MAX_COUNT`` = 10**6 displays or clicks and ``MAX_COST`` = 10**6 currency
units (``domain/events.py``), with at most ``ingest_max_events`` (10**5) events a request.

* A stored row from ingest is one event: at most 10**6, far inside both types.
* A flush pre-aggregates the requests it commits, and compaction folds the rows of one
  key and minute. Neither is bounded by the request limits (any number of requests may
  write one key and minute within the retention), so both fold **only what fits**:
  a key whose sums exceed ``MAX_ROW_COUNT`` or ``MAX_ROW_COST`` keeps its rows unfolded
  (each of them fits). A fold therefore never fails on data; rows just stay more.
* Report sums are computed wider than any row: counts as 128-bit integers
  (``HUGEINT``, Arrow ``decimal128(38, 0)``; ClickHouse ``sum(toDecimal128(x, 0))``) and
  cost as ``DECIMAL(38, 9)`` (ClickHouse ``Decimal128(9)``). Reaching their limits needs
  over 10**19 rows of maximal values: more than any disk holds within a retention
  (10**19 rows at even one byte each is 10 exabytes).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mpo_realtime.domain.money import COST_SCALE
from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import FileFormat

__all__ = [
    "LineExporter",
    "COST_TYPE",
    "MAX_ROW_COST",
    "MAX_ROW_COUNT",
    "ROLLUP_SCHEMA",
    "Catalog",
    "EventStore",
    "IdempotencyConflict",
    "IngestReceipt",
    "IngestRequest",
    "cost_array",
]

#: cost of one roll-up row: 18 digits, 9 of them decimals (a 64-bit integer of nano-units)
COST_TYPE: Final = pa.decimal128(18, COST_SCALE)
#: largest displays or clicks of one roll-up row
MAX_ROW_COUNT: Final = 2**63 - 1
#: largest cost of one roll-up row
MAX_ROW_COST: Final = Decimal("999999999.999999999")

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
        pa.field("cost", COST_TYPE, nullable=False),
        pa.field("seller_name", pa.string(), nullable=True),
    ]
)


def cost_array(nanos: npt.NDArray[np.int64] | Sequence[int]) -> pa.Array:
    """A :data:`COST_TYPE` array of amounts given in nano-units, without a per-value step."""
    values = np.asarray(nanos, dtype=np.int64)
    if len(values) and (values.min() < 0 or values.max() > 999_999_999_999_999_999):
        raise ValueError("a cost is negative or beyond DECIMAL(18, 9)")
    # A decimal128 value is a 128-bit little-endian integer of the unscaled amount:
    # for a non-negative amount, the nano-units then a zero high word.
    words = np.zeros((len(values), 2), dtype="<i8")
    words[:, 0] = values
    return pa.Array.from_buffers(COST_TYPE, len(values), [None, pa.py_buffer(words)])


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

    def totals(self) -> dict[str, int | Decimal]:
        """Row count and sums of every metric over the whole store (checks and health)."""
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


@runtime_checkable
class LineExporter(Protocol):
    """A store that can format export rows itself, in its engine's threads (DuckDB).

    The runner uses it when configured to (``text_in_engine``); otherwise, and for a store
    without it (ClickHouse), it formats the typed rows of ``aggregate`` with the Python
    writer: the same bytes either way (``tests/unit/test_export_lines.py``).
    """

    def export_lines(
        self, plan: QueryPlan, file_format: FileFormat, *, batch_rows: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        """Stream the plan's rows as CSV or JSON text: one string column, each row's text
        in the export file (``store/plan_sql.py``, ``render_export_lines``), in order."""
        ...
