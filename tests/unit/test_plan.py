"""Query plans: a valid request becomes exactly the plan an event store computes.

The step from request to plan is where a dropped filter or zone would go unseen by any
test that builds its expectation from the plan itself, so every field is checked here
against the request, and the JSON form the job store keeps must give the same plan back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mpo_realtime.domain.buckets import bucket_pieces
from mpo_realtime.domain.plan import ID_COLUMNS, QueryPlan, plan_for
from mpo_realtime.domain.report import Dimension, Metric, parse_report_request

NOW = datetime(2026, 11, 29, 15, 2, tzinfo=UTC)
START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
END = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


def _every_field_request() -> QueryPlan:
    body = {
        "data": {
            "type": "RealTimeProductReportJob",
            "attributes": {
                "advertiserIds": ["321", "9"],
                "campaignIds": ["12345"],
                "sellerIds": ["254614150", "3"],
                "partnerIds": ["7"],
                "dimensions": ["day", "sellerId", "partnerId"],
                "metrics": ["cost", "clicks"],
                "startDate": "2026-11-20T10:00:00Z",
                "endDate": "2026-11-20T11:00:00Z",
                "timezone": "asia/kolkata",
                "fileFormat": "Json",
            },
        }
    }
    spec = parse_report_request(body, now=NOW, retention=timedelta(days=45))
    return plan_for(spec)


def test_plan_for_carries_every_filter_dimension_metric_and_zone_of_the_request() -> None:
    plan = _every_field_request()
    assert plan == QueryPlan(
        start=START,
        end=END,
        advertiser_ids=(9, 321),
        campaign_ids=(12345,),
        seller_ids=(3, 254614150),
        partner_ids=(7,),
        dimensions=(Dimension.DAY, Dimension.SELLER_ID, Dimension.PARTNER_ID),
        metrics=(Metric.COST, Metric.CLICKS),
        timezone="Asia/Kolkata",
    )


def test_plan_filters_name_the_roll_up_columns_and_columns_the_api_names() -> None:
    plan = _every_field_request()
    assert plan.filters == {
        "advertiser_id": (9, 321),
        "campaign_id": (12345,),
        "seller_id": (3, 254614150),
        "partner_id": (7,),
    }
    assert plan.columns == ("day", "sellerId", "partnerId", "cost", "clicks")


def test_plan_defaults_are_one_row_per_advertiser_with_every_metric_in_utc() -> None:
    plan = QueryPlan(start=START, end=END, advertiser_ids=(321,))
    assert plan.filters == {
        "advertiser_id": (321,),
        "campaign_id": (),
        "seller_id": (),
        "partner_id": (),
    }
    assert plan.columns == ("advertiserId", "clicks", "displays", "cost")
    assert plan.timezone == "UTC"


def test_plan_json_form_gives_the_same_plan_back() -> None:
    plan = _every_field_request()
    stored = plan.to_json()
    assert stored == {
        "start": "2026-11-20T10:00:00+00:00",
        "end": "2026-11-20T11:00:00+00:00",
        "advertiserIds": [9, 321],
        "campaignIds": [12345],
        "sellerIds": [3, 254614150],
        "partnerIds": [7],
        "dimensions": ["day", "sellerId", "partnerId"],
        "metrics": ["cost", "clicks"],
        "timezone": "Asia/Kolkata",
    }
    assert QueryPlan.from_json(stored) == plan


def test_plan_buckets_are_those_of_its_zone_and_interval() -> None:
    plan = _every_field_request()
    assert plan.buckets(Dimension.DAY) == bucket_pieces("Asia/Kolkata", Dimension.DAY, START, END)
    # Kolkata's day starts at 18:30 UTC: not the UTC day a zone-less plan would use.
    assert plan.buckets(Dimension.DAY)[0].start == datetime(2026, 11, 19, 18, 30, tzinfo=UTC)


def test_plan_id_columns_are_the_roll_up_columns_of_the_entity_dimensions() -> None:
    assert ID_COLUMNS == {
        Dimension.ADVERTISER_ID: "advertiser_id",
        Dimension.PARTNER_ID: "partner_id",
        Dimension.CAMPAIGN_ID: "campaign_id",
        Dimension.SELLER_ID: "seller_id",
        Dimension.PRODUCT_ID: "product_id",
    }
