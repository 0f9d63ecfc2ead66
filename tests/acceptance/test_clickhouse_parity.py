"""The same events and request through the app on DuckDB and on ClickHouse: the same bytes.

Two real apps (in-process ASGI), one on the embedded store and one on ClickHouse
(``MPO_EVENT_STORE_URL=clickhouse://...``), fed the same events; random valid requests
(``test_export_property.py``'s: dimensions, filters, zones, intervals, CSV and JSON) are
created, run and downloaded on both. Ingest goes through HTTP on both too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mpo_realtime.domain.jobs import Role
from tests.acceptance.conftest import Api
from tests.acceptance.test_export_property import SCOPE, events_for, request_for
from tests.reference import rollup_table

_EXAMPLE = itertools.count()
INGEST = "/ingest/v1/events"


def _headers(api: Api, roles: list[Role]) -> dict[str, str]:
    client, _ = api.services.clients.create(
        "parity", advertiser_ids=SCOPE, roles=roles, now=datetime.now(UTC)
    )
    token = api.services.clients.issue_token(client, now=datetime.now(UTC)).access_token
    return {"Authorization": f"Bearer {token}"}


def _apps(api_factory: Callable[..., Api], tmp_path: Path, url: str) -> tuple[Api, Api]:
    duck = api_factory(data_dir=tmp_path / "duckdb")
    click = api_factory(data_dir=tmp_path / "clickhouse", event_store_url=url)
    return duck, click


def test_downloads_through_clickhouse_equal_duckdb_downloads(
    api_factory: Callable[..., Api], tmp_path: Path, clickhouse_url: str
) -> None:
    duck, click = _apps(api_factory, tmp_path, clickhouse_url)
    headers = {id(api): _headers(api, [Role.REPORT]) for api in (duck, click)}

    @given(data=st.data())
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
    )
    def check(data: st.DataObject) -> None:
        advertiser = SCOPE[2 * (next(_EXAMPLE) % (len(SCOPE) // 2))]
        events = data.draw(events_for(advertiser))
        attributes = data.draw(request_for(events, advertiser))
        bodies = []
        for api in (duck, click):
            api.services.events.append(rollup_table(events))
            created = api.create(attributes, headers[id(api)])
            if created.status_code != 200:
                bodies.append((created.status_code, created.json()["errors"][0]["code"]))
                continue
            api.run_jobs()
            answer = api.download(created.json()["exportId"], headers[id(api)])
            assert answer.status_code == 200, answer.text
            bodies.append((200, answer.content))
        assert bodies[1] == bodies[0], attributes

    check()


def test_ingest_and_relative_exports_through_clickhouse_equal_duckdb(
    api_factory: Callable[..., Api], tmp_path: Path, clickhouse_url: str
) -> None:
    """Events posted through HTTP (with a retried Idempotency-Key), then a lookback export."""
    duck, click = _apps(api_factory, tmp_path, clickhouse_url)
    now = datetime.now(UTC)
    lines = [
        (
            f'{{"timestamp": "{(now - timedelta(minutes=20 + i)).isoformat()}",'
            f' "advertiserId": "{SCOPE[0]}", "partnerId": "7", "campaignId": "{100 + i % 3}",'
            f' "sellerId": "5", "productId": "SKU-{i % 4}", "displays": {i % 9},'
            f' "clicks": {i % 2}, "cost": 0.{i:03d}}}'
        )
        for i in range(200)
    ]
    body = "\n".join(lines).encode()
    files = []
    for api in (duck, click):
        # One "now" for both windows: read apart, a minute boundary between the two
        # exports moved the lookback's start past one event (seen once in a full run).
        api.services.exports.clock = lambda: now
        ingest = _headers(api, [Role.INGEST])
        for _ in range(2):  # a retry: counted once
            answer = api.http.post(
                INGEST,
                content=body,
                headers={
                    **ingest,
                    "Content-Type": "application/x-ndjson",
                    "Idempotency-Key": "batch-1",
                },
            )
            assert answer.status_code in (200, 202), answer.text
        report = _headers(api, [Role.REPORT])
        for file_format in ("csv", "json"):
            attributes = {
                "advertiserIds": [str(SCOPE[0])],
                "dimensions": ["campaignId", "productId"],
                "lookbackWindow": 120,
                "timezone": "Asia/Kathmandu",
                "fileFormat": file_format,
            }
            answer = api.export(attributes, report)
            assert answer.status_code == 200, answer.text
            files.append(answer.content)
    assert files[2:] == files[:2]
    assert b"SKU-3" in files[0]
