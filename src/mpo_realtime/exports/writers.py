"""Streamed export writers: Arrow record batches to the CSV or JSON output file.

The batches are written one at a time as they arrive, so a report of any size
needs memory for one batch only. All per-row work is vectorised with
``pyarrow.compute``; Python touches only the distinct time-bucket values of a batch.

Formats (the contract's "Output files"):

* CSV: quoted header names, numbers unquoted, strings always quoted with
  embedded ``"`` doubled, ``\\n`` line ends, UTF-8 without BOM.
* JSON: compact ``{"columns":[...],"data":[[...],...],"rows":N}``.

In both, numbers are exact: integers as they are, decimals (``cost``, and counts
summed as 38-digit integers) as plain decimal text, with no exponent and no trailing
zeros beyond what the value has (``5``, ``0.25``, ``992.216713804``); each cell's text
is the same in CSV and JSON. Floats are refused: an export never prints float noise.
Time buckets are ISO-8601 local times with their UTC offset in the requested zone,
e.g. ``2026-10-25T02:00:00+01:00``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, BinaryIO, Final, TypeAlias
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mpo_realtime.domain.report import Dimension, FileFormat, Metric
from mpo_realtime.domain.zones import get_zone

__all__ = ["WriteResult", "parquet_schema", "write_export", "write_lines", "write_parquet"]

#: Rows converted to text at a time. Bounds the memory held per step and keeps
#: the 32-bit offsets of Arrow ``string`` arrays far from their 2 GiB limit.
_SLICE_ROWS: Final = 65_536

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: microseconds per unit of an Arrow timestamp (nanoseconds are divided instead)
_US_PER_UNIT: Final = {"s": 1_000_000, "ms": 1_000, "us": 1}

#: JSON escapes of the control characters, as json.dumps writes them
_CONTROL_ESCAPES: Final = tuple((chr(code), json.dumps(chr(code))[1:-1]) for code in range(0x20))
_HAS_CONTROL: Final = "[\\x00-\\x1f]"


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What :func:`write_export` wrote: data rows (header excluded) and bytes."""

    rows: int
    bytes: int


def write_export(
    batches: Iterable[pa.RecordBatch],
    *,
    columns: Sequence[str],
    file_format: FileFormat,
    timezone: str,
    sink: BinaryIO,
) -> WriteResult:
    """Stream ``batches`` to ``sink`` as a CSV or JSON export file.

    ``columns`` names the output columns in order; each batch is projected onto
    them by name. Time-bucket (timestamp) columns are formatted in ``timezone``, a zone
    of the service's one database (``domain/zones.py``), never the host's.
    ``sink`` is written to but not closed.
    """
    if not columns:
        raise ValueError("an export needs at least one column")
    if len(set(columns)) != len(columns):
        raise ValueError(f"duplicate column names: {list(columns)}")
    zone = get_zone(timezone)
    counting = _CountingSink(sink)
    slices = _slices(batches, list(columns))
    if file_format is FileFormat.CSV:
        rows = _write_csv(slices, columns, zone, counting)
    elif file_format is FileFormat.JSON:
        rows = _write_json(slices, columns, zone, counting)
    else:  # pragma: no cover - FileFormat has two members
        raise ValueError(f"unsupported file format: {file_format!r}")
    return WriteResult(rows=rows, bytes=counting.count)


