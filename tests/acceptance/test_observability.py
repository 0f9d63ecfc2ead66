"""Observability: ``/metrics`` in Prometheus text format, JSON logs, ``/ready``."""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mpo_realtime.api import edge
from mpo_realtime.api.metrics import ACCESS_LOGGER, UNMATCHED
from mpo_realtime.api.routes.reports import BASE
from mpo_realtime.domain.jobs import JobStatus, Role
from mpo_realtime.exports.jobstore import SqlJobStore
from mpo_realtime.logs import JsonFormatter
from tests.acceptance.conftest import STATS, Api, ingest_event

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _rows() -> list[dict[str, Any]]:
    """Two roll-up rows an hour old, computed when the test runs (not at collection:
    on a slow run the whole suite's time would count in the freshness checked below)."""
    hour_ago = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    return [
        {
            "minute": hour_ago,
            "advertiser_id": 321,
            "campaign_id": 1,
            "clicks": 1,
            "displays": 10,
            "cost": 1.5,
        },
        {
            "minute": hour_ago,
            "advertiser_id": 321,
            "campaign_id": 2,
            "clicks": 2,
            "displays": 20,
            "cost": 2.5,
        },
    ]


REQUEST = {"advertiserIds": ["321"], "dimensions": ["campaignId"], "lookbackWindow": 180}


def _scrape(api: Api) -> Samples:
    answer = api.http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _requests(samples: Samples, method: str, route: str, status: int) -> float | None:
    labels = {"method": method, "route": route, "status": str(status)}
    return _value(samples, "mpo_http_requests_total", **labels)


def test_metrics_after_create_run_download(api: Api) -> None:
    rows = _rows()
    hour_ago = rows[0]["minute"]
    api.add_rows(rows)
    headers = api.token()
    created = api.create(REQUEST, headers)
    assert created.status_code == 200, created.text
    export_id = created.json()["exportId"]
    assert api.run_jobs() == 1
    assert api.poll(export_id, headers).json()["status"] == "Done"
    assert api.download(export_id, headers).status_code == 200
    job = api.services.jobs.get_job(export_id)
    assert job is not None and job.row_count == 2 and job.byte_size

    # The rows are an hour old when the module is imported, the suite may run long after.
    before = (datetime.now(UTC) - hour_ago).total_seconds()
    samples = _scrape(api)
    after = (datetime.now(UTC) - hour_ago).total_seconds()
    assert _requests(samples, "POST", "/oauth2/token", 200) == 1
    assert _requests(samples, "POST", f"{BASE}/realtime-reports/export", 200) == 1
    assert _requests(samples, "GET", f"{BASE}/report-jobs/{{reportId}}", 200) == 1
    assert _requests(samples, "GET", f"{BASE}/realtime-reports/{{reportId}}", 200) == 1
    duration = "mpo_http_request_duration_seconds_count"
    assert _value(samples, duration, method="GET", route=f"{BASE}/report-jobs/{{reportId}}") == 1
    # Raw paths never become label values.
    assert not any(export_id in value for _, labels in samples for _, value in labels)

    assert _value(samples, "mpo_export_job_seconds_count", status="Done") == 1
    assert _value(samples, "mpo_export_job_run_seconds_count") == 1
    assert _value(samples, "mpo_export_rows_total") == job.row_count
    assert _value(samples, "mpo_export_bytes_total") == job.byte_size
    counts = api.services.jobs.status_counts()
    assert counts[JobStatus.DONE] == 1
    for status, count in counts.items():
        assert _value(samples, "mpo_export_jobs", status=status.value) == count

    lag = _value(samples, "mpo_data_freshness_seconds")
    assert lag is not None
    assert before - 1 <= lag <= after + 1


def _event(**overrides: Any) -> dict[str, Any]:
    return ingest_event(age=timedelta(minutes=2), **overrides)


def test_metrics_count_ingested_events_and_freshness(api: Api) -> None:
    headers = api.token(roles=[Role.INGEST])
    assert _value(_scrape(api), "mpo_data_freshness_seconds") is None  # empty store
    body = orjson.dumps([_event(), _event(productId="SKU-2"), _event(productId="SKU-3")])
    answer = api.http.post("/ingest/v1/events", content=body, headers=headers)
    assert answer.json() == {"accepted": 3, "duplicate": False}
    samples = _scrape(api)
    assert _value(samples, "mpo_ingest_events_total") == 3
    assert _value(samples, "mpo_ingest_requests_total") == 1
    assert _requests(samples, "POST", "/ingest/v1/events", 200) == 1
    lag = _value(samples, "mpo_data_freshness_seconds")
    assert lag is not None and 60 <= lag < 240


def test_metrics_unmatched_paths_share_one_route_label(api: Api) -> None:
    for path in ("/no/such/page", "/another/unknown/path"):
        assert api.http.get(path).status_code == 404
    samples = _scrape(api)
    assert _requests(samples, "GET", UNMATCHED, 404) == 2
    assert not any("unknown" in value for _, labels in samples for _, value in labels)


