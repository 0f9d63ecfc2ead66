"""The uvicorn internals ``api/protocol.py`` relies on are there, and their loss is loud."""

from __future__ import annotations

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mpo_realtime.api.app import create_app
from mpo_realtime.api.protocol import EdgeHttpToolsProtocol, EdgeLimits, check_uvicorn
from mpo_realtime.api.server import server_config
from mpo_realtime.settings import Settings


def test_check_uvicorn_passes_on_the_pinned_version() -> None:
    check_uvicorn()


@pytest.mark.parametrize("name", ["on_response_complete", "on_message_begin", "data_received"])
def test_check_uvicorn_fails_loudly_when_a_name_goes(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.delattr(HttpToolsProtocol, name)
    with pytest.raises(RuntimeError, match=f"lacks what api/protocol.py relies on.*{name}"):
        check_uvicorn()


def test_server_config_carries_the_settings(tmp_path: object) -> None:
    settings = Settings(
        data_dir="unused",
        port=9123,
        max_header_bytes=1234,
        header_read_timeout_seconds=2.5,
        max_pipelined_requests=3,
        keep_alive_timeout_seconds=7,
    )
    config = server_config(create_app(settings, background=False), settings)
    assert (config.port, config.timeout_keep_alive, config.server_header) == (9123, 7, False)
    assert isinstance(config.http, type) and issubclass(config.http, EdgeHttpToolsProtocol)
    limits = config.http.limits
    assert (limits.max_header_bytes, limits.header_timeout, limits.max_pipelined) == (1234, 2.5, 3)
    assert EdgeLimits().max_pipelined == Settings().max_pipelined_requests
