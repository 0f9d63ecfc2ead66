"""Report requests: every validation rule of a create body, straight on the parser.

The acceptance tests (``tests/acceptance/test_validation.py``) check the HTTP answers;
these pin the parser itself: which problems, with which code, detail, pointer and
conflict flag, and the canonical spec a valid body gives. The details are what a client
reads to fix its request, so their wording is part of what is tested.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from mpo_realtime.domain.errors import ErrorCode, ProblemError
from mpo_realtime.domain.report import (
    Dimension,
    FileFormat,
    Metric,
    ReportSpec,
    parse_report_request,
)
from mpo_realtime.domain.zones import tzdata_version

NOW = datetime(2026, 11, 29, 15, 2, tzinfo=UTC)
RETENTION = timedelta(days=45)
P = "/data/attributes/"
ALL_DIMENSIONS = (
    "'advertiserId', 'partnerId', 'campaignId', 'sellerId', 'productId', 'minute', 'hour',"
    " 'day', 'week', 'month', 'year'"
)

Found = tuple[ErrorCode, str, str | None, bool]


def _body(**attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "RealTimeProductReportJob",
            "attributes": {"advertiserIds": ["321"], "lookbackWindow": 60, **attributes},
        }
    }


def _parse(body: Any, max_ids: int = 10_000) -> ReportSpec:
    return parse_report_request(body, now=NOW, retention=RETENTION, max_ids=max_ids)


def _problems(body: Any, max_ids: int = 10_000) -> list[Found]:
    with pytest.raises(ProblemError) as raised:
        _parse(body, max_ids)
    return [(p.code, p.detail, p.pointer, p.conflict) for p in raised.value.problems]


Q, J = ErrorCode.INVALID_QUERY, ErrorCode.JSON_SERIALIZATION
COMBINATION = ErrorCode.INVALID_DIMENSION_COMBINATION

REFUSED: list[tuple[str, Any, list[Found]]] = [
    ("body not an object", [1], [(J, "the body must be a JSON object", None, False)]),
    ("no data", {}, [(Q, "data is required", "/data", False)]),
    ("data not an object", {"data": 3}, [(J, "data must be an object", None, False)]),
    (
        "wrong type",
        {"data": {"type": "Other", "attributes": {"advertiserIds": ["1"], "lookbackWindow": 60}}},
        [(Q, "data.type must be 'RealTimeProductReportJob'", "/data/type", False)],
    ),
    (
        "type not a string",
        {"data": {"type": 5, "attributes": {"advertiserIds": ["1"], "lookbackWindow": 60}}},
        [(Q, "data.type must be 'RealTimeProductReportJob'", "/data/type", False)],
    ),
    (
        "type and attributes missing",
        {"data": {"type": "x"}},
        [
            (Q, "data.type must be 'RealTimeProductReportJob'", "/data/type", False),
            (Q, "data.attributes is required", "/data/attributes", False),
        ],
    ),
    (
        "attributes not an object",
        {"data": {"attributes": []}},
        [(J, "data.attributes must be an object", None, False)],
    ),
    (
        "advertiserIds missing",
        {"data": {"attributes": {"lookbackWindow": 60}}},
        [(Q, "advertiserIds is required", P + "advertiserIds", False)],
    ),
    (
        "advertiserIds empty",
        _body(advertiserIds=[]),
        [(Q, "advertiserIds is required", P + "advertiserIds", False)],
    ),
    (
        "advertiserIds not a list",
        _body(advertiserIds="321"),
        [(J, "data.attributes.advertiserIds must be an array of strings", None, False)],
    ),
    (
        "campaignIds not a list",
        _body(campaignIds=12),
        [(J, "data.attributes.campaignIds must be an array of strings", None, False)],
    ),
    (
        "invalid IDs, each named with its index",
        _body(partnerIds=["12", "-1", 1.5, True, 2**63, "\u0663", "x" * 100, -2, None]),
        [
            (
                Q,
                f"partnerIds[{i}] {shown} is not a valid ID: IDs are decimal digit strings",
                p,
                False,
            )
            for i, shown, p in [
                (1, '"-1"', P + "partnerIds/1"),
                (2, "1.5", P + "partnerIds/2"),
                (3, "true", P + "partnerIds/3"),
                (4, "9223372036854775808", P + "partnerIds/4"),
                (5, '"\u0663"', P + "partnerIds/5"),
                (6, '"' + "x" * 63, P + "partnerIds/6"),
                (7, "-2", P + "partnerIds/7"),
                (8, "null", P + "partnerIds/8"),
            ]
        ],
    ),
    (
        "dimensions not a list",
        _body(dimensions="day"),
        [(J, "data.attributes.dimensions must be an array of strings", None, False)],
    ),
    (
        "a name that is not a string, and the names after it",
        _body(metrics=["clicks", 3, "views"]),
        [
            (J, "data.attributes.metrics[1] must be a string", None, False),
            (
                Q,
                "metrics[2] 'views' is not supported; one of 'clicks', 'displays', 'cost'",
                P + "metrics/2",
                False,
            ),
        ],
    ),
    (
        "unknown names, one not supported yet",
        _body(dimensions=["day", "sellerName", "b" * 80]),
        [
            (
                Q,
                f"dimensions[1] 'sellerName' is not supported (not supported yet); one of"
                f" {ALL_DIMENSIONS}",
                P + "dimensions/1",
                False,
            ),
            (
                Q,
                f"dimensions[2] '{'b' * 64}' is not supported; one of {ALL_DIMENSIONS}",
                P + "dimensions/2",
                False,
            ),
        ],
    ),
    (
        "two exclusive dimensions",
        _body(dimensions=["productId", "day", "hour"]),
        [
            (
                COMBINATION,
                "only one of productId, hour, minute can be used in a request; got productId, hour",
                P + "dimensions",
                True,
            )
        ],
    ),
    (
        "two time buckets",
        _body(dimensions=["day", "advertiserId", "week"]),
        [
            (
                COMBINATION,
                "only one time bucket (minute, hour, day, week, month, year) per request;"
                " got day, week",
                P + "dimensions",
                True,
            )
        ],
    ),
    (
        "file format unknown",
        _body(fileFormat="xls"),
        [
            (
                J,
                "data.attributes.fileFormat 'xls' not valid. Must be one of 'Csv','Json'",
                None,
                False,
            )
        ],
    ),
    (
        "file format not a string",
        _body(fileFormat=["csv"]),
        [
            (
                J,
                "data.attributes.fileFormat '[\"csv\"]' not valid. Must be one of 'Csv','Json'",
                None,
                False,
            )
        ],
    ),
    (
        "zone not a string",
        _body(timezone=3),
        [(J, "data.attributes.timezone must be a string", None, False)],
    ),
    (
        "zone unknown",
        _body(timezone="Mars/" + "b" * 70),
        [
            (
                Q,
                f"timezone 'Mars/{'b' * 59}' is not in the IANA time zone database"
                f" (tzdata {tzdata_version()}); give a zone name such as 'Europe/Paris'",
                P + "timezone",
                False,
            )
        ],
    ),
    (
        "interval problems come with the others, the zone's last",
        _body(lookbackWindow=10, timezone="Nowhere", advertiserIds=["x"]),
        [
            (
                Q,
                'advertiserIds[0] "x" is not a valid ID: IDs are decimal digit strings',
                P + "advertiserIds/0",
                False,
            ),
            (
                ErrorCode.INVALID_LOOKBACK_WINDOW,
                "lookbackWindow 10 is outside 60-1440 minutes",
                P + "lookbackWindow",
                False,
            ),
            (
                Q,
                f"timezone 'Nowhere' is not in the IANA time zone database"
                f" (tzdata {tzdata_version()}); give a zone name such as 'Europe/Paris'",
                P + "timezone",
                False,
            ),
        ],
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_report_refused_bodies_give_each_problem(body: Any, expected: list[Found]) -> None:
    with pytest.raises(ProblemError) as raised:
        _parse(body)
    assert [(p.code, p.detail, p.pointer, p.conflict) for p in raised.value.problems] == expected
    assert raised.value.warnings == []  # none of these bodies has a warning to give


def test_report_body_that_is_not_json_is_one_serialization_error() -> None:
    [(code, detail, pointer, _)] = _problems(b'{"data": ')
    assert (code, pointer) == (J, None)
    assert detail.startswith("the request body is not valid JSON: ")


@pytest.mark.parametrize(
    ("name", "field", "max_ids", "problem"),
    [
        ("advertiserIds", "advertiser_ids", 2, "advertiserIds holds 3 IDs; at most 2"),
        ("sellerIds", "seller_ids", 2, "sellerIds holds 3 IDs; at most 2"),
    ],
)
def test_report_id_lists_longer_than_the_limit_are_refused(
    name: str, field: str, max_ids: int, problem: str
) -> None:
    assert _problems(_body(**{name: ["1", "2", "3"]}), max_ids) == [(Q, problem, P + name, False)]
    # At the limit exactly, the list is accepted.
    assert getattr(_parse(_body(**{name: ["1", "2"]}), max_ids), field) == (1, 2)


def test_report_id_limit_is_10000_by_default() -> None:
    ids = [str(n) for n in range(10_001)]
    with pytest.raises(ProblemError) as raised:
        parse_report_request(_body(campaignIds=ids), now=NOW, retention=RETENTION)
    assert [p.detail for p in raised.value.problems] == [
        "campaignIds holds 10001 IDs; at most 10000"
    ]
    spec = parse_report_request(_body(campaignIds=ids[:10_000]), now=NOW, retention=RETENTION)
    assert len(spec.campaign_ids) == 10_000


def test_report_name_lists_longer_than_64_entries_are_refused() -> None:
    assert _problems(_body(metrics=["clicks"] * 65)) == [
        (Q, "metrics holds 65 entries; at most 64", P + "metrics", False)
    ]
    # 64 entries are accepted (63 of them dropped as repeats).
    spec = _parse(_body(metrics=["clicks"] * 64))
    assert spec.metrics == (Metric.CLICKS,)
    assert len(spec.warnings) == 63


def test_report_minimal_body_gives_the_defaults() -> None:
    spec = _parse({"data": {"attributes": {"advertiserIds": ["321"], "lookbackWindow": 60}}})
    assert spec == ReportSpec(
        advertiser_ids=(321,),
        advertisers_as_requested=((0, 321),),
        start=datetime(2026, 11, 29, 14, 2, tzinfo=UTC),
        end=NOW,
        file_format=FileFormat.CSV,
        dimensions=(Dimension.ADVERTISER_ID,),
        metrics=(Metric.CLICKS, Metric.DISPLAYS, Metric.COST),
        timezone="UTC",
        lookback_window=60,
        open_ended=True,
    )
    assert spec.warnings == ()
    assert spec.columns == ("advertiserId", "clicks", "displays", "cost")


def test_report_full_body_is_canonical() -> None:
    body = _body(
        advertiserIds=["9", 321, "9", "0"],
        campaignIds=["12345"],
        sellerIds=[3],
        partnerIds=["7", "7"],
        dimensions=["DAY", "sellerid"],
        metrics=["Cost"],
        timezone="europe/paris",
        fileFormat="JSON",
    )
    spec = _parse(orjson.dumps(body))
    assert (spec.advertiser_ids, spec.campaign_ids, spec.seller_ids, spec.partner_ids) == (
        (0, 9, 321),
        (12345,),
        (3,),
        (7,),
    )
    # Where each advertiser first is in the request, for the pointers of later refusals.
    assert spec.advertisers_as_requested == ((0, 9), (1, 321), (3, 0))
    assert spec.dimensions == (Dimension.DAY, Dimension.SELLER_ID)
    assert spec.metrics == (Metric.COST,)
    assert spec.timezone == "Europe/Paris"
    assert spec.file_format is FileFormat.JSON
    assert spec.columns == ("day", "sellerId", "cost")
    assert [(w.code, w.pointer) for w in spec.warnings] == [
        (ErrorCode.DUPLICATE_VALUE, P + "advertiserIds/2"),
        (ErrorCode.DUPLICATE_VALUE, P + "partnerIds/1"),
    ]


@pytest.mark.parametrize(
    ("given", "expected"),
    [("csv", FileFormat.CSV), ("Json", FileFormat.JSON), ("PARQUET", FileFormat.PARQUET)],
)
def test_report_file_formats_are_matched_in_any_case(given: str, expected: FileFormat) -> None:
    assert _parse(_body(fileFormat=given)).file_format is expected


def test_report_file_format_content_types_and_extension() -> None:
    assert [(f.content_type, f.is_extension) for f in FileFormat] == [
        ("text/csv", False),
        ("application/json", False),
        ("application/vnd.apache.parquet", True),
    ]


def test_report_repeated_ids_are_dropped_with_one_warning_per_list() -> None:
    spec = _parse(
        _body(
            advertiserIds=["321", "322", 321, "0322", "321"],
            sellerIds=["5", "6"],
            campaignIds=["7", "7"],
        )
    )
    assert spec.advertiser_ids == (321, 322)
    assert spec.advertisers_as_requested == ((0, 321), (1, 322))
    assert spec.seller_ids == (5, 6)
    assert spec.campaign_ids == (7,)
    assert [(w.code, w.detail, w.pointer) for w in spec.warnings] == [
        (
            ErrorCode.DUPLICATE_VALUE,
            "advertiserIds repeats 3 ID(s), the first at advertiserIds[2] (321);"
            " each repeat was dropped",
            P + "advertiserIds/2",
        ),
        (
            ErrorCode.DUPLICATE_VALUE,
            "campaignIds repeats 1 ID(s), the first at campaignIds[1] (7); each repeat was dropped",
            P + "campaignIds/1",
        ),
    ]


def test_report_type_is_matched_in_any_case_and_may_be_left_out() -> None:
    typed = {
        "data": {"type": "realtimeproductreportjob", "attributes": _body()["data"]["attributes"]}
    }
    untyped = {"data": {"attributes": _body()["data"]["attributes"]}}
    assert _parse(typed) == _parse(untyped) == _parse(_body())


def test_report_repeated_names_are_dropped_with_a_warning_each() -> None:
    spec = _parse(_body(dimensions=["day", "advertiserId", "Day"], metrics=["cost", "COST"]))
    assert spec.dimensions == (Dimension.DAY, Dimension.ADVERTISER_ID)
    assert spec.metrics == (Metric.COST,)
    assert [(w.code, w.detail, w.pointer) for w in spec.warnings] == [
        (
            ErrorCode.DUPLICATE_VALUE,
            "dimensions[2] 'day' repeats an earlier entry and was dropped",
            P + "dimensions/2",
        ),
        (
            ErrorCode.DUPLICATE_VALUE,
            "metrics[1] 'cost' repeats an earlier entry and was dropped",
            P + "metrics/1",
        ),
    ]


def test_report_unknown_attributes_are_ignored_with_a_warning_each_in_name_order() -> None:
    spec = _parse(_body(zeta=1, currency="EUR", alpha=[], omitted=None))
    assert [(w.code, w.detail, w.pointer) for w in spec.warnings] == [
        (
            ErrorCode.IGNORED_ATTRIBUTE,
            "alpha is not a known attribute and was ignored",
            P + "alpha",
        ),
        (
            ErrorCode.IGNORED_ATTRIBUTE,
            "currency is not supported yet and was ignored",
            P + "currency",
        ),
        (ErrorCode.IGNORED_ATTRIBUTE, "zeta is not a known attribute and was ignored", P + "zeta"),
    ]


def test_report_warnings_come_with_the_errors_of_a_refused_body() -> None:
    with pytest.raises(ProblemError) as raised:
        _parse(_body(extra=1, fileFormat="xls"))
    assert [w.code for w in raised.value.warnings] == [ErrorCode.IGNORED_ATTRIBUTE]


def test_report_empty_name_lists_mean_the_defaults() -> None:
    spec = _parse(_body(dimensions=[], metrics=[]))
    assert spec.dimensions == (Dimension.ADVERTISER_ID,)
    assert spec.metrics == (Metric.CLICKS, Metric.DISPLAYS, Metric.COST)


@pytest.mark.parametrize(
    "dimensions",
    [["productId", "day"], ["hour", "advertiserId"], ["minute"], ["year", "campaignId"]],
)
def test_report_one_exclusive_dimension_goes_with_others(dimensions: list[str]) -> None:
    assert [str(d) for d in _parse(_body(dimensions=dimensions)).dimensions] == dimensions


def test_report_time_dimensions() -> None:
    assert {d for d in Dimension if d.is_time} == {
        Dimension.MINUTE,
        Dimension.HOUR,
        Dimension.DAY,
        Dimension.WEEK,
        Dimension.MONTH,
        Dimension.YEAR,
    }


def test_report_interval_of_the_request_gives_the_spec_bounds_and_warnings() -> None:
    body = _body(
        lookbackWindow=None, startDate="2026-11-20T10:00:30Z", endDate="2026-11-20T11:00:00Z"
    )
    spec = _parse(body)
    assert (spec.start, spec.end) == (
        datetime(2026, 11, 20, 10, 1, tzinfo=UTC),
        datetime(2026, 11, 20, 11, 0, tzinfo=UTC),
    )
    assert (spec.lookback_window, spec.open_ended) == (None, False)
    assert [w.code for w in spec.warnings] == [ErrorCode.INTERVAL_ROUNDED]


def test_report_canonical_attributes_name_the_interval_as_requested() -> None:
    relative = _parse(_body(lookbackWindow=90, advertiserIds=["9", "1"]))
    assert relative.canonical_attributes() == {
        "fileFormat": "csv",
        "advertiserIds": [1, 9],
        "campaignIds": [],
        "sellerIds": [],
        "partnerIds": [],
        "dimensions": ["advertiserId"],
        "metrics": ["clicks", "displays", "cost"],
        "timezone": "UTC",
        "lookbackWindow": 90,
    }
    open_ended = _parse(_body(lookbackWindow=None, startDate="2026-11-29T10:00:00Z"))
    assert open_ended.canonical_attributes()["startDate"] == "2026-11-29T10:00:00+00:00"
    assert "endDate" not in open_ended.canonical_attributes()
    assert "lookbackWindow" not in open_ended.canonical_attributes()
    closed = _parse(
        _body(
            lookbackWindow=None,
            startDate="2026-11-29T10:00:00Z",
            endDate="2026-11-29T11:00:00Z",
            campaignIds=["5"],
            sellerIds=["6"],
            partnerIds=["8"],
            dimensions=["week"],
            metrics=["displays"],
            timezone="Asia/Tokyo",
            fileFormat="json",
        )
    )
    assert closed.canonical_attributes() == {
        "fileFormat": "json",
        "advertiserIds": [321],
        "campaignIds": [5],
        "sellerIds": [6],
        "partnerIds": [8],
        "dimensions": ["week"],
        "metrics": ["displays"],
        "timezone": "Asia/Tokyo",
        "startDate": "2026-11-29T10:00:00+00:00",
        "endDate": "2026-11-29T11:00:00+00:00",
    }


def test_report_largest_id_is_the_largest_signed_64_bit_integer() -> None:
    largest = str(2**63 - 1)
    assert _parse(_body(advertiserIds=[largest, 2**63 - 1])).advertiser_ids == (2**63 - 1,)
    assert [p[2] for p in _problems(_body(advertiserIds=[str(2**63)]))] == [P + "advertiserIds/0"]


def test_report_an_exclusive_time_dimension_with_another_time_bucket_is_refused() -> None:
    assert _problems(_body(dimensions=["hour", "day"])) == [
        (
            COMBINATION,
            "only one time bucket (minute, hour, day, week, month, year) per request;"
            " got hour, day",
            P + "dimensions",
            True,
        )
    ]
