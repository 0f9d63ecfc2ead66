"""Event ingestion: ``POST /ingest/v1/events``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from mpo_realtime.api.body import read_body
from mpo_realtime.api.deps import IngestClient, services_of
from mpo_realtime.api.schemas import IngestAnswer

__all__ = ["router"]

router = APIRouter(tags=["ingest"])


@router.post(
    "/ingest/v1/events",
    response_model=IngestAnswer,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }
    },
)
async def ingest_events(
    request: Request,
    client: IngestClient,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> IngestAnswer:
    """Store a batch of events, all or nothing; visible to reports once answered.

    Every event must belong to an advertiser of the client's scope (or the client is a
    trusted producer): one that does not refuses the whole request, before anything is
    queued for the store.
    """
    services = services_of(request)
    settings = services.settings
    body = await read_body(
        request, limit=settings.ingest_max_body_bytes, timeout=settings.body_read_timeout_seconds
    )
    receipt = await services.ingest.ingest(
        body,
        client_id=client.client_id,
        scope=client.write_scope,
        idempotency_key=idempotency_key,
    )
    return IngestAnswer(accepted=receipt.events, duplicate=receipt.duplicate)
