"""The poll answered by ``DirectDispatch`` equals the poll answered by FastAPI's route.

A second app on the same services has the direct dispatch taken out, so each case goes
once through each path; status, body and headers must agree (the trace id is fixed by
the caller, the moving rate-limit counters and the date are left out).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from mpo_realtime.api.app import create_app
from mpo_realtime.api.direct import DirectDispatch
from mpo_realtime.domain.jobs import Role

from .conftest import STATS, Api

SOURCE = {"advertiserIds": ["321"], "startDate": "2026-01-01", "endDate": "2026-01-02"}
#: the date, and the count that each call spends; reset times and a 429's Retry-After
#: and "retry in N s" are compared: the limiter's clock stands still (``api.clock``)
_MOVING = {"date", "x-ratelimit-remaining"}


#: the middleware class, as the untyped value ``Middleware.cls`` is compared with
DIRECT: Any = DirectDispatch


@pytest.fixture
def routed(api: Api) -> Iterator[TestClient]:
    """The same app without the direct dispatch: every poll goes through the router."""
    app = create_app(api.services.settings, services=api.services, background=False, direct=False)
    with TestClient(app) as http:
        yield http


def _answer(
    http: TestClient, path: str, headers: dict[str, str], method: str = "GET"
) -> tuple[Any, ...]:
    answer = http.request(method, path, headers={**headers, "X-Trace-Id": "fixedtrace"})
    kept = sorted((k, v) for k, v in answer.headers.items() if k not in _MOVING)
    return answer.status_code, answer.content, kept


def _same(
    api: Api, routed: TestClient, path: str, headers: dict[str, str], method: str = "GET"
) -> int:
    direct = _answer(api.http, path, headers, method)
    assert direct == _answer(routed, path, headers, method)
    status: int = direct[0]
    return status


def _poll_path(export_id: str, version: str = "preview") -> str:
    return STATS.replace("/preview/", f"/{version}/") + f"/report-jobs/{export_id}"


def test_direct_path_is_taken(api: Api) -> None:
    app = api.http.app
    assert any(m.cls is DIRECT for m in app.user_middleware)  # type: ignore[attr-defined]


def test_poll_answers_agree_through_the_lifecycle(api: Api, routed: TestClient) -> None:
    headers = api.token()
    export_id = api.create(SOURCE, headers).json()["exportId"]
    path = _poll_path(export_id)
    assert _same(api, routed, path, headers) == 200  # Pending, with Retry-After
    assert _same(api, routed, path, {**headers, "X-MPO-Envelope": "jsonapi"}) == 200
    api.run_jobs()
    assert _same(api, routed, path, headers) == 200  # Done, from the cache
    assert _same(api, routed, path, {**headers, "X-MPO-Envelope": "JSONAPI"}) == 200
    api.services.sweeper.sweep(datetime.now(UTC) + timedelta(hours=25))
    assert _same(api, routed, path, headers) == 200  # Expired


def test_poll_failure_agrees(api: Api, routed: TestClient) -> None:
    headers = api.token()
    export_id = api.create(SOURCE, headers).json()["exportId"]
    (api.services.files.root / f"{export_id}.csv").mkdir()
    api.run_jobs()
    assert _same(api, routed, _poll_path(export_id), headers) == 200


@pytest.mark.parametrize(
    ("export_id", "status"),
    [
        (str(uuid.uuid4()), 403),
        ("not-a-uuid", 403),
        ("%00%0d%0aX-Injected:%201", 403),
        ("a" * 5000, 403),
    ],
)
def test_unknown_exports_agree(api: Api, routed: TestClient, export_id: str, status: int) -> None:
    assert _same(api, routed, _poll_path(export_id), api.token()) == status


def test_errors_before_the_job_agree(api: Api, routed: TestClient) -> None:
    headers = api.token()
    export_id = api.create(SOURCE, headers).json()["exportId"]
    path = _poll_path(export_id)
    assert _same(api, routed, _poll_path(export_id, "v9"), headers) == 404
    assert _same(api, routed, _poll_path(export_id, "v9"), {}) == 404
    assert _same(api, routed, path, {}) == 401
    assert _same(api, routed, path, {"Authorization": "Basic abc"}) == 401
    assert _same(api, routed, path, {"Authorization": "Bearer not.a.token"}) == 401
    key = api.services.settings.resolved_signing_key()
    client_id = api.client()[0]
    stale = datetime.now(UTC) - timedelta(hours=2)
    claims = {"sub": client_id, "iat": stale, "exp": stale + timedelta(minutes=15)}
    expired = jwt.encode(claims, key, algorithm="HS256")
    assert _same(api, routed, path, {"Authorization": f"Bearer {expired}"}) == 401
    assert _same(api, routed, path, api.token(roles=[Role.INGEST])) == 403
    # another advertiser's client cannot see the export
    assert _same(api, routed, path, api.token(advertisers=[999])) == 403


def test_rate_limited_polls_agree(api: Api, routed: TestClient) -> None:
    headers = api.token(requests_per_minute=1)
    path = _poll_path(str(uuid.uuid4()))
    assert api.http.get(path, headers=headers).status_code == 403  # the one allowed
    assert _same(api, routed, path, headers) == 429
    retry = (int(api.clock.now) // 60 + 1) * 60 - int(api.clock.now)
    refused = api.http.get(path, headers=headers)
    assert refused.headers["retry-after"] == str(retry)
    assert f"retry in {retry} s".encode() in refused.content


def test_other_methods_and_shapes_go_to_the_router(api: Api, routed: TestClient) -> None:
    headers = api.token()
    export_id = api.create(SOURCE, headers).json()["exportId"]
    path = _poll_path(export_id)
    for method in ("POST", "DELETE"):
        assert _same(api, routed, path, headers, method) == 405
    assert _same(api, routed, path + "/x", headers) == 404


def test_head_polls_agree_and_have_no_body(api: Api, routed: TestClient) -> None:
    headers = api.token()
    export_id = api.create(SOURCE, headers).json()["exportId"]
    path = _poll_path(export_id)
    assert _same(api, routed, path, headers, "HEAD") == 200
    head = api.http.head(path, headers=headers)
    get = api.http.get(path, headers=headers)
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == get.headers["content-type"] == "application/json"
    assert _same(api, routed, _poll_path(str(uuid.uuid4())), headers, "HEAD") == 403


def test_metrics_count_direct_polls_by_route_template(api: Api) -> None:
    headers = api.token()
    api.poll(str(uuid.uuid4()), headers)
    text = api.http.get("/metrics").text
    template = STATS.replace("/preview/", "/{version}/") + "/report-jobs/{reportId}"
    assert f'route="{template}",status="403"' in text
