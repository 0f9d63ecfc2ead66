"""Random valid requests against random events: the downloaded file equals a naive reference."""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpo_realtime.domain.jobs import Role
from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import Dimension, Metric
from tests.acceptance.conftest import Api
from tests.reference import Event, expected_rows, format_bucket, rollup_table

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu"]
# Around the 2026 DST changes of Europe and America, and an ordinary day.
ANCHORS = [
    datetime(2026, 3, 8, 5, tzinfo=UTC),
    datetime(2026, 3, 29, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 4, tzinfo=UTC),
]
ENTITY = [1, 2, 3]
PRODUCTS = ["a", "b,c", 'q"uote', "é", "Z"]
_EXAMPLE = itertools.count()
SCOPE = list(range(10_000, 10_400))


@st.composite
def events_for(draw: st.DrawFn, advertiser: int) -> list[Event]:
    anchor = draw(st.sampled_from(ANCHORS))
    rows = draw(
        st.lists(
            st.builds(
                Event,
                minute=st.integers(0, 36 * 60).map(lambda m: anchor + timedelta(minutes=m)),
                advertiser_id=st.sampled_from([advertiser, advertiser + 1]),
                partner_id=st.sampled_from(ENTITY),
                campaign_id=st.sampled_from(ENTITY),
                seller_id=st.sampled_from(ENTITY),
                product_id=st.sampled_from(PRODUCTS),
                # at the per-event caps too, and many small costs such as 0.1
                displays=st.integers(1, 1000) | st.just(10**6),
                clicks=st.integers(0, 50) | st.just(10**6),
                cost=st.decimals(0, 1000, places=9)
                | st.sampled_from(
                    [Decimal("0.1"), Decimal("0.000000001"), Decimal("999999.999999999")]
                ),
            ),
            min_size=5,
            max_size=80,
        )
    )
    return rows


@st.composite
def request_for(draw: st.DrawFn, events: list[Event], advertiser: int) -> dict[str, Any]:
    exclusive = draw(
        st.sampled_from([None, Dimension.PRODUCT_ID, Dimension.HOUR, Dimension.MINUTE])
    )
    bucket = (
        None
        if exclusive in (Dimension.HOUR, Dimension.MINUTE)
        else draw(
            st.sampled_from([None, Dimension.DAY, Dimension.WEEK, Dimension.MONTH, Dimension.YEAR])
        )
    )
    pool = [
        Dimension.ADVERTISER_ID,
        Dimension.PARTNER_ID,
        Dimension.CAMPAIGN_ID,
        Dimension.SELLER_ID,
    ]
    pool += [d for d in (exclusive, bucket) if d is not None]
    dimensions = draw(
        st.permutations(pool).flatmap(lambda p: st.integers(1, len(p)).map(lambda n: p[:n]))
    )
    metrics = draw(
        st.permutations(list(Metric)).flatmap(lambda p: st.integers(1, 3).map(lambda n: p[:n]))
    )
    first = min(e.minute for e in events)
    # Mostly intervals that hold most events; sometimes narrow or empty ones.
    start = first + timedelta(minutes=draw(st.sampled_from([-90, -1, 0, 0, 0, 30, 600])))
    end = start + timedelta(minutes=draw(st.sampled_from([1, 60, 600, 36 * 60, 48 * 60, 48 * 60])))
    attributes: dict[str, Any] = {
        "advertiserIds": [
            str(a) for a in draw(st.sampled_from([[advertiser], [advertiser, advertiser + 1]]))
        ],
        "dimensions": [d.value for d in dimensions],
        "metrics": [m.value for m in metrics],
        "startDate": start.isoformat(),
        "endDate": end.isoformat(),
        "timezone": draw(st.sampled_from(ZONES)),
        "fileFormat": draw(st.sampled_from(["csv", "json"])),
    }
    for name in ("campaignIds", "sellerIds", "partnerIds"):
        if draw(st.integers(0, 5)) == 0:
            attributes[name] = [str(i) for i in draw(st.lists(st.sampled_from(ENTITY), min_size=1))]
    return attributes


def _text(value: Any, timezone: str) -> str:
    """What the file must print for a reference value: numbers plainly, to the digit."""
    if isinstance(value, datetime):
        return format_bucket(value, timezone)
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def _rows_of(answer: Any, file_format: str) -> tuple[list[str], list[list[str]]]:
    """Every cell as the text the file holds (JSON numbers as their literal)."""
    if file_format == "json":
        body = json.loads(answer.content, parse_int=str, parse_float=str)
        assert body["rows"] == str(len(body["data"]))
        return body["columns"], body["data"]
    table = list(csv.reader(io.StringIO(answer.content.decode("utf-8"), newline="")))
    return table[0], table[1:]


def test_export_matches_the_naive_reference(api: Api) -> None:
    client, _ = api.services.clients.create(
        "property", advertiser_ids=SCOPE, roles=[Role.REPORT], now=datetime.now(UTC)
    )
    token = api.services.clients.issue_token(client, now=datetime.now(UTC)).access_token
    headers = {"Authorization": f"Bearer {token}"}

    @given(data=st.data())
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    def check(data: st.DataObject) -> None:
        advertiser = SCOPE[2 * (next(_EXAMPLE) % (len(SCOPE) // 2))]
        events = data.draw(events_for(advertiser))
        attributes = data.draw(request_for(events, advertiser))
        api.services.events.append(rollup_table(events))
        created = api.create(attributes, headers)
        if created.status_code == 403:  # a filter none of whose IDs the advertisers have
            assert created.json()["errors"][0]["code"] == "no-campaign-found-in-scope"
            return
        assert created.status_code == 200, created.text
        api.run_jobs()
        answer = api.download(created.json()["exportId"], headers)
        assert answer.status_code == 200
        job = api.services.jobs.get_job(created.json()["exportId"])
        assert job is not None
        plan = QueryPlan.from_json(job.spec["plan"])
        expected = [[_text(v, plan.timezone) for v in row] for row in expected_rows(events, plan)]
        columns, rows = _rows_of(answer, attributes["fileFormat"])
        assert columns == list(plan.columns)
        assert rows == expected  # exact: costs to the last digit, in CSV and JSON alike

    check()
