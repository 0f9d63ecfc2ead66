"""The HTTP edge of a real ``mpo serve`` against attackers and careless clients, on raw sockets.

The server runs with small limits (1 s deadlines, 8 KiB heads, 4 pipelined requests) so
that every case ends quickly; each wait is for the server's answer or close, with a
deadline ten times the configured one.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mpo_realtime.domain.zones import tzdata_version
from tests.integration.server import Server, create_client

STATS = "/preview/marketing-solutions/marketplace-performance-outcomes/stats"
TIMEOUT = 1.0
DEADLINE = 10 * TIMEOUT
HEALTH = b'{"status":"ok","tzdata":"%s"}' % tzdata_version().encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(
        tmp_path_factory.mktemp("edge"),
        header_read_timeout_seconds=str(TIMEOUT),
        body_read_timeout_seconds=str(TIMEOUT),
        max_header_bytes="8192",
        max_pipelined_requests="4",
        access_log="problems",
    ).start()
    try:
        yield running
    finally:
        running.stop()


def _connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)


def _until_closed(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    return received


def _status_and_body(answer: bytes) -> tuple[int, bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _metric(server: Server, pattern: str) -> float:
    text = httpx.get(f"{server.base}/metrics", timeout=DEADLINE).text
    return sum(float(m) for m in re.findall(pattern + r" (\S+)", text))


def _rss_kib(server: Server) -> int:
    assert server.process is not None
    with open(f"/proc/{server.process.pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_a_head_over_the_limit_is_431_and_the_connection_closes(server: Server) -> None:
    with _connect(server) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000)
        status, body = _status_and_body(_until_closed(conn))
    assert status == 431
    assert b'"code":"payload-too-large"' in body
    assert b"exceed 8192 bytes" in body


def test_a_head_under_the_limit_is_served(server: Server) -> None:
    with _connect(server) as conn:
        conn.sendall(
            b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "
            + b"a" * 7000
            + b"\r\n\r\n"
        )
        assert _status_and_body(_until_closed(conn)) == (200, HEALTH)


def test_a_trickled_head_is_408_within_the_deadline(server: Server) -> None:
    started = time.monotonic()
    with _connect(server) as conn:
        conn.settimeout(TIMEOUT / 5)
        received = b""
        # one byte of a never-ending header at a time, until the server answers
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000:
            assert time.monotonic() - started < DEADLINE, "still open at the deadline"
            try:
                conn.sendall(bytes([byte]))
                received = conn.recv(65536)
            except TimeoutError:
                continue
            break
        conn.settimeout(DEADLINE)
        received += _until_closed(conn)
    status, body = _status_and_body(received)
    assert status == 408
    assert b'"code":"request-timeout"' in body


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    with _connect(server) as conn:
        assert _until_closed(conn) == b""


def test_pipelined_requests_are_not_read_ahead_without_bound(server: Server) -> None:
    """A client pipelining 10,000 requests: all answered, in order, while the server
    holds a few of them at a time (unbounded, it grew by about 24 MB here)."""
    count = 10_000
    baseline = peak = _rss_kib(server)
    with _connect(server) as conn:
        sender = threading.Thread(
            target=conn.sendall, args=(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * count,)
        )
        sender.start()
        received = b""
        while received.count(b"HTTP/1.1 200 OK") < count:
            chunk = conn.recv(65536)
            assert chunk, "closed before every answer"
            received += chunk
            peak = max(peak, _rss_kib(server))
        sender.join()
    assert received.count(HEALTH) == count
    assert peak - baseline < 12 * 1024, f"grew by {(peak - baseline) // 1024} MiB"


def test_token_endpoint_refuses_an_upload_before_reading_it(server: Server) -> None:
    """A 400 MiB multipart upload: 415 at once, and the connection closed (not read)."""
    with _connect(server) as conn:
        conn.sendall(
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 419430400\r\n\r\n--b\r\n"
        )
        answer = _until_closed(conn)
    status, body = _status_and_body(answer)
    assert status == 415
    assert b"multipart/form-data; boundary=b" in body
    assert b"connection: close" in answer.lower()


def test_token_endpoint_refuses_a_large_form_by_its_length(server: Server) -> None:
    with _connect(server) as conn:
        conn.sendall(
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1048576\r\n\r\ngrant_type="
        )
        status, body = _status_and_body(_until_closed(conn))
    assert status == 413
    assert b'"error":"invalid_request"' in body


def test_token_endpoint_body_has_a_deadline(server: Server) -> None:
    with _connect(server) as conn:
        conn.sendall(
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100\r\n\r\ngrant_type="
        )
        status, body = _status_and_body(_until_closed(conn))
    assert status == 408
    assert b'"code":"request-timeout"' in body


def _create_with_half_a_body(server: Server, headers: dict[str, str]) -> None:
    with _connect(server) as conn:
        auth = headers["Authorization"].encode()
        conn.sendall(
            f"POST {STATS}/realtime-reports/export HTTP/1.1\r\nHost: x\r\n".encode()
            + b"Authorization: "
            + auth
            + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            + b'{"data": {"attributes": {'
        )


def _wait_for(condition: Any) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.05)


def test_a_client_hanging_up_mid_body_is_a_499_not_an_error(server: Server) -> None:
    client = create_client(server.data_dir, "321")
    headers = server.token(client)
    pattern = r'mpo_http_requests_total\{method="POST",route="[^"]*export",status="499"\}'
    before = _metric(server, pattern)
    _create_with_half_a_body(server, headers)
    _wait_for(lambda: _metric(server, pattern) == before + 1)
    # INFO lines reach a file in batches (a quarter second apart): wait for this one
    line = "client disconnected before its request body was read"
    _wait_for(lambda: line in server.log.read_text() and '"status":499' in server.log.read_text())
    log = server.log.read_text()
    assert '"status":499' in log
    assert "Traceback" not in log
    assert "unexpected error" not in log
    assert _metric(server, r'mpo_http_requests_total\{[^}]*status="500"\}') == 0


def test_a_create_body_not_sent_in_time_is_408_in_the_envelope(server: Server) -> None:
    """The body deadline of the report routes, over a real socket (not only read_body)."""
    headers = server.token(create_client(server.data_dir, "321"))
    with _connect(server) as conn:
        started = time.monotonic()
        conn.sendall(
            f"POST {STATS}/realtime-reports/export HTTP/1.1\r\nHost: x\r\n".encode()
            + f"Authorization: {headers['Authorization']}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            + b'{"data": {"attributes": {'
        )
        answer = _until_closed(conn)
    status, body = _status_and_body(answer)
    assert status == 408
    assert b'"code":"request-timeout"' in body and b'"traceId"' in body
    assert TIMEOUT <= time.monotonic() - started < DEADLINE


def test_a_streamed_create_body_over_the_limit_is_413_before_the_end(server: Server) -> None:
    """A chunked body (no Content-Length) is counted as it arrives: refused once past the
    limit (1 MiB), without waiting for the rest, which would never come."""
    headers = server.token(create_client(server.data_dir, "321"))
    chunk = b'"1",' * 16_384  # 64 KiB
    with _connect(server) as conn:
        conn.sendall(
            f"POST {STATS}/realtime-reports/export HTTP/1.1\r\nHost: x\r\n".encode()
            + f"Authorization: {headers['Authorization']}\r\n".encode()
            + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        opening = b'{"data": {"attributes": {"advertiserIds": ['
        conn.sendall(b"%x\r\n%s\r\n" % (len(opening), opening))
        for _ in range(17):  # 1 MiB and a bit, never terminated
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        # A client that goes on sending after the answer (it has not read it yet) must
        # still get it whole: the server reads and drops the rest for a while before it
        # closes (a lingering close); closing at once would answer the rest with a
        # reset, which destroys the answer waiting in the client's receive buffer.
        time.sleep(0.5)
        for _ in range(4):
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = _until_closed(conn)
    status, body = _status_and_body(answer)
    assert status == 413
    assert b'"code":"payload-too-large"' in body
