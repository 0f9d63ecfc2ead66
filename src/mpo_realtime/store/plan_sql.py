"""Render a :class:`QueryPlan` as SQL over the ``rollup`` table (DuckDB dialect)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from mpo_realtime.domain.buckets import Piece, offset_changes
from mpo_realtime.domain.plan import ID_COLUMNS, QueryPlan
from mpo_realtime.domain.report import Dimension, FileFormat, Metric
from mpo_realtime.domain.zones import get_zone

__all__ = ["key_expressions", "render_aggregate", "render_export_lines", "render_where"]

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


def key_expressions(plan: QueryPlan) -> list[str]:
    """The SQL of each dimension's value (over ``rollup``), in the plan's dimension order:
    the report's grouping and sort keys."""
    return [ID_COLUMNS[dim] if dim in ID_COLUMNS else _bucket(dim, plan) for dim in plan.dimensions]


def render_where(plan: QueryPlan) -> str:
    """The plan's row filter over ``rollup`` (parameters ``$start`` and ``$end``)."""
    where = ["minute >= $start", "minute < $end"]
    where += [_in(col, ids) for col, ids in plan.filters.items() if ids]
    return " AND ".join(where)


def render_aggregate(plan: QueryPlan, *, ordered: bool = True, part: str | None = None) -> str:
    """SQL with parameters ``$start`` and ``$end``; rows in dimension order if ``ordered``.

    ``part``: one more row condition, over the key expressions (a range of the sort
    order: see ``DuckDBEventStore`` on exports in parts); its parameters are the caller's.
    """
    selects = [
        f'{expr} AS "{dim.value}"'
        for expr, dim in zip(key_expressions(plan), plan.dimensions, strict=True)
    ]
    selects += [f'{_METRIC_SQL[m]} AS "{m.value}"' for m in plan.metrics]
    where = render_where(plan) + (f" AND {part}" if part else "")
    keys = ", ".join(str(i + 1) for i in range(len(plan.dimensions)))
    nonzero = " OR ".join(f"{_METRIC_SQL[m]} <> 0" for m in plan.metrics)
    order = f" ORDER BY {keys}" if ordered else ""
    return (
        f"SELECT {', '.join(selects)} FROM rollup WHERE {where}"
        f" GROUP BY {keys} HAVING {nonzero}{order}"
    )


# -- export lines: the file's text, made by the engine ----------------------------------
#
# The export writers (``exports/writers.py``) define the files' layout. For CSV and JSON
# the same text can be made by DuckDB itself, in its worker threads and before its sort,
# so that the runner only copies bytes out: the query and the formatting then overlap,
# as in DuckDB's own ``COPY``. Every cell is made exactly as the writers make it
# (``tests/unit/test_export_lines.py`` holds the two byte for byte).

#: JSON escapes of the control characters, as ``json.dumps`` writes them
_CONTROL_ESCAPES = tuple((code, json.dumps(chr(code))[1:-1]) for code in range(0x20))


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_string(expr: str) -> str:
    """A JSON string literal of ``expr`` (a VARCHAR), escaped as ``json.dumps`` does."""
    # DuckDB's to_json escapes like json.dumps (ensure_ascii off) but for the hex digits
    # of six control characters (upper case). Any value whose literal holds "\u00", a
    # control character or a backslash-u in the text, takes the exact replace chain.
    escaped = f"replace(replace({expr}, '\\', '\\\\'), '\"', '\\\"')"
    for code, escape in _CONTROL_ESCAPES:
        escaped = f"replace({escaped}, chr({code}), {_quoted(escape)})"
    literal = f"CAST(to_json({expr}) AS VARCHAR)"
    return (
        f"CASE WHEN contains({literal}, '\\u00') THEN '\"' || {escaped} || '\"' ELSE {literal} END"
    )


