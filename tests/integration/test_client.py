"""The Python client against a real ``mpo serve``: one server for the whole module."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from mpo_realtime.client import (
    AsyncReportClient,
    AuthenticationError,
    ExportStatus,
    NotFound,
    PermissionDenied,
    RateLimited,
    ReportClient,
    RetryPolicy,
    Status,
    TransportError,
    ValidationError,
)
from tests.integration.report_service import (
    STATS,
    CuttingRelay,
    ReportService,
    start_report_service,
)
from tests.integration.server import free_port


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportService]:
    # Pending polls ask for 1 s, not 5: the client honours it, and the suite is shorter
    running = start_report_service(tmp_path_factory.mktemp("client"), poll_retry_after_seconds="1")
    try:
        yield running
    finally:
        running.server.stop()


def _report(service: ReportService, **overrides: Any) -> dict[str, Any]:
    """An absolute interval inside the back-filled hour: every export of it has one answer."""
    return {
        "advertiser_ids": service.advertisers[:2],
        "dimensions": ["campaignId", "hour"],
        "start": service.start,
        "end": service.end,
        **overrides,
    }


def _csv_reference(data: bytes) -> list[dict[str, Any]]:
    """The rows of a CSV file read the plain way: every number exact (Decimal)."""
    reader = csv.DictReader(io.StringIO(data.decode()))
    return [
        {
            k: datetime.fromisoformat(v) if k == "hour" else Decimal(v) if k == "cost" else int(v)
            for k, v in row.items()
        }
        for row in reader
    ]


def _json_reference(data: bytes) -> list[dict[str, Any]]:
    body = json.loads(data, parse_float=Decimal)
    rows = [dict(zip(body["columns"], record, strict=True)) for record in body["data"]]
    for row in rows:
        row["hour"] = datetime.fromisoformat(row["hour"])
        row["cost"] = Decimal(row["cost"])
    return rows


def test_client_export_csv_and_json_give_the_same_typed_rows(service: ReportService) -> None:
    with service.client() as client:
        as_csv = client.export(**_report(service))
        as_json = client.export(**_report(service, file_format="json"))
    assert (as_csv.file_format, as_json.file_format) == ("csv", "json")
    assert as_csv.content == service.raw_download(as_csv.export_id).content
    assert as_json.content == service.raw_download(as_json.export_id).content
    rows = as_csv.rows()
    assert rows and rows == _csv_reference(as_csv.content)
    assert as_json.rows() == _json_reference(as_json.content)
    # the same rows; cost digits are compared within each file above (their identity
    # across formats is the server's to keep, and tested there)
    without_cost = [{k: v for k, v in row.items() if k != "cost"} for row in rows]
    assert [{k: v for k, v in r.items() if k != "cost"} for r in as_json.rows()] == without_cost
    assert as_csv.row_count == as_json.row_count == len(rows)
    assert as_json.row_count == json.loads(as_json.content)["rows"]
    assert (
        as_csv.columns()
        == as_json.columns()
        == ["campaignId", "hour", *"clicks displays cost".split()]
    )
    # money is exact: the Decimal prints the file's own digits, never a float's
    first_cost = as_csv.content.split(b"\n")[1].rsplit(b",", 1)[1].decode()
    assert isinstance(rows[0]["cost"], Decimal) and str(rows[0]["cost"]) == first_cost
    assert all(isinstance(r["hour"], datetime) and r["hour"].tzinfo for r in rows)


def test_client_export_to_path_writes_the_whole_file_and_nothing_else(
    service: ReportService, tmp_path: Path
) -> None:
    target = tmp_path / "out.json"
    with service.client() as client:
        result = client.export(**_report(service, file_format="json"), path=target)
    assert result.path == target and result.size == target.stat().st_size
    assert target.read_bytes() == service.raw_download(result.export_id).content
    assert result.content == target.read_bytes()
    assert result.rows()[0].keys() == {"campaignId", "hour", "clicks", "displays", "cost"}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_client_arrow_and_pandas_keep_types_and_exact_money(service: ReportService) -> None:
    with service.client() as client:
        result = client.export(**_report(service, timezone="Europe/Paris"))
    table = result.to_arrow()
    types = [str(t) for t in table.schema.types]
    assert types[:4] == ["int64", "timestamp[s, tz=Europe/Paris]", "int64", "int64"]
    cost_type = table.schema.field("cost").type
    assert (cost_type.precision, cost_type.scale >= 9) == (38, True)  # decimal128: exact
    assert table.column("hour").to_pylist() == [r["hour"] for r in result.rows()]
    assert table.column("cost").to_pylist() == [r["cost"] for r in result.rows()]
    frame = result.to_pandas()
    assert len(frame) == result.row_count
    assert frame["cost"].tolist() == [r["cost"] for r in result.rows()]


def test_client_resumes_a_job_by_id_in_a_new_client(service: ReportService, tmp_path: Path) -> None:
    with service.client() as first:
        created = first.create(**_report(service, dimensions=["sellerId"]))
    assert isinstance(created, ExportStatus) and created.status in (Status.PENDING, Status.DONE)
    # the pipeline "crashed": a new client, new token, knows only the export ID
    with service.client() as second:
        done = second.wait(created.export_id, timeout=60)
        result = second.download(created.export_id, tmp_path / "resumed.csv")
        again = second.status(created.export_id)
    assert (done.status, again.status, done.export_id) == (
        Status.DONE,
        Status.DONE,
        created.export_id,
    )
    assert result.export_id == created.export_id
    assert (tmp_path / "resumed.csv").read_bytes() == service.raw_download(
        created.export_id
    ).content


def test_client_wait_reports_each_status_and_identical_requests_reuse(
    service: ReportService,
) -> None:
    seen: list[ExportStatus] = []
    with service.client() as client:
        first = client.export(**_report(service, dimensions=["partnerId"]), on_status=seen.append)
        second = client.export(**_report(service, dimensions=["partnerId"]))
    assert seen[0].export_id == first.export_id and seen[-1].status is Status.DONE
    assert all(s.status in (Status.PENDING, Status.DONE) for s in seen)
    assert second.export_id == first.export_id  # the API's reuse of identical requests


def test_async_client_exports_and_resumes(service: ReportService, tmp_path: Path) -> None:
    creds = service.new_client_credentials()

    async def run() -> tuple[bytes, bytes, ExportStatus]:
        async with AsyncReportClient(service.url, creds["client_id"], creds["client_secret"]) as c:
            exported, created = await asyncio.gather(
                c.export(**_report(service, file_format="json")),
                c.create(**_report(service, dimensions=["advertiserId"])),
            )
            done = await c.wait(created.export_id, timeout=60)
            resumed = await c.download(created.export_id, tmp_path / "async.csv")
            return exported.content, resumed.content, done

    exported, resumed, done = asyncio.run(run())
    with service.client() as client:
        assert exported == client.export(**_report(service, file_format="json")).content
    assert done.status is Status.DONE
    assert (
        resumed
        == (tmp_path / "async.csv").read_bytes()
        == service.raw_download(done.export_id).content
    )


def test_client_from_env_reads_the_three_variables(service: ReportService) -> None:
    env = service.env()
    with ReportClient.from_env(env) as client:
        client.authenticate()
        assert client.credentials.client_id == env["MPO_CLIENT_ID"]


def test_client_downloads_gzip_and_decodes_it(service: ReportService) -> None:
    with service.client() as client:
        result = client.export(**_report(service, dimensions=["campaignId", "sellerId", "hour"]))
    identity = service.raw_download(result.export_id)
    gzipped = service.raw_download(result.export_id, encoding="gzip")
    assert gzipped.headers["content-encoding"] == "gzip" and len(identity.content) > 1024
    assert result.encoding == "gzip"  # what the client's own download travelled in
    assert result.content == identity.content
    assert result.row_count == identity.content.count(b"\n") - 1


class _CountingTransport(httpx.HTTPTransport):
    """The real HTTP transport, noting the path of every request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def test_client_caches_its_token(service: ReportService) -> None:
    # token budgets are kept per address, so the server's headers cannot single out this
    # client's token requests: count them on the wire instead
    transport = _CountingTransport()
    with service.client(transport=transport) as client:
        created = client.create(**_report(service))
        for _ in range(3):
            client.status(created.export_id)
        client.wait(created.export_id)
        client.download(created.export_id)
    assert transport.paths.count("/oauth2/token") == 1
    assert len(transport.paths) >= 7


