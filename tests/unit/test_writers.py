"""Tests for the streamed export writers (CSV and JSON output files)."""

from __future__ import annotations

import csv
import io
import json
import zoneinfo
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpo_realtime.domain.report import FileFormat
from mpo_realtime.domain.zones import get_zone
from mpo_realtime.exports.writers import WriteResult, write_export

ID_COLUMNS = ("advertiserId", "partnerId", "campaignId", "sellerId")
TIME_COLUMNS = ("minute", "hour", "day", "week", "month", "year")
COUNT_COLUMNS = ("clicks", "displays")
ALL_COLUMNS = (*ID_COLUMNS, "productId", *TIME_COLUMNS, *COUNT_COLUMNS, "cost")
TIMESTAMP = pa.timestamp("us", tz="UTC")
#: the formats ``write_export`` writes (Parquet has its own writer)
TEXT_FORMATS = [FileFormat.CSV, FileFormat.JSON]

#: the source's examples, verbatim (its JSON example holds the rows in another order)
SOURCE_CSV = (
    b'"advertiserId","campaignId","clicks","displays","cost"\n'
    b"321,12345,1873,800247,992.21671380425\n"
    b"321,56789,17927,5275096,3460.71409576333\n"
)
SOURCE_JSON = """{
"columns": [
"advertiserId",
"campaignId",
"clicks",
"displays",
"cost"
],
"data": [
[
321,
12345,
17927,
5275096,
3460.71409576333
],
[
321,
56789,
1873,
800247,
992.21671380425
]
],
"rows": 2
}"""
EXAMPLE_COLUMNS = ["advertiserId", "campaignId", "clicks", "displays", "cost"]


#: what reports hand the writers: exact sums, wider than any stored row
COST_TYPE = pa.decimal128(38, 9)
COUNT_TYPE = pa.decimal128(38, 0)


def _type_of(name: str, *, large_strings: bool = False) -> pa.DataType:
    if name == "productId":
        return pa.large_string() if large_strings else pa.string()
    if name in TIME_COLUMNS:
        return TIMESTAMP
    if name == "cost":
        return COST_TYPE
    if name in COUNT_COLUMNS:
        return COUNT_TYPE
    return pa.int64()


def _batch(columns: Sequence[str], rows: Sequence[Sequence[Any]], **kw: bool) -> pa.RecordBatch:
    arrays = [
        pa.array([row[i] for row in rows], _type_of(name, **kw)) for i, name in enumerate(columns)
    ]
    return pa.RecordBatch.from_arrays(arrays, names=list(columns))


def _write(
    batches: Any, columns: Sequence[str], file_format: FileFormat, timezone: str = "UTC"
) -> tuple[bytes, WriteResult]:
    sink = io.BytesIO()
    result = write_export(
        batches, columns=columns, file_format=file_format, timezone=timezone, sink=sink
    )
    assert not sink.closed
    assert result.bytes == len(sink.getvalue())
    return sink.getvalue(), result


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# -- reference implementation, plain Python ------------------------------------------


def _number_text(value: int | Decimal) -> str:
    """Plain decimal digits, no exponent, no trailing zeros (the naive way: string work)."""
    text = format(Decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _iso(value: datetime, timezone: str) -> str:
    return value.astimezone(get_zone(timezone)).isoformat(timespec="seconds")


def _reference_cells(
    columns: Sequence[str], row: Sequence[Any], timezone: str
) -> tuple[list[str], list[str]]:
    """The CSV and JSON texts of one row's cells."""
    csv_cells, json_cells = [], []
    for name, value in zip(columns, row, strict=True):
        if name == "productId" or name in TIME_COLUMNS:
            text = value if name == "productId" else _iso(value, timezone)
            csv_cells.append('"' + text.replace('"', '""') + '"')
            json_cells.append(json.dumps(text, ensure_ascii=False))
        else:
            csv_cells.append(_number_text(value))
            json_cells.append(_number_text(value))
    return csv_cells, json_cells


def _reference(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], timezone: str
) -> tuple[bytes, bytes]:
    header = ",".join('"' + name + '"' for name in columns) + "\n"
    csv_lines, json_rows = [header], []
    for row in rows:
        csv_cells, json_cells = _reference_cells(columns, row, timezone)
        csv_lines.append(",".join(csv_cells) + "\n")
        json_rows.append("[" + ",".join(json_cells) + "]")
    head = json.dumps({"columns": list(columns)}, separators=(",", ":"))[:-1]
    json_text = head + ',"data":[' + ",".join(json_rows) + '],"rows":' + str(len(rows)) + "}"
    return "".join(csv_lines).encode(), json_text.encode()


