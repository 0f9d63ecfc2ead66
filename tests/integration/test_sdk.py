"""Criteo's official Python SDK, unmodified, against a real ``mpo serve``.

The SDK pins its own dependencies (urllib3, python-dateutil), so it lives in a virtual
environment of its own, ``.venv-sdk/`` at the repository's root, made on first use and
kept between runs (git ignores it); the project's ``.venv`` never sees it. The flow runs
as a subprocess (``sdk_flow.py``) in that environment, as an integrator's program would.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.integration.report_service import ReportService, run_python, start_report_service

ROOT = Path(__file__).resolve().parents[2]
#: the preview flavour (versions 0.0.YYMMDD) that knows the real-time report endpoints
SDK_REQUIREMENT = "criteo-api-marketingsolutions-sdk==0.0.261026"
SDK_VENV = ROOT / ".venv-sdk"


def sdk_python() -> Path:
    """The interpreter of ``.venv-sdk`` with the pinned SDK, made once (atomically)."""
    stamp = SDK_VENV / f".installed-{SDK_REQUIREMENT.partition('==')[2]}"
    python = SDK_VENV / "bin" / "python"
    if stamp.exists():
        return python
    build = ROOT / f".venv-sdk.build-{os.getpid()}"
    shutil.rmtree(build, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(build)], check=True, timeout=300)
        installed = subprocess.run(
            [str(build / "bin" / "python"), "-m", "pip", "install", "--quiet", SDK_REQUIREMENT],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if installed.returncode != 0:
            pytest.fail(f"cannot install {SDK_REQUIREMENT}:\n{installed.stderr[-3000:]}")
        (build / stamp.name).touch()
        # A venv may be moved whole: its interpreter finds pyvenv.cfg beside itself.
        shutil.rmtree(SDK_VENV, ignore_errors=True)
        build.rename(SDK_VENV)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return python


@pytest.fixture(scope="module")
def sdk() -> Path:
    return sdk_python()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportService]:
    running = start_report_service(tmp_path_factory.mktemp("sdk"))
    try:
        yield running
    finally:
        running.server.stop()


def test_sdk_is_isolated_from_the_project(sdk: Path) -> None:
    code = "import criteo_api_marketingsolutions_preview as m, urllib3; print(m.__file__)"
    location = run_python(code, env=dict(os.environ), python=str(sdk))
    assert location.startswith(str(SDK_VENV))
    missing = subprocess.run(
        [sys.executable, "-c", "import criteo_api_marketingsolutions_preview"],
        capture_output=True,
        check=False,
    )
    assert missing.returncode != 0  # not in the project's own environment


def test_sdk_exports_both_formats_and_reads_a_validation_error(
    sdk: Path, service: ReportService
) -> None:
    script = Path(__file__).parent / "sdk_flow.py"
    interval = [service.start.isoformat(), service.end.isoformat()]
    done = subprocess.run(
        [str(sdk), str(script), service.advertisers[0], *interval],
        env=service.env(),
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)
    for file_format, content_type in (("Csv", "text/csv"), ("Json", "application/json")):
        answer = result[file_format]
        assert answer["createdType"] == "RealTimeProductReportJobStatus"
        assert answer["statuses"][-1] == "Done"
        assert set(answer["statuses"]) <= {"Pending", "Done"}
        assert answer["httpStatus"] == 200
        assert answer["contentType"].split(";")[0] == content_type
        # the very file that plain HTTP downloads for that export
        body = base64.b64decode(answer["body"])
        assert body == service.raw_download(answer["exportId"]).content
    assert result["Csv"]["exportId"] != result["Json"]["exportId"]
    header = base64.b64decode(result["Csv"]["body"]).split(b"\n", 1)[0]
    assert header == b'"campaignId","hour","clicks","displays","cost"'
    json_file = orjson.loads(base64.b64decode(result["Json"]["body"]))
    assert json_file["rows"] == len(json_file["data"]) > 0
    assert json_file["data"][0][1].endswith(("+01:00", "+02:00"))  # Europe/Paris
    error = result["error"]
    assert error["status"] == 400
    [problem] = error["body"]["errors"]
    assert problem["code"] == "invalid-lookbackwindow"
    assert problem["source"] == {"pointer": "/data/attributes/lookbackWindow"}
    assert re.fullmatch(r"[0-9a-f]{32}", problem["traceId"])


def test_readme_sdk_example_runs_as_written(
    sdk: Path, service: ReportService, tmp_path: Path
) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Three ways in", 1)[1].split("\n## ", 1)[0]
    [code] = [c for c in re.findall(r"```python\n(.*?)```", section, flags=re.S) if "criteo" in c]
    assert SDK_REQUIREMENT in section
    done = subprocess.run(
        [str(sdk), "-c", code],
        cwd=tmp_path,
        env=service.env(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "report.csv").read_bytes()
    assert report.startswith(b'"campaignId","hour","clicks","displays","cost"\n')
    assert report.count(b"\n") > 1
