"""Hostile input: oversized, slow, deeply nested or malformed requests get clean answers."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from starlette.requests import Request

from mpo_realtime.api.body import read_body
from mpo_realtime.domain.errors import ErrorCode, ProblemError
from mpo_realtime.domain.jobs import Role
from tests.acceptance.conftest import STATS, Api

EXPORT = f"{STATS}/realtime-reports/export"


def _codes(answer: object) -> list[str]:
    return [e["code"] for e in answer.json()["errors"]]  # type: ignore[attr-defined]


def test_create_body_over_the_limit_is_413(api: Api) -> None:
    body = b'{"data": {"attributes": {"advertiserIds": [' + b'"1",' * 400_000 + b'"1"]}}}'
    answer = api.http.post(EXPORT, content=body, headers=api.token())
    assert answer.status_code == 413
    assert _codes(answer) == ["payload-too-large"]


def test_slow_body_is_408() -> None:
    # The in-process client sends bodies whole, so drive read_body with a trickling receive.
    async def receive() -> dict[str, object]:
        await asyncio.sleep(0.5)
        return {"type": "http.request", "body": b"{", "more_body": True}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    with pytest.raises(ProblemError) as caught:
        asyncio.run(read_body(request, limit=1000, timeout=0.2))
    assert [p.code for p in caught.value.problems] == [ErrorCode.REQUEST_TIMEOUT]


@pytest.mark.parametrize("depth", [100, 5_000, 200_000])
def test_deeply_nested_json_is_a_clean_400(api: Api, depth: int) -> None:
    body = b"[" * depth + b"]" * depth
    answer = api.http.post(EXPORT, content=body, headers=api.token())
    assert answer.status_code == 400
    assert _codes(answer) == ["json-serialization-error"]
    ingest = api.http.post(
        "/ingest/v1/events", content=body, headers=api.token(roles=[Role.INGEST])
    )
    assert ingest.status_code == 400


def test_too_many_ids_is_invalid_query(api: Api) -> None:
    ids = [str(i) for i in range(10_001)]
    answer = api.create(
        {"advertiserIds": ["321"], "campaignIds": ids, "lookbackWindow": 60}, api.token()
    )
    assert answer.status_code == 400
    assert _codes(answer) == ["invalid-query"]
    assert answer.json()["errors"][0]["source"] == {"pointer": "/data/attributes/campaignIds"}


def test_too_long_dimension_list_is_invalid_query(api: Api) -> None:
    answer = api.create(
        {"advertiserIds": ["321"], "dimensions": ["hour"] * 65, "lookbackWindow": 60}, api.token()
    )
    assert answer.status_code == 400
    assert _codes(answer) == ["invalid-query"]


@pytest.mark.parametrize(
    ("export_id", "status", "code"),
    [
        # %2F is a "/" once decoded: a path of more segments, which no route has
        ("..%2F..%2Fetc%2Fpasswd", 404, "route-not-found"),
        # any other id that is no export of the caller's: the same 403 as another's export
        ("%0d%0aSet-Cookie:%20x=1", 403, "export-not-found"),
        ("' OR 1=1 --", 403, "export-not-found"),
        ("😀" * 50, 403, "export-not-found"),
        ("0" * 5000, 403, "export-not-found"),
    ],
)
def test_hostile_export_ids_are_export_not_found(
    api: Api, export_id: str, status: int, code: str
) -> None:
    headers = api.token()
    for route in ("report-jobs", "realtime-reports"):
        answer = api.http.get(f"{STATS}/{route}/{export_id}", headers=headers)
        assert answer.status_code == status
        assert [e["code"] for e in answer.json()["errors"]] == [code]
        assert "set-cookie" not in answer.headers


def test_download_filename_is_safe(api: Api) -> None:
    api.add_rows(
        [
            {
                "minute": datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=9),
                "advertiser_id": 321,
                "campaign_id": 1,
                "product_id": 'evil"\r\nX-Injected: 1',
                "displays": 1,
                "clicks": 1,
                "cost": 1.0,
            }
        ]
    )
    answer = api.export(
        {"advertiserIds": ["321"], "dimensions": ["productId"], "lookbackWindow": 60}, api.token()
    )
    assert answer.status_code == 200
    disposition = answer.headers["content-disposition"]
    assert re.fullmatch(
        r'attachment; filename="realtime-report-\d{8}T\d{6}Z-[0-9a-f]{8}\.csv"', disposition
    )
    assert "x-injected" not in answer.headers