DECIMAL_EXAMPLES = [
    ("5", "5"),
    ("5.000000000", "5"),
    ("0", "0"),
    ("0E-9", "0"),
    ("0.250000000", "0.25"),
    ("0.000000001", "0.000000001"),  # Arrow's own text is 1E-9
    ("0.000000100", "0.0000001"),
    ("992.216713804", "992.216713804"),
    ("346.807302000", "346.807302"),
    ("9223372036.854775807", "9223372036.854775807"),  # the largest unscaled int64
    ("9223372036.854775808", "9223372036.854775808"),  # past it: exact all the same
    ("10000000000", "10000000000"),
    ("99999999999999999999999999999.999999999", "99999999999999999999999999999.999999999"),
]


@pytest.mark.parametrize(("value", "text"), DECIMAL_EXAMPLES)
@pytest.mark.parametrize("file_format", TEXT_FORMATS)
def test_write_export_prints_decimals_plainly(
    value: str, text: str, file_format: FileFormat
) -> None:
    assert _number_text(Decimal(value)) == text
    batch = _batch(["cost"], [(Decimal(value),)])
    data, _ = _write([batch], ["cost"], file_format)
    if file_format is FileFormat.CSV:
        assert data == b'"cost"\n' + text.encode() + b"\n"
    else:
        assert data == b'{"columns":["cost"],"data":[[' + text.encode() + b']],"rows":1}'


@pytest.mark.parametrize(
    "value", [0, 1, 2**63 - 1, 2**63, 10**38 - 1], ids=["0", "1", "int64", "past", "max"]
)
def test_write_export_prints_38_digit_counts_whole(value: int) -> None:
    batch = _batch(["clicks"], [(value,)])
    data, _ = _write([batch], ["clicks"], FileFormat.JSON)
    assert data == f'{{"columns":["clicks"],"data":[[{value}]],"rows":1}}'.encode()


# -- the source's examples -----------------------------------------------------------


