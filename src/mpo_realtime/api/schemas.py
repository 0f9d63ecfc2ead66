"""Models of the API's answers and request bodies, for the OpenAPI description.

Request bodies are validated by the domain (to answer the source's exact errors);
these schemas describe the same rules for clients.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from mpo_realtime.domain.report import LOOKBACK_MAX, LOOKBACK_MIN, Dimension, Metric

__all__ = [
    "ERRORS_BY_OPERATION",
    "REPORT_REQUEST_SCHEMA",
    "ErrorEnvelope",
    "ExportStatus",
    "ExportStatusEnvelope",
    "IngestAnswer",
    "SECURITY_SCHEMES",
    "refine_openapi",
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


#: what each error status means, in the description of every operation that answers it
_STATUS_TEXT = {
    400: "Invalid request (every problem listed)",
    401: "Missing, malformed, expired or revoked credentials",
    403: "Out of scope, missing role, or export not found",
    404: "Unknown API version",
    408: "Request body not received in time",
    409: "Conflicting parameters, export not ready or failed",
    410: "Export expired",
    413: "Request body too large",
    415: "Request body of the wrong content type",
    429: "Rate limit or quota reached (see Retry-After)",
    500: "Unexpected error (trace id only)",
    503: "A backing store is unavailable",
}

_STATS = "/{version}/marketing-solutions/marketplace-performance-outcomes/stats"
#: the error statuses each operation really answers (``tests/acceptance/test_openapi.py``
#: fails on an operation missing here, and schemathesis on an answer not listed)
ERRORS_BY_OPERATION: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/oauth2/token"): (400, 401, 408, 413, 415, 429, 500, 503),
    ("post", f"{_STATS}/realtime-reports/export"): (
        400,
        401,
        403,
        404,
        408,
        409,
        413,
        429,
        500,
        503,
    ),
    ("get", f"{_STATS}/report-jobs/{{reportId}}"): (401, 403, 404, 429, 500, 503),
    ("get", f"{_STATS}/realtime-reports/{{reportId}}"): (401, 403, 404, 409, 410, 429, 500, 503),
    ("post", "/ingest/v1/events"): (400, 401, 403, 408, 409, 413, 429, 500, 503),
    ("get", "/{version}/me"): (401, 403, 404, 429, 500, 503),
    ("get", "/health"): (),
    ("get", "/ready"): (503,),
}

#: the OAuth2 scheme "Authorize" in the API browser uses: client credentials
SECURITY_SCHEMES: dict[str, Any] = {
    "oauth2": {
        "type": "oauth2",
        "description": "Client credentials: `mpo clients create` prints a client_id and a "
        "client_secret; the token endpoint exchanges them for a bearer token.",
        "flows": {"clientCredentials": {"tokenUrl": "/oauth2/token", "scopes": {}}},
    }
}


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": _STATUS_TEXT[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }


def refine_openapi(description: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's description, told the truth: each operation's real error statuses with
    the envelope schema (no ``422``: validation errors are 400s here), and the OAuth2
    client-credentials scheme on every operation that takes a bearer token."""
    schemas = description.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["ErrorEnvelope"] = ErrorEnvelope.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for name, schema in schemas["ErrorEnvelope"].pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    description["components"]["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in description["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            responses.pop("422", None)
            statuses = ERRORS_BY_OPERATION.get((method, path))
            if statuses is None:
                continue  # a new route: the test of this table says to add it
            for status in list(responses):
                if status != "default" and int(status) >= 400:
                    del responses[status]
            responses.update({str(status): _error_response(status) for status in statuses})
            if 401 in statuses and path != "/oauth2/token":
                operation["security"] = [{"oauth2": []}]
    return description


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
                                    "fileFormat": {
                                        **_case_insensitive(["csv", "json"]),
                                        "description": "Matched case-insensitively: csv,"
                                        " json; also parquet, an extension of this service"
                                        " (typed columns, application/vnd.apache.parquet)"
                                        " that the official clients do not offer",
                                    },
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
