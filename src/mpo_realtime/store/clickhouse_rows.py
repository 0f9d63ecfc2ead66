"""Arrow on both sides of the ClickHouse driver: rows going in, report batches coming out."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_driver import Client

from mpo_realtime.domain.plan import ID_COLUMNS, QueryPlan
from mpo_realtime.domain.report import Metric
from mpo_realtime.store.clickhouse_sql import render_aggregate

__all__ = ["aggregate_batches", "cost_nanos_of", "pre_aggregated"]

KEYS = ["minute", "advertiser_id", "partner_id", "campaign_id", "seller_id", "product_id"]
#: A fold is kept only where every sum is surely below this (checked on float sums, whose
#: error is far smaller than the margin to 2**63): a key with larger sums keeps its rows,
#: each of which fits (``store/base.py``: fold only what fits).
_FOLD_LIMIT = 4e18
_COST_SUMS = pa.decimal128(38, 9)
_TIMESTAMP = pa.timestamp("us", tz="UTC")


def cost_nanos_of(column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """Nano-units of a non-negative ``DECIMAL(18, 9)`` column, read from its buffer."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    words = np.frombuffer(array.buffers()[1], dtype="<i8")
    # A decimal128 is two little-endian words; for 0 <= value < 2**63 the low one is it.
    return words[2 * array.offset : 2 * (array.offset + len(array)) : 2].copy()


def pre_aggregated(table: pa.Table) -> pa.Table:
    """One row per roll-up key of ``table`` where its sums fit; ``cost_nanos`` as Int64."""
    nanos = cost_nanos_of(table["cost"])
    work = table.select(KEYS + ["displays", "clicks"]).append_column("cost_nanos", pa.array(nanos))
    for name in ("displays", "clicks", "cost_nanos"):
        work = work.append_column(f"f_{name}", pc.cast(work[name], pa.float64(), safe=False))
    sums = work.group_by(KEYS, use_threads=False).aggregate(
        [(name, "sum") for name in ("displays", "clicks", "cost_nanos")]
        + [(f"f_{name}", "sum") for name in ("displays", "clicks", "cost_nanos")]
    )
    fits = pc.and_(
        pc.and_(
            pc.less(sums["f_displays_sum"], _FOLD_LIMIT),
            pc.less(sums["f_clicks_sum"], _FOLD_LIMIT),
        ),
        pc.less(sums["f_cost_nanos_sum"], _FOLD_LIMIT),
    )
    folded = sums.filter(fits)
    out = pa.table(
        {
            **{key: folded[key] for key in KEYS},
            "displays": folded["displays_sum"],
            "clicks": folded["clicks_sum"],
            "cost_nanos": folded["cost_nanos_sum"],
        }
    )
    if folded.num_rows == sums.num_rows:
        return out
    # Rare: keys too large to fold keep their rows as they came.
    big = {tuple(row.values()) for row in sums.filter(pc.invert(fits)).select(KEYS).to_pylist()}
    rows = work.select([*KEYS, "displays", "clicks", "cost_nanos"]).to_pylist()
    kept = [row for row in rows if tuple(row[k] for k in KEYS) in big]
    return pa.concat_tables([out, pa.Table.from_pylist(kept, schema=out.schema)])


def _converted(batch: pa.RecordBatch, plan: QueryPlan) -> pa.RecordBatch:
    """A result batch (``d0..``, ``m0..``) typed and named as DuckDB's."""
    arrays = []
    for i, dimension in enumerate(plan.dimensions):
        column = batch.column(i)
        if dimension not in ID_COLUMNS:
            # epoch seconds of the bucket start (UInt32 when the expression is a constant)
            seconds = column.to_numpy().astype(np.int64)
            column = pa.array(seconds * 1_000_000, type=_TIMESTAMP)
        arrays.append(column)
    width = len(plan.dimensions)
    for i, metric in enumerate(plan.metrics):
        sums = batch.column(width + i)
        if metric is Metric.COST:
            # Nano-units as a 38-digit integer are the unscaled cost with 9 decimals.
            sums = pa.Array.from_buffers(_COST_SUMS, len(sums), sums.buffers(), offset=sums.offset)
        arrays.append(sums)
    return pa.RecordBatch.from_arrays(arrays, names=list(plan.columns))


def aggregate_batches(
    client: Client, plan: QueryPlan, table: str, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """Stream the plan's result as batches typed as DuckDB's (columns named as in the API).

    The driver turns each block of the native protocol into an Arrow batch on our side
    (18.16 has no Arrow output format of its own).
    """
    reader = client.query_arrow_stream(
        render_aggregate(plan, table),
        settings={"max_block_size": batch_rows},
        field_metadata=False,
    )
    for batch in reader:
        if batch.num_rows:
            yield _converted(batch, plan)