def _source_batch(rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
    """The source's rows; its costs have 11 decimals, and a decimal of any scale prints."""
    types = [pa.int64(), pa.int64(), pa.int64(), pa.int64(), pa.decimal128(38, 11)]
    columns = [
        pa.array([Decimal(str(row[i])) if i == 4 else row[i] for row in rows], kind)
        for i, kind in enumerate(types)
    ]
    return pa.RecordBatch.from_arrays(columns, names=EXAMPLE_COLUMNS)


SOURCE_ROWS = [
    (321, 12345, 1873, 800247, "992.21671380425"),
    (321, 56789, 17927, 5275096, "3460.71409576333"),
]


def test_write_export_reproduces_source_csv_example() -> None:
    data, result = _write([_source_batch(SOURCE_ROWS)], EXAMPLE_COLUMNS, FileFormat.CSV)
    assert data == SOURCE_CSV
    assert result == WriteResult(rows=2, bytes=len(SOURCE_CSV))


def test_write_export_reproduces_source_json_example_compacted() -> None:
    compact = "".join(SOURCE_JSON.split()).encode()
    assert compact == json.dumps(json.loads(SOURCE_JSON), separators=(",", ":")).encode()
    parsed = json.loads(SOURCE_JSON, parse_float=str)
    batch = _source_batch([tuple(row) for row in parsed["data"]])
    data, result = _write([batch], EXAMPLE_COLUMNS, FileFormat.JSON)
    assert data == compact
    assert result == WriteResult(rows=2, bytes=len(compact))


def test_write_export_json_of_csv_example_rows_is_compact() -> None:
    data, _ = _write([_source_batch(SOURCE_ROWS)], EXAMPLE_COLUMNS, FileFormat.JSON)
    assert data == (
        b'{"columns":["advertiserId","campaignId","clicks","displays","cost"],'
        b'"data":[[321,12345,1873,800247,992.21671380425],'
        b'[321,56789,17927,5275096,3460.71409576333]],"rows":2}'
    )


# -- empty results -------------------------------------------------------------------


@pytest.mark.parametrize("batches", [[], [_batch(EXAMPLE_COLUMNS, [])]], ids=["none", "empty"])
def test_write_export_empty_csv_is_header_only(batches: list[pa.RecordBatch]) -> None:
    data, result = _write(iter(batches), EXAMPLE_COLUMNS, FileFormat.CSV)
    assert data == b'"advertiserId","campaignId","clicks","displays","cost"\n'
    assert result.rows == 0


@pytest.mark.parametrize("batches", [[], [_batch(EXAMPLE_COLUMNS, [])]], ids=["none", "empty"])
def test_write_export_empty_json_has_no_data(batches: list[pa.RecordBatch]) -> None:
    data, result = _write(iter(batches), EXAMPLE_COLUMNS, FileFormat.JSON)
    assert data == (
        b'{"columns":["advertiserId","campaignId","clicks","displays","cost"],"data":[],"rows":0}'
    )
    assert result.rows == 0


def test_write_export_skips_empty_batches_between_rows() -> None:
    columns = ["advertiserId", "clicks"]
    empty = _batch(columns, [])
    batches = [empty, _batch(columns, [(1, 2)]), empty, empty, _batch(columns, [(3, 4)]), empty]
    data, result = _write(batches, columns, FileFormat.JSON)
    assert data == b'{"columns":["advertiserId","clicks"],"data":[[1,2],[3,4]],"rows":2}'
    assert result.rows == 2
    data, _ = _write(batches, columns, FileFormat.CSV)
    assert data == b'"advertiserId","clicks"\n1,2\n3,4\n'


# -- strings -------------------------------------------------------------------------

AWKWARD_IDS = [
    "plain-SKU-1",
    "comma,inside",
    'quote"inside""twice',
    "new\nline\r\nand\rreturn",
    "back\\slash\\\\",
    "tab\there\x00nul\x01\x08\x0c\x1f",
    "ünïcödé €  😀 \u2028\u2029",
    "",
    " leading and trailing ",
    '"',
    "\\",
    "'single'",
]


@pytest.mark.parametrize("large", [False, True], ids=["utf8", "large_utf8"])
def test_write_export_csv_strings_read_back_equal(large: bool) -> None:
    columns = ["advertiserId", "productId", "clicks"]
    rows = [(7, product, i) for i, product in enumerate(AWKWARD_IDS)]
    data, result = _write([_batch(columns, rows, large_strings=large)], columns, FileFormat.CSV)
    assert result.rows == len(rows)
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert parsed[0] == columns
    assert [row[1] for row in parsed[1:]] == AWKWARD_IDS
    # strings are quoted even when nothing in them needs it
    assert b'7,"plain-SKU-1",0\n' in data


@pytest.mark.parametrize("large", [False, True], ids=["utf8", "large_utf8"])
def test_write_export_json_strings_parse_back_equal(large: bool) -> None:
    columns = ["advertiserId", "productId", "clicks"]
    rows = [(7, product, i) for i, product in enumerate(AWKWARD_IDS)]
    data, _ = _write([_batch(columns, rows, large_strings=large)], columns, FileFormat.JSON)
    assert json.loads(data)["data"] == [list(row) for row in rows]
    # the same escapes as json.dumps; non-ASCII stays UTF-8
    for product in AWKWARD_IDS:
        assert json.dumps(product, ensure_ascii=False).encode() in data


def test_write_export_escapes_only_the_rows_that_need_it() -> None:
    # control characters in one row of many, inside a sliced batch (non-zero offset)
    columns = ["productId"]
    products = [f"p{i}" for i in range(50)]
    products[17] = "a\x02b"
    products[33] = 'q"\\'
    batch = _batch(columns, [(p,) for p in ["skip", *products]]).slice(1)
    data, _ = _write([batch], columns, FileFormat.JSON)
    assert json.loads(data)["data"] == [[p] for p in products]
    assert b'["a\\u0002b"]' in data


def test_write_export_decodes_dictionary_columns() -> None:
    products = pa.array(["x", "y,z", "x"]).dictionary_encode()
    batch = pa.RecordBatch.from_arrays(
        [products, pa.array([1, 2, 3])], names=["productId", "clicks"]
    )
    csv_data, _ = _write([batch], ["productId", "clicks"], FileFormat.CSV)
    assert csv_data == b'"productId","clicks"\n"x",1\n"y,z",2\n"x",3\n'
    json_data, _ = _write([batch], ["productId", "clicks"], FileFormat.JSON)
    assert json.loads(json_data)["data"] == [["x", 1], ["y,z", 2], ["x", 3]]


def test_write_export_nulls_are_empty_in_csv_and_null_in_json() -> None:
    columns = ["productId", "hour", "clicks", "cost"]
    rows = [(None, None, None, None), ("p", _utc(2026, 1, 1), 1, Decimal("0.500000000"))]
    csv_data, _ = _write([_batch(columns, rows)], columns, FileFormat.CSV)
    assert csv_data.splitlines()[1:] == [b",,,", b'"p","2026-01-01T00:00:00+00:00",1,0.5']
    json_data, _ = _write([_batch(columns, rows)], columns, FileFormat.JSON)
    assert json.loads(json_data, parse_float=Decimal)["data"] == [
        [None, None, None, None],
        ["p", "2026-01-01T00:00:00+00:00", 1, Decimal("0.5")],
    ]


# -- projection and errors -----------------------------------------------------------


def test_write_export_selects_columns_by_name() -> None:
    batch = _batch(["clicks", "advertiserId", "cost"], [(5, 321, Decimal("1.5"))])
    data, _ = _write([batch], ["advertiserId", "clicks"], FileFormat.CSV)
    assert data == b'"advertiserId","clicks"\n321,5\n'


@pytest.mark.parametrize("file_format", TEXT_FORMATS)
@pytest.mark.parametrize("value", [0.5, float("nan"), float("inf")])
def test_write_export_refuses_float_columns(file_format: FileFormat, value: float) -> None:
    # floats print noise and depend on summation order: never in an export
    batch = pa.RecordBatch.from_arrays([pa.array([1.0, value])], names=["cost"])
    with pytest.raises(TypeError, match="numbers must be exact"):
        _write([batch], ["cost"], file_format)


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "localtime", "Factory", "../zones"])
def test_write_export_rejects_unknown_timezone(timezone: str) -> None:
    # "localtime" is a file of the host's zone directory, not a zone of the tzdata package.
    with pytest.raises(zoneinfo.ZoneInfoNotFoundError):
        _write([], ["clicks"], FileFormat.CSV, timezone=timezone)


