"""ClickHouse SQL of the event store: its tables and a :class:`QueryPlan` as a query.

Only SQL that ClickHouse 18.16 (Debian's) and current releases both run: no
``toStartOfInterval``, no positional ``GROUP BY``, no ``DateTime64``, no engine time-zone
rules at all. Time buckets are rendered from the plan's
:func:`~mpo_realtime.domain.buckets.bucket_pieces` as one ``multiIf`` over UTC epoch
seconds, newest piece first, exactly as the DuckDB renderer's ``CASE``: the boundaries come
from the service's one time-zone database, never from the zone rules ClickHouse bundles.

Cost is stored as integer nano-units (``cost_nanos``, what a ``Decimal64(9)`` holds, without
the driver's per-value decimal conversion). Sums are computed at read time, wider than any
row (``store/base.py``): counts and nano-units as ``Decimal128(0)``, which the driver hands
over as Arrow ``decimal128(38, 0)``; nano-units become the cost's ``decimal128(38, 9)`` by
reading the same integers with scale 9, as DuckDB returns them.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from mpo_realtime.domain.buckets import Piece
from mpo_realtime.domain.plan import ID_COLUMNS, QueryPlan
from mpo_realtime.domain.report import Dimension, Metric

__all__ = ["SCHEMA", "epoch_seconds", "quote_ident", "render_aggregate"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)

#: Tables, created if absent. ``{db}`` is the quoted database name.
#:
#: * ``rollup``: a plain MergeTree, summed at read time, so parts that have not merged never
#:   show as duplicates and no background merge can overflow a sum. ``batch_id`` names the
#:   flush that stored a row: the proof, checked on retry, that an idempotency key's rows
#:   are stored (``clickhouse_store.py``).
#: * ``catalog``, ``write_marks``: read with ``DISTINCT`` and ``max``, so repeats are harmless.
#: * ``ingest_keys``: one row per attempt at storing a keyed request (an intent), written
#:   before its rows; ``probe_*`` locate one row of its batch through the primary key.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS {db}.rollup (
        minute DateTime('UTC'),
        advertiser_id Int64,
        partner_id Int64,
        campaign_id Int64,
        seller_id Int64,
        product_id String,
        displays Int64,
        clicks Int64,
        cost_nanos Int64,
        batch_id UInt64
    ) ENGINE = MergeTree()
    PARTITION BY toYYYYMMDD(minute)
    ORDER BY (advertiser_id, minute, campaign_id, seller_id, partner_id, product_id)""",
    """CREATE TABLE IF NOT EXISTS {db}.catalog (
        advertiser_id Int64,
        partner_id Int64,
        campaign_id Int64,
        seller_id Int64
    ) ENGINE = ReplacingMergeTree()
    ORDER BY (advertiser_id, partner_id, campaign_id, seller_id)""",
    """CREATE TABLE IF NOT EXISTS {db}.write_marks (
        advertiser_id Int64,
        hour DateTime('UTC'),
        written_us Int64
    ) ENGINE = ReplacingMergeTree(written_us)
    PARTITION BY toYYYYMM(hour)
    ORDER BY (advertiser_id, hour)""",
    """CREATE TABLE IF NOT EXISTS {db}.ingest_keys (
        key String,
        batch_id UInt64,
        events Int64,
        digest String,
        created_us Int64,
        probe_advertiser Int64,
        probe_minute DateTime('UTC'),
        created_at DateTime('UTC')
    ) ENGINE = MergeTree()
    PARTITION BY toYYYYMMDD(created_at)
    ORDER BY (key, batch_id)""",
)

#: Sums wider than any row: ``Decimal128(0)`` integers (cost in nano-units).
_METRIC_SQL = {
    Metric.CLICKS: "sum(toDecimal128(clicks, 0))",
    Metric.DISPLAYS: "sum(toDecimal128(displays, 0))",
    Metric.COST: "sum(toDecimal128(cost_nanos, 0))",
}


def quote_ident(name: str) -> str:
    """A ClickHouse identifier in backquotes."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def epoch_seconds(moment: datetime) -> int:
    """Whole UTC seconds of ``moment``, rounded up: ``minute >= moment`` for whole minutes."""
    return math.ceil((moment - _EPOCH) / timedelta(seconds=1))


def _piece(piece: Piece) -> str:
    start = int((piece.start - _EPOCH) / timedelta(seconds=1))
    if piece.width is None:
        return str(start)
    width = int(piece.width / timedelta(seconds=1))
    # minute >= piece.start wherever this branch applies: the remainder is never negative
    return f"(s - (s - {start}) % {width})"


def _bucket(dimension: Dimension, plan: QueryPlan) -> str:
    """Epoch seconds of the bucket holding ``minute``: UTC arithmetic only."""
    pieces = plan.buckets(dimension)
    first = pieces[0]
    if len(pieces) == 1 and first.width == _MINUTE and first.start.second == 0:
        return "s"
    if len(pieces) == 1:
        return _piece(first)
    branches = ", ".join(
        f"s >= {epoch_seconds(piece.since)}, {_piece(piece)}" for piece in reversed(pieces[1:])
    )
    return f"multiIf({branches}, {_piece(first)})"


def _in(column: str, ids: tuple[int, ...]) -> str:
    # IDs are validated integers, so inlining them is safe and lets ClickHouse prune.
    return f"{column} IN ({', '.join(str(int(i)) for i in ids)})"


def render_aggregate(plan: QueryPlan, table: str = "rollup") -> str:
    """The plan as one query; columns ``d0..`` (dimensions), ``m0..`` (metric sums).

    Entity dimensions are their columns, time dimensions ``Int64`` epoch seconds of the
    bucket start; rows in dimension order, all-zero rows dropped, as in DuckDB.
    """
    dims: list[str] = []
    for i, dim in enumerate(plan.dimensions):
        expr = ID_COLUMNS[dim] if dim in ID_COLUMNS else _bucket(dim, plan)
        dims.append(f"{expr} AS d{i}")
    sums = [f"{_METRIC_SQL[m]} AS m{i}" for i, m in enumerate(plan.metrics)]
    where = [
        f"minute >= toDateTime({epoch_seconds(plan.start)}, 'UTC')",
        f"minute < toDateTime({epoch_seconds(plan.end)}, 'UTC')",
    ]
    where += [_in(col, ids) for col, ids in plan.filters.items() if ids]
    keys = ", ".join(f"d{i}" for i in range(len(plan.dimensions)))
    nonzero = " OR ".join(f"m{i} != 0" for i in range(len(plan.metrics)))
    return (
        f"SELECT {', '.join(dims + sums)}"
        f" FROM (SELECT *, toInt64(minute) AS s FROM {table}"
        f" WHERE {' AND '.join(where)})"
        f" GROUP BY {keys} HAVING {nonzero} ORDER BY {keys}"
    )