@pytest.mark.parametrize(
    ("overrides", "codes", "status"),
    [
        ({"lookback_window": 30, "start": None, "end": None}, ["invalid-lookbackwindow"], 400),
        (
            {"dimensions": ["hour", "minute"], "file_format": "xls"},
            ["json-serialization-error", "invalid-dimensioncombination"],
            400,
        ),
        ({"dimensions": ["hour", "minute"]}, ["invalid-dimensioncombination"], 409),
        ({"timezone": "Mars/Olympus"}, ["invalid-query"], 400),
    ],
)
def test_client_validation_error_carries_every_problem(
    service: ReportService, overrides: dict[str, Any], codes: list[str], status: int
) -> None:
    with service.client() as client, pytest.raises(ValidationError) as caught:
        client.create(**_report(service, **overrides))
    error = caught.value
    assert [e.code for e in error.errors] == codes
    assert (error.status_code, error.code, error.detail) == (
        status,
        codes[0],
        error.errors[0].detail,
    )
    assert error.trace_id and len(error.trace_id) == 32
    assert all(e.trace_id == error.trace_id for e in error.errors)
    assert error.trace_id in str(error) and codes[0] in str(error)


def test_client_typed_errors_for_auth_scope_and_unknown_exports(service: ReportService) -> None:
    wrong = {**service.credentials, "client_secret": "not-the-secret"}
    with service.client(wrong) as client, pytest.raises(AuthenticationError) as auth:
        client.status("00000000-0000-0000-0000-000000000000")
    assert auth.value.status_code == 401 and auth.value.code and auth.value.trace_id
    narrow = service.new_client_credentials(service.advertisers[:1])
    with service.client(narrow) as client:
        with pytest.raises(PermissionDenied) as denied:
            client.create(**_report(service))  # two advertisers; one is outside the scope
        with pytest.raises(NotFound) as missing:
            client.status("00000000-0000-0000-0000-000000000000")
    assert (denied.value.status_code, denied.value.code) == (403, "insufficient-accountpermissions")
    assert (missing.value.status_code, missing.value.code) == (403, "export-not-found")
    assert denied.value.trace_id and missing.value.trace_id
    assert (denied.value.errors[0].pointer or "").startswith("/data/attributes/advertiserIds")