# -- time buckets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "instant", "text"),
    [
        ("UTC", _utc(2026, 3, 29, 1), "2026-03-29T01:00:00+00:00"),
        ("Asia/Kolkata", _utc(2026, 3, 29, 1), "2026-03-29T06:30:00+05:30"),
        ("Asia/Kolkata", _utc(2026, 3, 28, 18, 30), "2026-03-29T00:00:00+05:30"),
        ("Asia/Kathmandu", _utc(2026, 3, 29, 1), "2026-03-29T06:45:00+05:45"),
        ("Asia/Kathmandu", _utc(2026, 3, 28, 18, 15), "2026-03-29T00:00:00+05:45"),
        ("America/St_Johns", _utc(2026, 1, 15, 12), "2026-01-15T08:30:00-03:30"),
        ("America/St_Johns", _utc(2026, 3, 29, 1), "2026-03-28T22:30:00-02:30"),
        # Paris spring-forward: 02:00 local does not exist
        ("Europe/Paris", _utc(2026, 3, 29, 0), "2026-03-29T01:00:00+01:00"),
        ("Europe/Paris", _utc(2026, 3, 29, 1), "2026-03-29T03:00:00+02:00"),
        ("Europe/Paris", _utc(2026, 3, 28, 23), "2026-03-29T00:00:00+01:00"),
        # Paris fall-back: 02:00 local happens twice
        ("Europe/Paris", _utc(2026, 10, 25, 0), "2026-10-25T02:00:00+02:00"),
        ("Europe/Paris", _utc(2026, 10, 25, 1), "2026-10-25T02:00:00+01:00"),
        ("Europe/Paris", _utc(2026, 10, 25, 2), "2026-10-25T03:00:00+01:00"),
        # The tzdata package's rules (2026f: UTC-7 all year from March 2026), whatever the
        # host's /usr/share/zoneinfo says (Debian's 2025b: UTC-8 from November 2026).
        ("America/Vancouver", _utc(2026, 11, 20, 7), "2026-11-20T00:00:00-07:00"),
    ],
)
@pytest.mark.parametrize("file_format", TEXT_FORMATS)
def test_write_export_formats_time_buckets_in_zone(
    timezone: str, instant: datetime, text: str, file_format: FileFormat
) -> None:
    batch = _batch(["hour", "clicks"], [(instant, 1)])
    data, _ = _write([batch], ["hour", "clicks"], file_format, timezone)
    if file_format is FileFormat.CSV:
        assert data == f'"hour","clicks"\n"{text}",1\n'.encode()
    else:
        assert data == f'{{"columns":["hour","clicks"],"data":[["{text}",1]],"rows":1}}'.encode()


