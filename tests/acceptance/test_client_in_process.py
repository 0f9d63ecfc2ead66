"""The async client on the real app in this process, through ``httpx.ASGITransport``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from mpo_realtime.client import AsyncReportClient, ExportStatus, Status, ValidationError
from tests.acceptance.conftest import Api


def test_async_client_drives_the_app_through_an_asgi_transport(
    api_factory: Callable[..., Api],
) -> None:
    api = api_factory()
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    api.add_rows(
        [
            {
                "minute": minute,
                "advertiser_id": 321,
                "campaign_id": c,
                "displays": 10 * c,
                "clicks": c,
                "cost": c / 4,
            }
            for c in (1, 2, 3)
        ]
    )
    client_id, secret = api.client()

    def run_jobs(status: ExportStatus) -> None:
        # runners are off in this app: run the job when the client sees it Pending
        if status.status is Status.PENDING:
            api.run_jobs()

    async def scenario() -> tuple[list[dict[str, object]], str | None]:
        transport = httpx.ASGITransport(app=api.http.app)
        async with AsyncReportClient(
            "http://mpo.test", client_id, secret, transport=transport
        ) as client:
            result = await client.export(
                advertiser_ids=[321],
                dimensions=["campaignId"],
                lookback_window=60,
                file_format="json",
                on_status=run_jobs,
            )
            try:
                await client.create(advertiser_ids=[321], lookback_window=5)
            except ValidationError as exc:
                return [dict(row) for row in result.rows()], exc.code
            return [], None

    rows, code = asyncio.run(scenario())
    assert rows == [
        {"campaignId": c, "clicks": c, "displays": 10 * c, "cost": Decimal(str(c / 4))}
        for c in (1, 2, 3)
    ]
    assert code == "invalid-lookbackwindow"
