"""Behaviours docs/api.md promises that no other test pinned, each through the real app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from mpo_realtime.domain.jobs import JobStatus
from tests.acceptance.conftest import STATS, Api

#: a settled absolute interval: reusable for the export's whole time to live
SETTLED = {"advertiserIds": ["321"], "startDate": "2026-01-09", "endDate": "2026-01-10"}


def test_a_dated_api_version_serves_the_same_api(api: Api) -> None:
    headers = api.token()
    dated = STATS.replace("/preview/", "/2026-01/")
    body = {"data": {"type": "RealTimeProductReportJob", "attributes": SETTLED}}
    created = api.http.post(f"{dated}/realtime-reports/export", json=body, headers=headers)
    assert created.status_code == 200, created.text
    export_id = created.json()["exportId"]
    api.run_jobs()
    polled = api.http.get(f"{dated}/report-jobs/{export_id}", headers=headers)
    assert (polled.status_code, polled.json()["status"]) == (200, "Done")
    # the same export under preview, the same bytes under both
    assert api.poll(export_id, headers).json() == polled.json()
    file = api.http.get(f"{dated}/realtime-reports/{export_id}", headers=headers)
    assert file.content == api.download(export_id, headers).content
    me = api.http.get("/2025-10/me", headers=headers)
    assert me.status_code == 200
    unknown = api.http.get(f"{STATS.replace('/preview/', '/2026-02/')}/report-jobs/{export_id}")
    assert unknown.status_code == 404
    assert [e["code"] for e in unknown.json()["errors"]] == ["version-not-found"]


def test_an_unreachable_store_is_a_503_in_the_envelope(api_factory: Callable[..., Api]) -> None:
    # the rate limits' Redis does not answer: every limited request needs it
    api = api_factory(rate_limit_storage_url="redis://127.0.0.1:1/0")
    client_id, secret = api.client()
    token = api.services.clients.issue_token(
        api.services.clients.authenticate_credentials(client_id, secret), now=datetime.now(UTC)
    )
    answer = api.poll(
        "45f7ec55-1008-4372-9144-1da37d8dccc2",
        {
            "Authorization": f"Bearer {token.access_token}",
            "X-Trace-Id": "tracetrace",
        },
    )
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.json() == {
        "warnings": [],
        "errors": [
            {
                "traceId": "tracetrace",
                "type": "unavailable",
                "code": "service-unavailable",
                "title": "Service unavailable",
                "detail": "a backing store is unavailable; retry",
            }
        ],
    }


def test_a_wrong_method_is_405_method_not_allowed(api: Api) -> None:
    headers = api.token()
    for method, path in [
        ("DELETE", f"{STATS}/realtime-reports/export"),
        ("PUT", f"{STATS}/report-jobs/45f7ec55-1008-4372-9144-1da37d8dccc2"),
        ("GET", "/ingest/v1/events"),
    ]:
        answer = api.http.request(method, path, headers=headers)
        assert answer.status_code == 405, (method, path)
        assert [e["code"] for e in answer.json()["errors"]] == ["method-not-allowed"]
        assert answer.headers["allow"]


def test_id_filters_in_any_order_reuse_one_export(api: Api) -> None:
    headers = api.token(advertisers=[321, 322])
    api.add_rows(
        [
            {
                "minute": datetime(2026, 1, 9, 12, tzinfo=UTC),
                "advertiser_id": advertiser,
                "campaign_id": campaign,
                "clicks": 1,
                "displays": 2,
                "cost": 0.5,
            }
            for advertiser in (321, 322)
            for campaign in (8, 9, 10)
        ]
    )
    # created well after those writes: a write just before an export ends its reuse
    later = datetime.now(UTC) + timedelta(minutes=5)
    api.services.exports.clock = lambda: later
    request = {**SETTLED, "advertiserIds": ["322", "321"], "campaignIds": ["9", "10", "8"]}
    first = api.create(request, headers)
    again = api.create(
        {**request, "advertiserIds": ["321", "322"], "campaignIds": ["10", "8", "9"]}, headers
    )
    assert first.status_code == again.status_code == 200, again.text
    assert again.json()["exportId"] == first.json()["exportId"]
    assert again.headers["x-mpo-reused"] == "true"
    other = api.create({**request, "campaignIds": ["8", "9"]}, headers)
    assert other.json()["exportId"] != first.json()["exportId"]


def test_an_expired_export_is_never_reused(api: Api) -> None:
    headers = api.token()
    first = api.create(SETTLED, headers).json()["exportId"]
    api.run_jobs()
    # Expired by the sweeper, while the service's own clock is still within its time to
    # live: the status alone must keep it from being handed out again
    assert api.services.sweeper.sweep(datetime.now(UTC) + timedelta(hours=25)).expired == 1
    assert api.services.jobs.status_counts()[JobStatus.EXPIRED] == 1
    again = api.create(SETTLED, headers)
    assert again.json()["exportId"] != first
    assert again.headers["x-mpo-reused"] == "false"