@pytest.mark.parametrize("file_format", TEXT_FORMATS)
def test_write_export_fall_back_hour_gives_two_buckets(file_format: FileFormat) -> None:
    columns = ["advertiserId", "hour", "clicks"]
    hours = [_utc(2026, 10, 24, 23) + timedelta(hours=h) for h in range(4)]
    rows = [(1, hour, i) for i, hour in enumerate(hours)]
    data, _ = _write([_batch(columns, rows)], columns, file_format, "Europe/Paris")
    if file_format is FileFormat.CSV:
        texts = [line[1] for line in csv.reader(io.StringIO(data.decode(), newline=""))][1:]
    else:
        texts = [row[1] for row in json.loads(data)["data"]]
    assert texts == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_write_export_formats_every_time_column_and_repeats() -> None:
    # many rows sharing few distinct instants, in several time columns at once
    columns = ["day", "minute", "clicks"]
    instants = [_utc(2026, 3, 29, 0, 59), _utc(2026, 3, 29, 1, 0)]
    rows = [(instants[0], instants[i % 2], i) for i in range(1_000)]
    data, _ = _write([_batch(columns, rows)], columns, FileFormat.JSON, "Europe/Paris")
    parsed = json.loads(data)["data"]
    assert parsed[0] == ["2026-03-29T01:59:00+01:00", "2026-03-29T01:59:00+01:00", 0]
    assert parsed[1] == ["2026-03-29T01:59:00+01:00", "2026-03-29T03:00:00+02:00", 1]
    assert [row[1] for row in parsed] == [
        "2026-03-29T01:59:00+01:00" if i % 2 == 0 else "2026-03-29T03:00:00+02:00"
        for i in range(1_000)
    ]


# -- property test against the plain-Python reference --------------------------------

ZONES = [
    "UTC",
    "Europe/Paris",
    "America/St_Johns",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/Los_Angeles",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
]
INSTANTS = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda value: value.replace(microsecond=0))
#: the largest DECIMAL(38, 9)
LARGEST_SUM = Decimal("99999999999999999999999999999.999999999")
COSTS = st.decimals(0, LARGEST_SUM, places=9) | st.sampled_from(
    [Decimal(v) for v, _ in DECIMAL_EXAMPLES]
)
COUNTS = st.integers(0, 10**38 - 1) | st.integers(0, 10**6)


def _value_strategy(name: str) -> st.SearchStrategy[Any]:
    if name == "productId":
        return st.text(max_size=12) | st.sampled_from(AWKWARD_IDS)
    if name in TIME_COLUMNS:
        return INSTANTS
    if name == "cost":
        return COSTS
    if name in COUNT_COLUMNS:
        return COUNTS
    return st.integers(min_value=0, max_value=2**63 - 1)


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[str], list[tuple[Any, ...]], list[int], str, bool]:
    order = draw(st.permutations(ALL_COLUMNS))
    columns = list(order[: draw(st.integers(min_value=1, max_value=len(ALL_COLUMNS)))])
    row = st.tuples(*(_value_strategy(name) for name in columns))
    rows = draw(st.lists(row, max_size=25))
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(rows)), max_size=5)))
    return columns, rows, cuts, draw(st.sampled_from(ZONES)), draw(st.booleans())


def _split(batch: pa.RecordBatch, cuts: list[int]) -> Iterator[pa.RecordBatch]:
    # slices of one batch: arrays with non-zero offsets, possibly empty
    bounds = [0, *cuts, batch.num_rows]
    for start, end in zip(bounds, bounds[1:], strict=False):
        yield batch.slice(start, end - start)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tables())
