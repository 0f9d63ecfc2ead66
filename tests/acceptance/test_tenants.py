"""Tenants cannot damage each other: ingest scope, fair runners, clean failure messages."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from mpo_realtime.domain.jobs import Role
from tests.acceptance.conftest import Api, ingest_event

INGEST = "/ingest/v1/events"
REQUEST = {"advertiserIds": ["321"], "dimensions": ["advertiserId"], "lookbackWindow": 180}


def _codes(answer: Any) -> list[str]:
    return [error["code"] for error in answer.json()["errors"]]


# -- ingest scope ------------------------------------------------------------------------


def test_ingest_event_of_an_advertiser_outside_the_scope_refuses_the_whole_request(
    api: Api,
) -> None:
    writer = api.token(advertisers=[321, 322], roles=[Role.INGEST])
    body = orjson.dumps([ingest_event(), ingest_event(advertiserId="999", clicks=50, cost=9.5)])

    answer = api.http.post(INGEST, content=body, headers={**writer, "Idempotency-Key": "k1"})

    assert answer.status_code == 403
    assert answer.json()["errors"] == [
        {
            "traceId": answer.headers["x-trace-id"],
            "type": "authorization",
            "code": "insufficient-accountpermissions",
            "title": "Insufficient account permissions",
            "detail": "advertiser 999 (first in event 2 of the request) is not in the scope of "
            "this client, which may write events of advertisers 321, 322; nothing was stored",
        }
    ]
    assert api.services.events.totals()["rows"] == 0
    # The victim's report shows nothing of it.
    victim = api.token(advertisers=[999])
    report = api.export({**REQUEST, "advertiserIds": ["999"]}, victim)
    assert report.content == b'"advertiserId","clicks","displays","cost"\n'
    # Nothing was remembered either: the key is free for the corrected request.
    retry = api.http.post(
        INGEST, content=orjson.dumps([ingest_event()]), headers={**writer, "Idempotency-Key": "k1"}
    )
    assert retry.json() == {"accepted": 1, "duplicate": False}


def test_ingest_scope_refusal_names_each_outside_advertiser_up_to_a_cap(api: Api) -> None:
    writer = api.token(advertisers=[321], roles=[Role.INGEST])
    events = [ingest_event(advertiserId=str(1000 + i)) for i in range(25)]

    answer = api.http.post(INGEST, content=orjson.dumps(events), headers=writer)

    details = [error["detail"] for error in answer.json()["errors"]]
    assert answer.status_code == 403
    assert len(details) == 21
    assert details[0].startswith("advertiser 1000 (first in event 1 of the request)")
    assert "may write events of advertiser 321;" in details[0]
    assert details[19].startswith("advertiser 1019 (first in event 20")
    assert details[20] == "5 more advertiser(s) outside the scope not listed; nothing was stored"
    assert api.services.events.totals()["rows"] == 0


def test_ingest_trusted_producer_writes_every_advertiser(api: Api) -> None:
    producer = api.token(advertisers=[], roles=[Role.INGEST], ingest_any_advertiser=True)
    body = orjson.dumps([ingest_event(advertiserId="999"), ingest_event(advertiserId="4242")])

    answer = api.http.post(INGEST, content=body, headers=producer)

    assert answer.json() == {"accepted": 2, "duplicate": False}
    owner = api.token(advertisers=[4242])
    report = api.export({**REQUEST, "advertiserIds": ["4242"]}, owner)
    assert report.content == b'"advertiserId","clicks","displays","cost"\n4242,1,3,0.25\n'


def test_ingest_trusted_producer_reads_only_its_own_scope(api: Api) -> None:
    client_id, secret = api.client(
        advertisers=[321], roles=[Role.INGEST, Role.REPORT], ingest_any_advertiser=True
    )
    token = api.http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    ).json()["access_token"]

    answer = api.create({**REQUEST, "advertiserIds": ["999"]}, {"Authorization": f"Bearer {token}"})

    assert answer.status_code == 403
    assert _codes(answer) == ["insufficient-accountpermissions"]


def test_report_scope_refusal_says_which_advertisers_the_client_may_use(api: Api) -> None:
    answer = api.create({**REQUEST, "advertiserIds": ["321", "999"]}, api.token([322, 321]))

    assert answer.status_code == 403
    assert [(e["detail"], e["source"]) for e in answer.json()["errors"]] == [
        (
            "advertiser 999 is not in the scope of this client, which may use advertisers 321, 322",
            {"pointer": "/data/attributes/advertiserIds/1"},
        )
    ]


def test_report_scope_refusal_abbreviates_a_long_scope(api: Api) -> None:
    answer = api.create({**REQUEST, "advertiserIds": ["999"]}, api.token(range(1, 16)))

    assert answer.json()["errors"][0]["detail"] == (
        "advertiser 999 is not in the scope of this client, which may use "
        "15 advertisers: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 5 more"
    )


def _problem(answer: Any, code: str, title: str, detail: str, pointer: str) -> dict[str, Any]:
    """One problem of ``answer`` as the envelope spells it (docs/api.md, "Errors")."""
    return {
        "traceId": answer.headers["x-trace-id"],
        "type": "authorization",
        "code": code,
        "title": title,
        "detail": detail,
        "source": {"pointer": pointer},
    }


#: attributes that make warnings: the request is refused all the same, with its warnings
WARNED = {"dimensions": ["advertiserId", "advertiserId"], "currency": "EUR"}


def _warnings(answer: Any) -> list[dict[str, Any]]:
    trace = answer.headers["x-trace-id"]
    return [
        {
            "traceId": trace,
            "type": "validation",
            "code": "ignored-attribute",
            "title": "Attribute ignored",
            "detail": "currency is not supported yet and was ignored",
            "source": {"pointer": "/data/attributes/currency"},
        },
        {
            "traceId": trace,
            "type": "validation",
            "code": "duplicate-value",
            "title": "Duplicate value dropped",
            "detail": "dimensions[1] 'advertiserId' repeats an earlier entry and was dropped",
            "source": {"pointer": "/data/attributes/dimensions/1"},
        },
    ]


def test_report_scope_refusal_is_one_problem_per_outside_advertiser_with_the_warnings(
    api: Api,
) -> None:
    # Pointers name the request's places (the service sorts and deduplicates the IDs).
    advertisers = ["999", "321", "998", "999", 998]
    answer = api.create({**REQUEST, **WARNED, "advertiserIds": advertisers}, api.token([321]))

    assert answer.status_code == 403
    ignored, dimension = _warnings(answer)
    repeated = {
        **dimension,
        "detail": "advertiserIds repeats 2 ID(s), the first at advertiserIds[3] (999);"
        " each repeat was dropped",
        "source": {"pointer": "/data/attributes/advertiserIds/3"},
    }
    assert answer.json() == {
        "warnings": [ignored, repeated, dimension],
        "errors": [
            _problem(
                answer,
                "insufficient-accountpermissions",
                "Insufficient account permissions",
                f"advertiser {advertiser} is not in the scope of this client, which may use "
                "advertiser 321",
                f"/data/attributes/advertiserIds/{index}",
            )
            for index, advertiser in ((0, 999), (2, 998))
        ],
    }


#: the filters of a report, with the noun of their details
FILTERS = [("campaignIds", "campaign"), ("sellerIds", "seller"), ("partnerIds", "partner")]
#: an ID of each filter that advertiser 321 has, and one that only another advertiser has
OURS_THEIRS = {"campaignIds": ("10", "11"), "sellerIds": ("20", "21"), "partnerIds": ("30", "31")}


def _catalog(api: Api) -> None:
    """Campaign 10, seller 20, partner 30 for advertiser 321; 11, 21, 31 for another one."""
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    api.add_rows(
        [
            {
                "minute": minute,
                "advertiser_id": advertiser,
                "campaign_id": 10 + offset,
                "seller_id": 20 + offset,
                "partner_id": 30 + offset,
                "displays": 1,
                "clicks": 0,
                "cost": 0.0,
            }
            for advertiser, offset in ((321, 0), (999, 1))
        ]
    )


@pytest.mark.parametrize(("name", "noun"), FILTERS)
def test_report_filter_of_other_advertisers_ids_is_refused_alone(
    api: Api, name: str, noun: str
) -> None:
    """A filter none of whose IDs the requested advertisers have; the others are fine."""
    _catalog(api)
    headers = api.token([321])
    ours, theirs = OURS_THEIRS[name]

    answer = api.create({**REQUEST, name: [theirs]}, headers)

    assert answer.status_code == 403
    assert answer.json() == {
        "warnings": [],
        "errors": [
            _problem(
                answer,
                "no-campaign-found-in-scope",
                "No campaign found in scope",
                f"none of the {noun}s in {name} belongs to the requested advertisers",
                f"/data/attributes/{name}",
            )
        ],
    }
    # One ID of the requested advertisers is enough.
    assert api.create({**REQUEST, name: [theirs, ours]}, headers).status_code == 200


def test_report_filters_of_other_advertisers_are_each_refused_with_the_warnings(
    api: Api,
) -> None:
    _catalog(api)
    attributes = {**REQUEST, **WARNED, "campaignIds": ["11"], "sellerIds": ["21"]}
    answer = api.create({**attributes, "partnerIds": ["31", "32"]}, api.token([321]))

    assert answer.status_code == 403
    assert answer.json() == {
        "warnings": _warnings(answer),
        "errors": [
            _problem(
                answer,
                "no-campaign-found-in-scope",
                "No campaign found in scope",
                f"none of the {noun}s in {name} belongs to the requested advertisers",
                f"/data/attributes/{name}",
            )
            for name, noun in FILTERS
        ],
    }


# -- fair runners ----------------------------------------------------------------------


def _queue_exports(api: Api, headers: dict[str, str], advertiser: int, count: int) -> list[str]:
    """``count`` distinct exports (different lookback windows) of one advertiser."""
    ids = []
    for minutes in range(count):
        request = {**REQUEST, "advertiserIds": [str(advertiser)], "lookbackWindow": 60 + minutes}
        answer = api.create(request, headers)
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["exportId"])
    return ids


def test_runner_takes_another_clients_job_before_more_of_a_busy_client(api: Api) -> None:
    busy = _queue_exports(api, api.token([321]), 321, 4)
    other = _queue_exports(api, api.token([322]), 322, 1)
    # Another process's runner is working on the busy client's first export.
    held = api.services.jobs.claim_next(
        owner="other-process", now=datetime.now(UTC), lease=timedelta(minutes=5)
    )
    assert held is not None and held.id == busy[0]

    ran = api.services.runner.run_one()

    assert ran is not None and ran.id == other[0]


def test_runner_keeps_a_loop_free_for_other_clients(api_factory: Callable[..., Api]) -> None:
    api = api_factory(max_running_per_client=1)
    busy = _queue_exports(api, api.token([321]), 321, 3)
    runner = api.services.runner
    # One loop of this process is busy with the client's first export ...
    held = api.services.jobs.claim_next(
        owner=runner.owner, now=datetime.now(UTC), lease=timedelta(minutes=5)
    )
    assert held is not None and held.id == busy[0]

    # ... so another loop leaves the client's other exports alone ...
    assert runner.run_one() is None
    # ... and is free at once for a client that comes later.
    other = _queue_exports(api, api.token([322]), 322, 1)
    ran = runner.run_one()
    assert ran is not None and ran.id == other[0]


def test_runner_default_cap_is_one_loop_fewer_than_the_runners(
    api_factory: Callable[..., Api],
) -> None:
    api = api_factory(background=True, runner_concurrency=3)
    deadline = time.monotonic() + 20
    while api.services.runner.max_running_per_client is None and time.monotonic() < deadline:
        time.sleep(0.01)

    assert api.services.runner.max_running_per_client == 2


# -- failure messages ------------------------------------------------------------------

_FAILURE = re.compile(
    r"the export (could not be produced|file could not be written); "
    r"the operator can look it up with error id ([0-9a-f]{32})"
)


def _failure(api: Api, export_id: str, headers: dict[str, str]) -> tuple[str, str]:
    """The failed export's message (poll and download agree on it) and its error id."""
    poll = api.poll(export_id, headers).json()
    assert poll["status"] == "Failure"
    download = api.download(export_id, headers)
    assert download.status_code == 409
    assert [e["detail"] for e in download.json()["errors"]] == [
        f"the export failed: {poll['message']}"
    ]
    match = _FAILURE.fullmatch(poll["message"])
    assert match is not None, poll["message"]
    return poll["message"], match.group(2)


