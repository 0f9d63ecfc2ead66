"""A full disk while writing an export: the job fails cleanly, the service carries on."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.acceptance.conftest import Api


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB file system (tmpfs), unmounted afterwards."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], check=True
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


@pytest.mark.parametrize("file_format", ["csv", "json", "parquet"])
def test_disk_full_fails_the_job_and_the_service_stays_up(
    api_factory: Callable[..., Api], small_disk: Path, file_format: str
) -> None:
    api = api_factory(export_dir=small_disk)
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    api.add_rows(
        [
            {
                "minute": minute,
                "advertiser_id": 321,
                "campaign_id": 1,
                # random-looking IDs, so that Parquet's compression cannot make them fit
                "product_id": f"SKU-{(i * 2_654_435_761) % 2**32:010d}-{i:08d}",
                "displays": 1,
                "clicks": 1,
                "cost": 0.5,
            }
            for i in range(40_000)
        ]
    )
    headers = api.token()
    big = api.create(
        {
            "advertiserIds": ["321"],
            "dimensions": ["productId"],
            "lookbackWindow": 60,
            "fileFormat": file_format,
        },
        headers,
    )
    api.run_jobs()
    poll = api.poll(big.json()["exportId"], headers).json()
    assert poll["status"] == "Failure"
    # What went wrong is the operator's business: the log has it under the error id.
    assert poll["message"].startswith("the export file could not be written; ")
    assert "No space left" not in poll["message"]
    assert [p for p in small_disk.rglob("*") if p.is_file()] == []  # nothing half-written
    # The service carries on: a small export fits and succeeds.
    small = api.export({"advertiserIds": ["321"], "lookbackWindow": 60}, headers)
    assert small.status_code == 200
    assert small.content.count(b"\n") == 2
    assert api.http.get("/health").status_code == 200
