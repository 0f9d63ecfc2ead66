"""The allowed import graph (docs/architecture.md, "Layers"), as import-linter contracts.

The contracts live in ``pyproject.toml`` and ``make lint`` runs them; here they run too,
on the tree and on a scratch copy with a crossing added, which they must catch.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "mpo_realtime"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(source_root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with our contracts, on the package under ``source_root``."""
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=source_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contracts_hold() -> None:
    answer = _lint_imports(ROOT / "src")
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert "0 broken" in answer.stdout


@pytest.mark.parametrize(
    ("module", "crossing", "contract"),
    [
        # the composition root reaching the HTTP layer (services.py once imported api.metrics)
        ("services.py", "mpo_realtime.api.metrics", "The server's layers point inward"),
        # a store reaching up to the application
        ("store/base.py", "mpo_realtime.exports.service", "The server's layers point inward"),
        # a route calling the store itself (the ingest route once did)
        ("api/routes/ingest.py", "mpo_realtime.store.base", "only through the application"),
        ("client/_base.py", "mpo_realtime.services", "The report client speaks only HTTP"),
        ("console/routes.py", "mpo_realtime.exports.jobstore", "The console's pages"),
        ("settings.py", "mpo_realtime.domain.errors", "are leaves"),
        ("domain/report.py", "mpo_realtime.settings", "The domain imports nothing"),
        # the commands' programs stand alone, and the deployment checks below them
        ("worker.py", "mpo_realtime.supervisor", "The server's layers point inward"),
        ("deployment.py", "mpo_realtime.exports.service", "The server's layers point inward"),
        ("defaults.py", "mpo_realtime.domain.errors", "are leaves"),
    ],
)
def test_a_new_crossing_breaks_a_contract(
    tmp_path: Path, module: str, crossing: str, contract: str
) -> None:
    shutil.copytree(
        PACKAGE, tmp_path / "mpo_realtime", ignore=shutil.ignore_patterns("__pycache__")
    )
    target = tmp_path / "mpo_realtime" / module
    target.write_text(target.read_text() + f"\nimport {crossing}  # the crossing\n")
    answer = _lint_imports(tmp_path)
    assert answer.returncode != 0, answer.stdout
    broken = answer.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, answer.stdout
    assert crossing in broken, answer.stdout


def test_every_module_is_under_a_contract() -> None:
    """A new top-level module or package must be placed in the graph, not left outside."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    named: set[str] = set()
    for contract in config["contracts"]:
        for entry in [*contract.get("layers", []), *contract.get("source_modules", [])]:
            named.update(part.strip() for part in entry.split("|"))
    tops = {
        f"mpo_realtime.{path.stem if path.is_file() else path.name}"
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert tops - named == set()


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
