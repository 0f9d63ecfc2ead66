"""The console's browser tests skip only where Chromium cannot run, and never on CI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration import browser


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.setattr(shutil, "which", lambda name: None)


@pytest.mark.usefixtures("no_chromium")
def test_browser_tests_skip_with_the_reason_without_chromium(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="could not be installed"):
        browser.require_browser()


@pytest.mark.usefixtures("no_chromium")
def test_browser_tests_fail_on_ci_without_chromium(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run on CI"):
        browser.require_browser()


def test_browser_tests_run_where_chromium_is() -> None:
    if not browser.CHROMIUM.exists():
        pytest.skip(f"{browser.CHROMIUM} is absent on this machine")
    assert browser.browser_unavailable() is None
