"""The reports console in a real browser against a real ``mpo serve`` with ingested events.

One server and one Chromium for the module; each test opens a fresh browser context (its
own sessionStorage) and signs in like an analyst. What the page shows is compared with
what the public API answers for the same request. The server's reuse window is one
second, so that the live view's refreshes see new events even where the API does not
yet honour ``Cache-Control: no-cache`` on a create.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.integration.browser import Watched, chromium, require_browser
from tests.integration.server import Server, create_client

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.slow

STATS = "/preview/marketing-solutions/marketplace-performance-outcomes/stats"
HOSTILE = "<img src=x onerror=alert(1)>"
ZONE = "Europe/Paris"
WAIT_MS = 60_000
TRACE = re.compile(r"[0-9a-f]{32}")


@dataclass
class Served:
    server: Server
    client: dict[str, Any]
    ingest_headers: dict[str, str]

    @property
    def base(self) -> str:
        return self.server.base


def _events(now: datetime) -> list[dict[str, Any]]:
    """Ten minutes of activity over the last 40 minutes, two campaigns, three products."""
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=40)
    events = []
    for k in range(10):
        moment = start + timedelta(minutes=3 * k, seconds=7)
        for campaign, product, clicks in (
            ("12345", "SKU-1", k % 4),
            ("12346", "SKU-2", 2),
            ("12345", HOSTILE, 1 + k % 2),
        ):
            events.append(
                {
                    "timestamp": moment.isoformat().replace("+00:00", "Z"),
                    "advertiserId": "321",
                    "partnerId": "7",
                    "campaignId": campaign,
                    "sellerId": "254614150",
                    "productId": product,
                    "displays": 10 + k,
                    "clicks": clicks,
                    "cost": 0.125 * (k + 1),
                }
            )
    events.append({**events[0], "advertiserId": "322", "campaignId": "22222"})
    return events


def ingest(served: Served, events: list[dict[str, Any]]) -> None:
    answer = httpx.post(
        f"{served.base}/ingest/v1/events", json=events, headers=served.ingest_headers, timeout=30
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_browser()
    data_dir = tmp_path_factory.mktemp("console")
    client = create_client(data_dir, "321,322", "--ingest")
    server = Server(data_dir, cache_window_seconds="1", access_log="problems").start()
    try:
        result = Served(server, client, server.token(client))
        ingest(result, _events(datetime.now(UTC)))
        yield result
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[BrowserContext]:
    """Chromium in the zone of Paris (the console's default zone is the browser's)."""
    with chromium(
        locale="en-US", timezone_id=ZONE, viewport={"width": 1360, "height": 1000}
    ) as context:
        yield context


@pytest.fixture
def page(browser: BrowserContext, served: Served) -> Iterator[Page]:
    """A new tab (its own sessionStorage) at ``/``; no CSP violation, error or dialog."""
    opened = browser.new_page()
    opened.set_default_timeout(WAIT_MS)
    watched = Watched(opened)
    opened.goto(f"{served.base}/")
    yield opened
    try:
        assert watched.csp_violations() == []
        assert watched.errors == []
        assert watched.dialogs == []
    finally:
        opened.close()


# ---- helpers --------------------------------------------------------------------------


def sign_in(page: Page, client: dict[str, Any], secret: str | None = None) -> None:
    page.get_by_label("Client ID").fill(client["client_id"])
    page.get_by_label("Client secret").fill(secret or client["client_secret"])
    page.get_by_role("button", name="Sign in").click()


def signed_in(page: Page, served: Served) -> None:
    sign_in(page, served.client)
    page.wait_for_selector("#workspace:not([hidden])")


def set_report(
    page: Page,
    *,
    dimensions: tuple[str, ...] = ("campaignId",),
    bucket: str = "minute",
    lookback: str = "60",
    file_format: str = "JSON",
) -> None:
    for box in page.locator("input[name=dimension]").all():
        box.set_checked(box.get_attribute("value") in dimensions)
    page.get_by_label("Time bucket").select_option(bucket)
    page.get_by_label("Lookback window").fill(lookback)
    page.get_by_label(file_format, exact=True).check()


def run(page: Page) -> str:
    """Clicks Run report; waits for the result to be drawn; answers its export ID."""
    before = page.get_attribute("#result", "data-export-id") or ""
    page.get_by_role("button", name="Run report").click()
    page.wait_for_function(
        "(before) => { const r = document.querySelector('#result');"
        " return r.dataset.state === 'ready' && r.dataset.exportId !== before; }",
        arg=before,
    )
    return page.get_attribute("#result", "data-export-id") or ""


def api_export(served: Served, attributes: dict[str, Any]) -> tuple[str, bytes]:
    """The public API's file for ``attributes``: (export ID, body)."""
    headers = served.server.token(served.client)
    body = {"data": {"type": "RealTimeProductReportJob", "attributes": attributes}}
    with httpx.Client(base_url=served.base, headers=headers, timeout=30) as http:
        created = http.post(f"{STATS}/realtime-reports/export", json=body)
        assert created.status_code == 200, created.text
        export_id = created.json()["exportId"]
        deadline = time.monotonic() + 60
        while http.get(f"{STATS}/report-jobs/{export_id}").json()["status"] == "Pending":
            assert time.monotonic() < deadline, "the export did not finish"
            time.sleep(0.1)
        download = http.get(f"{STATS}/realtime-reports/{export_id}")
        assert download.status_code == 200, download.text
        return export_id, download.content


