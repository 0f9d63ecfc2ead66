"""A transport that sends each small answer in one write instead of two.

uvicorn writes a response's status line and headers as soon as the app starts the
answer, and the body when it comes: two ``send`` syscalls per request. On this kind of
virtual machine a loopback ``send`` costs 30-70 µs, more than the whole of a poll's own
work, so the transport here holds small writes until the end of the event-loop pass
and sends them joined. Large writes (file downloads) go out at once, with anything held
before them, so big bodies are neither delayed nor copied twice.

``api/protocol.py`` puts it under uvicorn's protocol; this module knows only asyncio.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["HOLD_LIMIT", "CoalescingTransport"]

#: writes are held while the bytes held stay below this
HOLD_LIMIT = 16 * 1024


class CoalescingTransport(asyncio.Transport):
    """Wraps a transport: writes made in one loop pass reach it as one write."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))
        self._held_size += len(data)
        if self._held_size >= HOLD_LIMIT:
            self.flush()

    def flush(self) -> None:
        """Hand everything held to the wrapped transport."""
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held = []
        self._held_size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = []
        self._held_size = 0
        self._transport.abort()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_write_buffer_size(self) -> int:
        return self._held_size + self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)
