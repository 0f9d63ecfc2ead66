"""The client where the server makes jobs wait, fail, expire, or cannot answer at all.

Three real servers, each started once for the module: one runs no export job (jobs stay
Pending), one keeps exports and tokens for seconds and writes exports to a 256 KiB disk,
one cannot reach its rate-limit store (every request a 503).
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mpo_realtime.client import (
    Expired,
    ExportFailed,
    ExportStatus,
    NotReady,
    PollPolicy,
    RetryPolicy,
    ServerError,
    Status,
    WaitTimeout,
)
from tests.integration.report_service import ReportService, start_report_service
from tests.integration.server import free_port


@pytest.fixture(scope="module")
def stalled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportService]:
    """No export runner: every job stays Pending; polls ask for 1 s between them."""
    running = start_report_service(
        tmp_path_factory.mktemp("stalled"),
        data=False,
        runner_concurrency="0",
        poll_retry_after_seconds="1",
    )
    try:
        yield running
    finally:
        running.server.stop()


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportService]:
    """Exports expire after 2 s, tokens after 3 s; export files go to a 256 KiB tmpfs."""
    data_dir = tmp_path_factory.mktemp("short-lived")
    disk = data_dir / "exports"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=True)
    try:
        running = start_report_service(
            data_dir,
            export_dir=str(disk),
            export_ttl_seconds="2",
            sweep_interval_seconds="0.2",
            token_ttl_seconds="3",
            poll_retry_after_seconds="1",
        )
        try:
            yield running
        finally:
            running.server.stop()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportService]:
    """The rate-limit store is unreachable: every request answers 503 (Retry-After 5)."""
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    running = start_report_service(
        tmp_path_factory.mktemp("broken"), data=False, rate_limit_storage_url=unreachable
    )
    try:
        yield running
    finally:
        running.server.stop()


def _report(service: ReportService, **overrides: Any) -> dict[str, Any]:
    return {
        "advertiser_ids": service.advertisers[:1],
        "dimensions": ["campaignId"],
        "start": service.start,
        "end": service.end,
        **overrides,
    }


def test_wait_honours_retry_after_then_times_out(stalled: ReportService) -> None:
    seen: list[tuple[float, ExportStatus]] = []
    poll = PollPolicy(first=0.05, factor=2, maximum=10)
    with stalled.client(poll=poll) as client:
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as caught:
            client.export(
                **_report(stalled),
                timeout=4.0,
                on_status=lambda s: seen.append((time.monotonic(), s)),
            )
    statuses = [s for _, s in seen]
    assert caught.value.export_id == statuses[0].export_id
    assert all(s.status is Status.PENDING for s in statuses)
    assert statuses[0].retry_after is None  # the create answer
    assert all(s.retry_after == 1 for s in statuses[1:])  # each poll's answer
    gaps = [later - earlier for (earlier, _), (later, _) in zip(seen[1:], seen[2:], strict=False)]
    assert gaps and all(gap >= 1.0 for gap in gaps)  # never sooner than asked
    assert seen[1][0] - started >= 0.05
    assert caught.value.waited <= 4.0


def test_download_before_done_is_not_ready(stalled: ReportService) -> None:
    with stalled.client() as client:
        created = client.create(**_report(stalled))
        with pytest.raises(NotReady) as caught:
            client.download(created.export_id)
    error = caught.value
    assert (error.status_code, error.code, created.status) == (
        409,
        "export-not-ready",
        Status.PENDING,
    )
    assert error.trace_id and "Pending" in error.detail


def test_cli_exit_code_pending(stalled: ReportService, tmp_path: Path) -> None:
    env = stalled.env()
    report = ["report", "--advertiser", stalled.advertisers[0], "--lookback", "61"]
    waited = _mpo_report([*report, "--timeout", "2", "-o", str(tmp_path / "x.csv")], env)
    assert waited.returncode == 11, waited.stderr
    assert "still Pending" in waited.stderr and "Traceback" not in waited.stderr
    assert not list(tmp_path.iterdir())
    with stalled.client() as client:
        export_id = client.create(**_report(stalled)).export_id
    status = _mpo_report(["report", "status", export_id], env)
    assert (status.returncode, status.stdout.split()) == (11, [export_id, "Pending"])


def _mpo_report(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run(
        [sys.executable, "-m", "mpo_realtime", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_expired_export_raises_expired(short_lived: ReportService) -> None:
    with short_lived.client() as client:
        # Created, then watched until Expired: waiting for Done first (``export``) could
        # miss the 2 s between Done and Expired on a busy machine, between two polls.
        export_id = client.create(**_report(short_lived)).export_id
        deadline = time.monotonic() + 60
        while client.status(export_id).status is not Status.EXPIRED:
            assert time.monotonic() < deadline, "the export never expired"
            time.sleep(0.2)
        with pytest.raises(Expired) as downloading:
            client.download(export_id)
        with pytest.raises(Expired) as waiting:
            client.wait(export_id)
    assert (downloading.value.status_code, downloading.value.code) == (410, "export-alreadyexpired")
    assert downloading.value.trace_id
    # from the poll's status: no error code, the poll's trace id, the job's message
    assert (waiting.value.code, waiting.value.status_code) == (None, 200)
    assert waiting.value.trace_id and "expired" in waiting.value.detail


def test_failed_export_raises_export_failed(short_lived: ReportService) -> None:
    big = _report(
        short_lived, advertiser_ids=short_lived.advertisers, dimensions=["sellerId", "productId"]
    )
    with short_lived.client() as client:
        export_id = client.create(**big).export_id
        with pytest.raises(ExportFailed) as waiting:
            client.wait(export_id, timeout=120)
        with pytest.raises(ExportFailed) as downloading:
            client.download(export_id)
    assert waiting.value.code is None and waiting.value.trace_id
    # the job's message names the export and an error id, never the server's OS error
    detail = waiting.value.detail
    assert export_id in detail and "the export file could not be written" in detail
    assert "error id" in detail and "No space left" not in detail
    assert (downloading.value.status_code, downloading.value.code) == (409, "export-failed")
    assert downloading.value.trace_id


def test_token_is_renewed_after_its_lifetime(short_lived: ReportService) -> None:
    creds = short_lived.new_client_credentials()
    with short_lived.client(creds) as client:
        client.authenticate()
        export_id = client.create(**_report(short_lived)).export_id
        issued = time.monotonic()
        while time.monotonic() < issued + 3.5:  # the first token's lifetime is over
            time.sleep(0.1)
        assert client.status(export_id).export_id == export_id
    answer = httpx.post(
        f"{short_lived.url}/oauth2/token", data={"grant_type": "client_credentials", **creds}
    )
    # the client's first token, at least one more, and ours
    spent = int(answer.headers["x-ratelimit-limit"]) - int(answer.headers["x-ratelimit-remaining"])
    assert spent >= 3


def test_server_error_after_retries(
    broken: ReportService, caplog: pytest.LogCaptureFixture
) -> None:
    policy = RetryPolicy(attempts=2)
    with broken.client(retry=policy) as client, caplog.at_level(logging.WARNING):
        started = time.monotonic()
        with pytest.raises(ServerError) as caught:
            client.authenticate()
    error = caught.value
    assert (error.status_code, error.code, error.retry_after) == (503, "service-unavailable", 5)
    assert error.trace_id and error.trace_id in str(error)
    assert [r.retry_after for r in caplog.records if hasattr(r, "retry_after")] == [5]
    assert time.monotonic() - started >= 5


def test_cli_exit_code_server_failure(broken: ReportService) -> None:
    done = _mpo_report(["report", "-a", "1", "--retries", "0"], broken.env())
    assert done.returncode == 10
    assert "service-unavailable" in done.stderr and "trace id" in done.stderr
    assert "Traceback" not in done.stderr
    closed = {**broken.env(), "MPO_URL": f"http://127.0.0.1:{free_port()}"}
    refused = _mpo_report(["report", "-a", "1", "--retries", "0"], closed)
    assert refused.returncode == 10 and "ConnectError" in refused.stderr
