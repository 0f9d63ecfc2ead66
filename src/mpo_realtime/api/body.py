"""Reading request bodies defensively: bounded in size and in time."""

from __future__ import annotations

import asyncio

from fastapi import Request

from mpo_realtime.domain.errors import ErrorCode, ProblemError

__all__ = ["read_body"]


async def read_body(request: Request, *, limit: int, timeout: float) -> bytes:
    """The body, refused before it is read whole if over ``limit`` bytes or ``timeout`` s."""
    too_large = ProblemError.single(
        ErrorCode.PAYLOAD_TOO_LARGE, f"the body exceeds {limit} bytes; send smaller requests"
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise ProblemError.single(
            ErrorCode.REQUEST_TIMEOUT, f"the body was not received within {timeout:g} s"
        ) from None
    return b"".join(chunks)