def exact_rows(body: bytes) -> tuple[list[str], list[list[str]]]:
    """A JSON export's columns and rows, every number kept as its exact text."""
    document = json.loads(body, parse_float=str, parse_int=str)
    return document["columns"], document["data"]


def table_rows(page: Page) -> list[list[str]]:
    texts: list[list[str]] = page.eval_on_selector_all(
        "#rows tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    return texts


def chart_traces(page: Page) -> list[dict[str, Any]]:
    traces: list[dict[str, Any]] = page.evaluate(
        "() => document.getElementById('chart').data.map("
        "t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}))"
    )
    return traces


def wall(time_text: str) -> str:
    return time_text[:19].replace("T", " ")


def problem_texts(page: Page, field: str) -> str:
    """The problems the console shows beside ``field``, once it has drawn one.

    The API's answer reaches the test before the page's script has drawn it.
    """
    near = page.locator(f"[data-errors-for={field}]")
    near.locator(".problem").first.wait_for()
    return near.inner_text()


# ---- tests ----------------------------------------------------------------------------


def test_console_csp_and_frame_headers_are_present(served: Served) -> None:
    answer = httpx.get(f"{served.base}/console", timeout=10)
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in answer.headers
    root = httpx.get(f"{served.base}/", timeout=10)
    assert (root.status_code, root.headers["location"]) == (302, "/console")


def test_console_wrong_secret_shows_the_api_error(page: Page, served: Served) -> None:
    refused = httpx.post(
        f"{served.base}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": served.client["client_id"],
            "client_secret": "wrong",
        },
        timeout=10,
    )
    assert refused.status_code == 401
    # from the keyboard: the focus starts in the client ID, Enter sends the form
    page.keyboard.type(served.client["client_id"])
    page.keyboard.press("Tab")
    page.keyboard.type("wrong")
    page.keyboard.press("Enter")
    error = page.locator("#signin-error")
    error.wait_for()
    text = error.inner_text()
    expected = refused.json()
    code = expected["errors"][0]["code"] if "errors" in expected else expected["error"]
    assert code in text
    assert TRACE.search(text), text
    assert page.locator("#workspace").is_hidden()
    assert page.evaluate("sessionStorage.getItem('mpo-console.session')") is None


def test_console_sign_in_shows_the_clients_scope_and_sign_out_forgets_the_token(
    page: Page, served: Served
) -> None:
    signed_in(page, served)
    assert page.locator("#who-name").inner_text() == f"test ({served.client['client_id']})"
    choices = page.locator("#advertiser-choices input").evaluate_all("i => i.map(x => x.value)")
    assert choices == ["321", "322"]
    assert page.get_by_label("Time zone", exact=True).input_value() == ZONE
    assert page.evaluate("sessionStorage.getItem('mpo-console.session')") is not None
    assert page.context.cookies() == []
    assert page.evaluate("localStorage.length") == 0
    page.get_by_role("button", name="Sign out").click()
    page.locator("#signin-form").wait_for()
    assert page.evaluate("sessionStorage.getItem('mpo-console.session')") is None
    assert page.locator("#workspace").is_hidden()


def test_console_expired_session_returns_to_sign_in_with_a_message(
    page: Page, served: Served
) -> None:
    signed_in(page, served)
    page.evaluate(
        "() => { const s = JSON.parse(sessionStorage.getItem('mpo-console.session'));"
        " s.expiresAt = Date.now() - 1000;"
        " sessionStorage.setItem('mpo-console.session', JSON.stringify(s)); }"
    )
    page.reload()
    assert "expired" in page.locator("#signin-notice").inner_text()
    # A token the API refuses (revoked, or signed by another key) ends the session too.
    signed_in(page, served)
    page.evaluate(
        "() => { const s = JSON.parse(sessionStorage.getItem('mpo-console.session'));"
        " s.token = 'not-a-token'; sessionStorage.setItem('mpo-console.session',"
        " JSON.stringify(s)); }"
    )
    page.reload()
    page.locator("#signin-notice").wait_for()
    assert "Sign in again" in page.locator("#signin-notice").inner_text()


