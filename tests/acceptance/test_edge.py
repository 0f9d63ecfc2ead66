"""HTTP details at the edge: warnings any client can read, HEAD, the token endpoint's RFCs,
no lock-out by strangers, a truthful OpenAPI description and an API browser that works
offline."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from mpo_realtime.api.routes.reports import WARNING_HEADER_MAX, warning_header
from mpo_realtime.api.schemas import ERRORS_BY_OPERATION
from mpo_realtime.domain.errors import ErrorCode, Problem
from tests.acceptance.conftest import STATS, Api

EXPORT = f"{STATS}/realtime-reports/export"
FORM = "application/x-www-form-urlencoded"


# Item 5: a warning about a name no header can carry


def test_unknown_attribute_with_any_characters_is_a_warning(api: Api) -> None:
    headers = api.token()
    attributes = {"advertiserIds": ["321"], "lookbackWindow": 71, "währung€": "EUR"}
    created = api.create(attributes, headers)
    assert created.status_code == 200, created.text
    body = created.json()
    assert set(body) == {"exportId", "status", "message", "warnings"}
    (warning,) = body["warnings"]
    assert warning["code"] == "ignored-attribute"
    assert "währung€" in warning["detail"]
    header = created.headers["warning"]
    assert header.isascii() and header.isprintable()
    assert header.startswith('299 mpo "w\\\\xe4hrung\\\\u20ac is not a known attribute')
    # the client got the ID of the job it paid for
    assert api.poll(body["exportId"], headers).json()["exportId"] == body["exportId"]


def test_plain_answer_without_warnings_is_the_sources(api: Api) -> None:
    created = api.create({"advertiserIds": ["321"], "lookbackWindow": 60}, api.token())
    assert set(created.json()) == {"exportId", "status", "message"}
    assert "warning" not in created.headers


@given(st.lists(st.text(), max_size=20))
def test_warning_header_is_always_printable_ascii_and_bounded(details: list[str]) -> None:
    value = warning_header([Problem(ErrorCode.IGNORED_ATTRIBUTE, d) for d in details])
    value.encode("ascii")
    assert value.isprintable()
    assert len(value) <= WARNING_HEADER_MAX
    assert "\r" not in value and "\n" not in value


# Item 18: HEAD wherever GET


def _same_head(http: TestClient, path: str, headers: dict[str, str] | None = None) -> Any:
    got = http.get(path, headers=headers)
    head = http.head(path, headers=headers)
    assert head.status_code == got.status_code
    assert head.content == b""
    moving = {"date", "x-trace-id", "x-ratelimit-remaining", "x-ratelimit-reset"}
    for name in set(got.headers) - moving - {"content-length", "content-encoding", "vary"}:
        assert head.headers[name] == got.headers[name], name
    return head


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/openapi.json", "/docs"])
def test_head_is_answered_wherever_get_is(api: Api, path: str) -> None:
    _same_head(api.http, path)


def test_head_of_a_download_sends_its_headers_only(api: Api) -> None:
    headers = api.token()
    created = api.create({"advertiserIds": ["321"], "lookbackWindow": 60}, headers)
    api.run_jobs()
    path = f"{STATS}/realtime-reports/{created.json()['exportId']}"
    plain = {**headers, "Accept-Encoding": "identity"}
    head = _same_head(api.http, path, plain)
    assert head.headers["content-length"] == str(len(api.http.get(path, headers=plain).content))
    assert head.headers["content-disposition"].startswith("attachment; filename=")
    assert api.http.head(path).status_code == 401


def test_head_is_counted_as_head(api: Api) -> None:
    api.http.head("/health")
    assert 'method="HEAD",route="/health",status="200"' in api.http.get("/metrics").text


# Token endpoint: RFC 6749 (issue 9 item 6; issue 8 item 18)


def test_token_answer_is_never_cached(api: Api) -> None:
    client_id, secret = api.client()
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    answer = api.http.post("/oauth2/token", data=form)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["pragma"] == "no-cache"


def test_token_as_the_official_sdk_and_curl_send_it(api: Api) -> None:
    client_id, secret = api.client()
    # criteo_auth.py of criteo-api-marketingsolutions-sdk: these headers, these fields
    sdk = api.http.post(
        "/oauth2/token",
        headers={"Accept": "application/json", "Content-Type": FORM, "User-Agent": "sdk"},
        data={"client_id": client_id, "client_secret": secret, "grant_type": "client_credentials"},
    )
    assert sdk.status_code == 200, sdk.text
    # curl -d grant_type=client_credentials -d client_id=... -d client_secret=...
    curl = api.http.post(
        "/oauth2/token",
        headers={"Content-Type": FORM},
        content=f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}",
    )
    assert curl.status_code == 200, curl.text


def test_token_wrong_secret_over_basic_asks_for_basic(api: Api) -> None:
    client_id, _ = api.client()
    basic = base64.b64encode(f"{client_id}:wrong".encode()).decode()
    answer = api.http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert answer.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"grant_type": "client_credentials"}'),
        ("multipart/form-data; boundary=x", b"--x\r\n"),
        ("text/plain", b"grant_type=client_credentials"),
    ],
)
def test_token_refuses_other_bodies_naming_both_types(
    api: Api, content_type: str, body: bytes
) -> None:
    answer = api.http.post("/oauth2/token", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == 415
    problem = answer.json()["errors"][0]
    assert problem["code"] == "unsupported-media-type"
    assert content_type in problem["detail"]
    assert FORM in problem["detail"]
    assert answer.json()["error"] == "invalid_request"


def test_token_refuses_repeated_parameters(api: Api) -> None:
    answer = api.http.post(
        "/oauth2/token",
        content="grant_type=client_credentials&client_id=a&client_id=b&client_secret=x",
        headers={"Content-Type": FORM},
    )
    assert answer.status_code == 400
    assert "client_id" in answer.json()["errors"][0]["detail"]


def test_strangers_cannot_lock_a_client_out(api_factory: Callable[..., Api]) -> None:
    """The failure budget of a client_id (2 here) stops strangers guessing, not the client
    at an address where it obtained a token before."""
    api = api_factory(token_requests_per_minute=2)
    client_id, secret = api.client()
    office = TestClient(api.http.app, client=("198.51.100.10", 40000))
    stranger = TestClient(api.http.app, client=("203.0.113.66", 40000))

    def token(http: TestClient, guess: str) -> int:
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": guess}
        return http.post("/oauth2/token", data=form).status_code

    assert token(office, secret) == 200
    assert [token(stranger, f"guess-{n}") for n in range(4)] == [401, 401, 429, 429]
    # the budget is spent: the office still gets tokens, and its own typos are checked
    assert token(office, secret) == 200
    assert token(office, "typo") == 401
    assert token(office, secret) == 200
    # the price: an address that never authenticated this client waits, right secret or not
    assert token(stranger, secret) == 429
    newcomer = TestClient(api.http.app, client=("192.0.2.1", 40000))
    assert token(newcomer, secret) == 429


def test_successful_token_requests_spend_no_failure_budget(
    api_factory: Callable[..., Api],
) -> None:
    api = api_factory(token_requests_per_minute=2)
    client_id, secret = api.client()
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    assert [api.http.post("/oauth2/token", data=form).status_code for _ in range(5)] == [200] * 5


# Issue 9 item 5: the OpenAPI description and the API browser


def test_openapi_has_the_client_credentials_scheme(api: Api) -> None:
    description = api.http.get("/openapi.json").json()
    schemes = description["components"]["securitySchemes"]
    assert schemes["oauth2"]["flows"] == {
        "clientCredentials": {"tokenUrl": "/oauth2/token", "scopes": {}}
    }
    secured = {
        (method, path)
        for path, operations in description["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") == [{"oauth2": []}]
    }
    base = STATS.replace("/preview/", "/{version}/")
    assert secured == {
        ("post", f"{base}/realtime-reports/export"),
        ("get", f"{base}/report-jobs/{{reportId}}"),
        ("get", f"{base}/realtime-reports/{{reportId}}"),
        ("post", "/ingest/v1/events"),
        ("get", "/{version}/me"),
    }


def test_openapi_lists_each_routes_real_statuses(api: Api) -> None:
    description = api.http.get("/openapi.json").json()
    assert "422" not in str(description)
    assert "HTTPValidationError" not in description["components"]["schemas"]
    listed = {
        (method, path): sorted(int(s) for s in operation["responses"] if int(s) >= 400)
        for path, operations in description["paths"].items()
        for method, operation in operations.items()
    }
    assert listed == {key: sorted(value) for key, value in ERRORS_BY_OPERATION.items()}
    create = description["paths"][
        f"{STATS.replace('/preview/', '/{version}/')}/realtime-reports/export"
    ]["post"]
    assert create["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorEnvelope"
    }


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_browser_is_served_without_a_cdn(api: Api, page: str) -> None:
    html = api.http.get(page)
    assert html.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    assert assets, html.text
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by us"
        served = api.http.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000, asset


def test_swagger_ui_oauth2_redirect_is_served(api: Api) -> None:
    assert api.http.get("/docs/oauth2-redirect").status_code == 200


def test_authorize_and_try_it_out_work_as_swagger_ui_sends_them(api: Api) -> None:
    """Swagger UI's client-credentials flow: a form with Basic credentials, then the
    bearer token on a report call."""
    client_id, secret = api.client()
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    token = api.http.post(
        "/oauth2/token",
        content="grant_type=client_credentials",
        headers={"Content-Type": FORM, "Authorization": f"Basic {basic}"},
    ).json()["access_token"]
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    created = api.create(
        {"advertiserIds": ["321"], "startDate": start}, {"Authorization": f"Bearer {token}"}
    )
    assert created.status_code == 200
