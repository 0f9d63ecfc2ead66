"""The README's quick start, run as written against a real ``mpo serve --demo``.

The README can never drift from the service again: its shell block is the text that
``mpo serve --demo`` prints (``demo.QUICK_START``), and this test pastes it into bash.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mpo_realtime.demo import QUICK_START, quick_start
from tests.integration.server import Server

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_quick_start() -> str:
    """The README's ``sh`` block that starts with ``PORT=``."""
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(), flags=re.DOTALL | re.MULTILINE)
    [block] = [b for b in blocks if b.startswith("PORT=")]
    return str(block)


def test_readme_shows_what_serve_demo_prints() -> None:
    assert readme_quick_start() == QUICK_START == quick_start()


def test_readme_quick_start_runs_as_written(tmp_path: Path) -> None:
    if not all(map(_on_path, ("bash", "curl", "python3"))):
        pytest.fail("the quick start needs bash, curl and python3 on PATH")
    # The reader's directory: the repository, with .venv/bin/mpo and the data in var/.
    mpo = tmp_path / ".venv" / "bin" / "mpo"
    mpo.parent.mkdir(parents=True)
    mpo.write_text(f'#!/bin/sh\nexec {sys.executable} -m mpo_realtime "$@"\n')
    mpo.chmod(0o755)
    server = Server(tmp_path / "var", "--demo", "--demo-hours", "0.5")
    (tmp_path / "var").mkdir()
    try:
        server.start()
        script = readme_quick_start()
        done = subprocess.run(
            ["bash", "-e", "-u", "-o", "pipefail", "-c", script],
            cwd=tmp_path,
            env={**os.environ, "PORT": str(server.port)},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        printed = server.output
    finally:
        server.stop()
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    report = (tmp_path / "report.csv").read_text().splitlines()
    assert report[0] == '"campaignId","hour","clicks","displays","cost"'
    assert len(report) > 1
    assert done.stdout.splitlines() == report[:5]
    # what the server printed is the same text, for its own port and data dir
    here = ".venv/bin/mpo" if Path(".venv/bin/mpo").exists() else "mpo"
    shown = quick_start(port=server.port, data_dir=tmp_path / "var", mpo=here)
    assert shown in printed


def _on_path(name: str) -> bool:
    return any(
        os.access(Path(folder) / name, os.X_OK) for folder in os.environ["PATH"].split(os.pathsep)
    )
