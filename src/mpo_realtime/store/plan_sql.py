"""Render a :class:`QueryPlan` as SQL over the ``rollup`` table (DuckDB dialect)."""

from __future__ import annotations

from mpo_realtime.domain.plan import ID_COLUMNS, QueryPlan, offset_changes
from mpo_realtime.domain.report import Dimension, Metric

__all__ = ["render_aggregate"]

#: Sums wider than any row (see ``store/base.py``), so no report can overflow: counts
#: as 38-digit integers, cost exact with its 9 decimals (ClickHouse: Decimal128(0), (9)).
_METRIC_SQL = {
    Metric.CLICKS: "sum(clicks)::DECIMAL(38, 0)",
    Metric.DISPLAYS: "sum(displays)::DECIMAL(38, 0)",
    Metric.COST: "sum(cost)::DECIMAL(38, 9)",
}


def _bucket(dimension: Dimension, plan: QueryPlan) -> str:
    """The UTC instant at which the local bucket holding ``minute`` starts."""
    local = "timezone($tz, minute)"
    if dimension is Dimension.MINUTE:
        return "minute"
    if dimension is Dimension.HOUR:
        # Step back by the local minute-of-hour rather than truncating local time, so
        # that a repeated DST hour stays two buckets and 30/45-minute zones stay right;
        # but never to before an offset change that happened off the hour.
        top = f"minute - to_minutes(extract('minute' FROM {local})::BIGINT)"
        changes = offset_changes(plan.timezone, plan.start, plan.end)
        if not changes:
            return top
        latest = " ".join(
            f"WHEN minute >= TIMESTAMPTZ '{c.isoformat()}' THEN TIMESTAMPTZ '{c.isoformat()}'"
            for c in reversed(changes)
        )
        return f"greatest({top}, CASE {latest} END)"
    return f"timezone($tz, date_trunc('{dimension.value}', {local}))"


def _in(column: str, ids: tuple[int, ...]) -> str:
    # IDs are validated integers, so inlining them is safe and lets DuckDB prune.
    return f"{column} IN ({', '.join(str(int(i)) for i in ids)})"


def render_aggregate(plan: QueryPlan) -> str:
    """SQL with parameters ``$start``, ``$end`` and ``$tz``."""
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