def test_client_waits_out_429_as_retry_after_says(
    service: ReportService, caplog: pytest.LogCaptureFixture
) -> None:
    budget = 20
    creds = service.new_client_credentials(requests_per_minute=budget)
    headers = service.server.token(creds)
    with service.client(creds) as client:
        export_id = client.create(**_report(service)).export_id
        # spend the rest of the minute's budget with plain calls of the same client
        poll = f"{service.url}{STATS}/report-jobs/{export_id}"
        while httpx.get(poll, headers=headers).status_code != 429:
            pass
        impatient = ReportClient(
            service.url,
            creds["client_id"],
            creds["client_secret"],
            retry=RetryPolicy(max_retry_after=0.5),
        )
        with impatient, pytest.raises(RateLimited) as limited:
            impatient.status(export_id)
        error = limited.value
        assert (error.status_code, error.code) == (429, "too-many-requests")
        assert error.trace_id and error.retry_after is not None and error.retry_after >= 1
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="mpo_realtime.client"):
            status = client.status(export_id)  # waits as the server says, then succeeds
        waited = time.monotonic() - started
    assert status.export_id == export_id
    retries = [r for r in caplog.records if getattr(r, "retry_after", None) is not None]
    assert retries, "the client did not meet a 429"
    assert all(r.delay >= r.retry_after for r in retries)  # type: ignore[attr-defined]
    assert waited >= sum(r.retry_after for r in retries)  # type: ignore[attr-defined]


def test_client_retries_connection_errors_then_raises_transport_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    policy = RetryPolicy(attempts=3, backoff=0.01)
    with caplog.at_level(logging.WARNING, logger="mpo_realtime.client"):
        with ReportClient(closed, "id", "secret", retry=policy) as client:
            with pytest.raises(TransportError) as caught:
                client.authenticate()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert sum("retry" in r.getMessage() for r in caplog.records) == 2


def test_client_download_cut_short_is_fetched_again_whole(
    service: ReportService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    report = _report(service, dimensions=["campaignId", "sellerId", "hour"])
    with service.client() as client:
        export_id = client.export(**report).export_id
    relay = CuttingRelay(service.server.port, keep=600, cuts=1)
    creds = service.new_client_credentials()
    try:
        with ReportClient(relay.url, creds["client_id"], creds["client_secret"]) as client:
            with caplog.at_level(logging.WARNING, logger="mpo_realtime.client"):
                result = client.download(export_id, tmp_path / "whole.csv")
    finally:
        relay.close()
    assert relay.cut == 1 and any("cut short" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "whole.csv").read_bytes() == service.raw_download(export_id).content
    assert result.row_count == result.content.count(b"\n") - 1
    assert [p.name for p in tmp_path.iterdir()] == ["whole.csv"]


def test_client_never_leaves_a_half_written_file(service: ReportService, tmp_path: Path) -> None:
    report = _report(service, dimensions=["campaignId", "sellerId", "hour"])
    with service.client() as client:
        export_id = client.export(**report).export_id
    target = tmp_path / "report.csv"
    target.write_bytes(b"yesterday's complete file\n")
    relay = CuttingRelay(service.server.port, keep=600, cuts=1_000)
    creds = service.new_client_credentials()
    policy = RetryPolicy(attempts=2, backoff=0.01)
    try:
        with ReportClient(relay.url, creds["client_id"], creds["client_secret"], retry=policy) as c:
            with pytest.raises(TransportError, match="cut short"):
                c.download(export_id, target)
    finally:
        relay.close()
    assert relay.cut == 2
    assert target.read_bytes() == b"yesterday's complete file\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB file system (tmpfs), unmounted afterwards."""
    import subprocess

    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], check=True
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_client_full_disk_leaves_no_file_behind(service: ReportService, small_disk: Path) -> None:
    with service.client() as client:
        big = client.export(
            **_report(service, advertiser_ids=service.advertisers, dimensions=["productId"])
        )
        assert big.size > 64 * 1024
        with pytest.raises(OSError, match="No space left"):
            client.download(big.export_id, small_disk / "big.csv")
    assert list(small_disk.iterdir()) == []
