"""The ingest entry point of the application: what ``POST /ingest/v1/events`` calls.

The HTTP layer hands over the body, the caller and its key, and gets a receipt or a
domain error; it never sees the event store or its exceptions.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from mpo_realtime.domain.errors import ErrorCode, ProblemError
from mpo_realtime.domain.jobs import WriteScope
from mpo_realtime.store.base import IdempotencyConflict, IngestReceipt
from mpo_realtime.store.ingest import Ingestor

__all__ = ["IngestService"]


@dataclass(frozen=True, slots=True)
class IngestService:
    """Stores one ingest request all or nothing, for a caller with a write scope."""

    ingestor: Ingestor

    async def ingest(
        self,
        body: bytes,
        *,
        client_id: str,
        scope: WriteScope,
        idempotency_key: str | None,
        now_ms: int | None = None,
    ) -> IngestReceipt:
        """Parse and check ``body`` off the event loop, then wait until it is durable.

        Bad input raises the domain's ``ProblemError`` (nothing is stored); a key used
        before with another body is an ``invalid-events`` conflict on the header.
        """
        now = int(time.time() * 1000) if now_ms is None else now_ms
        prepared = await asyncio.to_thread(
            self.ingestor.prepare,
            body,
            now_ms=now,
            client_id=client_id,
            scope=scope,
            idempotency_key=idempotency_key,
        )
        try:
            return await self.ingestor.store_async(prepared)
        except IdempotencyConflict:
            raise ProblemError.single(
                ErrorCode.INVALID_EVENTS,
                "this Idempotency-Key was used before with a different body",
                "/headers/Idempotency-Key",
                conflict=True,
            ) from None
