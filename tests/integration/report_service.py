"""A real ``mpo serve`` with an hour of simulated data, for the client, CLI and SDK tests.

Also a cutting relay: a loopback TCP relay in front of the server that cuts download
answers short, the fault a broken network or a crashed server makes (real sockets).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from mpo_realtime.client import ReportClient
from mpo_realtime.domain.jobs import Role
from mpo_realtime.exports.jobstore import SqlJobStore
from mpo_realtime.services import client_service
from mpo_realtime.settings import Settings
from mpo_realtime.store.simulator import World
from tests.integration.server import Server, free_port, mpo

STATS = "/preview/marketing-solutions/marketplace-performance-outcomes/stats"
#: the advertisers of the simulated world of seed 7 (``mpo simulate``'s default)
ADVERTISERS = [str(a.advertiser_id) for a in World.generate(seed=7).advertisers]


@dataclass
class ReportService:
    """The server, its data interval and a client scoped to every simulated advertiser."""

    server: Server
    credentials: dict[str, Any]
    #: the back-filled hour: ``[start, end)``, whole minutes in the past
    start: datetime
    end: datetime
    advertisers: list[str] = field(default_factory=lambda: list(ADVERTISERS))
    _raw_token: tuple[dict[str, str], float] | None = None

    @property
    def url(self) -> str:
        return self.server.base

    def client(self, credentials: dict[str, Any] | None = None, **options: Any) -> ReportClient:
        """A client with the given credentials, else new ones of the same scope: each
        client fetches its own token, and token requests have a per-client budget."""
        creds = credentials or self.new_client_credentials()
        return ReportClient(self.url, creds["client_id"], creds["client_secret"], **options)

    def new_client_credentials(
        self, advertisers: list[str] | None = None, *, requests_per_minute: int | None = None
    ) -> dict[str, str]:
        return new_credentials(
            self.server.data_dir, advertisers or self.advertisers, requests_per_minute
        )

    def env(self, credentials: dict[str, Any] | None = None) -> dict[str, str]:
        """``MPO_URL``, ``MPO_CLIENT_ID``, ``MPO_CLIENT_SECRET`` over a clean environment
        (new credentials of the same scope unless given: see ``client``)."""
        creds = credentials or self.new_client_credentials()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MPO_")}
        return {
            **env,
            "MPO_URL": self.url,
            "MPO_CLIENT_ID": creds["client_id"],
            "MPO_CLIENT_SECRET": creds["client_secret"],
            # no config file of the machine's user may leak into a test
            "MPO_CONFIG": str(self.server.data_dir / "no-such-config.toml"),
        }

    def raw_download(self, export_id: str, *, encoding: str = "identity") -> httpx.Response:
        """The file as plain HTTP gives it, with the given ``Accept-Encoding``."""
        if self._raw_token is None or time.monotonic() > self._raw_token[1]:
            self._raw_token = (self.server.token(self.credentials), time.monotonic() + 600)
        headers = {**self._raw_token[0], "Accept-Encoding": encoding}
        answer = httpx.get(f"{self.url}{STATS}/realtime-reports/{export_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        return answer

    def access_lines(self, needle: str) -> int:
        """How many lines of the server's log (access lines included) contain ``needle``."""
        return sum(needle in line for line in self.server.log.read_text().splitlines())


def new_credentials(
    data_dir: Path, advertisers: list[str], requests_per_minute: int | None = None
) -> dict[str, str]:
    """A new report client, made in this process as ``mpo clients create`` makes it."""
    settings = Settings(data_dir=data_dir)
    store = SqlJobStore(settings.resolved_job_store_url)
    try:
        store.migrate()
        client, secret = client_service(settings, store).create(
            "test",
            advertiser_ids=[int(a) for a in advertisers],
            roles=[Role.REPORT],
            now=datetime.now(UTC),
            requests_per_minute=requests_per_minute,
        )
    finally:
        store.close()
    return {"client_id": client.client_id, "client_secret": secret}


def start_report_service(data_dir: Path, *, data: bool = True, **settings: str) -> ReportService:
    """Back-fill an hour of simulated traffic (unless not ``data``), then ``mpo serve``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    if data:
        done = mpo("simulate", "--hours", "1", "--seed", "7", data_dir=data_dir)
        assert done.returncode == 0, done.stderr
    credentials = new_credentials(data_dir, ADVERTISERS)
    server = Server(data_dir, **settings).start()
    # the back-fill ends at the minute it started in, or the next one
    return ReportService(server, credentials, start=end - timedelta(minutes=59), end=end)


def run_python(code: str, *, env: dict[str, str], python: str = sys.executable) -> str:
    """Run ``code`` in a new interpreter; its standard output (the test fails on exit != 0)."""
    import subprocess

    done = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


class CuttingRelay:
    """A TCP relay to ``port`` on loopback that cuts the next ``cuts`` download answers.

    A cut answer gets its first ``keep`` bytes (status line, headers and some of the
    body) and then the connection is closed; everything else is relayed untouched.
    """

    def __init__(self, port: int, *, keep: int, cuts: int) -> None:
        self.upstream = port
        self.keep = keep
        self.cuts = cuts
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.lock = threading.Lock()
        self.cut = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            budget: list[int | None] = [None]
            threading.Thread(
                target=self._requests, args=(downstream, upstream, budget), daemon=True
            ).start()
            threading.Thread(
                target=self._answers, args=(downstream, upstream, budget), daemon=True
            ).start()

    def _requests(
        self, downstream: socket.socket, upstream: socket.socket, budget: list[int | None]
    ) -> None:
        try:
            while data := downstream.recv(65536):
                request_line = data.split(b"\r\n", 1)[0]
                if request_line.startswith(b"GET ") and b"/realtime-reports/" in request_line:
                    with self.lock:
                        if self.cut < self.cuts:
                            self.cut += 1
                            budget[0] = self.keep
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            _close(upstream)

    def _answers(
        self, downstream: socket.socket, upstream: socket.socket, budget: list[int | None]
    ) -> None:
        try:
            while data := upstream.recv(65536):
                left = budget[0]
                if left is None:
                    downstream.sendall(data)
                    continue
                downstream.sendall(data[:left])
                if left <= len(data):
                    break
                budget[0] = left - len(data)
        except OSError:
            pass
        finally:
            _close(downstream)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