def test_console_line_chart_and_table_match_the_api(page: Page, served: Served) -> None:
    signed_in(page, served)
    page.locator("#advertiser-choices input[value='322']").uncheck()
    set_report(page, dimensions=("campaignId",), bucket="minute", lookback="60")
    run(page)
    attributes = {
        "advertiserIds": ["321"],
        "dimensions": ["campaignId", "minute"],
        "metrics": ["clicks", "displays", "cost"],
        "lookbackWindow": 60,
        "timezone": ZONE,
        "fileFormat": "json",
    }
    _, body = api_export(served, attributes)
    columns, rows = exact_rows(body)
    assert columns == ["campaignId", "minute", "clicks", "displays", "cost"]
    assert len(rows) == 20
    # One point per row: each campaign's series holds its minutes and clicks.
    traces = chart_traces(page)
    assert sorted(trace["name"] for trace in traces) == ["12345", "12346"]
    points = {(t["name"], x, y) for t in traces for x, y in zip(t["x"], t["y"], strict=True)}
    assert sum(len(t["x"]) for t in traces) == len(rows)
    assert points == {(r[0], wall(r[1]), float(r[2])) for r in rows}
    # The table: the same rows, numbers exactly as the file has them.
    shown = [[cell.replace(",", "") for cell in row] for row in table_rows(page)]
    assert shown == rows
    assert page.locator("#rows caption").inner_text().startswith("20 rows")
    # Sorting by a column (keyboard) reorders the rows, largest first for a metric.
    page.get_by_role("button", name="displays", exact=True).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("th[aria-sort=descending]")
    most = str(max(int(r[3]) for r in rows))
    page.wait_for_function(
        "(most) => document.querySelector('#rows tbody td:nth-child(4)').textContent === most",
        arg=most,
    )
    # Another metric redraws the chart with that metric's values.
    page.get_by_label("Chart metric").select_option("cost")
    page.wait_for_function(
        "() => document.getElementById('chart').layout.yaxis.title.text === 'cost'"
    )
    costs = {
        (t["name"], x, y) for t in chart_traces(page) for x, y in zip(t["x"], t["y"], strict=True)
    }
    assert costs == {(r[0], wall(r[1]), float(r[4])) for r in rows}


def test_console_bar_chart_has_one_bar_per_row_and_hostile_ids_stay_text(
    page: Page, served: Served
) -> None:
    signed_in(page, served)
    page.locator("#advertiser-choices input[value='322']").uncheck()
    set_report(page, dimensions=("productId",), bucket="", lookback="120")
    run(page)
    attributes = {
        "advertiserIds": ["321"],
        "dimensions": ["productId"],
        "metrics": ["clicks", "displays", "cost"],
        "lookbackWindow": 120,
        "timezone": ZONE,
        "fileFormat": "json",
    }
    _, body = api_export(served, attributes)
    _, rows = exact_rows(body)
    assert sorted(r[0] for r in rows) == sorted(["SKU-1", "SKU-2", HOSTILE])
    (bars,) = page.evaluate(
        "() => document.getElementById('chart').data.map(t => ({x: Array.from(t.x),"
        " hover: Array.from(t.hovertext)}))"
    )
    assert len(bars["x"]) == len(rows)
    by_clicks = sorted(rows, key=lambda r: -float(r[1]))
    assert bars["x"] == [float(r[1]) for r in by_clicks]
    # The hostile product ID is text everywhere: in the table, on the chart's axis.
    cells = [row[0] for row in table_rows(page)]
    assert HOSTILE in cells
    ticks = page.locator("#chart .ytick text").all_text_contents()
    assert HOSTILE in ticks
    assert page.locator("#result img").count() == 0
    assert page.locator("main img").count() == 0


