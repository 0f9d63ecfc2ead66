"""Details of the export service that mutation testing found unpinned (docs/testing.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from mpo_realtime.domain.errors import ProblemError
from mpo_realtime.domain.jobs import Job, Role
from mpo_realtime.exports.service import _LruCache, file_name_for, poll_retry_after
from tests.acceptance.conftest import Api

REQUEST = {"advertiserIds": ["321"], "lookbackWindow": 60}


def test_a_finished_job_is_answered_from_the_cache_after_one_poll(api: Api) -> None:
    client, _ = api.services.clients.create(
        "cache", advertiser_ids=[321], roles=[Role.REPORT], now=datetime.now(UTC)
    )
    headers = api.token()
    export_id = api.create(REQUEST, headers).json()["exportId"]
    exports = api.services.exports
    assert exports.cached_status(client, export_id) is None  # never polled: not cached
    api.run_jobs()
    assert exports.status(client, export_id).status.value == "Done"
    cached = exports.cached_status(client, export_id)
    assert cached is not None and cached.id == export_id
    # The cache keeps the scope check: to a client of other advertisers it does not exist.
    stranger, _ = api.services.clients.create(
        "stranger", advertiser_ids=[999], roles=[Role.REPORT], now=datetime.now(UTC)
    )
    with pytest.raises(ProblemError) as refused:
        exports.cached_status(stranger, export_id)
    assert [p.code.value for p in refused.value.problems] == ["export-not-found"]


def test_export_not_found_names_the_first_64_characters_of_the_id(api: Api) -> None:
    headers = api.token()
    asked = "a" * 64 + "b" * 36
    answer = api.poll(asked, headers)
    assert answer.status_code == 403
    [error] = answer.json()["errors"]
    assert error["code"] == "export-not-found"
    assert error["detail"] == f"export {'a' * 64} does not exist or is not visible"


def _refusal(exports: Any, client: Any, export_id: str) -> tuple[str, str]:
    with pytest.raises(ProblemError) as refused:
        exports.download(client, export_id)
    [problem] = refused.value.problems
    return problem.code.value, problem.detail


def test_download_of_each_status_answers_as_documented(api: Api) -> None:
    """Pending: not ready; Failure: its message; Done: the file; Expired: gone."""
    created = datetime(2026, 11, 29, 9, 8, 7, tzinfo=UTC)
    client, _ = api.services.clients.create(
        "download", advertiser_ids=[321], roles=[Role.REPORT], now=created
    )
    exports = api.services.exports
    exports.clock = lambda: created
    done_id = api.create(REQUEST, api.token()).json()["exportId"]
    assert _refusal(exports, client, done_id) == (
        "export-not-ready",
        "the export is still Pending; poll report-jobs first",
    )
    api.run_jobs()
    download = exports.download(client, done_id)
    assert download.filename == f"realtime-report-20261129T090807Z-{done_id[:8]}.csv"
    assert download.content_type == "text/csv"
    assert download.size == download.path.stat().st_size > 0
    assert download.path.name == f"{done_id}.csv"
    # Expired by its date: the file may still be on disk, the export is gone.
    job = exports.status(client, done_id)
    assert job.expires_at is not None
    exports.clock = lambda: job.expires_at  # type: ignore[assignment, return-value]
    assert exports.status(client, done_id).status.value == "Expired"
    assert _refusal(exports, client, done_id) == (
        "export-alreadyexpired",
        "the export file has been permanently deleted",
    )
    exports.clock = lambda: created
    # Done, but the file was deleted (a sweep, a lost disk): gone too.
    download.path.unlink()
    assert _refusal(exports, client, done_id)[0] == "export-alreadyexpired"


@pytest.mark.parametrize(
    ("message", "detail"),
    [("disk full", "the export failed: disk full"), ("", "the export failed: unknown error")],
)
def test_download_of_a_failed_export_gives_its_message(api: Api, message: str, detail: str) -> None:
    client, _ = api.services.clients.create(
        "failed", advertiser_ids=[321], roles=[Role.REPORT], now=datetime.now(UTC)
    )
    export_id = api.create(REQUEST, api.token()).json()["exportId"]
    assert api.services.jobs.fail_job(export_id, owner=None, now=datetime.now(UTC), message=message)
    assert _refusal(api.services.exports, client, export_id) == ("export-failed", detail)


def test_download_in_json_names_its_format(api: Api) -> None:
    client, _ = api.services.clients.create(
        "json", advertiser_ids=[321], roles=[Role.REPORT], now=datetime.now(UTC)
    )
    export_id = api.create({**REQUEST, "fileFormat": "Json"}, api.token()).json()["exportId"]
    api.run_jobs()
    download = api.services.exports.download(client, export_id)
    assert (download.content_type, download.filename[-13:]) == (
        "application/json",
        f"{export_id[:8]}.json",
    )


def _job(created_at: datetime, **changes: Any) -> Job:
    return Job(
        id="5b1f4b8e-0000-4000-8000-000000000001",
        client_id="c",
        advertiser_ids=(321,),
        cache_key="k",
        spec={},
        file_format="json",
        created_at=created_at,
        **changes,
    )


@pytest.mark.parametrize(
    ("age", "wait"),
    [
        (timedelta(0), 1),
        (timedelta(seconds=-3), 1),  # a clock that stepped back: still 1 s
        (timedelta(milliseconds=2100), 3),
        (timedelta(seconds=5), 5),
        (timedelta(seconds=9, milliseconds=1), 10),
        (timedelta(hours=1), 10),
    ],
)
def test_poll_retry_after_grows_with_the_age_of_the_job_up_to_the_ceiling(
    age: timedelta, wait: int
) -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert poll_retry_after(_job(now - age), now=now, ceiling=10) == wait


def test_file_name_of_a_job_is_its_id_and_format() -> None:
    job = _job(datetime(2026, 11, 29, tzinfo=UTC))
    assert file_name_for(job) == "5b1f4b8e-0000-4000-8000-000000000001.json"


def test_finished_jobs_cache_forgets_the_least_recently_used_first() -> None:
    cache = _LruCache(2)
    jobs = {name: _job(datetime(2026, 11, 29, tzinfo=UTC), file_name=name) for name in "abc"}
    cache.put("a", jobs["a"])
    cache.put("b", jobs["b"])
    assert cache.get("a") is jobs["a"]  # "a" is now the most recently used
    cache.put("c", jobs["c"])
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (jobs["a"], None, jobs["c"])
    cache.put("a", jobs["b"])  # replaced, and the most recent again
    cache.put("d", jobs["a"])
    assert (cache.get("a"), cache.get("c"), cache.get("d")) == (jobs["b"], None, jobs["a"])


def test_export_of_other_advertisers_or_unknown_is_not_found(api: Api) -> None:
    export_id = api.create(REQUEST, api.token()).json()["exportId"]
    unknown = "45f7ec55-1008-4372-9144-1da37d8dccc2"
    stranger = api.token(advertisers=[999])
    for asked, headers in ((export_id, stranger), (unknown, api.token())):
        for answer in (api.poll(asked, headers), api.download(asked, headers)):
            assert answer.status_code == 403
            [error] = answer.json()["errors"]
            assert (error["code"], error["detail"]) == (
                "export-not-found",
                f"export {asked} does not exist or is not visible",
            )
    # The export's own client still sees it (Pending: never cached).
    assert api.poll(export_id, api.token()).status_code == 200


def test_reused_export_age_is_whole_seconds_and_never_negative(api: Api) -> None:
    client, _ = api.services.clients.create(
        "age", advertiser_ids=[321], roles=[Role.REPORT], now=datetime.now(UTC)
    )
    exports = api.services.exports
    moment = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    body = orjson.dumps({"data": {"attributes": REQUEST}})
    exports.clock = lambda: moment
    first = exports.create(client, body)
    assert (first.reused, first.age_seconds) == (False, 0)
    ages = []
    for later in (timedelta(0), timedelta(seconds=-5), timedelta(seconds=1.9)):
        exports.clock = lambda later=later: moment + later  # type: ignore[misc]
        again = exports.create(client, body)
        assert again.reused and again.job.id == first.job.id
        ages.append(again.age_seconds)
    assert ages == [0, 0, 1]


def test_hourly_export_quota_is_per_client(api: Api) -> None:
    busy, other = api.token(exports_per_hour=1), api.token(exports_per_hour=1)
    assert api.create(REQUEST, busy).status_code == 200
    over = api.create({**REQUEST, "lookbackWindow": 61}, busy)
    assert over.status_code == 429
    assert over.json()["errors"][0]["detail"].startswith(
        "hourly quota of 1 new exports reached (identical requests stay free)"
    )
    # Another client of the same advertisers has its own quota.
    assert api.create({**REQUEST, "lookbackWindow": 62}, other).status_code == 200


def test_identical_requests_share_an_export_only_with_the_same_interval(api: Api) -> None:
    headers = api.token()
    exports = api.services.exports
    moment = datetime(2026, 11, 29, 12, 0, 50, tzinfo=UTC)
    exports.clock = lambda: moment
    open_ended = {"advertiserIds": ["321"], "startDate": "2026-11-29T10:00:00Z"}
    first = api.create(open_ended, headers).json()["exportId"]
    closed = {**open_ended, "endDate": "2026-11-29T11:00:00Z"}
    closed_id = api.create(closed, headers).json()["exportId"]
    later_end = api.create({**closed, "endDate": "2026-11-29T11:30:00Z"}, headers)
    assert len({first, closed_id, later_end.json()["exportId"]}) == 3
    # 30 s later the open-ended report would end a minute later: still the same request,
    # reused within the window like a lookbackWindow.
    exports.clock = lambda: moment + timedelta(seconds=30)
    assert api.create(open_ended, headers).json()["exportId"] == first
    assert api.create(closed, headers).json()["exportId"] == closed_id


def test_the_id_limit_of_the_settings_applies_to_creates(api_factory: Callable[..., Api]) -> None:
    api = api_factory(max_ids_per_filter=2)
    headers = api.token()
    answer = api.create({**REQUEST, "campaignIds": ["1", "2", "3"]}, headers)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["detail"] == "campaignIds holds 3 IDs; at most 2"
    # Two IDs pass validation (and then the scope check: no such campaign here).
    at_limit = api.create({**REQUEST, "campaignIds": ["1", "2"]}, headers)
    assert [e["code"] for e in at_limit.json()["errors"]] == ["no-campaign-found-in-scope"]


def test_a_job_records_the_canonical_request_beside_its_plan(api: Api) -> None:
    """What was asked stays with the job (for operators), in its canonical form."""
    headers = api.token(advertisers=[9, 321])
    attributes = {"advertiserIds": ["321", 9, "9"], "lookbackWindow": 60, "fileFormat": "JSON"}
    export_id = api.create({**attributes, "metrics": ["Cost", "clicks"]}, headers).json()[
        "exportId"
    ]
    job = api.services.jobs.get_job(export_id)
    assert job is not None and set(job.spec) == {"plan", "request"}
    assert job.spec["request"] == {
        "fileFormat": "json",
        "advertiserIds": [9, 321],
        "campaignIds": [],
        "sellerIds": [],
        "partnerIds": [],
        "dimensions": ["advertiserId"],
        "metrics": ["cost", "clicks"],
        "timezone": "UTC",
        "lookbackWindow": 60,
    }


def test_a_new_export_answers_with_the_warnings_of_its_request(api: Api) -> None:
    answer = api.create({**REQUEST, "currency": "EUR"}, api.token())
    assert answer.status_code == 200
    detail = "currency is not supported yet and was ignored"
    assert answer.json()["warnings"] == [
        {
            "traceId": answer.headers["x-trace-id"],
            "type": "validation",
            "code": "ignored-attribute",
            "title": "Attribute ignored",
            "detail": detail,
            "source": {"pointer": "/data/attributes/currency"},
        }
    ]
    assert answer.headers["warning"] == f'299 mpo "{detail}"'
