"""Details of the export service that mutation testing found unpinned (docs/testing.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mpo_realtime.domain.errors import ProblemError
from mpo_realtime.domain.jobs import Role
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
