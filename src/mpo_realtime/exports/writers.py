"""Streamed export writers: Arrow record batches to the CSV or JSON output file.

The batches are written one at a time as they arrive, so a report of any size
needs memory for one batch only. All per-row work is vectorised with
``pyarrow.compute``; Python touches only the distinct time-bucket values of a batch.

Formats (the contract's "Output files"):

* CSV: quoted header names, numbers unquoted, strings always quoted with
  embedded ``"`` doubled, ``\\n`` line ends, UTF-8 without BOM.
* JSON: compact ``{"columns":[...],"data":[[...],...],"rows":N}``.

In both, ``cost`` is printed in its shortest round-trip form (Arrow's
double-to-string cast) and time buckets as ISO-8601 local times with their UTC
offset in the requested zone, e.g. ``2026-10-25T02:00:00+01:00``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Final
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from mpo_realtime.domain.report import FileFormat
from mpo_realtime.domain.zones import get_zone

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


class _CountingSink:
    """A write-only file over ``sink`` that counts the bytes passing through.

    Also handed to Arrow's CSV writer, which needs ``write``, ``flush`` and
    ``closed``; ``close`` is deliberately a no-op because the caller owns ``sink``.
    """

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self.count = 0

    @property
    def closed(self) -> bool:
        return False

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        total = view.nbytes
        while view.nbytes:
            # a raw (unbuffered) file may take only part of the bytes at a time
            written = self._sink.write(view)
            view = view[written if written is not None else view.nbytes :]
        self.count += total
        return total

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        pass


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
    zone: ZoneInfo,
    sink: _CountingSink,
) -> int:
    # Written by hand so that an empty result still gets its header without a
    # schema; the text is what Arrow's CSV writer itself writes for a header.
    header = ",".join('"' + name.replace('"', '""') + '"' for name in columns) + "\n"
    sink.write(header.encode())
    # Arrow's writer already follows the format: it quotes every string (and only
    # strings), doubles embedded quotes and prints floats with the same shortest
    # round-trip cast used for JSON below. Time buckets are made strings first.
    options = pcsv.WriteOptions(include_header=False, batch_size=_SLICE_ROWS)
    rows = 0
    for part in slices:
        if part.num_rows == 0:
            continue
        arrays = [_csv_column(part.column(i), zone) for i in range(part.num_columns)]
        pcsv.write_csv(pa.RecordBatch.from_arrays(arrays, names=list(columns)), sink, options)
        rows += part.num_rows
    return rows


def _csv_column(array: pa.Array, zone: ZoneInfo) -> pa.Array:
    array = _decoded(array)
    kind = array.type
    if pa.types.is_timestamp(kind):
        return _format_instants(array, zone, quote="")
    if pa.types.is_floating(kind):
        _check_finite(array)
    return array


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


def _json_column(array: pa.Array, zone: ZoneInfo, *, prefix: str) -> pa.Array:
    """The JSON text of each value of ``array``, preceded by ``prefix``."""
    array = _decoded(array)
    kind = array.type
    if pa.types.is_timestamp(kind):
        # ISO texts need no escaping, so quotes and prefix go in with the
        # formatting of the distinct values: no pass over the rows for them.
        texts = _format_instants(array, zone, quote='"', prefix=prefix)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        texts = _json_strings(array.cast(pa.string()), prefix=prefix)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        if pa.types.is_floating(kind):
            _check_finite(array)
        # Arrow's cast prints floats in their shortest round-trip form, the same
        # text its CSV writer produces, and every such text is a JSON number.
        texts = array.cast(pa.string())
        if prefix:
            texts = pc.binary_join_element_wise(prefix, texts, "")
    else:
        raise TypeError(f"cannot write a column of type {kind} to JSON")
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


def _check_finite(array: pa.Array) -> None:
    # NaN and infinities have no JSON form and no meaning as a cost: refuse them
    # rather than write a file that clients cannot parse.
    if pc.any(pc.invert(pc.is_finite(array))).as_py():
        raise ValueError("cannot write a non-finite float")


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
