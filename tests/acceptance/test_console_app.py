"""The console's routes and the ``me`` endpoint, through the real app in process.

The page itself is exercised in a real browser by ``tests/integration/test_console.py``;
here: what the server answers (headers, files, caching) and what ``me`` tells a client.
"""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser

import pytest

from mpo_realtime.console import CONTENT_SECURITY_POLICY
from mpo_realtime.console.assets import Assets, chart_library_path
from mpo_realtime.domain.jobs import Role
from tests.acceptance.conftest import Api


class _Markup(HTMLParser):
    """Collects what a strict CSP would refuse: inline scripts, style and on* attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.inline_scripts: list[str] = []
        self.scripts: list[str] = []
        self.forbidden_attributes: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        self.forbidden_attributes += [n for n in names if n == "style" or n.startswith("on")]
        if tag == "style":
            self.forbidden_attributes.append("<style>")
        if tag == "script":
            self._in_script = True
            self.scripts.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


def test_root_redirects_to_the_console(api: Api) -> None:
    answer = api.http.get("/", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (302, "/console")
    slash = api.http.get("/console/", follow_redirects=False)
    assert (slash.status_code, slash.headers["location"]) == (302, "/console")


def test_console_page_has_strict_security_headers(api: Api) -> None:
    answer = api.http.get("/console")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    policy = dict(
        part.strip().split(" ", 1) for part in answer.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'none'"
    assert "unsafe" not in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in answer.headers


def test_console_page_has_no_inline_script_style_or_handler(api: Api) -> None:
    markup = _Markup()
    markup.feed(api.http.get("/console").text)
    assert markup.inline_scripts == []
    assert markup.forbidden_attributes == []
    assert markup.scripts == ["/console/static/console.js"]


def test_console_page_offers_every_attribute_of_the_api(api: Api) -> None:
    page = api.http.get("/console").text
    for field in ("advertiserIds", "campaignIds", "sellerIds", "partnerIds", "dimensions"):
        assert f'data-field="{field}"' in page
    for field in ("metrics", "lookbackWindow", "startDate", "endDate", "timezone", "fileFormat"):
        assert f'data-field="{field}"' in page
    dimensions = re.findall(r'name="dimension" value="(\w+)"', page)
    buckets = re.findall(r'<option value="(\w+)"', page.split('id="f-time-bucket"')[1])
    assert dimensions == ["advertiserId", "partnerId", "campaignId", "sellerId", "productId"]
    assert buckets[:6] == ["minute", "hour", "day", "week", "month", "year"]
    assert re.findall(r'name="metric" value="(\w+)"', page) == ["clicks", "displays", "cost"]
    # the page holds no secret and no client ID, demo or not
    assert "client_secret" not in page and 'value="' not in page.split('id="client-id"')[1][:80]


def test_console_static_files_are_served_with_types_and_etags(api: Api) -> None:
    for name in Assets().names():
        answer = api.http.get(f"/console/static/{name}", headers={"Accept-Encoding": "identity"})
        assert answer.status_code == 200, name
        assert answer.headers["x-content-type-options"] == "nosniff"
        etag = answer.headers["etag"]
        again = api.http.get(
            f"/console/static/{name}",
            headers={"Accept-Encoding": "identity", "If-None-Match": etag},
        )
        assert again.status_code == 304, name
    script = api.http.get("/console/static/console.js", headers={"Accept-Encoding": "identity"})
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["cache-control"] == "no-cache"


def test_console_chart_library_comes_from_the_plotly_package_precompressed(api: Api) -> None:
    answer = api.http.get(
        "/console/static/plotly.min.js", headers={"Accept-Encoding": "gzip, deflate, br"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.headers["cache-control"].startswith("public, max-age=")
    assert answer.content == chart_library_path().read_bytes()  # the client decodes gzip
    raw = api.http.get("/console/static/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert len(raw.content) == len(chart_library_path().read_bytes())
    assert len(gzip.compress(raw.content)) < len(raw.content) / 2


@pytest.mark.parametrize("name", ["missing.js", "..%2Fassets.py", "%2e%2e%2froutes.py"])
def test_console_static_refuses_unknown_files(api: Api, name: str) -> None:
    answer = api.http.get(f"/console/static/{name}")
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "route-not-found"


def test_api_opens_no_cors(api: Api) -> None:
    headers = api.token()
    origin = {"Origin": "https://elsewhere.example"}
    for method, path in (("GET", "/preview/me"), ("OPTIONS", "/oauth2/token")):
        answer = api.http.request(method, path, headers={**headers, **origin})
        assert not any(h.startswith("access-control-") for h in answer.headers), path


def test_me_answers_the_clients_id_name_scope_and_limits(api: Api) -> None:
    client_id, secret = api.client(advertisers=(322, 321), requests_per_minute=50)
    token = api.http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    ).json()["access_token"]
    answer = api.http.get("/preview/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json() == {
        "clientId": client_id,
        "name": "test",
        "advertiserIds": ["321", "322"],
        "limits": {"reportRequestsPerMinute": 50, "exportsPerHour": 500},
    }
    assert "x-ratelimit-remaining" in answer.headers


def test_me_goes_through_the_api_auth(api: Api) -> None:
    assert api.http.get("/preview/me").status_code == 401
    bad = api.http.get("/preview/me", headers={"Authorization": "Bearer nope"})
    assert bad.json()["errors"][0]["code"] == "authentication-failed"
    unknown = api.http.get("/1999-01/me", headers=api.token())
    assert unknown.json()["errors"][0]["code"] == "version-not-found"
    ingest_only = api.token(roles=(Role.INGEST,))
    refused = api.http.get("/preview/me", headers=ingest_only)
    assert (refused.status_code, refused.json()["errors"][0]["code"]) == (403, "insufficient-role")


def test_csp_policy_constant_is_what_is_served(api: Api) -> None:
    assert api.http.get("/console").headers["content-security-policy"] == CONTENT_SECURITY_POLICY