def test_write_export_matches_plain_python_reference(
    table: tuple[list[str], list[tuple[Any, ...]], list[int], str, bool],
) -> None:
    columns, rows, cuts, timezone, large = table
    batch = _batch(columns, rows, large_strings=large)
    expected_csv, expected_json = _reference(columns, rows, timezone)

    csv_data, csv_result = _write(_split(batch, cuts), columns, FileFormat.CSV, timezone)
    json_data, json_result = _write(_split(batch, cuts), columns, FileFormat.JSON, timezone)

    assert csv_data == expected_csv
    assert json_data == expected_json
    assert csv_result == WriteResult(rows=len(rows), bytes=len(expected_csv))
    assert json_result == WriteResult(rows=len(rows), bytes=len(expected_json))
    # and both parse back to the input values
    parsed_json = json.loads(json_data, parse_float=Decimal)
    assert parsed_json["rows"] == len(rows)
    expected_values = [
        [
            _iso(v, timezone) if name in TIME_COLUMNS else v
            for name, v in zip(columns, row, strict=True)
        ]
        for row in rows
    ]
    assert parsed_json["data"] == expected_values
    parsed_csv = list(csv.reader(io.StringIO(csv_data.decode(), newline="")))
    assert parsed_csv[0] == columns
    assert [
        [
            Decimal(cell) if name == "cost" else cell
            for name, cell in zip(columns, line, strict=True)
        ]
        for line in parsed_csv[1:]
    ] == [
        [v if name == "cost" else str(v) for name, v in zip(columns, values, strict=True)]
        for values in expected_values
    ]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(COUNTS, COUNTS, COSTS), min_size=1, max_size=20))
def test_write_export_prints_the_same_digits_in_csv_and_json(
    rows: list[tuple[int, int, Decimal]],
) -> None:
    columns = ["clicks", "displays", "cost"]
    batch = _batch(columns, rows)
    csv_data, _ = _write([batch], columns, FileFormat.CSV)
    json_data, _ = _write([batch], columns, FileFormat.JSON)
    csv_cells = [line.split(b",") for line in csv_data.splitlines()[1:]]
    json_body = json_data[json_data.index(b'"data":[[') + 9 : json_data.index(b']],"rows"')]
    json_cells = [row.split(b",") for row in json_body.split(b"],[")]
    assert csv_cells == json_cells
    assert [tuple(Decimal(c.decode()) for c in cells) for cells in csv_cells] == [
        tuple(Decimal(value) for value in row) for row in rows
    ]


# -- streaming -----------------------------------------------------------------------


@pytest.mark.parametrize("file_format", TEXT_FORMATS)
def test_write_export_streams_generator_batches(file_format: FileFormat) -> None:
    columns = ["advertiserId", "clicks", "cost"]
    template = pa.RecordBatch.from_arrays(
        [
            pa.array(range(1_000), pa.int64()),
            pa.array(range(1_000), pa.int64()),
            pa.array([Decimal("0.5")] * 1_000, COST_TYPE),
        ],
        names=columns,
    )
    sink = io.BytesIO()
    written_before: list[int] = []

    def batches() -> Iterator[pa.RecordBatch]:
        for _ in range(1_000):
            # what has reached the sink when the next batch is asked for
            written_before.append(sink.tell())
            yield template

    result = write_export(
        batches(), columns=columns, file_format=file_format, timezone="UTC", sink=sink
    )
    assert result.rows == 1_000_000
    assert result.bytes == len(sink.getvalue())
    # each batch was written out before the next one was produced
    assert all(a < b for a, b in zip(written_before, written_before[1:], strict=False))
    if file_format is FileFormat.JSON:
        assert json.loads(sink.getvalue())["rows"] == 1_000_000
    else:
        assert sink.getvalue().count(b"\n") == 1_000_001


@pytest.mark.parametrize(
    "kind", [pa.timestamp("s", tz="UTC"), pa.timestamp("ns", tz="UTC"), pa.timestamp("ms")]
)
def test_write_export_formats_other_timestamp_units(kind: pa.DataType) -> None:
    # any unit works; a timestamp without a zone is taken as UTC
    hours = pa.array([_utc(2026, 10, 25, 1).replace(tzinfo=None)], kind)
    batch = pa.RecordBatch.from_arrays([hours], names=["hour"])
    data, _ = _write([batch], ["hour"], FileFormat.CSV, "Europe/Paris")
    assert data == b'"hour"\n"2026-10-25T02:00:00+01:00"\n'