def _plain_cost(expr: str) -> str:
    """A ``DECIMAL(38, 9)`` as plain text without trailing zeros (``5``, ``0.25``)."""
    # Below 10**9 the value fits DECIMAL(18, 9), whose text (all 9 decimals) is quick to
    # make; its trailing zeros are cut by suffix tests, several times faster than rtrim.
    text = f"CAST(CAST({expr} AS DECIMAL(18, 9)) AS VARCHAR)"
    cuts = " ".join(
        f"WHEN suffix({text}, '{'0' * zeros}') THEN left({text}, strlen({text}) - {cut})"
        for zeros, cut in [(9, 10), *((z, z) for z in range(8, 0, -1))]
    )
    general = f"rtrim(rtrim(CAST({expr} AS VARCHAR), '0'), '.')"
    return f"CASE WHEN {expr} < 1000000000 THEN CASE {cuts} ELSE {text} END ELSE {general} END"


def _local_text(expr: str, dimension: Dimension, plan: QueryPlan) -> str:
    """ISO-8601 local time with its UTC offset, in ``plan.timezone``, of bucket starts.

    The offset of each stretch between the zone's offset changes is decided in Python
    (``domain/buckets.py``), as for the buckets themselves; the engine only adds it.
    """
    zone = get_zone(plan.timezone)
    low = min(piece.start for piece in plan.buckets(dimension))
    stretches = [low, *offset_changes(plan.timezone, low, plan.end)]
    branches: list[str] = []
    for since in stretches:
        local = since.astimezone(zone)
        offset = local.utcoffset()
        assert offset is not None
        suffix = local.isoformat(timespec="seconds")[19:]  # "+05:45", "Z" never
        shift = offset // _MICROSECOND
        branches.append(
            f"strftime(make_timestamp(epoch_us({expr}) + {shift}), '%Y-%m-%dT%H:%M:%S')"
            f" || {_quoted(suffix)}"
        )
    text = branches[0]
    if len(stretches) > 1:
        cases = " ".join(
            f"WHEN {expr} >= {_instant(since)} THEN {branch}"
            for since, branch in reversed(list(zip(stretches[1:], branches[1:], strict=True)))
        )
        text = f"CASE {cases} ELSE {text} END"
    return f"'\"' || {text} || '\"'"


def _cell(column: str, plan: QueryPlan, file_format: FileFormat) -> str:
    """The text of one cell, as the writers print it (nulls: empty in CSV, null in JSON)."""
    expr = f'r."{column}"'
    if column in {m.value for m in Metric}:
        text = _plain_cost(expr) if column == Metric.COST else f"CAST({expr} AS VARCHAR)"
    else:
        dimension = Dimension(column)
        if dimension.is_time:
            text = _local_text(expr, dimension, plan)
        elif dimension is Dimension.PRODUCT_ID:
            if file_format is FileFormat.CSV:
                doubled = f"CASE WHEN contains({expr}, '\"') THEN replace({expr}, '\"', '\"\"')"
                text = f"'\"' || {doubled} ELSE {expr} END || '\"'"
            else:
                text = _json_string(expr)
        else:
            text = f"CAST({expr} AS VARCHAR)"
    return f"coalesce({text}, {_quoted('null' if file_format is FileFormat.JSON else '')})"


def render_export_lines(
    plan: QueryPlan, file_format: FileFormat, *, part: str | None = None
) -> str:
    """SQL (parameters ``$start``, ``$end``) of one VARCHAR column, ``line``: each row's
    text in the export file, in the file's order.

    CSV: the row and its line end. JSON: ``,`` then the row's array (the first row's
    ``,`` is the writer's to drop). Header and JSON frame are the writer's. ``part``: as
    for :func:`render_aggregate`.
    """
    cells = [_cell(column, plan, file_format) for column in plan.columns]
    if file_format is FileFormat.CSV:
        line = " || ',' || ".join(cells) + " || chr(10)"
    else:
        line = "',[' || " + " || ',' || ".join(cells) + " || ']'"
    keys = ", ".join(f'r."{d.value}"' for d in plan.dimensions)
    rows = render_aggregate(plan, ordered=False, part=part)
    return f"SELECT {line} AS line FROM ({rows}) AS r ORDER BY {keys}"
