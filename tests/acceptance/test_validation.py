"""One test per rule of the source's "Validation rules" and per row of its error tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from mpo_realtime.domain.jobs import JobStatus, Role
from tests.acceptance.conftest import STATS, Api

VALID: dict[str, Any] = {"advertiserIds": ["321"], "lookbackWindow": 60}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


NOW = datetime.now(UTC).replace(second=0, microsecond=0)
PAST = _iso(NOW - timedelta(hours=3))
EARLIER = _iso(NOW - timedelta(hours=4))
FUTURE = _iso(NOW + timedelta(hours=3))


def _without(name: str) -> dict[str, Any]:
    return {k: v for k, v in VALID.items() if k != name}


def _errors(answer: Any) -> list[tuple[str, str, str, str | None]]:
    return [
        (e["type"], e["code"], e["title"], (e.get("source") or {}).get("pointer"))
        for e in answer.json()["errors"]
    ]


INVALID_QUERY = ("validation", "invalid-query", "Invalid query definition")
LOOKBACK = ("validation", "invalid-lookbackwindow", "Invalid lookback window")
INTERVAL = ("validation", "invalid-time-interval", "Invalid time interval definition")
COMBINATION = ("validation", "invalid-dimensioncombination", "Invalid combination of dimensions")
P = "/data/attributes/"

CASES: list[tuple[str, dict[str, Any], int, list[tuple[tuple[str, str, str], str | None]]]] = [
    # 1) Required fields
    (
        "advertiserIds missing",
        _without("advertiserIds"),
        400,
        [(INVALID_QUERY, P + "advertiserIds")],
    ),
    (
        "advertiserIds empty",
        {**VALID, "advertiserIds": []},
        400,
        [(INVALID_QUERY, P + "advertiserIds")],
    ),
    # invalid IDs
    (
        "advertiser ID not digits",
        {**VALID, "advertiserIds": ["32a"]},
        400,
        [(INVALID_QUERY, P + "advertiserIds/0")],
    ),
    (
        "campaign ID not digits",
        {**VALID, "campaignIds": ["1", "x"]},
        400,
        [(INVALID_QUERY, P + "campaignIds/1")],
    ),
    ("seller ID negative", {**VALID, "sellerIds": [-4]}, 400, [(INVALID_QUERY, P + "sellerIds/0")]),
    # unsupported dimensions / metrics
    (
        "unknown dimension",
        {**VALID, "dimensions": ["country"]},
        400,
        [(INVALID_QUERY, P + "dimensions/0")],
    ),
    (
        "unknown metric",
        {**VALID, "metrics": ["clicks", "sales"]},
        400,
        [(INVALID_QUERY, P + "metrics/1")],
    ),
    # 3) Time interval
    ("lookback below 60", {**VALID, "lookbackWindow": 59}, 400, [(LOOKBACK, P + "lookbackWindow")]),
    (
        "lookback above 1440",
        {**VALID, "lookbackWindow": 1441},
        400,
        [(LOOKBACK, P + "lookbackWindow")],
    ),
    (
        "lookback with startDate",
        {**VALID, "startDate": PAST},
        409,
        [(LOOKBACK, P + "lookbackWindow"), (INTERVAL, P + "startDate")],
    ),
    (
        "lookback with endDate",
        {**VALID, "endDate": PAST},
        409,
        [(LOOKBACK, P + "lookbackWindow"), (INTERVAL, P + "endDate")],
    ),
    ("no interval", _without("lookbackWindow"), 400, [(INTERVAL, P + "startDate")]),
    (
        "endDate without startDate",
        {**_without("lookbackWindow"), "endDate": PAST},
        400,
        [(INTERVAL, P + "endDate")],
    ),
    (
        "startDate in the future",
        {**_without("lookbackWindow"), "startDate": FUTURE},
        400,
        [(INTERVAL, P + "startDate")],
    ),
    (
        "startDate after endDate",
        {**_without("lookbackWindow"), "startDate": PAST, "endDate": EARLIER},
        400,
        [(INTERVAL, P + "startDate")],
    ),
    (
        "startDate not a date",
        {**_without("lookbackWindow"), "startDate": "yesterday"},
        400,
        [(INTERVAL, P + "startDate")],
    ),
    # 4) Time zone
    (
        "unknown time zone",
        {**VALID, "timezone": "Mars/Olympus"},
        400,
        [(INVALID_QUERY, P + "timezone")],
    ),
    # 5) Dimension combinations
    (
        "productId with hour",
        {**VALID, "dimensions": ["productId", "hour"]},
        409,
        [(COMBINATION, P + "dimensions")],
    ),
    (
        "hour with minute",
        {**VALID, "dimensions": ["hour", "minute"]},
        409,
        [(COMBINATION, P + "dimensions")],
    ),
    (
        "productId with minute",
        {**VALID, "dimensions": ["minute", "productId"]},
        409,
        [(COMBINATION, P + "dimensions")],
    ),
    (
        "day with hour",
        {**VALID, "dimensions": ["day", "hour"]},
        409,
        [(COMBINATION, P + "dimensions")],
    ),
]


@pytest.mark.parametrize(
    ("name", "attributes", "status", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_create_rejects(
    api: Api,
    name: str,
    attributes: dict[str, Any],
    status: int,
    expected: list[tuple[tuple[str, str, str], str | None]],
) -> None:
    answer = api.create(attributes, api.token())
    assert answer.status_code == status, answer.text
    assert _errors(answer) == [(*kind, pointer) for kind, pointer in expected]
    # nothing half-stored: no job in any status
    assert api.services.jobs.status_counts() == dict.fromkeys(JobStatus, 0)


def test_create_file_format_example_is_the_source_byte_for_byte(api: Api) -> None:
    answer = api.create({**VALID, "fileFormat": "xls"}, api.token())
    assert answer.status_code == 400
    trace = answer.json()["errors"][0]["traceId"]
    expected = {
        "warnings": [],
        "errors": [
            {
                "traceId": trace,
                "type": "validation",
                "code": "json-serialization-error",
                "title": "JSON error",
                "detail": "data.attributes.fileFormat 'xls' not valid. Must be one of 'Csv','Json'",
            }
        ],
    }
    assert answer.content == orjson.dumps(expected)
    assert answer.headers["x-trace-id"] == trace


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"', b""])
def test_create_body_not_a_json_object_is_json_serialization_error(api: Api, body: bytes) -> None:
    answer = api.http.post(f"{STATS}/realtime-reports/export", content=body, headers=api.token())
    assert answer.status_code == 400
    assert [e["code"] for e in answer.json()["errors"]] == ["json-serialization-error"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("advertiserIds", "321"), ("dimensions", "hour"), ("lookbackWindow", "60"), ("timezone", 3)],
)
def test_create_wrong_json_type_is_json_serialization_error(
    api: Api, field: str, value: Any
) -> None:
    answer = api.create({**VALID, field: value}, api.token())
    assert answer.status_code == 400
    (error,) = answer.json()["errors"]
    assert (error["code"], error["title"]) == ("json-serialization-error", "JSON error")
    assert error["detail"].startswith(f"data.attributes.{field}")


def test_create_reports_every_problem_in_one_answer(api: Api) -> None:
    attributes = {
        "advertiserIds": ["x"],
        "fileFormat": "xml",
        "dimensions": ["productId", "minute"],
        "metrics": ["sales"],
        "lookbackWindow": 5,
        "timezone": "Nowhere/City",
    }
    answer = api.create(attributes, api.token())
    codes = [e["code"] for e in answer.json()["errors"]]
    assert codes == [
        "json-serialization-error",
        "invalid-query",
        "invalid-query",
        "invalid-dimensioncombination",
        "invalid-lookbackwindow",
        "invalid-query",
    ]
    assert answer.status_code == 400


@pytest.mark.parametrize("lookback", [60, 1440])
def test_create_accepts_lookback_bounds(api: Api, lookback: int) -> None:
    answer = api.create({**VALID, "lookbackWindow": lookback}, api.token())
    assert answer.status_code == 200
    assert answer.json()["status"] == "Pending"


def test_create_end_date_defaults_to_now(api: Api) -> None:
    answer = api.create({"advertiserIds": ["321"], "startDate": PAST}, api.token())
    assert answer.status_code == 200
    job = api.services.jobs.get_job(answer.json()["exportId"])
    assert job is not None
    end = datetime.fromisoformat(job.spec["plan"]["end"])
    assert abs((end - datetime.now(UTC)).total_seconds()) < 60


def test_create_clamps_future_end_date_with_a_warning(api: Api) -> None:
    headers = {**api.token(), "X-MPO-Envelope": "jsonapi"}
    answer = api.create({"advertiserIds": ["321"], "startDate": PAST, "endDate": FUTURE}, headers)
    assert answer.status_code == 200
    assert [w["code"] for w in answer.json()["warnings"]] == ["end-date-clamped"]


def test_create_enums_are_case_insensitive_and_duplicates_dropped(api: Api) -> None:
    headers = {**api.token(), "X-MPO-Envelope": "jsonapi"}
    attributes = {
        **VALID,
        "fileFormat": "JSON",
        "dimensions": ["AdvertiserId", "CampaignId", "campaignid"],
        "metrics": ["Clicks", "COST"],
    }
    answer = api.create(attributes, headers)
    assert answer.status_code == 200
    assert [w["code"] for w in answer.json()["warnings"]] == ["duplicate-value"]
    job = api.services.jobs.get_job(answer.json()["data"]["attributes"]["exportId"])
    assert job is not None
    assert job.file_format == "json"
    assert job.spec["plan"]["dimensions"] == ["advertiserId", "campaignId"]
    assert job.spec["plan"]["metrics"] == ["clicks", "cost"]


def test_create_advertiser_outside_scope_is_insufficient_permissions(api: Api) -> None:
    answer = api.create({**VALID, "advertiserIds": ["321", "999"]}, api.token(advertisers=[321]))
    assert answer.status_code == 403
    assert _errors(answer) == [
        (
            "authorization",
            "insufficient-accountpermissions",
            "Insufficient account permissions",
            P + "advertiserIds/1",
        )
    ]


def test_create_campaign_filter_outside_scope_is_403(api: Api) -> None:
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    api.add_rows(
        [
            {
                "minute": minute,
                "advertiser_id": 321,
                "campaign_id": 12345,
                "displays": 1,
                "clicks": 0,
                "cost": 0.0,
            },
            {
                "minute": minute,
                "advertiser_id": 999,
                "campaign_id": 777,
                "displays": 1,
                "clicks": 0,
                "cost": 0.0,
            },
        ]
    )
    headers = api.token(advertisers=[321])
    answer = api.create({**VALID, "campaignIds": ["777"]}, headers)
    assert answer.status_code == 403
    assert _errors(answer) == [
        (
            "authorization",
            "no-campaign-found-in-scope",
            "No campaign found in scope",
            P + "campaignIds",
        )
    ]
    assert api.create({**VALID, "campaignIds": ["777", "12345"]}, headers).status_code == 200


@pytest.mark.parametrize(
    "export_id", ["45f7ec55-1008-4372-9144-1da37d8dccc2", "not-a-uuid", "1" * 300]
)
@pytest.mark.parametrize("route", ["report-jobs", "realtime-reports"])
def test_unknown_export_is_export_not_found_403(api: Api, route: str, export_id: str) -> None:
    answer = api.http.get(f"{STATS}/{route}/{export_id}", headers=api.token())
    assert answer.status_code == 403
    assert _errors(answer) == [("authorization", "export-not-found", "Export job not found", None)]


def test_unknown_version_is_404_in_the_envelope(api: Api) -> None:
    path = STATS.replace("preview", "2019-01") + "/realtime-reports/export"
    answer = api.http.post(path, json={}, headers=api.token())
    assert answer.status_code == 404
    assert [e["code"] for e in answer.json()["errors"]] == ["version-not-found"]


def test_unknown_route_is_404_in_the_envelope(api: Api) -> None:
    answer = api.http.get("/nowhere")
    assert answer.status_code == 404
    assert [e["code"] for e in answer.json()["errors"]] == ["route-not-found"]


def test_ingest_client_without_report_role_is_403(api: Api) -> None:
    answer = api.create(VALID, api.token(roles=[Role.INGEST]))
    assert answer.status_code == 403
    assert [e["code"] for e in answer.json()["errors"]] == ["insufficient-role"]


def test_unexpected_error_is_500_without_internals(api: Api) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    api.http.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    with api.http.__class__(api.http.app, raise_server_exceptions=False) as http:
        answer = http.get("/boom")
    assert answer.status_code == 500
    (error,) = answer.json()["errors"]
    assert error["code"] == "internal-error"
    assert "secret" not in answer.text
    assert error["traceId"] in error["detail"]
