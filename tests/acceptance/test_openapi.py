"""The served OpenAPI description against the server itself, with schemathesis.

Bounded (a fixed seed and a few dozen cases per operation): zero 5xx and zero answers
that break the description. One check is left out: "schema-valid data is accepted". JSON
Schema cannot say that an event's timestamp must lie within the retention window, or
that an advertiser must be in the caller's scope, so valid-looking requests are rightly
refused with a documented 4xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mpo_realtime.api.app import create_app
from mpo_realtime.domain.jobs import Role
from mpo_realtime.services import Services
from mpo_realtime.settings import Settings


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    active = Settings(
        data_dir=tmp_path_factory.mktemp("openapi"),
        signing_key="openapi-test-key-openapi-test-key!!",
        flush_interval_seconds=0.01,
        report_requests_per_minute=100_000,
        ingest_requests_per_minute=100_000,
        token_requests_per_minute=100_000,
        token_requests_per_minute_per_address=100_000,
        exports_per_hour=100_000,
    )
    services = Services.open(active)
    app = create_app(active, services=services, background=False)
    client, _ = services.clients.create(
        "schemathesis", advertiser_ids=[1, 321], roles=list(Role), now=datetime.now(UTC)
    )
    token = services.clients.issue_token(client, now=datetime.now(UTC)).access_token
    with TestClient(app):
        yield app, {"Authorization": f"Bearer {token}"}
    services.close()


def _operations() -> list[str]:
    app = create_app(Settings(data_dir="unused"), background=False)
    loaded = schemathesis.openapi.from_dict(app.openapi())
    return [_ok(op).label for op in loaded.get_all_operations()]


def _ok(result: Any) -> Any:
    """The operation of a schema-loading result (which fails the test if it did not load)."""
    return result.ok()


@pytest.mark.parametrize("label", _operations())
def test_openapi_answers_conform(label: str, served: tuple[Any, dict[str, str]]) -> None:
    app, headers = served
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
    (operation,) = [_ok(op) for op in loaded.get_all_operations() if _ok(op).label == label]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=40,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    check()
