"""Parquet exports (this service's extension): typed columns, the same numbers as JSON."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.acceptance.conftest import Api

ANCHOR = datetime(2026, 10, 24, 20, tzinfo=UTC)  # Europe's fall-back is 2026-10-25 01:00 UTC
PRODUCTS = ["a", 'q"uote', "comma,inside", "é 🛒", "new\nline"]


def _rows() -> list[dict[str, Any]]:
    return [
        {
            "minute": ANCHOR + timedelta(minutes=13 * i),
            "advertiser_id": 321 + i % 2,
            "campaign_id": 10 + i % 3,
            "seller_id": 20 + i % 4,
            "product_id": PRODUCTS[i % len(PRODUCTS)],
            "displays": 1 + i,
            "clicks": i % 4,
            "cost": Decimal("0.000000001") * i + Decimal(i % 7) / 4,
        }
        for i in range(400)
    ]


def _attributes(dimensions: list[str], timezone: str, file_format: str) -> dict[str, Any]:
    return {
        "advertiserIds": ["321", "322"],
        "dimensions": dimensions,
        "startDate": ANCHOR.isoformat(),
        "endDate": (ANCHOR + timedelta(hours=30)).isoformat(),
        "timezone": timezone,
        "fileFormat": file_format,
    }


def _json_value(value: Any, kind: pa.DataType) -> Any:
    """A Parquet value as the JSON file writes it (cost: the double nearest the decimal)."""
    if pa.types.is_timestamp(kind):
        return value.astimezone(UTC)
    return value


@pytest.mark.parametrize(
    ("dimensions", "timezone"),
    [
        (["advertiserId", "campaignId", "sellerId", "productId"], "UTC"),
        (["advertiserId", "hour"], "Europe/Paris"),  # the repeated hour: two buckets
        (["sellerId", "day"], "Asia/Kathmandu"),  # +05:45
        (["campaignId", "minute"], "America/St_Johns"),  # -02:30
    ],
)
def test_parquet_equals_the_json_of_the_same_export(
    api: Api, dimensions: list[str], timezone: str
) -> None:
    api.add_rows(_rows())
    headers = api.token(advertisers=(321, 322))
    as_json = api.export(_attributes(dimensions, timezone, "json"), headers)
    assert as_json.status_code == 200, as_json.text
    as_parquet = api.export(_attributes(dimensions, timezone, "Parquet"), headers)
    assert as_parquet.status_code == 200, as_parquet.text
    assert as_parquet.headers["content-type"] == "application/vnd.apache.parquet"
    # compressed already: sent as it is, even to a client that accepts gzip
    assert "content-encoding" not in as_parquet.headers
    if len(as_json.content) > 4096:
        assert as_json.headers["content-encoding"] == "gzip"
    disposition = as_parquet.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="realtime-report-')
    assert disposition.endswith('.parquet"')

    expected = json.loads(as_json.content, parse_float=Decimal)
    table = pq.read_table(io.BytesIO(as_parquet.content))
    assert table.column_names == expected["columns"]
    assert table.num_rows == expected["rows"] > 0
    for field in table.schema:
        if field.name in ("advertiserId", "campaignId", "sellerId", "clicks", "displays"):
            assert field.type == pa.int64(), field
        elif field.name == "productId":
            assert field.type == pa.string()
        elif field.name == "cost":
            assert field.type == pa.float64()
        else:  # a time bucket: an instant, labelled with the report's zone
            assert field.type == pa.timestamp("us", tz=timezone), field
    got = table.to_pylist()
    for row, want in zip(got, expected["data"], strict=True):
        for name, cell in zip(expected["columns"], want, strict=True):
            value = row[name]
            if name == "cost":
                assert value == float(cell)  # the nearest double to the exact decimal
            elif name in dimensions and name not in ("productId",) and isinstance(cell, str):
                # a time bucket: the same instant as the JSON's local time with its offset
                assert value.astimezone(UTC) == datetime.fromisoformat(cell).astimezone(UTC)
            else:
                assert value == cell, (name, value, cell)


def test_parquet_of_an_empty_result_has_the_typed_columns(api: Api) -> None:
    headers = api.token()
    answer = api.export(
        {
            "advertiserIds": ["321"],
            "dimensions": ["productId", "day"],
            "lookbackWindow": 60,
            "fileFormat": "PARQUET",
        },
        headers,
    )
    assert answer.status_code == 200, answer.text
    table = pq.read_table(io.BytesIO(answer.content))
    assert table.num_rows == 0
    assert table.column_names == ["productId", "day", "clicks", "displays", "cost"]
    assert table.schema.field("day").type == pa.timestamp("us", tz="UTC")


def test_parquet_is_not_offered_to_the_official_clients(api: Api) -> None:
    """The extension stays out of what the SDK is generated from and of its error text."""
    spec = api.http.get("/openapi.json").json()
    text = json.dumps(spec)
    assert '"enum": ["Csv", "Json", "Parquet"]' not in text
    wrong = api.create({"advertiserIds": ["321"], "fileFormat": "xlsx"}, api.token())
    assert wrong.status_code == 400
    assert "Must be one of 'Csv','Json'" in wrong.text
