"""Rate limits, quotas and their headers (memory storage, and Redis shared by two apps)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from mpo_realtime.domain.jobs import Role
from tests.acceptance.conftest import STATS, Api

BODY = {"data": {"attributes": {"advertiserIds": ["321"], "lookbackWindow": 60}}}
POLL = f"{STATS}/report-jobs/45f7ec55-1008-4372-9144-1da37d8dccc2"


def _limit_headers(answer: Any) -> tuple[int, int, int]:
    h = answer.headers
    return int(h["x-ratelimit-limit"]), int(h["x-ratelimit-remaining"]), int(h["x-ratelimit-reset"])


def test_report_budget_headers_on_every_answer(api: Api) -> None:
    headers = api.token()
    ok = api.http.post(f"{STATS}/realtime-reports/export", json=BODY, headers=headers)
    not_found = api.http.get(POLL, headers=headers)
    assert (ok.status_code, not_found.status_code) == (200, 403)
    limit, remaining, reset = _limit_headers(ok)
    assert (limit, remaining) == (200, 199)
    assert _limit_headers(not_found)[:2] == (200, 198)
    # the window's end on the limiter's clock: the next whole minute
    assert reset == (int(api.clock.now) // 60 + 1) * 60


def test_report_budget_exceeded_is_429_with_retry_after(api: Api) -> None:
    headers = api.token(requests_per_minute=3)
    answers = [api.http.get(POLL, headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [403, 403, 403, 429]
    last = answers[-1]
    (error,) = last.json()["errors"]
    assert (error["type"], error["code"], error["title"]) == (
        "throttling",
        "too-many-requests",
        "Too many requests",
    )
    reset = (int(api.clock.now) // 60 + 1) * 60
    assert _limit_headers(last) == (3, 0, reset)
    assert last.headers["retry-after"] == str(reset - int(api.clock.now))
    assert error["detail"].endswith(f"retry in {reset - int(api.clock.now)} s")
    # Budgets are per client: another client is not throttled.
    assert api.http.get(POLL, headers=api.token()).status_code == 403


def test_export_quota_spares_cache_hits(api: Api) -> None:
    # Absolute past dates: a lookbackWindow moves with the wall clock, and a minute that
    # ticked between two creates made the "same" request a new export (a flake once).
    def days(end: str) -> dict[str, Any]:
        return {"advertiserIds": ["321"], "startDate": "2026-01-01", "endDate": end}

    headers = api.token(exports_per_hour=2)
    first = api.create(days("2026-01-02"), headers)
    again = api.create(days("2026-01-02"), headers)
    second = api.create(days("2026-01-03"), headers)
    third = api.create(days("2026-01-04"), headers)
    assert [a.status_code for a in (first, again, second, third)] == [200, 200, 200, 429]
    assert again.json()["exportId"] == first.json()["exportId"]
    assert "hourly quota of 2" in third.json()["errors"][0]["detail"]
    assert third.headers["retry-after"] == str(
        (int(api.clock.now) // 3600 + 1) * 3600 - int(api.clock.now)
    )


def test_token_failure_budget_per_client_id(api_factory: Callable[..., Api]) -> None:
    api = api_factory(token_requests_per_minute=2)
    client_id, _ = api.client()
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": "bad"}
    codes = [api.http.post("/oauth2/token", data=form).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    # who may still try is in tests/acceptance/test_edge.py (no lock-out by strangers)


def test_token_budget_per_source_address(api_factory: Callable[..., Api]) -> None:
    api = api_factory(token_requests_per_minute_per_address=3)
    codes = [
        api.http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": f"c{i}", "client_secret": "x"},
        ).status_code
        for i in range(4)
    ]
    assert codes == [401, 401, 401, 429]


def test_ingest_budget(api_factory: Callable[..., Api]) -> None:
    api = api_factory(ingest_requests_per_minute=2)
    headers = api.token(roles=[Role.INGEST])
    codes = [
        api.http.post("/ingest/v1/events", content=b"[]", headers=headers).status_code
        for _ in range(3)
    ]
    assert codes == [400, 400, 429]


@pytest.mark.parametrize("route", ["report", "ingest"])
def test_budgets_shared_through_redis(
    api_factory: Callable[..., Api], redis_url: str, route: str
) -> None:
    shared = {
        "rate_limit_storage_url": redis_url,
        "rate_limit_namespace": f"mpo-test-{uuid.uuid4().hex}",
        "report_requests_per_minute": 3,
        "ingest_requests_per_minute": 3,
    }
    first = api_factory(**shared)
    # A second app on its own data dir but the same Redis namespace: another process.
    second = api_factory(**shared, data_dir=first.services.settings.data_dir / "second")
    role = Role.REPORT if route == "report" else Role.INGEST
    client_id, secret = first.client(roles=[role])
    # Each app has its own job store, so the second one gets a copy of the client.
    clone = first.services.jobs.get_client(client_id)
    assert clone is not None
    second.services.jobs.create_client(clone)
    token = first.services.clients.issue_token(clone, now=clone.created_at).access_token
    signer_key = first.services.settings.resolved_signing_key()
    assert signer_key == second.services.settings.resolved_signing_key()
    headers = {"Authorization": f"Bearer {token}"}

    def call(app: Api) -> int:
        if route == "report":
            return int(app.http.get(POLL, headers=headers).status_code)
        body = orjson.dumps([])
        return int(app.http.post("/ingest/v1/events", content=body, headers=headers).status_code)

    codes = [call(first), call(second), call(first), call(second)]
    assert codes[-1] == 429 and 429 not in codes[:3]
