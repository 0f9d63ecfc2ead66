"""Which stores several processes can share; the signing key every API process needs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from mpo_realtime.deployment import (
    NotShared,
    require_shared,
    signing_key_warning,
    unshared_stores,
)
from mpo_realtime.settings import Settings

SHARED: dict[str, Any] = {
    "event_store_url": "clickhouse://127.0.0.1:9000/mpo",
    "job_store_url": "postgresql+psycopg://mpo@db:5432/mpo",
    "rate_limit_storage_url": "redis://cache:6379/0",
}


def test_deployment_embedded_defaults_are_all_unshared(tmp_path: Path) -> None:
    found = unshared_stores(Settings(data_dir=tmp_path))
    assert [u.setting for u in found] == [
        "MPO_EVENT_STORE_URL",
        "MPO_JOB_STORE_URL",
        "MPO_RATE_LIMIT_STORAGE_URL",
    ]
    assert found[0].url == f"duckdb:///{tmp_path / 'events.duckdb'}"


def test_deployment_shared_stores_pass(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, **SHARED)
    assert unshared_stores(settings) == []
    require_shared(settings, "mpo serve --processes 2")


def test_deployment_worker_needs_no_shared_rate_limits(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, **{**SHARED, "rate_limit_storage_url": "memory://"})
    assert [u.setting for u in unshared_stores(settings)] == ["MPO_RATE_LIMIT_STORAGE_URL"]
    assert unshared_stores(settings, rate_limits=False) == []


def test_deployment_refusal_names_each_store_and_its_fix(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, **{**SHARED, "job_store_url": None})
    with pytest.raises(NotShared) as info:
        require_shared(settings, "mpo serve --processes 3")
    message = str(info.value)
    assert message.startswith("mpo serve --processes 3 needs stores that several processes")
    assert f"MPO_JOB_STORE_URL=sqlite:///{tmp_path / 'jobs.sqlite3'}" in message
    assert "set MPO_JOB_STORE_URL=postgresql+psycopg://" in message
    assert "MPO_EVENT_STORE_URL" not in message and "MPO_RATE_LIMIT" not in message


def test_deployment_signing_key_warning_only_for_a_shared_job_store(tmp_path: Path) -> None:
    assert signing_key_warning(Settings(data_dir=tmp_path)) is None
    shared = Settings(data_dir=tmp_path, **SHARED)
    assert "set the same MPO_SIGNING_KEY on every machine" in (signing_key_warning(shared) or "")
    keyed = Settings(data_dir=tmp_path, signing_key="k" * 40, **SHARED)
    assert signing_key_warning(keyed) is None


def test_settings_signing_key_file_is_made_once_by_racing_processes(tmp_path: Path) -> None:
    """API processes starting at once on one data dir all sign with the same key."""
    keys: list[str] = []
    start = threading.Barrier(16)

    def resolve() -> None:
        start.wait()
        keys.append(Settings(data_dir=tmp_path).resolved_signing_key())

    threads = [threading.Thread(target=resolve) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(keys) == 16 and len(set(keys)) == 1
    assert (tmp_path / "signing.key").read_text() == keys[0]
    assert (tmp_path / "signing.key").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing.key"]