def write_lines(
    batches: Iterable[pa.RecordBatch],
    *,
    columns: Sequence[str],
    file_format: FileFormat,
    sink: BinaryIO,
) -> WriteResult:
    """Stream rows already formatted by the store to ``sink``, framed as a CSV or JSON file.

    Each batch has one string column: per row, its text in the file, as
    ``render_export_lines`` (``store/plan_sql.py``) makes it: the CSV line with its line
    end, or ``,`` and the JSON row. The result is byte for byte what :func:`write_export`
    writes from the typed rows; only the header and the JSON frame are made here.
    """
    if not columns:
        raise ValueError("an export needs at least one column")
    if file_format not in (FileFormat.CSV, FileFormat.JSON):
        raise ValueError(f"unsupported file format for lines: {file_format!r}")
    counting = _CountingSink(sink)
    if file_format is FileFormat.CSV:
        header = ",".join('"' + name.replace('"', '""') + '"' for name in columns) + "\n"
    else:
        header = '{"columns":' + _dumps(list(columns)) + ',"data":['
    counting.write(header.encode())
    rows = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        lines = batch.column(0)
        if lines.null_count:
            raise ValueError("a formatted export line is null")
        data = _joined_bytes(lines)
        # JSON rows each start with "," between them: the first one's is dropped.
        counting.write(data[1:] if rows == 0 and file_format is FileFormat.JSON else data)
        rows += batch.num_rows
    if file_format is FileFormat.JSON:
        counting.write(('],"rows":' + str(rows) + "}").encode())
    return WriteResult(rows=rows, bytes=counting.count)


#: rows per Parquet row group: large enough for column statistics and compression to pay,
#: small enough that one group's batches (tens of MB) are all the writer holds
PARQUET_ROW_GROUP_ROWS: Final = 131_072


def parquet_schema(columns: Sequence[str], timezone: str) -> pa.Schema:
    """The typed columns of a Parquet export.

    IDs are 64-bit integers, ``productId`` a string, time buckets timestamps (UTC
    instants, microseconds) carrying the report's zone, ``clicks`` and ``displays``
    64-bit integers and ``cost`` a double: what a warehouse loads without casts. The
    exact decimal cost stays in CSV and JSON.
    """
    fields = []
    for name in columns:
        if name in (Metric.CLICKS, Metric.DISPLAYS):
            kind: pa.DataType = pa.int64()
        elif name == Metric.COST:
            kind = pa.float64()
        elif Dimension(name) is Dimension.PRODUCT_ID:
            kind = pa.string()
        elif Dimension(name).is_time:
            kind = pa.timestamp("us", tz=timezone)
        else:
            kind = pa.int64()
        fields.append(pa.field(name, kind, nullable=False))
    return pa.schema(fields)


def write_parquet(
    batches: Iterable[pa.RecordBatch],
    *,
    columns: Sequence[str],
    timezone: str,
    sink: BinaryIO,
    row_group_rows: int = PARQUET_ROW_GROUP_ROWS,
) -> WriteResult:
    """Stream ``batches`` (the store's typed rows) to ``sink`` as a Parquet file.

    Batches are gathered into row groups of ``row_group_rows`` and each group is written
    as soon as it is full, so memory holds one group. A count too large for 64 bits
    fails the export rather than wrapping. ``sink`` is written to but not closed.
    """
    if not columns:
        raise ValueError("an export needs at least one column")
    get_zone(timezone)  # a zone of the service's database, as for CSV and JSON
    schema = parquet_schema(columns, timezone)
    start = sink.tell()
    # Dictionaries pay for IDs and buckets (few distinct values), not for product IDs,
    # which are mostly distinct: encoding them twice cost 40% of the writer's time.
    dictionary = [name for name in columns if name != Dimension.PRODUCT_ID]
    writer = pq.ParquetWriter(sink, schema, compression="snappy", use_dictionary=dictionary)
    pending: list[pa.RecordBatch] = []
    pending_rows = rows = 0
    try:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            pending.append(_typed(batch, schema))
            pending_rows += batch.num_rows
            if pending_rows >= row_group_rows:
                writer.write_table(pa.Table.from_batches(pending), row_group_size=pending_rows)
                rows += pending_rows
                pending, pending_rows = [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending), row_group_size=pending_rows)
            rows += pending_rows
    except BaseException:
        # The file is thrown away: close only to release the writer, whatever it says.
        with contextlib.suppress(Exception):
            writer.close()
        raise
    writer.close()  # writes the footer: a failure here fails the export
    return WriteResult(rows=rows, bytes=sink.tell() - start)


