"""Imports point inward: api → exports → store → domain (docs/architecture.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
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


#: ``traffic.py`` (``mpo simulate --url``) speaks HTTP too, paced by the pure ``pacing``
#: module that the embedded demo shares; nothing else of the server
CLIENT_MAY_IMPORT = {"traffic.py": {"pacing"}}


def test_client_speaks_only_http() -> None:
    """The report client and ``mpo report`` import nothing of the server: only HTTP.

    The ``mpo`` command's composition root is ``mpo_realtime/cli/``, outside ``client/``.
    """
    modules = list((PACKAGE / "client").rglob("*.py"))
    assert {p.name for p in modules} >= {"__init__.py", "_base.py", "report_cli.py"}
    for path in modules:
        extra = _project_imports(path) - {"client"} - CLIENT_MAY_IMPORT.get(path.name, set())
        assert not extra, f"client/{path.name} imports {sorted(extra)}"


#: what ``mpo --help`` must not import: the settings, the stores, the server, the client
HEAVY_AT_HELP = ["pydantic", "sqlalchemy", "duckdb", "fastapi", "httpx", "pyarrow", "uvicorn"]


def test_cli_imports_nothing_heavy_until_a_command_runs() -> None:
    """``mpo --help`` answers at once: commands import their parts when they run."""
    probe = (
        "import sys, mpo_realtime.cli; "
        f"print(','.join(m for m in {HEAVY_AT_HELP!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""