def test_metrics_rate_limited_counts_by_budget(api: Api) -> None:
    """Real 429s are counted under the budget that refused them (and nothing else is)."""
    assert _value(_scrape(api), "mpo_rate_limited_total", budget="report") is None
    headers = api.token(requests_per_minute=1, exports_per_hour=1)
    poll = f"{STATS}/report-jobs/45f7ec55-1008-4372-9144-1da37d8dccc2"
    assert [api.http.get(poll, headers=headers).status_code for _ in range(3)] == [403, 429, 429]
    quota = api.token(exports_per_hour=1)
    created = [
        api.create({"advertiserIds": ["321"], "startDate": "2026-01-01", "endDate": end}, quota)
        for end in ("2026-01-02", "2026-01-03")
    ]
    assert [answer.status_code for answer in created] == [200, 429]
    samples = _scrape(api)
    assert _value(samples, "mpo_rate_limited_total", budget="report") == 2
    assert _value(samples, "mpo_rate_limited_total", budget="exports") == 1


def test_metrics_registries_are_per_app(api_factory: Any) -> None:
    first, second = api_factory(), api_factory()
    first.http.get("/health")
    assert _requests(_scrape(first), "GET", "/health", 200) == 1
    assert _requests(_scrape(second), "GET", "/health", 200) is None


def test_json_formatter_writes_one_line_with_trace_and_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.getLogger("mpo_realtime.test").makeRecord(
        "mpo_realtime.test",
        logging.ERROR,
        __file__,
        1,
        "export %s failed",
        ("abc",),
        exc_info,
        extra={"traceId": "trace123"},
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data.pop("exception").splitlines()[-1] == "ValueError: boom"
    assert datetime.fromisoformat(data.pop("time")).tzinfo is not None
    assert data == {
        "level": "ERROR",
        "logger": "mpo_realtime.test",
        "message": "export abc failed",
        "traceId": "trace123",
    }


def test_access_log_line_carries_the_error_trace_id(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        answer = api.poll("no-such-export", {})
    assert answer.status_code == 401
    trace = answer.json()["errors"][0]["traceId"]
    assert answer.headers["x-trace-id"] == trace
    lines = [
        json.loads(JsonFormatter().format(record))
        for record in caplog.records
        if record.name == ACCESS_LOGGER
    ]
    assert len(lines) == 1
    line = lines[0]
    assert line.pop("durationMs") >= 0
    assert line.pop("time")
    assert line == {
        "level": "INFO",
        "logger": ACCESS_LOGGER,
        "message": line["message"],
        "method": "GET",
        "route": f"{BASE}/report-jobs/{{reportId}}",
        "path": "/preview/marketing-solutions/marketplace-performance-outcomes/stats"
        "/report-jobs/no-such-export",
        "status": 401,
        "traceId": trace,
    }
    assert line["message"].startswith(f"GET {line['path']} 401 ")


def test_ready_reports_migrations_applied(api: Api) -> None:
    answer = api.http.get("/ready")
    assert answer.status_code == 200
    body = answer.json()
    expected = {"status": "ok", "eventStore": "ok", "jobStore": "ok", "migrations": "ok"}
    assert {key: body.get(key) for key in expected} == expected


def test_ready_is_503_when_the_schema_is_behind(api: Api) -> None:
    url = api.services.settings.resolved_job_store_url
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'older'")
    answer = api.http.get("/ready")
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable"
    assert answer.json()["migrations"].startswith("error")


def test_jobstore_at_head_only_after_migrate(tmp_path: Any) -> None:
    store = SqlJobStore(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    try:
        assert store.at_head() is False
        store.migrate()
        assert store.at_head() is True
    finally:
        store.close()


@pytest.mark.parametrize(
    ("policy", "logged"),
    [("all", ["/health", "/nope"]), ("problems", ["/nope"]), ("off", [])],
)
def test_access_log_policy(
    api_factory: Any, caplog: pytest.LogCaptureFixture, policy: str, logged: list[str]
) -> None:
    api = api_factory(access_log=policy)
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        assert api.http.get("/health").status_code == 200
        assert api.http.get("/nope").status_code == 404
    paths = [
        getattr(record, "path", None) for record in caplog.records if record.name == ACCESS_LOGGER
    ]
    assert paths == logged
    # metrics count every request whatever the policy
    text = api.http.get("/metrics").text
    assert 'route="/health",status="200"' in text
    assert f'route="{UNMATCHED}",status="404"' in text


def test_access_log_problems_include_slow_answers(
    api_factory: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edge, "SLOW_SECONDS", 0.0)  # every answer counts as slow
    api = api_factory(access_log="problems")
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        assert api.http.get("/health").status_code == 200
    assert [getattr(r, "path", None) for r in caplog.records if r.name == ACCESS_LOGGER] == [
        "/health"
    ]


def test_ready_is_503_when_the_event_store_fails(api: Api) -> None:
    api.services.events.close()  # every query now fails
    answer = api.http.get("/ready")
    assert answer.status_code == 503
    body = answer.json()
    assert (body["status"], body["jobStore"], body["migrations"]) == ("unavailable", "ok", "ok")
    assert body["eventStore"].startswith("error: ")


def test_ready_is_503_when_the_job_store_fails(api: Api) -> None:
    path = Path(api.services.settings.resolved_job_store_url.removeprefix("sqlite:///"))
    api.services.jobs.close()
    path.write_bytes(b"this is not a database " * 200)
    answer = api.http.get("/ready")
    assert answer.status_code == 503
    body = answer.json()
    assert (body["status"], body["eventStore"], body["jobStore"]) == ("unavailable", "ok", "error")
    assert body["migrations"].startswith("error: ")