def _logged(caplog: pytest.LogCaptureFixture, error_id: str) -> logging.LogRecord:
    (record,) = [r for r in caplog.records if getattr(r, "traceId", None) == error_id]
    return record


def test_failure_of_the_query_tells_no_internals(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    headers = api.token()
    export_id = api.create(REQUEST, headers).json()["exportId"]
    # A real engine error: the table the query reads is gone.
    api.services.events.call(lambda conn: conn.execute("ALTER TABLE rollup RENAME TO gone"))  # type: ignore[attr-defined]

    with caplog.at_level(logging.ERROR):
        api.run_jobs()

    message, error_id = _failure(api, export_id, headers)
    assert message.startswith("the export could not be produced")
    for internal in ("rollup", "SELECT", "Catalog", "Error", "duckdb", "/"):
        assert internal not in message
    record = _logged(caplog, error_id)
    assert record.exc_info is not None and "rollup" in str(record.exc_info[1])
    assert export_id in record.getMessage()


def test_failure_to_write_the_file_tells_no_path(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    headers = api.token()
    export_id = api.create(REQUEST, headers).json()["exportId"]
    # A directory squatting on the file's final name makes the rename fail for real.
    (api.services.files.root / f"{export_id}.csv").mkdir()

    with caplog.at_level(logging.ERROR):
        api.run_jobs()

    message, error_id = _failure(api, export_id, headers)
    assert message.startswith("the export file could not be written")
    for internal in (export_id, str(api.services.files.root), "Errno", "IsADirectory", "/"):
        assert internal not in message
    record = _logged(caplog, error_id)
    assert record.exc_info is not None and isinstance(record.exc_info[1], OSError)
