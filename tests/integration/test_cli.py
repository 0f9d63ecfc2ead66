"""The ``mpo`` command line, run as a newcomer would."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
import typer.main
from typer.testing import CliRunner

from mpo_realtime import __version__
from mpo_realtime.cli import app
from mpo_realtime.store.duckdb_store import DuckDBEventStore
from tests.integration.server import Server, create_client, local_client, mpo


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
    assert first.stdout.startswith("back-filled 0.5 hours of simulated traffic (")
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    try:
        rows = store.totals()["rows"]
    finally:
        store.close()
    assert rows > 0
    # A second back-fill starts after the newest stored minute: nothing is counted twice.
    again = mpo("simulate", "--hours", "0.5", "--seed", "11", data_dir=tmp_path)
    assert again.returncode == 0, again.stderr
    # honest about a restart: what the store had, and what (if anything) was added
    assert re.fullmatch(
        r"the store has data up to \d\d:\d\d UTC \(\d+ s ago\)"
        r"(: nothing to back-fill|; back-filled .* roll-up rows in .*)\n",
        again.stdout,
    ), again.stdout
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    try:
        assert store.totals()["rows"] - rows < rows / 10
    finally:
        store.close()


def _command_paths() -> list[list[str]]:
    group = typer.main.get_group(app)
    context = typer.Context(group)
    paths: list[list[str]] = [[]]
    for name in group.list_commands(context):
        command = group.get_command(context, name)  # the lazy ones too
        sub = getattr(command, "commands", None)
        paths += [[name, s] for s in sub] if sub else [[name]]
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "mpo")
def test_cli_help_shows_flags_as_flags_defaults_and_help_everywhere(path: list[str]) -> None:
    shown = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "<bool>" not in shown.output
    command = typer.main.get_command(app)
    context = command.make_context("mpo", [*path, "--help"], resilient_parsing=True)
    for name in path:
        command = command.get_command(context, name)  # type: ignore[attr-defined]
    for param in command.params:
        if getattr(param, "hidden", False):
            continue  # --listen-fd: passed by mpo serve --processes to its children
        assert param.help, f"{param.name} has no help text"  # type: ignore[attr-defined]
        record = param.get_help_record(context)
        assert record is not None
        if getattr(param, "is_flag", False) or param.default is None or param.required:
            continue
        assert "default:" in record[1], f"{param.name}: no default in {record}"


def test_cli_version_through_the_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mpo_realtime", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, f"mpo-realtime {__version__}\n")


def test_cli_demo_env_prints_export_lines_or_says_what_to_do(tmp_path: Path) -> None:
    missing = mpo("demo-env", data_dir=tmp_path)
    assert missing.returncode == 1
    assert "start the demo first (make run, or mpo serve --demo)" in missing.stderr
    saved = {"client_id": "c-1", "client_secret": "s'ecret $x", "advertiser_ids": ["1", "2"]}
    (tmp_path / "demo-client.json").write_bytes(orjson.dumps(saved))
    done = mpo("demo-env", data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    echoed = subprocess.run(
        [
            "bash",
            "-c",
            done.stdout + 'printf "%s|%s|%s" "$MPO_CLIENT_ID" '
            '"$MPO_CLIENT_SECRET" "$MPO_ADVERTISER_IDS"',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert echoed.stdout == "c-1|s'ecret $x|1,2"


def test_cli_simulate_sends_exactly_rate_times_duration_events(tmp_path: Path) -> None:
    # the simulated world's advertisers: every simulated event is in this client's scope
    client = local_client(tmp_path, _world_advertisers(), ingest=True)
    server = Server(tmp_path, status_interval_seconds="0").start()
    try:
        done = mpo(
            "simulate",
            "--rate",
            "100",
            "--duration",
            "2",
            "--target",
            server.base,
            data_dir=tmp_path,
            env={
                "MPO_CLIENT_ID": client["client_id"],
                "MPO_CLIENT_SECRET": client["client_secret"],
            },
        )
        metrics = httpx.get(f"{server.base}/metrics", timeout=30).text
    finally:
        server.signal(signal.SIGTERM)
        server.wait()
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sent 200 events\n"
    assert "mpo_ingest_events_total 200.0" in metrics.splitlines()


def _world_advertisers() -> str:
    from mpo_realtime.store.simulator import World

    return ",".join(str(a.advertiser_id) for a in World.generate(seed=7).advertisers)


def test_cli_lazy_commands_list_the_commands_own_help() -> None:
    """``mpo --help`` shows lazy commands from LAZY_COMMANDS, without importing them."""
    from typer.core import TyperCommand

    from mpo_realtime.cli.main import LAZY_COMMANDS

    for name, lazy in LAZY_COMMANDS.items():
        shown = TyperCommand(name, help=lazy.help).get_short_help_str(200)
        assert shown == lazy.load(name).get_short_help_str(200)
