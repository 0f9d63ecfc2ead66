"""The client's public surface is a deliberate list (httpx's test_exported_members)."""

from __future__ import annotations

import mpo_realtime.client as client


def test_client_all_is_the_public_surface() -> None:
    assert client.__all__ == [
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
    assert client.__all__ == sorted(client.__all__)
    public = {name for name in vars(client) if not name.startswith("_")}
    # every public name is exported, apart from the modules of the package itself
    assert public - set(client.__all__) <= {"annotations", "cli", "migrate_cli", "report_cli"}


def test_client_errors_form_one_tree() -> None:
    errors = [
        getattr(client, name)
        for name in client.__all__
        if name.endswith(
            ("Error", "Denied", "Found", "Expired", "Failed", "Ready", "Limited", "Timeout")
        )
    ]
    assert all(issubclass(error, client.ClientError) for error in errors)
    api_errors = {e for e in errors if issubclass(e, client.ApiError) and e is not client.ApiError}
    assert {e.__name__ for e in api_errors} == {
        "AuthenticationError",
        "ExportFailed",
        "Expired",
        "NotFound",
        "NotReady",
        "PermissionDenied",
        "RateLimited",
        "ServerError",
        "ValidationError",
    }
