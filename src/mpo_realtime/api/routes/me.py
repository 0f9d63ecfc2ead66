"""``GET /{version}/me``: who the bearer is, which advertisers it may report on, its limits.

The API has no other way to tell a client its own scope; the console builds its
advertiser choice from this answer. It says nothing beyond the client's own ID, name,
advertiser IDs and limits.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from mpo_realtime.api.deps import ReportClient, services_of

__all__ = ["router"]

router = APIRouter(tags=["clients"])


class ClientLimits(BaseModel):
    reportRequestsPerMinute: int = Field(  # noqa: N815 - the API's camelCase
        description="Report API calls (create, poll, download, me) per minute"
    )
    exportsPerHour: int = Field(  # noqa: N815
        description="New exports per hour; reused exports do not count"
    )


class CurrentClient(BaseModel):
    clientId: str  # noqa: N815
    name: str
    advertiserIds: list[str] = Field(  # noqa: N815
        description="The advertisers this client may report on, as decimal strings"
    )
    limits: ClientLimits


@router.get("/{version}/me", response_model=CurrentClient, operation_id="get_current_client")
async def current_client(request: Request, client: ReportClient) -> Response:
    """The signed-in client: ID, name, advertiser scope and the limits that apply to it."""
    settings = services_of(request).settings
    answer = CurrentClient(
        clientId=client.client_id,
        name=client.name,
        advertiserIds=[str(a) for a in client.advertiser_ids],
        limits=ClientLimits(
            reportRequestsPerMinute=client.requests_per_minute
            or settings.report_requests_per_minute,
            exportsPerHour=client.exports_per_hour or settings.exports_per_hour,
        ),
    )
    return Response(
        answer.model_dump_json(),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
