"""Create → poll → download: output formats, lifecycle, caching, visibility, restarts."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson

from mpo_realtime.domain.jobs import JobStatus
from tests.acceptance.conftest import Api

HOUR_AGO = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
#: The source's example rows. Its costs have 11 decimals; costs are kept with 9, so they
#: print rounded half to even (992.21671380425 -> 992.216713804), as ingest would store them.
SOURCE_ROWS = [
    {
        "minute": HOUR_AGO,
        "advertiser_id": 321,
        "campaign_id": 12345,
        "clicks": 1873,
        "displays": 800247,
        "cost": 992.21671380425,
    },
    {
        "minute": HOUR_AGO,
        "advertiser_id": 321,
        "campaign_id": 56789,
        "clicks": 17927,
        "displays": 5275096,
        "cost": 3460.71409576333,
    },
]
SOURCE_REQUEST = {
    "advertiserIds": ["321"],
    "dimensions": ["advertiserId", "campaignId"],
    "metrics": ["clicks", "displays", "cost"],
    "lookbackWindow": 180,
}


def test_export_csv_is_the_source_example(api: Api) -> None:
    api.add_rows(SOURCE_ROWS)
    answer = api.export(SOURCE_REQUEST, api.token())
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith(
        'attachment; filename="realtime-report-'
    )
    assert answer.content == (
        b'"advertiserId","campaignId","clicks","displays","cost"\n'
        b"321,12345,1873,800247,992.216713804\n"
        b"321,56789,17927,5275096,3460.714095763\n"
    )


def test_export_json_is_the_source_example_shape(api: Api) -> None:
    api.add_rows(SOURCE_ROWS)
    answer = api.export({**SOURCE_REQUEST, "fileFormat": "json"}, api.token())
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.content == (
        b'{"columns":["advertiserId","campaignId","clicks","displays","cost"],"data":['
        b"[321,12345,1873,800247,992.216713804],"
        b'[321,56789,17927,5275096,3460.714095763]],"rows":2}'
    )


def test_export_empty_result_is_header_only(api: Api) -> None:
    headers = api.token()
    assert api.export(SOURCE_REQUEST, headers).content == (
        b'"advertiserId","campaignId","clicks","displays","cost"\n'
    )
    answer = api.export({**SOURCE_REQUEST, "fileFormat": "json"}, headers)
    assert answer.content == (
        b'{"columns":["advertiserId","campaignId","clicks","displays","cost"],"data":[],"rows":0}'
    )


def test_export_product_ids_with_commas_quotes_and_non_ascii(api: Api) -> None:
    products = ["a,b", 'say "hi"', "crème brûlée", "日本", "line\nbreak"]
    api.add_rows(
        [
            {
                "minute": HOUR_AGO,
                "advertiser_id": 321,
                "campaign_id": 1,
                "product_id": p,
                "clicks": i + 1,
                "displays": 10,
                "cost": 0.5,
            }
            for i, p in enumerate(products)
        ]
    )
    request = {**SOURCE_REQUEST, "dimensions": ["productId"], "metrics": ["clicks"]}
    headers = api.token()
    text = api.export(request, headers).content.decode("utf-8")
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[0] == ["productId", "clicks"]
    assert parsed[1:] == [[p, str(products.index(p) + 1)] for p in sorted(products)]
    as_json = api.export({**request, "fileFormat": "json"}, headers).json()
    assert as_json["data"] == [[p, products.index(p) + 1] for p in sorted(products)]


def test_export_all_zero_rows_are_left_out(api: Api) -> None:
    api.add_rows(
        [
            {
                "minute": HOUR_AGO,
                "advertiser_id": 321,
                "campaign_id": 1,
                "clicks": 0,
                "displays": 5,
                "cost": 0.0,
            },
            {
                "minute": HOUR_AGO,
                "advertiser_id": 321,
                "campaign_id": 2,
                "clicks": 3,
                "displays": 9,
                "cost": 1.5,
            },
        ]
    )
    request = {**SOURCE_REQUEST, "metrics": ["clicks", "cost"], "fileFormat": "json"}
    assert api.export(request, api.token()).json()["data"] == [[321, 2, 3, 1.5]]


def test_export_hour_buckets_in_a_zone_across_dst_fall_back(api: Api) -> None:
    # 2026-10-25 in Paris: 02:00-03:00 happens twice (UTC 00:00 and 01:00).
    start = datetime(2026, 10, 24, 23, 30, tzinfo=UTC)
    api.add_rows(
        [
            {
                "minute": start + timedelta(minutes=30 * i),
                "advertiser_id": 321,
                "campaign_id": 1,
                "clicks": 1,
                "displays": 1,
                "cost": 0.25,
            }
            for i in range(6)
        ]
    )
    request = {
        "advertiserIds": ["321"],
        "dimensions": ["hour"],
        "metrics": ["clicks"],
        "startDate": "2026-10-24T23:00:00Z",
        "endDate": "2026-10-25T02:30:00Z",
        "timezone": "Europe/Paris",
    }
    assert api.export(request, api.token()).content.decode() == (
        '"hour","clicks"\n'
        '"2026-10-25T01:00:00+02:00",1\n'
        '"2026-10-25T02:00:00+02:00",2\n'
        '"2026-10-25T02:00:00+01:00",2\n'
        '"2026-10-25T03:00:00+01:00",1\n'
    )


def test_lifecycle_pending_then_done_with_retry_after(api: Api) -> None:
    api.add_rows(SOURCE_ROWS)
    headers = api.token()
    created = api.create(SOURCE_REQUEST, headers)
    assert created.status_code == 200
    export_id = created.json()["exportId"]
    assert created.json() == {"exportId": export_id, "status": "Pending", "message": None}
    poll = api.poll(export_id, headers)
    assert poll.json() == {"exportId": export_id, "status": "Pending", "message": None}
    # a young job: polled again after 1 s; an older one after up to 5 s
    assert poll.headers["retry-after"] == "1"
    later = api.services.exports.clock
    api.services.exports.clock = lambda: later() + timedelta(seconds=3.5)
    assert api.poll(export_id, headers).headers["retry-after"] == "4"
    api.services.exports.clock = lambda: later() + timedelta(minutes=3)
    assert api.poll(export_id, headers).headers["retry-after"] == "5"
    api.services.exports.clock = later
    early = api.download(export_id, headers)
    assert early.status_code == 409
    assert [e["code"] for e in early.json()["errors"]] == ["export-not-ready"]
    assert api.run_jobs() == 1
    done = api.poll(export_id, headers)
    assert done.json() == {"exportId": export_id, "status": "Done", "message": None}
    assert "retry-after" not in done.headers
    job = api.services.jobs.get_job(export_id)
    assert job is not None
    assert (job.row_count, job.byte_size) == (2, len(api.download(export_id, headers).content))


def test_lifecycle_failure_carries_a_message(api: Api) -> None:
    headers = api.token()
    created = api.create(SOURCE_REQUEST, headers).json()
    # A directory squatting on the file's final name makes the rename fail for real.
    (api.services.files.root / f"{created['exportId']}.csv").mkdir()
    api.run_jobs()
    poll = api.poll(created["exportId"], headers).json()
    assert poll["status"] == "Failure"
    assert poll["message"].startswith("the export file could not be written")
    download = api.download(created["exportId"], headers)
    assert download.status_code == 409
    assert [e["code"] for e in download.json()["errors"]] == ["export-failed"]
    assert list((api.services.files.root / ".partial").iterdir()) == []


def test_lifecycle_done_then_expired(api: Api) -> None:
    headers = api.token()
    export_id = api.create(SOURCE_REQUEST, headers).json()["exportId"]
    api.run_jobs()
    file = api.services.files.root / f"{export_id}.csv"
    assert file.exists()
    result = api.services.sweeper.sweep(datetime.now(UTC) + timedelta(hours=25))
    assert result.expired == 1
    assert not file.exists()
    poll = api.poll(export_id, headers).json()
    assert poll["status"] == "Expired"
    download = api.download(export_id, headers)
    assert download.status_code == 410
    assert [e["code"] for e in download.json()["errors"]] == ["export-alreadyexpired"]


def test_lifecycle_expiry_shows_before_the_sweeper_runs(api: Api) -> None:
    headers = api.token()
    export_id = api.create(SOURCE_REQUEST, headers).json()["exportId"]
    api.run_jobs()
    api.services.exports.clock = lambda: datetime.now(UTC) + timedelta(hours=25)
    assert api.poll(export_id, headers).json()["status"] == "Expired"
    assert api.download(export_id, headers).status_code == 410


def test_cache_identical_request_returns_the_same_export(api: Api) -> None:
    headers = api.token()
    first = api.create(SOURCE_REQUEST, headers).json()["exportId"]
    reordered_case = {**SOURCE_REQUEST, "dimensions": ["AdvertiserId", "CAMPAIGNID"]}
    assert api.create(reordered_case, headers).json()["exportId"] == first
    # another client with the same scope shares it too
    assert api.create(SOURCE_REQUEST, api.token()).json()["exportId"] == first
    api.run_jobs()
    hit = api.create(SOURCE_REQUEST, headers).json()
    assert hit == {"exportId": first, "status": "Done", "message": None}


def test_cache_differs_by_scope_and_attributes(api: Api) -> None:
    headers = api.token()
    first = api.create(SOURCE_REQUEST, headers).json()["exportId"]
    wider = api.token(advertisers=[321, 322])
    assert api.create(SOURCE_REQUEST, wider).json()["exportId"] != first
    other_order = {**SOURCE_REQUEST, "metrics": ["cost", "clicks", "displays"]}
    assert api.create(other_order, headers).json()["exportId"] != first


def test_cache_relative_request_after_the_window_is_new(api: Api) -> None:
    headers = api.token()
    first = api.create(SOURCE_REQUEST, headers).json()["exportId"]
    api.services.exports.clock = lambda: datetime.now(UTC) + timedelta(seconds=61)
    assert api.create(SOURCE_REQUEST, headers).json()["exportId"] != first


def test_cache_settled_absolute_request_is_reused_until_expiry(api: Api) -> None:
    headers = api.token()
    request = {
        "advertiserIds": ["321"],
        "startDate": "2026-01-09T08:00:00Z",
        "endDate": "2026-01-09T09:00:00Z",
    }
    first = api.create(request, headers).json()["exportId"]
    api.run_jobs()
    api.services.exports.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
    assert api.create(request, headers).json()["exportId"] == first
    api.services.exports.clock = lambda: datetime.now(UTC) + timedelta(hours=25)
    assert api.create(request, headers).json()["exportId"] != first


def test_cache_never_reuses_failed_exports(api: Api) -> None:
    headers = api.token()
    created = api.create(SOURCE_REQUEST, headers).json()
    (api.services.files.root / f"{created['exportId']}.csv").mkdir()
    api.run_jobs()
    assert api.create(SOURCE_REQUEST, headers).json()["exportId"] != created["exportId"]


def test_visibility_other_scope_sees_export_not_found(api: Api) -> None:
    owner = api.token(advertisers=[321, 322])
    export_id = api.create({**SOURCE_REQUEST, "advertiserIds": ["321", "322"]}, owner).json()[
        "exportId"
    ]
    api.run_jobs()
    partial = api.token(advertisers=[321])
    for answer in (api.poll(export_id, partial), api.download(export_id, partial)):
        assert answer.status_code == 403
        assert [e["code"] for e in answer.json()["errors"]] == ["export-not-found"]
    assert api.poll(export_id, api.token(advertisers=[321, 322, 400])).status_code == 200


def test_envelope_switch_wraps_answers_for_generated_clients(api: Api) -> None:
    headers = {**api.token(), "X-MPO-Envelope": "jsonapi"}
    created = api.create(SOURCE_REQUEST, headers).json()
    export_id = created["data"]["attributes"]["exportId"]
    assert created == {
        "data": {
            "type": "RealTimeProductReportJobStatus",
            "attributes": {"exportId": export_id, "status": "Pending", "message": None},
        },
        "warnings": [],
        "errors": [],
    }
    assert api.poll(export_id, headers).json()["data"]["attributes"]["status"] == "Pending"


def test_download_is_gzip_encoded_when_accepted(api: Api) -> None:
    api.add_rows(
        [
            {
                "minute": HOUR_AGO,
                "advertiser_id": 321,
                "campaign_id": c,
                "clicks": 1,
                "displays": 2,
                "cost": 0.5,
            }
            for c in range(500)
        ]
    )
    headers = api.token()
    export_id = api.create(SOURCE_REQUEST, headers).json()["exportId"]
    api.run_jobs()
    answer = api.download(export_id, {**headers, "Accept-Encoding": "gzip"})
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.content.decode().count("\n") == 501


def test_restart_mid_job_finishes_the_job(api_factory: Callable[..., Api]) -> None:
    first = api_factory(lease_seconds=0.2)
    first.add_rows(SOURCE_ROWS)
    headers = first.token()
    export_id = first.create(SOURCE_REQUEST, headers).json()["exportId"]
    # A runner claims the job and dies before writing anything.
    claimed = first.services.jobs.claim_next(
        owner="dead-runner", now=datetime.now(UTC), lease=timedelta(seconds=0.2)
    )
    assert claimed is not None and claimed.id == export_id
    first.http.__exit__(None, None, None)
    first.services.close()

    second = api_factory(lease_seconds=0.2)
    # The restarted runner sees the dead runner's lease as run out.
    second.services.runner.clock = lambda: datetime.now(UTC) + timedelta(minutes=1)
    job = second.services.runner.run_one()
    assert job is not None and job.status is JobStatus.DONE and job.attempts == 2
    download = second.download(export_id, headers)
    assert download.status_code == 200
    assert download.content.count(b"\n") == 3


def test_runner_in_background_finishes_jobs(api_factory: Callable[..., Api]) -> None:
    api = api_factory(background=True)
    api.add_rows(SOURCE_ROWS)
    headers = api.token()
    export_id = api.create({**SOURCE_REQUEST, "fileFormat": "json"}, headers).json()["exportId"]
    status = "Pending"
    deadline = time.monotonic() + 20
    while status == "Pending" and time.monotonic() < deadline:
        time.sleep(0.05)  # a client polling, as the source tells clients to
        status = api.poll(export_id, headers).json()["status"]
    assert status == "Done"
    assert orjson.loads(api.download(export_id, headers).content)["rows"] == 2


def test_no_partial_file_is_ever_served(api: Api) -> None:
    headers = api.token()
    export_id = api.create(SOURCE_REQUEST, headers).json()["exportId"]
    files = api.services.files
    try:
        with files.open_new(f"{export_id}.csv") as sink:
            sink.write(b'"advertiserId"\n321')
            raise RuntimeError("crash mid-write")
    except RuntimeError:
        pass
    assert not files.exists(f"{export_id}.csv")
    assert api.download(export_id, headers).status_code == 409
    assert json.loads(api.poll(export_id, headers).text)["status"] == "Pending"


def test_text_made_by_the_engine_gives_the_same_files(api: Api) -> None:
    """``exports_text_in_engine``: the runner copies DuckDB-made lines; same bytes."""
    rows = [
        {**SOURCE_ROWS[0], "product_id": product, "seller_id": seller}
        for seller, product in enumerate(['q"uote', "comma,x", "é", "back\\slash\n"])
    ]
    api.add_rows([*SOURCE_ROWS, *rows])
    headers = api.token()
    for file_format in ("csv", "json"):
        for dimensions in (["advertiserId", "campaignId"], ["sellerId", "productId", "day"]):
            request = {
                **SOURCE_REQUEST,
                "dimensions": dimensions,
                "fileFormat": file_format,
                "timezone": "Asia/Kathmandu",
            }
            api.services.runner.text_in_engine = False
            typed = api.export(request, {**headers, "Cache-Control": "no-cache"})
            api.services.runner.text_in_engine = True
            made = api.export(request, {**headers, "Cache-Control": "no-cache"})
            assert typed.status_code == made.status_code == 200
            assert made.content == typed.content and len(made.content) > 60
