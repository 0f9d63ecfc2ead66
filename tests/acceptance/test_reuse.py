"""Reuse of identical exports: honest (says so, with its age), atomic, and never stale.

Each rule of reuse is pinned here by a test that fails when the rule is dropped: the
relative window, the settle rule, late writes, Failure and Expired (in test_exports.py
too), ``Cache-Control``, and one export for concurrent identical creates.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from mpo_realtime.domain.jobs import Role
from tests.acceptance.conftest import Api, ingest_event
from tests.conftest import fresh_postgres_database

INGEST = "/ingest/v1/events"
RELATIVE = {"advertiserIds": ["321"], "dimensions": ["advertiserId"], "lookbackWindow": 180}


def _at(api: Api, moment: datetime) -> datetime:
    """Stop the service's clock at ``moment``."""
    api.services.exports.clock = lambda: moment
    return moment


def _settled_hour(hours_ago: int) -> tuple[datetime, dict[str, Any]]:
    """A whole UTC hour ``hours_ago`` back (long settled) and a request for it."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start -= timedelta(hours=hours_ago)
    request = {
        "advertiserIds": ["321"],
        "dimensions": ["advertiserId"],
        "startDate": start.isoformat().replace("+00:00", "Z"),
        "endDate": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
    }
    return start, request


def test_reuse_answer_says_reused_and_how_old(api: Api) -> None:
    headers = api.token()
    base = _at(api, datetime.now(UTC))
    fresh = api.create(RELATIVE, headers)
    assert (fresh.headers["x-mpo-reused"], fresh.headers.get("age")) == ("false", None)
    _at(api, base + timedelta(seconds=42.9))

    reused = api.create(RELATIVE, headers)

    assert reused.json()["exportId"] == fresh.json()["exportId"]
    assert (reused.headers["x-mpo-reused"], reused.headers["age"]) == ("true", "42")
    # The body stays exactly the source's shape, as with the JSON:API switch: the
    # official SDK fails on members it does not know, and ignores unknown headers.
    assert reused.json() == {
        "exportId": fresh.json()["exportId"],
        "status": "Pending",
        "message": None,
    }
    wrapped = api.create(RELATIVE, {**headers, "X-MPO-Envelope": "jsonapi"})
    assert set(wrapped.json()) == {"data", "warnings", "errors"}
    assert wrapped.headers["x-mpo-reused"] == "true"


def test_reuse_relative_request_only_within_the_window(api: Api) -> None:
    headers = api.token()
    base = _at(api, datetime.now(UTC))
    first = api.create(RELATIVE, headers).json()["exportId"]
    _at(api, base + timedelta(seconds=59))
    assert api.create(RELATIVE, headers).json()["exportId"] == first
    _at(api, base + timedelta(seconds=60))
    assert api.create(RELATIVE, headers).json()["exportId"] != first


def test_reuse_absolute_interval_not_yet_settled_only_within_the_window(api: Api) -> None:
    """The settle rule: an interval that ended 2 minutes ago may still get events."""
    base = _at(api, datetime.now(UTC))
    end = base.replace(second=0, microsecond=0) - timedelta(minutes=2)
    request = {
        "advertiserIds": ["321"],
        "startDate": (end - timedelta(hours=1)).isoformat(),
        "endDate": end.isoformat(),
    }
    headers = api.token()
    first = api.create(request, headers).json()["exportId"]
    api.run_jobs()
    _at(api, base + timedelta(seconds=59))
    assert api.create(request, headers).json()["exportId"] == first
    _at(api, base + timedelta(seconds=60))
    assert api.create(request, headers).json()["exportId"] != first


def test_reuse_settled_interval_ends_with_a_late_write_into_it(api: Api) -> None:
    start, request = _settled_hour(3)
    headers = api.token()
    writer = api.token(advertisers=[321, 322], roles=[Role.INGEST])
    first = api.create(request, headers).json()["exportId"]
    api.run_jobs()
    assert api.create(request, headers).json()["exportId"] == first

    # Late events of other advertisers or other hours leave the export as it is ...
    for event in (
        ingest_event(age=datetime.now(UTC) - start - timedelta(minutes=5), advertiserId="322"),
        ingest_event(age=datetime.now(UTC) - start + timedelta(minutes=30)),
    ):
        answer = api.http.post(INGEST, content=orjson.dumps([event]), headers=writer)
        assert answer.status_code == 200, answer.text
    assert api.create(request, headers).json()["exportId"] == first

    # ... one of its advertiser inside its interval does not.
    late = ingest_event(age=datetime.now(UTC) - start - timedelta(minutes=59), clicks=7)
    assert api.http.post(INGEST, content=orjson.dumps([late]), headers=writer).status_code == 200
    asked = _at(api, datetime.now(UTC) + timedelta(seconds=2))  # asking again a bit later
    second = api.create(request, headers)
    assert second.headers["x-mpo-reused"] == "false"
    assert second.json()["exportId"] != first
    api.run_jobs()
    assert api.download(second.json()["exportId"], headers).content.endswith(b"\n321,7,3,0.25\n")
    # The new export is settled in turn, and reused.
    _at(api, asked + timedelta(hours=2))
    assert api.create(request, headers).json()["exportId"] == second.json()["exportId"]


def test_reuse_never_hands_out_an_export_created_with_the_write_in_flight(api: Api) -> None:
    start, request = _settled_hour(4)
    writer = api.token(roles=[Role.INGEST])
    event = ingest_event(age=datetime.now(UTC) - start - timedelta(minutes=10))
    assert api.http.post(INGEST, content=orjson.dumps([event]), headers=writer).status_code == 200
    written = api.services.events.last_write((321,), start, start + timedelta(hours=1))
    assert written is not None
    headers = api.token()

    # Within a second of the write its commit may not be visible yet: not reused.
    _at(api, written + timedelta(milliseconds=900))
    first = api.create(request, headers).json()["exportId"]
    assert api.create(request, headers).json()["exportId"] != first
    _at(api, written + timedelta(seconds=5))
    later = api.create(request, headers).json()["exportId"]
    assert api.create(request, headers).json()["exportId"] == later


def test_reuse_no_cache_makes_a_new_export_within_the_hourly_quota(api: Api) -> None:
    headers = api.token(exports_per_hour=2)
    first = api.create(RELATIVE, headers).json()["exportId"]

    fresh = api.create(RELATIVE, {**headers, "Cache-Control": "no-cache"})
    assert fresh.headers["x-mpo-reused"] == "false"
    assert fresh.json()["exportId"] != first
    # Identical requests now share the fresh export, for free.
    assert api.create(RELATIVE, headers).json()["exportId"] == fresh.json()["exportId"]
    over = api.create(RELATIVE, {**headers, "Cache-Control": "no-cache"})
    assert over.status_code == 429
    assert [e["code"] for e in over.json()["errors"]] == ["too-many-requests"]


@pytest.mark.parametrize(
    ("cache_control", "reused"),
    [
        ("max-age=60", True),
        ("max-age=30", True),
        ("max-age=29", False),
        ('no-store, max-age="90"', True),
        ("max-age=0", False),
        ("private, NO-CACHE", False),
        ("max-age=abc", True),
    ],
)
def test_reuse_max_age_bounds_the_age_of_a_reused_export(
    api: Api, cache_control: str, reused: bool
) -> None:
    headers = api.token()
    base = _at(api, datetime.now(UTC))
    first = api.create(RELATIVE, headers).json()["exportId"]
    _at(api, base + timedelta(seconds=30))

    answer = api.create(RELATIVE, {**headers, "Cache-Control": cache_control})

    assert (answer.json()["exportId"] == first) is reused
    assert answer.headers["x-mpo-reused"] == ("true" if reused else "false")


@pytest.fixture(params=["sqlite", "postgresql"])
def api_on_each_job_store(
    request: pytest.FixtureRequest, api_factory: Callable[..., Api]
) -> Iterator[Api]:
    if request.param == "sqlite":
        yield api_factory()
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    with fresh_postgres_database(admin_url) as url:
        api = api_factory(job_store_url=url)
        yield api
        api.services.jobs.close()  # before the database is dropped


def test_reuse_fifty_concurrent_identical_creates_make_one_export(
    api_on_each_job_store: Api,
) -> None:
    api = api_on_each_job_store
    headers = [api.token() for _ in range(5)]
    answers: list[Any] = []
    start = threading.Barrier(50)

    def create(index: int) -> None:
        start.wait()
        answers.append(api.create(RELATIVE, headers[index % 5]))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert [answer.status_code for answer in answers] == [200] * 50
    assert len({answer.json()["exportId"] for answer in answers}) == 1
    assert sorted(answer.headers["x-mpo-reused"] for answer in answers) == ["false"] + ["true"] * 49
    assert sum(api.services.jobs.status_counts().values()) == 1


def test_reuse_two_api_processes_on_one_postgresql_make_one_export(
    api_factory: Callable[..., Api], postgres_admin_url: str, tmp_path: Path
) -> None:
    """Two services (as two API processes of the scale-out deployment) share one job store."""
    with fresh_postgres_database(postgres_admin_url) as url:
        apis = [api_factory(job_store_url=url, data_dir=tmp_path / name) for name in "ab"]
        headers = apis[0].token()
        answers: list[Any] = []
        start = threading.Barrier(50)

        def create(index: int) -> None:
            start.wait()
            answers.append(apis[index % 2].create(RELATIVE, headers))

        threads = [threading.Thread(target=create, args=(i,)) for i in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        counts = apis[0].services.jobs.status_counts()
        for api in apis:
            api.services.jobs.close()  # before the database is dropped

    assert [answer.status_code for answer in answers] == [200] * 50
    assert len({answer.json()["exportId"] for answer in answers}) == 1
    assert sum(counts.values()) == 1


def test_reuse_hourly_quota_is_shared_by_two_api_processes(
    api_factory: Callable[..., Api], postgres_admin_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Two services on one PostgreSQL and one Redis: concurrent creates of one client,
    half through each, make exactly its hourly quota of new exports."""
    distinct = [{**RELATIVE, "lookbackWindow": 180 + 60 * i} for i in range(12)]
    with fresh_postgres_database(postgres_admin_url) as url:
        shared = {
            "job_store_url": url,
            "rate_limit_storage_url": redis_url,
            "rate_limit_namespace": f"mpo-test-{uuid.uuid4().hex}",
        }
        apis = [api_factory(data_dir=tmp_path / name, **shared) for name in "ab"]
        headers = apis[0].token(exports_per_hour=5)
        answers: list[Any] = []
        start = threading.Barrier(24)

        def create(index: int) -> None:
            start.wait()
            # every distinct request once through each API
            answers.append(apis[index % 2].create(distinct[index // 2], headers))

        threads = [threading.Thread(target=create, args=(i,)) for i in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        counts = apis[1].services.jobs.status_counts()
        for api in apis:
            api.services.jobs.close()  # before the database is dropped

    assert len(answers) == 24
    assert {answer.status_code for answer in answers} == {200, 429}
    created = {answer.json()["exportId"] for answer in answers if answer.status_code == 200}
    assert len(created) == 5
    assert sum(counts.values()) == 5
