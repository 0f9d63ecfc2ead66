"""OAuth2 client credentials and every 401/403 path."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from mpo_realtime.domain.jobs import Role
from mpo_realtime.exports.clients import TokenSigner
from tests.acceptance.conftest import STATS, Api

EXPORT = f"{STATS}/realtime-reports/export"
BODY = {"data": {"attributes": {"advertiserIds": ["321"], "lookbackWindow": 60}}}


def _token(api: Api, **form: str) -> object:
    return api.http.post("/oauth2/token", data=form)


def test_token_answers_like_criteo(api: Api) -> None:
    client_id, secret = api.client()
    answer = _token(api, grant_type="client_credentials", client_id=client_id, client_secret=secret)
    assert answer.status_code == 200  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert (body["token_type"], body["expires_in"], body["refresh_token"]) == ("Bearer", 900, None)
    created = api.http.post(
        EXPORT, json=BODY, headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert created.status_code == 200


def test_token_accepts_http_basic_credentials(api: Api) -> None:
    client_id, secret = api.client()
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    answer = api.http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "code", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported-grant-type", "unsupported_grant_type"),
        ({}, 400, "unsupported-grant-type", "invalid_request"),
        ({"grant_type": "client_credentials"}, 401, "invalid-client", "invalid_client"),
        (
            {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
            401,
            "invalid-client",
            "invalid_client",
        ),
    ],
)
def test_token_refuses_bad_requests(
    api: Api, form: dict[str, str], status: int, code: str, error: str
) -> None:
    answer = api.http.post("/oauth2/token", data=form)
    assert answer.status_code == status
    body = answer.json()
    assert [e["code"] for e in body["errors"]] == [code]
    # RFC 6749 section 5.2 beside the envelope, and never cached
    assert body["error"] == error
    assert body["error_description"] == body["errors"][0]["detail"]
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["pragma"] == "no-cache"


def test_token_wrong_secret_is_401(api: Api) -> None:
    client_id, _ = api.client()
    answer = _token(
        api, grant_type="client_credentials", client_id=client_id, client_secret="wrong"
    )
    assert answer.status_code == 401  # type: ignore[attr-defined]


def test_token_of_revoked_client_is_refused(api: Api) -> None:
    client_id, secret = api.client()
    api.services.clients.revoke(client_id, now=datetime.now(UTC))
    answer = _token(api, grant_type="client_credentials", client_id=client_id, client_secret=secret)
    assert answer.status_code == 401  # type: ignore[attr-defined]


def _forged(key: str, client_id: str, *, expired: bool = False, algorithm: str = "HS256") -> str:
    now = datetime.now(UTC) - (timedelta(hours=2) if expired else timedelta())
    return TokenSigner(key=key).issue(client_id, now=now).access_token


MISSING = "missing Authorization header: send 'Bearer <access_token>'"
MALFORMED = "malformed Authorization header: expected 'Bearer <token>'"


#: RFC 6750 section 3: no error code when the request carried no Bearer credentials
NO_CREDENTIALS = 'Bearer realm="mpo-realtime"'
BAD_REQUEST = 'Bearer realm="mpo-realtime", error="invalid_request"'
BAD_TOKEN = 'Bearer realm="mpo-realtime", error="invalid_token"'


@pytest.mark.parametrize(
    ("authorization", "detail", "challenge"),
    [
        (None, MISSING, NO_CREDENTIALS),
        ("", MISSING, NO_CREDENTIALS),
        ("Bearer", MALFORMED, BAD_REQUEST),
        ("Bearer ", MALFORMED, BAD_REQUEST),
        ("Basic abc", MALFORMED, NO_CREDENTIALS),
        ("Token abc", MALFORMED, NO_CREDENTIALS),
        ("Bearer not.a.jwt", "access token is malformed", BAD_TOKEN),
        (
            "Bearer " + jwt.encode({"sub": "x"}, key="", algorithm="none"),
            "access token algorithm is not accepted",
            BAD_TOKEN,
        ),
    ],
)
def test_reports_refuse_missing_or_malformed_tokens(
    api: Api, authorization: str | None, detail: str, challenge: str
) -> None:
    """Each refusal is the whole envelope: one authentication-failed, no warnings; the
    challenge names an error only when Bearer credentials were sent."""
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = api.http.post(EXPORT, json=BODY, headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {
        "warnings": [],
        "errors": [
            {
                "traceId": answer.headers["x-trace-id"],
                "type": "authentication",
                "code": "authentication-failed",
                "title": "Authentication failed",
                "detail": detail,
            }
        ],
    }
    assert answer.headers["www-authenticate"] == challenge


def test_reports_take_the_bearer_scheme_in_any_case_and_after_several_spaces(api: Api) -> None:
    """RFC 6750: ``"Bearer" 1*SP b64token``, the scheme case-insensitive (RFC 7235)."""
    token = api.token()["Authorization"].removeprefix("Bearer ")
    for authorization in (f"bearer {token}", f"BEARER {token}", f"Bearer   {token}"):
        answer = api.http.post(EXPORT, json=BODY, headers={"Authorization": authorization})
        assert answer.status_code == 200, (authorization, answer.text)


def test_reports_refuse_token_signed_with_another_key(api: Api) -> None:
    client_id, _ = api.client()
    token = _forged("another-key-another-key-another-key!", client_id)
    answer = api.http.post(EXPORT, json=BODY, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401


def test_reports_refuse_expired_token(api: Api) -> None:
    client_id, _ = api.client()
    token = _forged(api.services.settings.resolved_signing_key(), client_id, expired=True)
    answer = api.http.post(EXPORT, json=BODY, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert "expired" in answer.json()["errors"][0]["detail"]


def test_reports_refuse_token_of_revoked_client(api: Api) -> None:
    client_id, secret = api.client()
    headers = {
        "Authorization": "Bearer "
        + _forged(api.services.settings.resolved_signing_key(), client_id)
    }
    assert api.http.post(EXPORT, json=BODY, headers=headers).status_code == 200
    api.services.clients.revoke(client_id, now=datetime.now(UTC))
    assert api.http.post(EXPORT, json=BODY, headers=headers).status_code == 401


@pytest.mark.parametrize(
    "path", ["/report-jobs/45f7ec55-1008-4372-9144-1da37d8dccc2", "/realtime-reports/x"]
)
def test_poll_and_download_require_a_token(api: Api, path: str) -> None:
    assert api.http.get(STATS + path).status_code == 401


def test_ingest_requires_the_ingest_role(api: Api) -> None:
    answer = api.http.post(
        "/ingest/v1/events", content=b"[]", headers=api.token(roles=[Role.REPORT])
    )
    assert answer.status_code == 403
    assert [e["code"] for e in answer.json()["errors"]] == ["insufficient-role"]
    assert api.http.post("/ingest/v1/events", content=b"[]").status_code == 401


# -- the checks every report route makes, in order (api/deps.py) ------------------------


def test_reports_unknown_api_version_is_refused_before_the_token_is_read(api: Api) -> None:
    path = EXPORT.replace("/preview/", "/2099-01/")
    for headers in ({}, api.token()):
        answer = api.http.post(path, json=BODY, headers=headers)
        assert answer.status_code == 404
        [error] = answer.json()["errors"]
        assert (error["code"], error["detail"]) == (
            "version-not-found",
            "API version '2099-01' is unknown; use one of preview, 2025-10, 2026-01, 2026-04,"
            " 2026-07, 2026-10",
        )
    long = api.http.post(EXPORT.replace("/preview/", "/" + "v" * 40 + "/"), json=BODY)
    assert f"API version '{'v' * 32}' is unknown" in long.json()["errors"][0]["detail"]
    dated = api.http.post(EXPORT.replace("/preview/", "/2026-10/"), json=BODY, headers=api.token())
    assert dated.status_code == 200, dated.text


def test_reports_require_the_report_role(api: Api) -> None:
    answer = api.http.post(EXPORT, json=BODY, headers=api.token(roles=[Role.INGEST]))
    assert answer.status_code == 403
    [error] = answer.json()["errors"]
    assert (error["code"], error["detail"]) == (
        "insufficient-role",
        "this client lacks the 'report' role",
    )


def test_each_role_spends_its_own_budget(api: Api) -> None:
    both = api.token(roles=[Role.REPORT, Role.INGEST])
    report = api.http.post(EXPORT, json=BODY, headers=both)
    ingest = api.http.post("/ingest/v1/events", content=b"[]", headers=both)
    settings = api.services.settings
    assert (report.status_code, ingest.status_code) == (200, 400)
    assert report.headers["x-ratelimit-limit"] == str(settings.report_requests_per_minute)
    assert ingest.headers["x-ratelimit-limit"] == str(settings.ingest_requests_per_minute)
    # One unit each, from separate budgets.
    assert report.headers["x-ratelimit-remaining"] == str(settings.report_requests_per_minute - 1)
    assert ingest.headers["x-ratelimit-remaining"] == str(settings.ingest_requests_per_minute - 1)


def test_a_client_report_budget_overrides_the_default_and_names_itself(api: Api) -> None:
    headers = api.token(requests_per_minute=2)
    answers = [api.http.post(EXPORT, json=BODY, headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].headers["x-ratelimit-limit"] == "2"
    detail = answers[2].json()["errors"][0]["detail"]
    assert detail.startswith("over the report budget of 2 requests per minute")
