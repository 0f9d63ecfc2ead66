"""Models of the API's answers and request bodies, for the OpenAPI description.

Request bodies are validated by the domain (to answer the source's exact errors);
these schemas describe the same rules for clients.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from mpo_realtime.domain.report import LOOKBACK_MAX, LOOKBACK_MIN, Dimension, Metric

__all__ = [
    "ERROR_RESPONSES",
    "REPORT_REQUEST_SCHEMA",
    "ErrorEnvelope",
    "ExportStatus",
    "ExportStatusEnvelope",
    "IngestAnswer",
]

Status = Literal["Pending", "Done", "Failure", "Expired"]


class ExportStatus(BaseModel):
    exportId: str = Field(description="UUID of the export job")  # noqa: N815
    status: Status
    message: str | None = None


class _StatusResource(BaseModel):
    type: str = "RealTimeProductReportJobStatus"
    attributes: ExportStatus


class Problem(BaseModel):
    traceId: str  # noqa: N815
    type: str
    code: str
    title: str
    detail: str
    source: dict[str, str] | None = None


class ExportStatusEnvelope(BaseModel):
    data: _StatusResource
    warnings: list[Problem] = []
    errors: list[Problem] = []


class ErrorEnvelope(BaseModel):
    """Every error answer: all problems found, plus warnings."""

    warnings: list[Problem] = []
    errors: list[Problem]


#: every error status the API may answer, documented on every operation
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": text}
    for status, text in {
        400: "Invalid request (every problem listed)",
        401: "Missing, malformed, expired or revoked credentials",
        403: "Out of scope, missing role, or export not found",
        404: "Unknown API version or route",
        405: "Method not allowed",
        408: "Request body too slow",
        409: "Conflicting parameters, export not ready or failed",
        410: "Export expired",
        413: "Request body too large",
        429: "Rate limit or quota reached (see Retry-After)",
        500: "Unexpected error (trace id only)",
        503: "A backing store is unavailable",
    }.items()
}


class IngestAnswer(BaseModel):
    accepted: int = Field(description="Events stored by this request (or the original one)")
    duplicate: bool = Field(description="The Idempotency-Key was seen before: nothing stored")


def _case_insensitive(values: list[str]) -> dict[str, Any]:
    return {"type": "string", "description": "Matched case-insensitively: " + ", ".join(values)}


_IDS = {
    "type": "array",
    "items": {"oneOf": [{"type": "string", "pattern": "^[0-9]+$"}, {"type": "integer"}]},
}
REPORT_REQUEST_SCHEMA: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {
                        "type": "object",
                        "required": ["attributes"],
                        "properties": {
                            "type": {"type": "string", "example": "RealTimeProductReportJob"},
                            "attributes": {
                                "type": "object",
                                "required": ["advertiserIds"],
                                "properties": {
                                    "fileFormat": _case_insensitive(["csv", "json"]),
                                    "advertiserIds": {**_IDS, "minItems": 1},
                                    "campaignIds": _IDS,
                                    "sellerIds": _IDS,
                                    "partnerIds": _IDS,
                                    "dimensions": {
                                        "type": "array",
                                        "items": _case_insensitive([d.value for d in Dimension]),
                                    },
                                    "metrics": {
                                        "type": "array",
                                        "items": _case_insensitive([m.value for m in Metric]),
                                    },
                                    "lookbackWindow": {
                                        "type": "integer",
                                        "minimum": LOOKBACK_MIN,
                                        "maximum": LOOKBACK_MAX,
                                    },
                                    "startDate": {"type": "string", "format": "date-time"},
                                    "endDate": {"type": "string", "format": "date-time"},
                                    "timezone": {"type": "string", "example": "Europe/Paris"},
                                },
                            },
                        },
                    }
                },
            }
        }
    },
}
