"""``POST /ingest/v1/events``: all or nothing, idempotent, visible once answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from mpo_realtime.domain.jobs import Role
from tests.acceptance.conftest import Api, ingest_event

INGEST = "/ingest/v1/events"


_event = ingest_event


@pytest.fixture
def ingest_headers(api: Api) -> dict[str, str]:
    return api.token(roles=[Role.INGEST])


def _totals(api: Api) -> dict[str, int | Decimal]:
    return api.services.events.totals()


def test_ingest_array_and_ndjson_are_stored_and_visible(
    api: Api, ingest_headers: dict[str, str]
) -> None:
    array = orjson.dumps([_event(), _event(productId="SKU-2", displays=2, clicks=0, cost=0)])
    answer = api.http.post(INGEST, content=array, headers=ingest_headers)
    assert answer.status_code == 200
    assert answer.json() == {"accepted": 2, "duplicate": False}
    ndjson = b"\n".join(orjson.dumps(_event(sellerName="Maison Durand")) for _ in range(3)) + b"\n"
    answer = api.http.post(
        INGEST, content=ndjson, headers={**ingest_headers, "Content-Type": "application/x-ndjson"}
    )
    assert answer.json() == {"accepted": 3, "duplicate": False}
    # Visible as soon as answered: no wait.
    assert _totals(api) | {"rows": 0} == {
        "rows": 0,
        "displays": 14,
        "clicks": 4,
        "cost": Decimal("1.00"),  # 4 x 0.25, exactly
    }


def test_ingest_then_export_sees_the_events(api: Api, ingest_headers: dict[str, str]) -> None:
    api.http.post(
        INGEST, content=orjson.dumps([_event(), _event(campaignId=9)]), headers=ingest_headers
    )
    report = api.token()
    body = api.export(
        {
            "advertiserIds": ["321"],
            "dimensions": ["campaignId"],
            "lookbackWindow": 60,
            "fileFormat": "json",
        },
        report,
    ).json()
    assert body["data"] == [[9, 1, 3, 0.25], [12345, 1, 3, 0.25]]


BAD_EVENTS: list[tuple[str, dict[str, Any], str]] = [
    ("timestamp", _event(timestamp="yesterday"), "timestamp"),
    ("timestamp without offset", _event(timestamp="2026-11-28T10:00:00"), "timestamp"),
    ("advertiserId letters", _event(advertiserId="32a"), "advertiserId"),
    ("partnerId bool", _event(partnerId=True), "partnerId"),
    ("campaignId negative", _event(campaignId=-1), "campaignId"),
    ("sellerId float", _event(sellerId=1.5), "sellerId"),
    ("productId empty", _event(productId=""), "productId"),
    ("productId too long", _event(productId="x" * 257), "productId"),
    ("displays negative", _event(displays=-1), "displays"),
    ("clicks string", _event(clicks="1"), "clicks"),
    ("cost negative", _event(cost=-0.1), "cost"),
    ("cost string", _event(cost="1.0"), "cost"),
    ("sellerName number", _event(sellerName=5), "sellerName"),
    ("unknown field", _event(country="FR"), "country"),
    ("missing field", {k: v for k, v in _event().items() if k != "clicks"}, "clicks"),
]


@pytest.mark.parametrize(("name", "bad", "field"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
def test_ingest_bad_event_rejects_the_whole_batch(
    api: Api, ingest_headers: dict[str, str], name: str, bad: dict[str, Any], field: str
) -> None:
    body = orjson.dumps([_event(), _event(), bad])
    answer = api.http.post(INGEST, content=body, headers=ingest_headers)
    assert answer.status_code == 400
    (error,) = answer.json()["errors"]
    assert error["code"] == "invalid-events"
    assert error["source"] == {"pointer": f"/3/{field}"}
    assert error["detail"].startswith(f"line 3, field '{field}'")
    assert _totals(api)["rows"] == 0


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "body is empty"),
        (b"   \n ", "body is empty"),
        (b"[]", "body holds no events"),
        (b'{"a": 1', "not valid JSON"),
        (b"[1, 2", "not valid JSON"),
        (b"\xff\xfe[]", "not valid UTF-8"),
        (b'{"timestamp": 1}', "field"),
    ],
)
def test_ingest_malformed_bodies_store_nothing(
    api: Api, ingest_headers: dict[str, str], body: bytes, detail: str
) -> None:
    answer = api.http.post(INGEST, content=body, headers=ingest_headers)
    assert answer.status_code == 400
    assert detail in answer.json()["errors"][0]["detail"]
    assert _totals(api)["rows"] == 0


def test_ingest_lists_every_bad_line_capped_with_the_total(
    api: Api, ingest_headers: dict[str, str]
) -> None:
    body = orjson.dumps([_event(displays=-1)] * 250)
    errors = api.http.post(INGEST, content=body, headers=ingest_headers).json()["errors"]
    assert len(errors) == 101
    assert errors[-1]["detail"] == "150 more problem(s) not listed; nothing stored"


def test_ingest_body_over_the_limit_is_413_and_stores_nothing(
    api_factory: Any,
) -> None:
    api = api_factory(ingest_max_body_bytes=10 * 1024 * 1024)
    headers = api.token(roles=[Role.INGEST])
    line = orjson.dumps(_event()) + b"\n"
    body = line * (50 * 1024 * 1024 // len(line) + 1)  # 50 MB of valid events
    answer = api.http.post(INGEST, content=body, headers=headers)
    assert answer.status_code == 413
    assert [e["code"] for e in answer.json()["errors"]] == ["payload-too-large"]

    def chunks() -> Any:  # no Content-Length: the limit holds while streaming
        for _ in range(20):
            yield line * (1024 * 1024 // len(line))

    answer = api.http.post(INGEST, content=chunks(), headers=headers)
    assert answer.status_code == 413
    assert _totals(api)["rows"] == 0


def test_ingest_idempotency_key_counts_a_retry_once(
    api: Api, ingest_headers: dict[str, str]
) -> None:
    body = orjson.dumps([_event(), _event()])
    headers = {**ingest_headers, "Idempotency-Key": "batch-0001"}
    first = api.http.post(INGEST, content=body, headers=headers)
    retry = api.http.post(INGEST, content=body, headers=headers)
    assert first.json() == {"accepted": 2, "duplicate": False}
    assert retry.json() == {"accepted": 2, "duplicate": True}
    assert _totals(api)["displays"] == 6
    other = api.http.post(INGEST, content=orjson.dumps([_event()]), headers=headers)
    assert other.status_code == 409
    assert _totals(api)["displays"] == 6


def test_ingest_idempotency_keys_are_per_client(api: Api, ingest_headers: dict[str, str]) -> None:
    body = orjson.dumps([_event()])
    other_client = api.token(roles=[Role.INGEST])
    for headers in (ingest_headers, other_client):
        answer = api.http.post(INGEST, content=body, headers={**headers, "Idempotency-Key": "k"})
        assert answer.json()["duplicate"] is False
    assert _totals(api)["displays"] == 6


def test_ingest_accepts_epoch_milliseconds(api: Api, ingest_headers: dict[str, str]) -> None:
    ms = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp() * 1000)
    answer = api.http.post(
        INGEST, content=orjson.dumps([_event(timestamp=ms)]), headers=ingest_headers
    )
    assert answer.status_code == 200