def test_console_downloads_each_format(page: Page, served: Served, tmp_path: Path) -> None:
    signed_in(page, served)
    set_report(page, dimensions=("campaignId",), bucket="hour", lookback="180")
    export_id = run(page)
    with page.expect_download() as json_download:
        page.get_by_role("button", name="Download JSON").click()
    json_path = tmp_path / "report.json"
    json_download.value.save_as(json_path)
    headers = served.server.token(served.client)
    direct = httpx.get(f"{served.base}{STATS}/realtime-reports/{export_id}", headers=headers)
    assert json_path.read_bytes() == direct.content
    assert json_download.value.suggested_filename.endswith(".json")
    # CSV: the same report as a new export in that format, saved whole.
    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Download CSV").click()
    csv_path = tmp_path / "report.csv"
    csv_download.value.save_as(csv_path)
    assert csv_download.value.suggested_filename.endswith(".csv")
    newest = page.locator("#exports-table tbody tr").first.locator("button[data-action=open]")
    csv_id = newest.get_attribute("data-export-id")
    assert csv_id is not None and csv_id != export_id
    again = httpx.get(f"{served.base}{STATS}/realtime-reports/{csv_id}", headers=headers)
    assert csv_path.read_bytes() == again.content
    table = list(csv.reader(io.StringIO(csv_path.read_text())))
    _, rows = exact_rows(json_path.read_bytes())
    assert table[1:] == rows
    # Both exports are in the session's list, with their rows and sizes.
    listed = page.locator("#exports-table tbody tr")
    assert listed.count() == 2
    assert csv_id in listed.nth(0).inner_text() and export_id in listed.nth(1).inner_text()
    cells = listed.nth(1).locator("td").all_inner_texts()
    assert cells[2] == "Done" and cells[3] == str(len(rows))
    assert cells[4].endswith(("B", "kB")) and cells[5].endswith(" s")
    # Open brings an earlier export back into the result panel.
    page.get_by_role("button", name="Open the CSV export").click()
    page.wait_for_function(
        "(id) => { const r = document.querySelector('#result');"
        " return r.dataset.state === 'ready' && r.dataset.exportId === id; }",
        arg=csv_id,
    )
    assert page.locator("#job-status").inner_text().find("CSV") > 0


def test_console_forbidden_dimensions_are_explained_then_refused_by_the_api(
    page: Page, served: Served
) -> None:
    signed_in(page, served)
    set_report(page, dimensions=("productId",), bucket="hour")
    note = page.locator("#dimensions-note")
    assert "invalid-dimensioncombination" in note.inner_text()
    assert "warning" in (note.get_attribute("class") or "")
    with page.expect_response(lambda r: r.url.endswith("/realtime-reports/export")) as answer:
        page.get_by_role("button", name="Run report").click()
    assert answer.value.status == 409
    shown = problem_texts(page, "dimensions")
    assert "invalid-dimensioncombination" in shown
    assert answer.value.headers["x-trace-id"] in shown
    assert page.locator("#f-dimensions").get_attribute("aria-invalid") == "true"


@pytest.mark.parametrize("minutes", ["30", "2000"])
def test_console_out_of_range_lookback_shows_the_api_error(
    page: Page, served: Served, minutes: str
) -> None:
    signed_in(page, served)
    set_report(page, lookback=minutes)
    with page.expect_response(lambda r: r.url.endswith("/realtime-reports/export")) as answer:
        page.get_by_role("button", name="Run report").click()
    assert answer.value.status == 400
    shown = problem_texts(page, "lookbackWindow")
    assert "invalid-lookbackwindow" in shown and minutes in shown
    assert answer.value.headers["x-trace-id"] in shown
    focused = page.evaluate("document.activeElement.id")
    assert focused == "f-lookbackWindow"


def test_console_live_view_shows_a_minute_ingested_after_it_started(
    page: Page, served: Served
) -> None:
    signed_in(page, served)
    set_report(page, dimensions=("campaignId",), bucket="minute", lookback="60")
    page.get_by_label("Live view refresh interval").select_option("5")
    page.get_by_label("Live view", exact=True).check()
    page.wait_for_selector("#result[data-state=ready]")
    first = page.get_attribute("#result", "data-export-id")
    now = datetime.now(UTC)
    # Advertiser 322, which the other tests leave out of their reports: tests run in
    # random order, and this event must not add a row to theirs.
    event = _events(now)[0] | {
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "advertiserId": "322",
        "campaignId": "12399",
        "clicks": 5,
    }
    ingest(served, [event])
    minute = now.replace(second=0, microsecond=0).astimezone(ZoneInfo(ZONE))
    expected = minute.strftime("%Y-%m-%d %H:%M:%S")
    page.wait_for_function(
        "(x) => (document.getElementById('chart').data || []).some("
        "t => t.name === '12399' && Array.from(t.x).includes(x))",
        arg=expected,
    )
    assert page.get_attribute("#result", "data-export-id") != first
    assert expected.replace(" ", "T") in page.locator("#data-age").inner_text()
    assert "next refresh" in page.locator("#live-status").inner_text()
    # A hidden tab pauses the live view; shown again, it refreshes at once.
    page.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    page.wait_for_function(
        "() => document.querySelector('#live-status').textContent.includes('paused')"
    )
    shown = page.get_attribute("#result", "data-export-id")
    page.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    page.wait_for_function(
        "(id) => document.querySelector('#result').dataset.exportId !== id", arg=shown
    )
    page.get_by_label("Live view", exact=True).uncheck()
    assert page.locator("#live-status").inner_text() == ""


def test_console_is_usable_on_a_narrow_screen(page: Page, served: Served) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    signed_in(page, served)
    run(page)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    box = page.locator("#chart .main-svg").first.bounding_box()
    assert box is not None and box["width"] <= 375
