"""``mpo doctor`` against real PostgreSQL and Redis, healthy and broken."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from mpo_realtime.doctor import Finding, Level, diagnose
from mpo_realtime.exports.jobstore import SqlJobStore
from mpo_realtime.settings import Settings
from tests.conftest import fresh_postgres_database
from tests.services import free_port

KEY = "doctor-test-signing-key-doctor-test-signing-key"


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_admin_url) as url:
        yield url


def _levels(findings: list[Finding], part: str) -> list[tuple[Level, str]]:
    return [(f.level, f.summary) for f in findings if f.part == part]


def _doctor(data_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPO_")}
    env.update({f"MPO_{k.upper()}": v for k, v in settings.items()})
    return subprocess.run(
        [sys.executable, "-m", "mpo_realtime", "doctor", "--json", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_doctor_shared_backends_all_good(tmp_path: Path, postgres_url: str, redis_url: str) -> None:
    store = SqlJobStore(postgres_url)
    store.migrate()
    store.close()

    done = _doctor(
        tmp_path, job_store_url=postgres_url, rate_limit_storage_url=redis_url, signing_key=KEY
    )

    assert done.returncode == 0, done.stdout + done.stderr
    rows = orjson.loads(done.stdout)
    assert {row["level"] for row in rows} == {"ok"}
    summaries = [row["summary"] for row in rows]
    assert summaries[0].startswith("PostgreSQL ")
    assert any(s.startswith("schema current (revision ") for s in summaries)
    assert any(s.startswith("Redis ") for s in summaries)
    assert sum(s.startswith("clock ") for s in summaries) == 2  # PostgreSQL and Redis


def test_doctor_database_without_migrations_fails_with_the_fix(
    tmp_path: Path, postgres_url: str
) -> None:
    done = _doctor(tmp_path, job_store_url=postgres_url, signing_key=KEY)

    assert done.returncode == 1
    failed = [row for row in orjson.loads(done.stdout) if row["level"] == "fail"]
    assert failed == [
        {
            "part": "job store",
            "level": "fail",
            "summary": "no schema: the database was never migrated",
            "fix": "start any mpo process on this store once: mpo serve, mpo worker and "
            "mpo clients list bring its schema up to date",
        }
    ]


def test_doctor_unreachable_servers_fail(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(
        data_dir=tmp_path,
        job_store_url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/test",
        rate_limit_storage_url=f"redis://127.0.0.1:{port}/0",
        signing_key=KEY,
    )

    findings = diagnose(settings)

    [(level, summary)] = _levels(findings, "job store")
    assert level is Level.FAIL
    assert summary.startswith(f"cannot reach postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    [(level, summary)] = _levels(findings, "rate limits")
    assert level is Level.FAIL
    assert summary.startswith(f"cannot reach Redis at redis://127.0.0.1:{port}/0")
    assert all(f.fix for f in findings if f.level is Level.FAIL)


def test_doctor_shared_job_store_without_signing_key_warns(
    tmp_path: Path, postgres_url: str
) -> None:
    store = SqlJobStore(postgres_url)
    store.migrate()
    store.close()

    done = _doctor(tmp_path, job_store_url=postgres_url)

    assert done.returncode == 0  # a warning alone
    [warning] = [row for row in orjson.loads(done.stdout) if row["level"] == "warn"]
    assert warning["part"] == "signing key"


def test_doctor_export_dir_that_cannot_be_made_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    findings = diagnose(Settings(data_dir=tmp_path, export_dir=blocker / "exports"))
    [(level, summary)] = _levels(findings, "export files")
    assert level is Level.FAIL
    assert summary == f"{blocker / 'exports'} does not exist and cannot be made"


def test_doctor_short_signing_key_fails(tmp_path: Path) -> None:
    findings = diagnose(Settings(data_dir=tmp_path, signing_key="short"))
    assert _levels(findings, "signing key") == [
        (Level.FAIL, "MPO_SIGNING_KEY has 5 characters: too short to resist guessing")
    ]
    assert [f.part for f in findings if f.level is Level.FAIL] == ["signing key"]


def test_doctor_embedded_defaults_on_a_fresh_dir_are_fine_and_make_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    findings = diagnose(Settings(data_dir=data_dir))
    assert {f.level for f in findings} == {Level.OK}
    assert not data_dir.exists()


def test_doctor_clickhouse_reachable_and_writable(tmp_path: Path, clickhouse_url: str) -> None:
    from mpo_realtime.store.clickhouse_store import ClickHouseEventStore

    ClickHouseEventStore(clickhouse_url).close()  # makes its tables

    findings = diagnose(Settings(data_dir=tmp_path, event_store_url=clickhouse_url))

    levels = _levels(findings, "event store")
    assert {level for level, _ in levels} == {Level.OK}, levels
    summaries = [summary for _, summary in levels]
    assert summaries[0].startswith("ClickHouse ")
    assert summaries[1].endswith(": every table present")
    assert summaries[2:4] == ["may create tables, insert and drop", summaries[3]]
    assert summaries[3].startswith("clock ")


def test_doctor_clickhouse_unreachable_fails(tmp_path: Path) -> None:
    port = free_port()
    url = f"clickhouse://127.0.0.1:{port}/mpo"
    findings = diagnose(Settings(data_dir=tmp_path, event_store_url=url))
    [(level, summary)] = _levels(findings, "event store")
    assert level is Level.FAIL
    assert summary.startswith(f"cannot reach ClickHouse at {url}")
