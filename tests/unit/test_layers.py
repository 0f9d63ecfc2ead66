"""Imports point inward: api → exports → store → domain (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "mpo_realtime"
#: what each layer may import from the project, besides itself
ALLOWED = {
    "domain": set(),
    "store": {"domain"},
    "exports": {"domain", "store"},
    "console": {"domain"},
    "api": {"domain", "store", "exports", "services", "settings", "console"},
}


def _project_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "mpo_realtime" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_point_inward(layer: str) -> None:
    for path in (PACKAGE / layer).rglob("*.py"):
        extra = _project_imports(path) - ALLOWED[layer] - {layer, "__init__"}
        assert not extra, f"{path.relative_to(PACKAGE)} imports {sorted(extra)}"


def test_domain_does_no_io() -> None:
    forbidden = {"duckdb", "sqlalchemy", "httpx", "fastapi", "pyarrow", "os", "socket"}
    for path in (PACKAGE / "domain").rglob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not modules & forbidden, f"{path.name} imports {sorted(modules & forbidden)}"


#: ``cli.py`` is the composition root of the ``mpo`` command (serve, clients, simulate):
#: it may reach the server's layers; the report client beside it may not.
#: ``mpo`` itself and ``mpo migrate-events`` (registered on it) compose server parts
CLIENT_COMPOSITION_ROOT = {"cli.py", "migrate_cli.py"}
#: ``traffic.py`` (``mpo simulate --url``) speaks HTTP too, paced by the pure ``pacing``
#: module that the embedded demo shares; nothing else of the server
CLIENT_MAY_IMPORT = {"traffic.py": {"pacing"}}


def test_client_speaks_only_http() -> None:
    """The report client and ``mpo report`` import nothing of the server: only HTTP."""
    modules = [
        p for p in (PACKAGE / "client").rglob("*.py") if p.name not in CLIENT_COMPOSITION_ROOT
    ]
    assert {p.name for p in modules} >= {"__init__.py", "_base.py", "report_cli.py"}
    for path in modules:
        extra = _project_imports(path) - {"client"} - CLIENT_MAY_IMPORT.get(path.name, set())
        assert not extra, f"client/{path.name} imports {sorted(extra)}"
