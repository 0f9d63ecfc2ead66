"""``mpo report`` and ``mpo login`` through the ``mpo`` entry point, against a real server;
and the README's "three ways in" examples, run as written (the SDK's in test_sdk.py)."""

from __future__ import annotations

import os
import pty
import re
import select
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.report_service import ReportService, start_report_service

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportService]:
    running = start_report_service(tmp_path_factory.mktemp("cli"), poll_retry_after_seconds="1")
    try:
        yield running
    finally:
        running.server.stop()


def _args(service: ReportService, *extra: str) -> list[str]:
    """A report of the back-filled hour, for two advertisers."""
    return [
        "report",
        "--advertiser",
        service.advertisers[0],
        "--advertisers",
        service.advertisers[1],
        "--dimensions",
        "campaignId,hour",
        "--start",
        service.start.isoformat(),
        "--end",
        service.end.isoformat(),
        *extra,
    ]


def _same_report(service: ReportService, file_format: str = "csv") -> bytes:
    """What the client downloads for the request of ``_args`` (the same export, reused)."""
    with service.client() as client:
        return client.export(
            advertiser_ids=service.advertisers[:2],
            dimensions=["campaignId", "hour"],
            start=service.start,
            end=service.end,
            file_format=file_format,
        ).content


def mpo(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``mpo ...`` with no terminal anywhere (stdin, stdout and stderr are pipes)."""
    return subprocess.run(
        [sys.executable, "-m", "mpo_realtime", *args],
        capture_output=True,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def mpo_on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """``mpo ...`` on a pseudo-terminal of 160 columns: its exit code and screen text."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "mpo_realtime", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "160"},
    )
    os.close(slave)
    screen = b""
    try:
        while select.select([master], [], [], 120)[0]:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            screen += data
    finally:
        os.close(master)
    return process.wait(timeout=30), ANSI.sub("", screen.decode(errors="replace"))


