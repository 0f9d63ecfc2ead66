"""A real ``mpo serve`` process on loopback, for tests of restarts and crashes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mpo(
    *args: str, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run an ``mpo`` command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "mpo_realtime", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def create_client(data_dir: Path, advertisers: str, *extra: str) -> dict[str, Any]:
    done = mpo(
        "clients",
        "create",
        "test",
        "--advertisers",
        advertisers,
        "--json",
        *extra,
        data_dir=data_dir,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def local_client(data_dir: Path, advertisers: str, *, ingest: bool = False) -> dict[str, Any]:
    """Like :func:`create_client`, in this process: the same store, no CLI start-up."""
    from datetime import UTC, datetime

    from mpo_realtime.domain.jobs import Role
    from mpo_realtime.exports.jobstore import SqlJobStore
    from mpo_realtime.services import client_service
    from mpo_realtime.settings import Settings

    settings = Settings(data_dir=data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = SqlJobStore(settings.resolved_job_store_url)
    try:
        store.migrate()
        roles = [Role.REPORT, Role.INGEST] if ingest else [Role.REPORT]
        client, secret = client_service(settings, store).create(
            "test",
            advertiser_ids=[int(a) for a in advertisers.split(",")],
            roles=roles,
            now=datetime.now(UTC),
        )
    finally:
        store.close()
    return {"client_id": client.client_id, "client_secret": secret}


class Server:
    """``mpo serve`` as a child process; always stopped by its PID."""

    def __init__(self, data_dir: Path, *args: str, **settings: str) -> None:
        self.data_dir = data_dir
        self.args = args
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **{f"MPO_{k.upper()}": v for k, v in settings.items()}}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"server-{self.port}.log"

    def launch(self) -> Server:
        """Start the process without waiting for it to serve."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mpo_realtime",
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        return self

    def start(self, timeout: float = 60) -> Server:
        """Start the process and wait until it answers ``/health``."""
        self.launch()
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"server did not start: {self.log.read_text()[-2000:]}")

    @property
    def output(self) -> str:
        """What the process wrote to standard output and error so far."""
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    def wait(self, timeout: float = 60) -> int:
        """The exit status, once the process has ended (killed after ``timeout``)."""
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"server did not exit: {self.output[-2000:]}") from None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def token(self, client: dict[str, Any]) -> dict[str, str]:
        answer = httpx.post(
            f"{self.base}/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
            },
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}
