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

import json
import zoneinfo
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, BinaryIO, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mpo_realtime.domain.report import FileFormat

__all__ = ["WriteResult", "write_export"]

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
    them by name. Time-bucket (timestamp) columns are formatted in ``timezone``.
    ``sink`` is written to but not closed.
    """
    if not columns:
        raise ValueError("an export needs at least one column")
    if len(set(columns)) != len(columns):
        raise ValueError(f"duplicate column names: {list(columns)}")
    zone = zoneinfo.ZoneInfo(timezone)
    counting = _CountingSink(sink)
    slices = _slices(batches, list(columns))
    if file_format is FileFormat.CSV:
        rows = _write_csv(slices, columns, zone, counting)
    elif file_format is FileFormat.JSON:
        rows = _write_json(slices, columns, zone, counting)
    else:  # pragma: no cover - FileFormat has two members
        raise ValueError(f"unsupported file format: {file_format!r}")
    return WriteResult(rows=rows, bytes=counting.count)


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


# -- CSV ---------------------------------------------------------------------------


def _write_csv(
    slices: Iterator[pa.RecordBatch],
    columns: Sequence[str],
    zone: zoneinfo.ZoneInfo,
    sink: _CountingSink,
) -> int:
    # Written by hand so that an empty result still gets its header without a schema.
    header = ",".join('"' + name.replace('"', '""') + '"' for name in columns) + "\n"
    sink.write(header.encode())
    rows = 0
    for part in slices:
        if part.num_rows == 0:
            continue
        # Every row text ends with "\n": folded into the last column, as JSON folds its
        # separators into the first, it spares a pass over whole rows.
        last = part.num_columns - 1
        texts = [
            _csv_column(part.column(i), zone, suffix="\n" if i == last else "")
            for i in range(part.num_columns)
        ]
        row_texts = texts[0] if len(texts) == 1 else pc.binary_join_element_wise(*texts, ",")
        sink.write(_joined_bytes(row_texts))
        rows += part.num_rows
    return rows


def _csv_column(array: pa.Array, zone: zoneinfo.ZoneInfo, *, suffix: str) -> pa.Array:
    """The CSV text of each value: strings and time buckets quoted, numbers bare."""
    array = _decoded(array)
    kind = array.type
    if pa.types.is_timestamp(kind):
        texts = _format_instants(array, zone, quote='"')
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        strings = array.cast(pa.string())
        if _holds_byte(strings, 0x22):
            strings = pc.replace_substring(strings, '"', '""')
        texts = pc.binary_join_element_wise('"', strings, '"', "")
    else:
        texts = _number_texts(array)
    if suffix:
        texts = pc.binary_join_element_wise(texts, suffix, "")
    if texts.null_count:
        texts = texts.fill_null(suffix)  # a null cell is empty
    return texts


# -- JSON --------------------------------------------------------------------------


def _write_json(
    slices: Iterator[pa.RecordBatch],
    columns: Sequence[str],
    zone: zoneinfo.ZoneInfo,
    sink: _CountingSink,
) -> int:
    head = '{"columns":' + _dumps(list(columns)) + ',"data":['
    sink.write(head.encode())
    rows = 0
    for part in slices:
        if part.num_rows == 0:
            continue
        # Every row text starts with "],[": the previous row's close and this
        # row's open. Folding the separators into the first column spares a pass
        # over whole rows; the very first row drops the leading "],".
        texts = [
            _json_column(part.column(i), zone, prefix="],[" if i == 0 else "")
            for i in range(part.num_columns)
        ]
        row_texts = texts[0] if len(texts) == 1 else pc.binary_join_element_wise(*texts, ",")
        data = _joined_bytes(row_texts)
        sink.write(data[2:] if rows == 0 else data)
        rows += part.num_rows
    tail = ("]" if rows else "") + '],"rows":' + str(rows) + "}"
    sink.write(tail.encode())
    return rows


def _json_column(array: pa.Array, zone: zoneinfo.ZoneInfo, *, prefix: str) -> pa.Array:
    """The JSON text of each value of ``array``, preceded by ``prefix``."""
    array = _decoded(array)
    kind = array.type
    if pa.types.is_timestamp(kind):
        # ISO texts need no escaping, so quotes and prefix go in with the
        # formatting of the distinct values: no pass over the rows for them.
        texts = _format_instants(array, zone, quote='"', prefix=prefix)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        texts = _json_strings(array.cast(pa.string()), prefix=prefix)
    else:
        texts = _number_texts(array)
        if prefix:
            texts = pc.binary_join_element_wise(prefix, texts, "")
    if texts.null_count:
        texts = texts.fill_null(prefix + "null")
    return texts


def _json_strings(array: pa.Array, *, prefix: str) -> pa.Array:
    """JSON string literals for a ``string`` array, without a per-row Python loop."""
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
    return pc.binary_join_element_wise(prefix + '"', array, '"', "")


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
    bounds = np.frombuffer(offsets, dtype=np.int32)
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


def _number_texts(array: pa.Array) -> pa.Array:
    """The text of each number, the same in CSV and JSON; nulls stay null."""
    kind = array.type
    if pa.types.is_integer(kind):
        return array.cast(pa.string())
    if pa.types.is_decimal(kind):
        return _decimal_texts(array)
    # Floats print noise (200.2292309999999) and differ by summation order: money and
    # counts reach the writers as integers or decimals, never as floats.
    raise TypeError(f"cannot write a column of type {kind}: numbers must be exact")


def _decimal_texts(array: pa.Array) -> pa.Array:
    """Plain decimal texts, no exponent, no trailing zeros: ``5``, ``0.25``, ``1e-9`` as
    ``0.000000001``. Vectorised for values whose unscaled integer fits 64 bits."""
    scale = array.type.scale
    if scale == 0 and pa.types.is_decimal128(array.type):
        try:
            # a checked cast: it raises if a value does not fit 64 bits
            return array.cast(pa.int64()).cast(pa.string())
        except pa.ArrowInvalid:
            pass
    if not pa.types.is_decimal128(array.type) or not 0 <= scale <= 18:
        return pa.array([None if d is None else _plain(d) for d in array.to_pylist()], pa.string())
    words = np.frombuffer(array.buffers()[1], dtype="<i8")
    words = words[2 * array.offset : 2 * (array.offset + len(array))].reshape(-1, 2)
    low, high = words[:, 0], words[:, 1]
    # The value fits 64 bits when the high word only extends the low word's sign; the
    # lowest int64 is left out so that its magnitude fits too.
    small = (high == (low >> 63)) & (low != np.iinfo(np.int64).min)
    if not array.null_count:
        valid = np.ones(len(array), dtype=bool)
    else:
        valid = np.asarray(array.is_valid())
    magnitude = np.abs(np.where(small & valid, low, 0))
    whole, fraction = np.divmod(magnitude, 10**scale)
    texts = pa.array(whole).cast(pa.string())
    if scale:
        digits = pc.utf8_lpad(pa.array(fraction).cast(pa.string()), scale, "0")
        texts = pc.utf8_rtrim(
            pc.binary_join_element_wise(texts, pc.utf8_rtrim(digits, "0"), "."), "."
        )
    negative = small & (low < 0)
    if negative.any():
        texts = pc.if_else(pa.array(negative), pc.binary_join_element_wise("-", texts, ""), texts)
    large = ~small & valid
    if large.any():
        mask = pa.array(large)
        texts = pc.replace_with_mask(
            texts, mask, pa.array([_plain(d) for d in array.filter(mask).to_pylist()], pa.string())
        )
    if array.null_count:
        texts = pc.if_else(array.is_valid(), texts, pa.scalar(None, pa.string()))
    return texts


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _format_instants(
    array: pa.Array, zone: zoneinfo.ZoneInfo, *, quote: str, prefix: str = ""
) -> pa.Array:
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


def _iso_local(tick: int, unit: str, zone: zoneinfo.ZoneInfo) -> str:
    micros = tick // 1_000 if unit == "ns" else tick * _US_PER_UNIT[unit]
    instant = _EPOCH + timedelta(microseconds=micros)
    # Converting from UTC sets ``fold`` on the second pass through a repeated
    # hour, so both instants of a DST fall-back keep their own offsets.
    return instant.astimezone(zone).isoformat(timespec="seconds")