def test_cli_report_to_a_file(service: ReportService, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    done = mpo(_args(service, "-o", str(target)), service.env())
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == _same_report(service)
    assert done.stdout == b"" and done.stderr == b""  # no terminal: nothing to say
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_cli_report_to_a_pipe_is_the_raw_file(service: ReportService) -> None:
    done = mpo(_args(service, "--format", "json"), service.env())
    assert done.returncode == 0, done.stderr
    assert done.stdout == _same_report(service, "json")
    assert done.stderr == b""


def test_cli_report_on_a_terminal_is_a_table(service: ReportService) -> None:
    code, screen = mpo_on_terminal(_args(service, "--rows", "3"), service.env())
    assert code == 0, screen
    rows = _same_report(service).decode().splitlines()
    assert all(name in screen for name in ("campaignId", "hour", "clicks", "displays", "cost"))
    assert f"3 of {len(rows) - 1:,} rows" in screen
    first = rows[1].replace('"', "").split(",")
    assert all(value in screen for value in first)  # the first row, as text
    assert '"campaignId"' not in screen  # a table, not the CSV


def test_cli_report_to_a_file_on_a_terminal_says_what_it_wrote(
    service: ReportService, tmp_path: Path
) -> None:
    target = tmp_path / "out.csv"
    code, screen = mpo_on_terminal(_args(service, "-o", str(target)), service.env())
    assert code == 0, screen
    rows = target.read_bytes().count(b"\n") - 1
    assert f"{rows:,} rows ({target.stat().st_size:,} bytes) -> {target}" in screen


def test_cli_status_and_download_resume_an_export(service: ReportService, tmp_path: Path) -> None:
    with service.client() as client:
        export_id = client.create(
            advertiser_ids=service.advertisers[:1], dimensions=["sellerId"], lookback_window=90
        ).export_id
    env = service.env()
    target = tmp_path / "resumed.csv"
    downloaded = mpo(["report", "download", export_id, "-o", str(target)], env)
    assert downloaded.returncode == 0, downloaded.stderr
    assert target.read_bytes() == service.raw_download(export_id).content
    status = mpo(["report", "status", export_id], env)
    assert (status.returncode, status.stdout.decode().split()) == (0, [export_id, "Done"])
    as_json = mpo(["report", "status", export_id, "--json"], env)
    assert orjson.loads(as_json.stdout) == {
        "exportId": export_id,
        "status": "Done",
        "message": None,
    }
    # connection options given to the group reach the command
    given = {k: v for k, v in env.items() if not k.startswith("MPO_CLIENT")}
    creds = ["--client-id", service.credentials["client_id"]]
    creds += ["--client-secret", service.credentials["client_secret"]]
    grouped = mpo(["report", *creds, "status", export_id], given)
    assert grouped.returncode == 0, grouped.stderr


@pytest.mark.parametrize(
    ("case", "exit_code", "needle"),
    [
        ("invalid", 3, "invalid-lookbackwindow"),
        ("wrong secret", 4, "HTTP 401"),
        ("outside scope", 5, "insufficient-accountpermissions"),
        ("unknown export", 6, "export-not-found"),
        ("no credentials", 2, "no credentials"),
        ("no advertiser", 2, "--advertiser"),
    ],
)
def test_cli_exit_codes_and_errors_on_stderr(
    service: ReportService, case: str, exit_code: int, needle: str
) -> None:
    env = service.env()
    args = _args(service)
    if case == "invalid":
        args = [*args[:-4], "--lookback", "30"]
    elif case == "wrong secret":
        env["MPO_CLIENT_SECRET"] = "wrong"
    elif case == "outside scope":
        env = service.env(service.new_client_credentials(service.advertisers[:1]))
    elif case == "unknown export":
        args = ["report", "status", "00000000-0000-0000-0000-000000000000"]
    elif case == "no credentials":
        env = {k: v for k, v in env.items() if not k.startswith("MPO_CLIENT")}
    elif case == "no advertiser":
        args = ["report", "--lookback", "60"]
    done = mpo(args, env)
    stderr = done.stderr.decode()
    assert done.returncode == exit_code, stderr
    assert needle in stderr and "Traceback" not in stderr
    assert done.stdout == b""
    if exit_code > 2:  # an answer of the API: its trace ID is on stderr
        assert re.search(r"trace id [0-9a-f]{32}", stderr), stderr


def test_cli_login_writes_a_private_config_that_report_uses(
    service: ReportService, tmp_path: Path
) -> None:
    config = tmp_path / "mpo" / "config.toml"
    env = {k: v for k, v in service.env().items() if not k.startswith("MPO_")}
    creds = service.credentials
    login = ["login", "--url", service.url, "--config", str(config)]
    login += ["--client-id", creds["client_id"], "--client-secret", creds["client_secret"]]
    done = mpo(login, env)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    saved = tomllib.loads(config.read_text())["default"]
    assert saved == {"url": service.url, **creds}
    report = mpo([*_args(service), "--config", str(config)], env)
    assert report.returncode == 0, report.stderr
    assert report.stdout == _same_report(service)
    # wrong credentials are refused before anything is saved
    other = tmp_path / "other.toml"
    refused = mpo([*login[:-1], "wrong", "--config", str(other)], env)
    assert refused.returncode == 4 and not other.exists()
    assert b"Traceback" not in refused.stderr


def _readme_blocks() -> list[tuple[str, str]]:
    """The fenced code blocks of the README's "Three ways in" section: (language, code)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Three ways in", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)


def test_readme_curl_and_client_examples_run_as_written(
    service: ReportService, tmp_path: Path
) -> None:
    blocks = [(lang, code) for lang, code in _readme_blocks() if "criteo_api" not in code]
    assert [lang for lang, _ in blocks] == ["sh", "python", "sh"]
    env: dict[str, Any] = {
        **service.env(),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    for index, (lang, code) in enumerate(blocks):
        workdir = tmp_path / str(index)
        workdir.mkdir()
        command = (
            ["bash", "-euo", "pipefail", "-c", code]
            if lang == "sh"
            else [sys.executable, "-c", code]
        )
        done = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, timeout=120, check=False
        )
        assert done.returncode == 0, (code, done.stdout, done.stderr)
        report = (workdir / "report.csv").read_bytes()
        assert report.startswith(b'"campaignId","hour","clicks","displays","cost"\n')
        assert report.count(b"\n") > 1
