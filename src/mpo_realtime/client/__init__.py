"""A Python client of the MPO Real-Time Asynchronous API, and the ``mpo`` command line.

The client speaks only HTTP: it imports nothing of the server's layers, so that it works
against any deployment of the API. Its public surface is what this module exports::

    from mpo_realtime.client import ReportClient

    with ReportClient.from_env() as client:  # MPO_URL, MPO_CLIENT_ID, MPO_CLIENT_SECRET
        result = client.export(advertiser_ids=[321], dimensions=["campaignId", "hour"])
        for row in result.rows():
            ...
"""

from __future__ import annotations

from mpo_realtime.client._async import AsyncReportClient
from mpo_realtime.client._base import StatusCallback
from mpo_realtime.client._config import Credentials, PollPolicy, RetryPolicy
from mpo_realtime.client._errors import (
    ApiError,
    AuthenticationError,
    ClientError,
    Expired,
    ExportFailed,
    NotFound,
    NotReady,
    PermissionDenied,
    Problem,
    RateLimited,
    ServerError,
    TransportError,
    ValidationError,
    WaitTimeout,
)
from mpo_realtime.client._models import ExportStatus, ReportOptions, Status
from mpo_realtime.client._result import ExportResult, Row, Value
from mpo_realtime.client._sync import ReportClient

__all__ = [
    "ApiError",
    "AsyncReportClient",
    "AuthenticationError",
    "ClientError",
    "Credentials",
    "Expired",
    "ExportFailed",
    "ExportResult",
    "ExportStatus",
    "NotFound",
    "NotReady",
    "PermissionDenied",
    "PollPolicy",
    "Problem",
    "RateLimited",
    "ReportClient",
    "ReportOptions",
    "RetryPolicy",
    "Row",
    "ServerError",
    "Status",
    "StatusCallback",
    "TransportError",
    "ValidationError",
    "Value",
    "WaitTimeout",
]
