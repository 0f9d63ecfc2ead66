"""The docs name every setting, command and error code (datasette's test_docs, in small)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main

from mpo_realtime.client.cli import app
from mpo_realtime.domain.errors import ErrorCode
from mpo_realtime.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_docs_operations_lists_every_setting(name: str) -> None:
    assert f"`MPO_{name.upper()}`" in (DOCS / "operations.md").read_text()


def _commands() -> list[str]:
    group = typer.main.get_group(app)
    names = []
    for name, command in group.commands.items():
        sub = getattr(command, "commands", None)
        names += [f"mpo {name} {s}" for s in sub] if sub else [f"mpo {name}"]
    return names


@pytest.mark.parametrize("command", _commands())
def test_docs_operations_lists_every_command(command: str) -> None:
    assert f"`{command}" in (DOCS / "operations.md").read_text()


@pytest.mark.parametrize("code", [c.value for c in ErrorCode])
def test_docs_api_lists_every_error_code(code: str) -> None:
    assert f"`{code}`" in (DOCS / "api.md").read_text()
