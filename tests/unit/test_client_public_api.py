"""The client's public surface is a deliberate list (httpx's test_exported_members): sorted,
complete, and its errors one tree."""

from __future__ import annotations

import types

import mpo_realtime.client as client


def test_client_all_is_the_public_surface() -> None:
    # the list itself is pinned with every other module's in test_public_api.py
    assert client.__all__ == sorted(client.__all__)
    # every public name is exported, apart from the package's own modules: which of
    # those are attributes depends on what was imported before (the order of the tests)
    public = {
        name
        for name, value in vars(client).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(client.__all__) == {"annotations"}


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
