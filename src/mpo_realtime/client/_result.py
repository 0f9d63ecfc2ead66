"""A downloaded export: its file, and its rows with typed values."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from mpo_realtime.client._errors import ClientError

if TYPE_CHECKING:
    import pandas
    import pyarrow

__all__ = ["ExportResult", "Row", "Value"]

Value = int | Decimal | datetime | str | None
Row = dict[str, Value]

#: columns whose values are integers: IDs and counts
INTEGER_COLUMNS = frozenset(
    {"advertiserId", "partnerId", "campaignId", "sellerId", "clicks", "displays"}
)
#: money: exact decimals, never floats
DECIMAL_COLUMNS = frozenset({"cost"})
#: time buckets: ISO-8601 local times with their UTC offset
TIME_COLUMNS = frozenset({"minute", "hour", "day", "week", "month", "year"})
#: the smallest scale of the Arrow decimal type of money (the API keeps 9 decimals)
MONEY_SCALE = 9


def _converter(column: str) -> Callable[[str], Value]:
    if column in INTEGER_COLUMNS:
        return int
    if column in DECIMAL_COLUMNS:
        return Decimal
    if column in TIME_COLUMNS:
        return datetime.fromisoformat
    return str


def _typed(column: str, value: object) -> Value:
    """A JSON value of ``column`` as the CSV reading types it (JSON numbers are Decimal)."""
    if value is None:
        return None
    if isinstance(value, str):
        return _converter(column)(value)
    if column in DECIMAL_COLUMNS:
        return Decimal(value) if isinstance(value, int | Decimal) else Decimal(str(value))
    if isinstance(value, int | Decimal):
        return value
    return str(value)


def _csv_rows(text: Iterable[str]) -> Iterator[Row]:
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return
    converters = [_converter(column) for column in header]
    for record in reader:
        yield {
            column: convert(value)
            for column, convert, value in zip(header, converters, record, strict=True)
        }


def _json_rows(data: bytes) -> tuple[list[str], Iterator[Row]]:
    # parse_float keeps every digit of cost: a float would round 992.216713804
    body = json.loads(data, parse_float=Decimal)
    columns: list[str] = body["columns"]
    rows = (
        {c: _typed(c, v) for c, v in zip(columns, record, strict=True)} for record in body["data"]
    )
    return columns, rows


@dataclass(frozen=True, slots=True)
class ExportResult:
    """A Done export's file: in memory (``content``) or at ``path``.

    ``row_count`` is counted while the file streamed (None for formats the client does
    not know). ``encoding`` is the ``Content-Encoding`` it travelled in (``gzip``).
    ``timezone`` is the zone the report was asked in, when the client knows it.
    """

    export_id: str
    file_format: str
    content_type: str
    row_count: int | None
    size: int
    path: Path | None = None
    encoding: str | None = None
    timezone: str | None = None
    trace_id: str | None = None
    _content: bytes | None = None

    @property
    def content(self) -> bytes:
        """The file's bytes (read from ``path`` when the file was written there)."""
        if self._content is not None:
            return self._content
        assert self.path is not None
        return self.path.read_bytes()

    def iter_rows(self) -> Iterator[Row]:
        """The rows one at a time, typed: IDs and counts ``int``, ``cost`` ``Decimal``,
        time buckets aware ``datetime``, product IDs ``str``. CSV files at ``path`` are
        read as a stream; JSON files are parsed whole."""
        if self.file_format == "csv":
            if self._content is None and self.path is not None:
                with self.path.open(encoding="utf-8", newline="") as text:
                    yield from _csv_rows(text)
                return
            yield from _csv_rows(io.StringIO(self.content.decode("utf-8"), newline=""))
            return
        if self.file_format == "json":
            yield from _json_rows(self.content)[1]
            return
        raise ClientError(f"rows of a {self.content_type!r} file cannot be read by the client")

    def rows(self) -> list[Row]:
        """Every row as a dict, typed as ``iter_rows`` says."""
        return list(self.iter_rows())

    def columns(self) -> list[str]:
        """The column names, in file order."""
        if self.file_format == "json":
            return _json_rows(self.content)[0]
        first_line = self.content.split(b"\n", 1)[0].decode("utf-8")
        return next(csv.reader([first_line]), [])

    def to_arrow(self) -> pyarrow.Table:
        """A ``pyarrow.Table`` (``pip install 'mpo-realtime[arrow]'``): IDs and counts
        int64, ``cost`` decimal128 (exact), time buckets timestamps in the report's zone
        (UTC when unknown), other columns strings."""
        try:
            import pyarrow as pa
        except ImportError as exc:
            raise ImportError(
                "to_arrow() needs pyarrow: pip install 'mpo-realtime[arrow]'"
            ) from exc
        columns = self.columns()
        values: dict[str, list[Value]] = {column: [] for column in columns}
        for row in self.iter_rows():
            for column in columns:
                values[column].append(row[column])
        arrays = [_arrow_array(c, values[c], self.timezone) for c in columns]
        return pa.Table.from_arrays(arrays, names=columns)

    def to_pandas(self) -> pandas.DataFrame:
        """A ``pandas.DataFrame`` (``pip install 'mpo-realtime[pandas]'``); ``cost`` holds
        ``Decimal`` objects, so no money is rounded."""
        try:
            import pandas  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "to_pandas() needs pandas: pip install 'mpo-realtime[pandas]'"
            ) from exc
        return self.to_arrow().to_pandas()


def _arrow_array(column: str, values: list[Value], zone: str | None) -> pyarrow.Array:
    import pyarrow

    if column in INTEGER_COLUMNS:
        return pyarrow.array(values, type=pyarrow.int64())
    if column in DECIMAL_COLUMNS:
        exponents = [d.as_tuple().exponent for d in values if isinstance(d, Decimal)]
        scale = min(38, max([MONEY_SCALE, *(-e for e in exponents if isinstance(e, int))]))
        return pyarrow.array(values, type=pyarrow.decimal128(38, scale))
    if column in TIME_COLUMNS:
        return pyarrow.array(values, type=pyarrow.timestamp("s", tz=zone or "UTC"))
    return pyarrow.array([None if v is None else str(v) for v in values], type=pyarrow.string())
