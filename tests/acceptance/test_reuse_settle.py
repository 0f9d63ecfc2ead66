"""The settle rule of reuse at its boundary, with the service's clock stopped.

An absolute interval that ended at least ``settle_seconds`` (10 minutes) before the
create is settled: an identical request reuses its export until it expires. One that
ended later is reused only within the relative window (60 s). test_reuse.py pins each
side well away from the boundary; these pin the boundary itself, to the microsecond.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.acceptance.conftest import Api

SETTLE = timedelta(minutes=10)
WINDOW = timedelta(seconds=60)
#: a past interval's end (the event store has no write into it)
END = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _request(advertiser: str) -> dict[str, Any]:
    return {
        "advertiserIds": [advertiser],
        "startDate": (END - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "endDate": END.isoformat().replace("+00:00", "Z"),
    }


def _create_at(api: Api, moment: datetime, request: dict[str, Any], headers: Any) -> str:
    api.services.exports.clock = lambda: moment
    answer = api.create(request, headers)
    assert answer.status_code == 200, answer.text
    export_id: str = answer.json()["exportId"]
    return export_id


@pytest.mark.parametrize(
    ("asked", "settled"),
    [
        (END + SETTLE, True),  # exactly settled
        (END + SETTLE - timedelta(microseconds=1), False),
        (END + SETTLE + timedelta(microseconds=1), True),
    ],
)
def test_settle_boundary_decides_reuse_beyond_the_window(
    api: Api, asked: datetime, settled: bool
) -> None:
    headers = api.token(advertisers=[321])
    request = _request("321")
    first = _create_at(api, asked, request, headers)
    assert api.run_jobs() == 1
    # Within the window every identical request is reused ...
    assert _create_at(api, asked + WINDOW - timedelta(microseconds=1), request, headers) == first
    # ... beyond it only a settled one, for hours.
    later = _create_at(api, asked + timedelta(hours=2), request, headers)
    assert (later == first) is settled


def test_reuse_window_ends_exactly_after_sixty_seconds(api: Api) -> None:
    headers = api.token(advertisers=[321])
    request = _request("321")
    asked = END + timedelta(minutes=1)  # not settled
    first = _create_at(api, asked, request, headers)
    assert _create_at(api, asked + WINDOW - timedelta(microseconds=1), request, headers) == first
    assert _create_at(api, asked + WINDOW, request, headers) != first
