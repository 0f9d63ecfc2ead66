"""Time zones and intervals through the real app: create -> run -> download.

Regressions of issue 8: one time-zone database (the tzdata package) for every bucket and
every printed offset; zones it does not list refused; far-past intervals clamped to the
data kept; out-of-range dates refused; bounds finer than a minute rounded up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import tzdata

from tests.acceptance.conftest import Api

JSONAPI = {"X-MPO-Envelope": "jsonapi"}


def _row(minute: datetime, **values: int) -> dict[str, Any]:
    return {
        "minute": minute,
        "advertiser_id": 321,
        "campaign_id": 1,
        "clicks": 0,
        "displays": 1,
        "cost": 0.0,
        **values,
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _codes(answer: Any, key: str) -> list[tuple[str, str | None]]:
    return [(p["code"], (p.get("source") or {}).get("pointer")) for p in answer.json()[key]]


def _plan(api: Api, answer: Any) -> dict[str, Any]:
    job = api.services.jobs.get_job(answer.json()["data"]["attributes"]["exportId"])
    assert job is not None
    plan: dict[str, Any] = job.spec["plan"]
    return plan


# -- one time-zone database -----------------------------------------------------------------


def test_vancouver_day_bucket_is_a_local_midnight(api: Api) -> None:
    # tzdata 2026f keeps Vancouver on UTC-7 all year; the host's 2025b files (which
    # Python's zoneinfo reads first) say UTC-8, and mixing the two printed
    # "2026-11-19T23:00:00-08:00" for this event.
    api.add_rows([_row(datetime(2026, 11, 20, 7, 30, tzinfo=UTC), displays=4)])
    request = {
        "advertiserIds": ["321"],
        "dimensions": ["day"],
        "metrics": ["displays"],
        "startDate": "2026-11-19T00:00:00Z",
        "endDate": "2026-11-22T00:00:00Z",
        "timezone": "America/Vancouver",
    }
    answer = api.export(request, api.token())
    assert answer.content.decode() == '"day","displays"\n"2026-11-20T00:00:00-07:00",4\n'


def test_timezone_is_matched_case_insensitively_and_kept_in_iana_spelling(api: Api) -> None:
    answer = api.create(
        {"advertiserIds": ["321"], "lookbackWindow": 60, "timezone": "america/VANCOUVER"},
        {**api.token(), **JSONAPI},
    )
    assert answer.status_code == 200, answer.text
    assert _plan(api, answer)["timezone"] == "America/Vancouver"


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "Mars/Olympus_Mons"])
def test_timezone_outside_the_tzdata_package_is_invalid_query(api: Api, zone: str) -> None:
    answer = api.create(
        {"advertiserIds": ["321"], "lookbackWindow": 60, "timezone": zone}, api.token()
    )
    assert answer.status_code == 400
    assert _codes(answer, "errors") == [("invalid-query", "/data/attributes/timezone")]
    assert api.run_jobs() == 0


def test_health_names_the_tzdata_release(api: Api) -> None:
    answer = api.http.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "tzdata": tzdata.IANA_VERSION}


# -- intervals ------------------------------------------------------------------------------


def test_far_past_start_is_clamped_to_the_data_kept(api_factory: Callable[..., Api]) -> None:
    api = api_factory(retention_days=45)
    now = datetime.now(UTC)
    # A row older than the retention that the sweeper has not purged yet: not reported.
    api.add_rows(
        [
            _row((now - timedelta(days=50)).replace(second=0, microsecond=0), clicks=7),
            _row((now - timedelta(days=1)).replace(second=0, microsecond=0), clicks=1),
        ]
    )
    headers = {**api.token(), **JSONAPI}
    request = {
        "advertiserIds": ["321"],
        "dimensions": ["hour"],
        "metrics": ["clicks"],
        "startDate": "0002-01-01T00:00:00Z",
    }
    created = api.create(request, headers)
    assert created.status_code == 200, created.text
    assert _codes(created, "warnings") == [("start-date-clamped", "/data/attributes/startDate")]
    start = datetime.fromisoformat(_plan(api, created)["start"])
    assert (start.second, start.microsecond) == (0, 0)
    assert timedelta(days=45) - timedelta(minutes=2) < now - start <= timedelta(days=45)
    assert api.run_jobs() == 1
    export_id = created.json()["data"]["attributes"]["exportId"]
    lines = api.download(export_id, headers).content.decode().splitlines()
    assert [line.rsplit(",", 1)[1] for line in lines[1:]] == ["1"]


def test_interval_ended_before_the_data_kept_is_refused(api_factory: Callable[..., Api]) -> None:
    api = api_factory(retention_days=45)
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=46)
    request = {
        "advertiserIds": ["321"],
        "startDate": _iso(end - timedelta(hours=1)),
        "endDate": _iso(end),
    }
    answer = api.create(request, api.token())
    assert answer.status_code == 400
    assert _codes(answer, "errors") == [("invalid-time-interval", "/data/attributes/endDate")]
    assert "45 days" in answer.json()["errors"][0]["detail"]


@pytest.mark.parametrize(
    ("dates", "pointer"),
    [
        ({"startDate": "0001-01-01T00:00:00+01:00"}, "/data/attributes/startDate"),
        (
            {"startDate": "2026-11-20T00:00:00Z", "endDate": "9999-12-31T23:59:59-01:00"},
            "/data/attributes/endDate",
        ),
    ],
)
def test_dates_outside_utc_are_invalid_time_interval(
    api: Api, dates: dict[str, str], pointer: str
) -> None:
    answer = api.create({"advertiserIds": ["321"], **dates}, api.token())
    assert answer.status_code == 400
    assert _codes(answer, "errors") == [("invalid-time-interval", pointer)]


def test_bounds_within_a_minute_count_whole_minutes_by_their_start(api: Api) -> None:
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
    api.add_rows(
        [
            _row(minute, clicks=1),
            _row(minute + timedelta(minutes=1), clicks=10),
            _row(minute + timedelta(minutes=2), clicks=100),
        ]
    )
    headers = {**api.token(), **JSONAPI}
    # A settled export is reused only when made over a second after the last write into
    # its interval (see test_reuse.py): run the service's clock ahead of the rows' write.
    api.services.exports.clock = lambda: datetime.now(UTC) + timedelta(seconds=5)
    base = {"advertiserIds": ["321"], "dimensions": ["minute"], "metrics": ["clicks"]}
    request = {
        **base,
        "startDate": _iso(minute + timedelta(seconds=30)),
        "endDate": _iso(minute + timedelta(seconds=90)),
    }
    created = api.create(request, headers)
    assert created.status_code == 200, created.text
    assert _codes(created, "warnings") == [
        ("interval-rounded", "/data/attributes/startDate"),
        ("interval-rounded", "/data/attributes/endDate"),
    ]
    effective = f"[{_iso(minute + timedelta(minutes=1))}, {_iso(minute + timedelta(minutes=2))})"
    assert effective in created.json()["warnings"][0]["detail"]
    api.run_jobs()
    export_id = created.json()["data"]["attributes"]["exportId"]
    assert api.download(export_id, headers).content.decode().splitlines()[1:] == [
        f'"{(minute + timedelta(minutes=1)).isoformat()}",10'
    ]
    # The same effective interval given in whole minutes is the same request: reused.
    whole = {
        **base,
        "startDate": _iso(minute + timedelta(minutes=1)),
        "endDate": _iso(minute + timedelta(minutes=2)),
    }
    again = api.create(whole, headers)
    assert again.json()["data"]["attributes"]["exportId"] == export_id
    assert again.json()["warnings"] == []