def _typed(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` projected and cast onto ``schema`` (safe casts: overflow raises)."""
    arrays = []
    for field in schema:
        array = _decoded(batch.column(field.name))
        if pa.types.is_timestamp(field.type):
            # the same instants, now labelled with the report's zone
            array = array.cast(pa.timestamp("us", tz="UTC")).view(field.type)
        elif pa.types.is_decimal(array.type) and pa.types.is_floating(field.type):
            array = _nearest_doubles(array)
        elif array.type != field.type:
            array = pc.cast(array, field.type)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _nearest_doubles(array: pa.Array) -> pa.Array:
    """The double nearest to each decimal (Arrow's own cast can be off by an ulp)."""
    kind = array.type
    if not pa.types.is_decimal128(kind) or array.null_count:
        return pa.array([None if d is None else float(d) for d in array.to_pylist()], pa.float64())
    words = np.frombuffer(array.buffers()[1], dtype="<i8")
    words = words[2 * array.offset : 2 * (array.offset + len(array))].reshape(-1, 2)
    low, high = words[:, 0], words[:, 1]
    # Below 2**53 the unscaled integer and 10**scale are exact doubles, so one IEEE
    # division rounds the true quotient correctly; the rest go through Decimal.
    exact = (high == 0) & (low >= 0) & (low < 2**53)
    values = low.astype(np.float64) / float(10**kind.scale)
    if not exact.all():
        others = np.flatnonzero(~exact)
        decimals = array.take(pa.array(others)).to_pylist()
        values[others] = [float(d) for d in decimals]
    return pa.array(values, pa.float64())


class _CountingSink:
    """A write-only file over ``sink`` that counts the bytes passing through."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self.count = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        total = view.nbytes
        while view.nbytes:
            # a raw (unbuffered) file may take only part of the bytes at a time
            written = self._sink.write(view)
            view = view[written if written is not None else view.nbytes :]
        self.count += total
        return total


def _slices(batches: Iterable[pa.RecordBatch], columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Yield the batches projected onto ``columns``, cut into slices of bounded size."""
    for batch in batches:
        if batch.schema.names != columns:
            batch = batch.select(columns)  # raises KeyError for a missing column
        for start in range(0, batch.num_rows, _SLICE_ROWS):
            yield batch.slice(start, _SLICE_ROWS)  # zero-copy


#: what a row is built from: arrays of cell texts, and constant texts between them
_Piece: TypeAlias = pa.Array | str


def _row_texts(pieces: list[_Piece]) -> pa.Array:
    """Each row's text: its pieces joined in one pass. A null piece adds nothing."""
    return pc.binary_join_element_wise(*pieces, "", null_handling="replace", null_replacement="")


# -- CSV ---------------------------------------------------------------------------


def _write_csv(
    slices: Iterator[pa.RecordBatch],
    columns: Sequence[str],
    zone: ZoneInfo,
    sink: _CountingSink,
) -> int:
    # Written by hand so that an empty result still gets its header without a schema.
    header = ",".join('"' + name.replace('"', '""') + '"' for name in columns) + "\n"
    sink.write(header.encode())
    rows = 0
    for part in slices:
        if part.num_rows == 0:
            continue
        pieces: list[_Piece] = []
        for i in range(part.num_columns):
            pieces += [","] if i else []
            pieces += _csv_cells(part.column(i), zone)
        sink.write(_joined_bytes(_row_texts([*pieces, "\n"])))
        rows += part.num_rows
    return rows


def _csv_cells(array: pa.Array, zone: ZoneInfo) -> list[_Piece]:
    """A column's CSV cells: strings and time buckets quoted, numbers bare, nulls empty."""
    array = _decoded(array)
    kind = array.type
    if pa.types.is_timestamp(kind):
        return [_format_instants(array, zone, quote='"')]
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        strings = array.cast(pa.string())
        if _holds_byte(strings, 0x22):
            strings = pc.replace_substring(strings, '"', '""')
        if strings.null_count:
            return [pc.binary_join_element_wise('"', strings, '"', "")]
        return ['"', strings, '"']
    return _number_pieces(array)


# -- JSON --------------------------------------------------------------------------


def _write_json(
    slices: Iterator[pa.RecordBatch],
    columns: Sequence[str],
    zone: ZoneInfo,
    sink: _CountingSink,
) -> int:
    head = '{"columns":' + _dumps(list(columns)) + ',"data":['
    sink.write(head.encode())
    rows = 0
    for part in slices:
        if part.num_rows == 0:
            continue
        # Every row text starts with "],[": the previous row's close and this row's
        # open; the very first row drops the leading "],".
        pieces: list[_Piece] = ["],["]
        for i in range(part.num_columns):
            pieces += [","] if i else []
            pieces += _json_cells(part.column(i), zone)
        data = _joined_bytes(_row_texts(pieces))
        sink.write(data[2:] if rows == 0 else data)
        rows += part.num_rows
    tail = ("]" if rows else "") + '],"rows":' + str(rows) + "}"
    sink.write(tail.encode())
    return rows


def _json_cells(array: pa.Array, zone: ZoneInfo) -> list[_Piece]:
    """A column's JSON values: strings and time buckets as string literals, nulls null."""
    array = _decoded(array)
    kind = array.type
    if pa.types.is_timestamp(kind):
        # ISO texts need no escaping: the quotes go in with the distinct values.
        texts = _format_instants(array, zone, quote='"')
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        escaped = _json_escaped(array.cast(pa.string()))
        if not escaped.null_count:
            return ['"', escaped, '"']
        texts = pc.binary_join_element_wise('"', escaped, '"', "")
    else:
        pieces = _number_pieces(array)
        if not array.null_count:
            return pieces
        (texts,) = pieces  # one piece, null where the value is
    return [texts.fill_null("null") if texts.null_count else texts]


def _json_escaped(array: pa.Array) -> pa.Array:
    """The contents of JSON string literals for a ``string`` array, without a row loop."""
    # One scan finds whether anything needs escaping at all: usually nothing does
    # (product IDs), and then the two replace passes are skipped.
    if _needs_escape(array):
        array = pc.replace_substring(array, "\\", "\\\\")
        array = pc.replace_substring(array, '"', '\\"')
        control = pc.match_substring_regex(array, _HAS_CONTROL).fill_null(False)
        if pc.any(control).as_py():
            # Control characters are rare: escape them (32 replace passes) only in
            # the values holding one, then put those values back in place.
            escaped = array.filter(control)
            for char, escape in _CONTROL_ESCAPES:
                escaped = pc.replace_substring(escaped, char, escape)
            array = pc.replace_with_mask(array, control, escaped)
    return array


def _needs_escape(array: pa.Array) -> bool:
    """Whether any value of a ``string`` array holds ``"``, ``\\`` or a control character."""
    # A byte scan of the values buffer is several times faster than a regex
    # match per value, and exact: UTF-8 multi-byte sequences use bytes >= 0x80 only.
    data = np.frombuffer(_joined_bytes(array), dtype=np.uint8)
    return bool(((data < 0x20) | (data == 0x22) | (data == 0x5C)).any())


def _holds_byte(array: pa.Array, byte: int) -> bool:
    """Whether any value of a ``string`` array holds the ASCII character ``byte``."""
    return bool((np.frombuffer(_joined_bytes(array), dtype=np.uint8) == byte).any())


def _joined_bytes(texts: pa.Array) -> memoryview:
    """The concatenation of the values of a ``string`` array, zero-copy (nulls add nothing)."""
    # The values of a string array lie back to back in its data buffer, so the
    # bytes between the first and last offsets are exactly their concatenation.
    _, offsets, data = texts.buffers()
    wide = pa.types.is_large_string(texts.type) or pa.types.is_large_binary(texts.type)
    bounds = np.frombuffer(offsets, dtype=np.int64 if wide else np.int32)
    start = int(bounds[texts.offset])
    end = int(bounds[texts.offset + len(texts)])
    return memoryview(data)[start:end] if data is not None else memoryview(b"")


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- shared ------------------------------------------------------------------------


def _decoded(array: pa.Array) -> pa.Array:
    """``array`` with any dictionary encoding undone."""
    if pa.types.is_dictionary(array.type):
        return array.dictionary_decode()
    return array


def _number_pieces(array: pa.Array) -> list[_Piece]:
    """A number column's texts, the same in CSV and JSON, as pieces of the row join.

    Integers print as they are. Decimals print plainly, with no exponent and no trailing
    zeros: ``5``, ``0.25``, ``0.000000001``. A decimal is two pieces, its whole part and
    its ``.fraction`` (null, so nothing, when it has none), which saves the passes of
    joining and trimming them per column.
    """
    kind = array.type
    if pa.types.is_integer(kind):
        return [array.cast(pa.string())]
    if not pa.types.is_decimal(kind):
        # Floats print noise (200.2292309999999) and differ by summation order: money
        # and counts reach the writers as integers or decimals, never as floats.
        raise TypeError(f"cannot write a column of type {kind}: numbers must be exact")
    scale = kind.scale
    if not pa.types.is_decimal128(kind) or not 0 <= scale <= 18:
        return [
            pa.array([None if d is None else _plain(d) for d in array.to_pylist()], pa.string())
        ]
    words = np.frombuffer(array.buffers()[1], dtype="<i8")
    words = words[2 * array.offset : 2 * (array.offset + len(array))].reshape(-1, 2)
    low, high = words[:, 0], words[:, 1]
    # Vectorised where the unscaled value is a non-negative 64-bit integer (any cost
    # below 9.2 billion); the rest, and nulls, are formatted one by one below.
    fits = (high == 0) & (low >= 0)
    if array.null_count:
        fits &= np.asarray(array.is_valid())
    whole, fraction = np.divmod(np.where(fits, low, 0), 10**scale)
    pieces: list[_Piece] = [pa.array(whole).cast(pa.string())]
    if scale:
        # 10**scale + fraction prints as "1" and the zero-padded digits: trim its
        # trailing zeros and turn the "1" into the decimal point.
        digits = pa.array(fraction + 10**scale, mask=fraction == 0).cast(pa.string())
        pieces.append(pc.utf8_replace_slice(pc.utf8_rtrim(digits, "0"), 0, 1, "."))
    others = ~fits
    if others.any():
        mask = pa.array(others)
        texts = [None if d is None else _plain(d) for d in array.filter(mask).to_pylist()]
        pieces[0] = pc.replace_with_mask(pieces[0], mask, pa.array(texts, pa.string()))
        if scale:
            pieces[1] = pc.if_else(mask, pa.scalar(None, pa.string()), pieces[1])
    if array.null_count:
        # one piece, null where the value is (empty in CSV, null in JSON), not "0"
        pieces = [pc.if_else(array.is_valid(), _row_texts(pieces), pa.scalar(None, pa.string()))]
    return pieces


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _format_instants(array: pa.Array, zone: ZoneInfo, *, quote: str, prefix: str = "") -> pa.Array:
    """ISO-8601 local times in ``zone`` for a timestamp array, as a ``string`` array.

    Only the distinct instants are formatted in Python; the rows then take their
    text by index. A naive timestamp is taken as UTC.
    """
    encoded = pc.dictionary_encode(array)
    distinct = encoded.dictionary
    unit = distinct.type.unit
    ticks = distinct.cast(pa.int64()).to_pylist()
    texts = [
        None if tick is None else prefix + quote + _iso_local(tick, unit, zone) + quote
        for tick in ticks
    ]
    return pa.array(texts, pa.string()).take(encoded.indices)


def _iso_local(tick: int, unit: str, zone: ZoneInfo) -> str:
    micros = tick // 1_000 if unit == "ns" else tick * _US_PER_UNIT[unit]
    instant = _EPOCH + timedelta(microseconds=micros)
    # Converting from UTC sets ``fold`` on the second pass through a repeated
    # hour, so both instants of a DST fall-back keep their own offsets.
    return instant.astimezone(zone).isoformat(timespec="seconds")
