"""Render a :class:`QueryPlan` as SQL over the ``rollup`` table (DuckDB dialect)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mpo_realtime.domain.buckets import Piece
from mpo_realtime.domain.plan import ID_COLUMNS, QueryPlan
from mpo_realtime.domain.report import Dimension, Metric

__all__ = ["render_aggregate"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MINUTE = timedelta(minutes=1)

#: Sums wider than any row (see ``store/base.py``), so no report can overflow: counts
#: as 38-digit integers, cost exact with its 9 decimals (ClickHouse: Decimal128(0), (9)).
_METRIC_SQL = {
    Metric.CLICKS: "sum(clicks)::DECIMAL(38, 0)",
    Metric.DISPLAYS: "sum(displays)::DECIMAL(38, 0)",
    Metric.COST: "sum(cost)::DECIMAL(38, 9)",
}


def _instant(moment: datetime) -> str:
    return f"TIMESTAMPTZ '{moment.isoformat()}'"


def _piece(piece: Piece) -> str:
    if piece.width is None:
        return _instant(piece.start)
    # Integer microseconds: 2.4 times cheaper than subtracting an INTERVAL from the
    # TIMESTAMPTZ (bench_buckets.py). minute >= piece.start wherever this branch applies,
    # so the remainder is never negative.
    start_us = (piece.start - _EPOCH) // _MICROSECOND
    width_us = piece.width // _MICROSECOND
    return f"make_timestamptz(epoch_us(minute) - (epoch_us(minute) - {start_us}) % {width_us})"


def _bucket(dimension: Dimension, plan: QueryPlan) -> str:
    """The UTC instant at which the bucket holding ``minute`` starts: UTC arithmetic only.

    The domain decided every boundary (``QueryPlan.buckets``); DuckDB's own time-zone
    rules are never used.
    """
    pieces = plan.buckets(dimension)
    first = pieces[0]
    if len(pieces) == 1 and first.width == _MINUTE and first.start.second == 0:
        return "minute"  # the stored granularity already
    branches = " ".join(
        f"WHEN minute >= {_instant(piece.since)} THEN {_piece(piece)}"
        for piece in reversed(pieces[1:])
    )
    return f"CASE {branches} ELSE {_piece(first)} END" if branches else _piece(first)


def _in(column: str, ids: tuple[int, ...]) -> str:
    # IDs are validated integers, so inlining them is safe and lets DuckDB prune.
    return f"{column} IN ({', '.join(str(int(i)) for i in ids)})"


def render_aggregate(plan: QueryPlan) -> str:
    """SQL with parameters ``$start`` and ``$end``."""
    selects: list[str] = []
    for dim in plan.dimensions:
        expr = ID_COLUMNS[dim] if dim in ID_COLUMNS else _bucket(dim, plan)
        selects.append(f'{expr} AS "{dim.value}"')
    selects += [f'{_METRIC_SQL[m]} AS "{m.value}"' for m in plan.metrics]
    where = ["minute >= $start", "minute < $end"]
    where += [_in(col, ids) for col, ids in plan.filters.items() if ids]
    keys = ", ".join(str(i + 1) for i in range(len(plan.dimensions)))
    nonzero = " OR ".join(f"{_METRIC_SQL[m]} <> 0" for m in plan.metrics)
    return (
        f"SELECT {', '.join(selects)} FROM rollup WHERE {' AND '.join(where)}"
        f" GROUP BY {keys} HAVING {nonzero} ORDER BY {keys}"
    )
