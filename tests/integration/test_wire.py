"""What a real ``mpo serve`` puts on the wire (uvicorn under ``api/coalesce.py``).

Raw sockets, so that nothing between the test and the server joins or splits answers:
pipelined requests come back complete and in order, ``Connection: close`` closes after
the answer, and a body too large to be held goes out whole. (That an answer leaves in one
``send`` is checked on the transport itself, in ``tests/unit/test_coalesce.py``.)
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mpo_realtime.domain.zones import tzdata_version
from tests.integration.server import Server, create_client

STATS = "/preview/marketing-solutions/marketplace-performance-outcomes/stats"
HEALTH = b'{"status":"ok","tzdata":"%s"}' % tzdata_version().encode()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path).start()
    try:
        yield running
    finally:
        running.stop()


def _connect(server: Server) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _read_answers(conn: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` whole answers (head, body), by Content-Length."""
    data = b""
    answers: list[tuple[bytes, bytes]] = []
    while len(answers) < count:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            assert chunk, f"connection closed after {len(answers)} answers"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            chunk = conn.recv(65536)
            assert chunk, "connection closed inside a body"
            rest += chunk
        answers.append((head, rest[:length]))
        data = rest[length:]
    return answers


def test_pipelined_requests_are_answered_whole_and_in_order(server: Server) -> None:
    with _connect(server) as conn:
        conn.sendall(
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        answers = _read_answers(conn, 3)
    statuses = [head.split(b"\r\n", 1)[0] for head, _ in answers]
    assert statuses == [b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found", b"HTTP/1.1 200 OK"]
    assert answers[0][1] == HEALTH
    assert b'"code":"route-not-found"' in answers[1][1]
    assert all(b"\r\nserver:" not in head.lower() for head, _ in answers)


def test_connection_close_sends_the_answer_then_closes(server: Server) -> None:
    with _connect(server) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"connection: close" in head.lower()
    assert body == HEALTH


def test_a_large_download_arrives_whole(server: Server, tmp_path: Path) -> None:
    client = create_client(tmp_path, "321")
    headers = server.token(client)
    attributes = {"advertiserIds": ["321"], "lookbackWindow": 60, "dimensions": ["productId"]}
    body = {"data": {"attributes": attributes}}
    # events for many products make a body larger than what the transport holds back
    events = [
        {
            "timestamp": int(time.time() * 1000) - 60_000,
            "advertiserId": "321",
            "partnerId": "1",
            "campaignId": "1",
            "sellerId": "1",
            "productId": f"product-{n:06d}",
            "displays": 1,
            "clicks": 0,
            "cost": 0.5,
        }
        for n in range(3000)
    ]
    ingest = create_client(tmp_path, "321", "--ingest")
    stored = httpx.post(
        f"{server.base}/ingest/v1/events", json=events, headers=server.token(ingest), timeout=60
    )
    assert stored.status_code == 200, stored.text
    created = httpx.post(
        f"{server.base}{STATS}/realtime-reports/export", json=body, headers=headers, timeout=30
    ).json()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        poll = httpx.get(
            f"{server.base}{STATS}/report-jobs/{created['exportId']}", headers=headers
        ).json()
        if poll["status"] != "Pending":
            break
        time.sleep(0.1)
    assert poll["status"] == "Done", poll
    download = httpx.get(
        f"{server.base}{STATS}/realtime-reports/{created['exportId']}",
        headers={**headers, "Accept-Encoding": "identity"},
        timeout=60,
    )
    assert download.status_code == 200
    lines = download.text.splitlines()
    assert len(download.content) > 64 * 1024
    assert len(lines) == 3001  # header + one row per product
    assert {n for n in range(3000) if f"product-{n:06d}" in download.text} == set(range(3000))
