"""The real app through Starlette's in-process client, on a fresh data dir per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from mpo_realtime.api.app import create_app
from mpo_realtime.domain.jobs import Role
from mpo_realtime.domain.money import COST_SCALE, cost_nanos
from mpo_realtime.services import Services
from mpo_realtime.settings import Settings
from mpo_realtime.store.base import ROLLUP_SCHEMA
from tests.conftest import ManualClock

STATS = "/preview/marketing-solutions/marketplace-performance-outcomes/stats"


def ingest_event(*, age: timedelta = timedelta(minutes=5), **overrides: Any) -> dict[str, Any]:
    """One valid ingest event, ``age`` old, with ``overrides`` applied."""
    moment = datetime.now(UTC) - age
    return {
        "timestamp": moment.isoformat().replace("+00:00", "Z"),
        "advertiserId": "321",
        "partnerId": "7",
        "campaignId": "12345",
        "sellerId": "254614150",
        "productId": "SKU-1",
        "displays": 3,
        "clicks": 1,
        "cost": 0.25,
        **overrides,
    }


@dataclass
class Api:
    """Test helper around the in-process client: credentials, jobs, data."""

    http: TestClient
    services: Services
    #: the rate limiter's clock, shared by every app of a test (``tests/conftest.py``)
    clock: ManualClock

    def client(
        self,
        advertisers: Sequence[int] = (321,),
        roles: Sequence[Role] = (Role.REPORT,),
        **options: Any,
    ) -> tuple[str, str]:
        """A new client; ``options`` are those of ``ClientService.create`` (limits...)."""
        client, secret = self.services.clients.create(
            "test", advertiser_ids=advertisers, roles=roles, now=datetime.now(UTC), **options
        )
        return client.client_id, secret

    def token(
        self,
        advertisers: Sequence[int] = (321,),
        roles: Sequence[Role] = (Role.REPORT,),
        **options: Any,
    ) -> dict[str, str]:
        client_id, secret = self.client(advertisers, roles, **options)
        answer = self.http.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def create(self, attributes: dict[str, Any], headers: dict[str, str]) -> Any:
        body = {"data": {"type": "RealTimeProductReportJob", "attributes": attributes}}
        return self.http.post(f"{STATS}/realtime-reports/export", json=body, headers=headers)

    def poll(self, export_id: str, headers: dict[str, str]) -> Any:
        return self.http.get(f"{STATS}/report-jobs/{export_id}", headers=headers)

    def download(self, export_id: str, headers: dict[str, str]) -> Any:
        return self.http.get(f"{STATS}/realtime-reports/{export_id}", headers=headers)

    def run_jobs(self) -> int:
        """Run every Pending job to its end, in this thread; returns how many ran."""
        ran = 0
        while self.services.runner.run_one() is not None:
            ran += 1
        return ran

    def export(self, attributes: dict[str, Any], headers: dict[str, str]) -> Any:
        """Create, run and download: the downloaded answer."""
        created = self.create(attributes, headers)
        assert created.status_code == 200, created.text
        self.run_jobs()
        return self.download(created.json()["exportId"], headers)

    def add_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Roll-up rows straight into the event store (the bulk path).

        A ``cost`` may be written as a number: it is stored as ingest would store it.
        """
        defaults = {"partner_id": 1, "seller_id": 1, "product_id": "p", "seller_name": None}
        full = [{**defaults, **row} for row in rows]
        for row in full:
            if not isinstance(row["cost"], Decimal):
                row["cost"] = Decimal(cost_nanos(row["cost"])).scaleb(-COST_SCALE)
        table = pa.Table.from_pylist(full, schema=ROLLUP_SCHEMA)
        self.services.events.append(table)


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        signing_key="acceptance-test-key-acceptance-test-key",
        flush_interval_seconds=0.01,
        runner_concurrency=1,
        sweep_interval_seconds=3600,
        # Tests use fixed dates (the 2026 DST changes); retention tests set their own.
        retention_days=36_500,
    )


@pytest.fixture
def clock() -> ManualClock:
    """The rate limits' clock: still unless a test advances it."""
    return ManualClock()


@pytest.fixture
def api_factory(settings: Settings, clock: ManualClock) -> Iterator[Callable[..., Api]]:
    opened: list[tuple[TestClient, Services]] = []

    def make(background: bool = False, **overrides: Any) -> Api:
        active = settings.model_copy(update=overrides)
        services = Services.open(active, clock=clock)
        http = TestClient(create_app(active, services=services, background=background))
        http.__enter__()
        opened.append((http, services))
        return Api(http, services, clock)

    yield make
    for http, services in reversed(opened):
        http.__exit__(None, None, None)
        services.close()


@pytest.fixture
def api(api_factory: Callable[..., Api]) -> Api:
    """The app with runners off: tests run jobs explicitly with ``api.run_jobs()``."""
    return api_factory()
