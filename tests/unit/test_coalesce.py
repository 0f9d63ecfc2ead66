"""The coalescing transport over a real socket pair and a real asyncio transport."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from mpo_realtime.api.coalesce import HOLD_LIMIT, CoalescingTransport

Scenario = Callable[[CoalescingTransport, socket.socket], Awaitable[None]]


def _pending(peer: socket.socket) -> bytes:
    """What the peer can read right now (b"" when nothing arrived)."""
    try:
        return peer.recv(1 << 20)
    except BlockingIOError:
        return b""


async def _until_closed(peer: socket.socket) -> bytes:
    """Everything the peer receives until the connection ends (EOF or reset)."""
    received = b""
    async with asyncio.timeout(10):
        while True:
            try:
                piece = peer.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.001)  # a turn of the loop: the transport may send
                continue
            except ConnectionResetError:
                return received
            if not piece:
                return received
            received += piece


def _run(scenario: Scenario) -> None:
    """``scenario`` on a coalescing transport over one end of a socket pair."""

    async def main() -> None:
        ours, peer = socket.socketpair()
        peer.setblocking(False)
        loop = asyncio.get_running_loop()
        raw, _ = await loop.connect_accepted_socket(asyncio.Protocol, sock=ours)
        assert isinstance(raw, asyncio.Transport)
        try:
            await scenario(CoalescingTransport(raw, loop), peer)
        finally:
            raw.abort()
            peer.close()

    asyncio.run(main())


def test_writes_of_one_pass_leave_together() -> None:
    async def scenario(transport: CoalescingTransport, peer: socket.socket) -> None:
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(b"{}")
        assert _pending(peer) == b""  # held until the loop pass ends
        assert transport.get_write_buffer_size() == 40
        await asyncio.sleep(0)
        assert _pending(peer) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
        assert transport.get_write_buffer_size() == 0

    _run(scenario)


def test_large_writes_leave_at_once_after_what_was_held() -> None:
    async def scenario(transport: CoalescingTransport, peer: socket.socket) -> None:
        big = b"x" * HOLD_LIMIT
        transport.write(b"head")
        transport.write(big)
        received = _pending(peer)
        assert received.startswith(b"head") and len(received) > 4  # no loop pass needed
        async with asyncio.timeout(10):
            while len(received) < 4 + len(big):
                await asyncio.sleep(0.001)  # the socket buffer may take it in several reads
                received += _pending(peer)
        assert received == b"head" + big

    _run(scenario)


def test_close_sends_what_was_held() -> None:
    async def scenario(transport: CoalescingTransport, peer: socket.socket) -> None:
        transport.write(b"last words")
        transport.close()
        assert transport.is_closing()
        assert await _until_closed(peer) == b"last words"

    _run(scenario)


def test_abort_drops_what_was_held() -> None:
    async def scenario(transport: CoalescingTransport, peer: socket.socket) -> None:
        transport.write(b"never sent")
        transport.abort()
        assert await _until_closed(peer) == b""

    _run(scenario)


def test_empty_writes_hold_nothing() -> None:
    async def scenario(transport: CoalescingTransport, peer: socket.socket) -> None:
        transport.write(b"")
        assert transport.get_write_buffer_size() == 0
        transport.writelines([b"a", b"", b"b"])
        await asyncio.sleep(0)
        assert _pending(peer) == b"ab"

    _run(scenario)
