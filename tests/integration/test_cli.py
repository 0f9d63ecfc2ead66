"""The ``mpo`` command line, run as a newcomer would."""

from __future__ import annotations

from pathlib import Path

import orjson

from mpo_realtime.store.duckdb_store import DuckDBEventStore
from tests.integration.server import create_client, mpo


def test_cli_clients_create_list_revoke(tmp_path: Path) -> None:
    created = create_client(tmp_path, "322,321", "--ingest")
    assert set(created) == {
        "client_id",
        "client_secret",
        "name",
        "advertiser_ids",
        "roles",
        "ingest_any_advertiser",
    }
    assert (created["advertiser_ids"], created["roles"]) == (["321", "322"], ["ingest", "report"])
    assert created["ingest_any_advertiser"] is False
    listed = orjson.loads(mpo("clients", "list", "--json", data_dir=tmp_path).stdout)
    assert [(c["client_id"], c["revoked"]) for c in listed] == [(created["client_id"], False)]
    assert "client_secret" not in listed[0]
    revoked = mpo("clients", "revoke", created["client_id"], data_dir=tmp_path)
    assert revoked.returncode == 0
    again = mpo("clients", "revoke", created["client_id"], data_dir=tmp_path)
    assert again.returncode == 1
    listed = orjson.loads(mpo("clients", "list", "--json", data_dir=tmp_path).stdout)
    assert listed[0]["revoked"] is True


def test_cli_clients_create_refuses_bad_ids(tmp_path: Path) -> None:
    done = mpo("clients", "create", "x", "--advertisers", "12,abc", data_dir=tmp_path)
    assert done.returncode == 2
    assert "decimal IDs" in done.stderr


def test_cli_clients_create_trusted_producer_only_on_request(tmp_path: Path) -> None:
    trusted = mpo(
        "clients",
        "create",
        "feed",
        "--ingest",
        "--no-report",
        "--any-advertiser",
        "--json",
        data_dir=tmp_path,
    )
    assert trusted.returncode == 0, trusted.stderr
    created = orjson.loads(trusted.stdout)
    assert (created["advertiser_ids"], created["roles"]) == ([], ["ingest"])
    assert created["ingest_any_advertiser"] is True
    listed = mpo("clients", "list", data_dir=tmp_path)
    assert "ingest=any-advertiser" in listed.stdout
    # Without the ingest role the setting means nothing: refused, not silently ignored.
    refused = mpo(
        "clients", "create", "x", "--advertisers", "1", "--any-advertiser", data_dir=tmp_path
    )
    assert refused.returncode == 2
    assert "--ingest" in refused.stderr
    # A scope is needed unless the client is a trusted producer.
    unscoped = mpo("clients", "create", "x", "--ingest", data_dir=tmp_path)
    assert unscoped.returncode == 2
    assert "--advertisers" in unscoped.stderr


def test_cli_simulate_backfills_the_local_store_once(tmp_path: Path) -> None:
    first = mpo("simulate", "--hours", "0.5", "--seed", "11", data_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    try:
        rows = store.totals()["rows"]
    finally:
        store.close()
    assert rows > 0
    # A second back-fill starts after the newest stored minute: nothing is counted twice.
    again = mpo("simulate", "--hours", "0.5", "--seed", "11", data_dir=tmp_path)
    assert again.returncode == 0, again.stderr
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    try:
        assert store.totals()["rows"] - rows < rows / 10
    finally:
        store.close()
