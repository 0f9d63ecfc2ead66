"""Debian's Chromium driven by Playwright, for the console's browser tests and scripts.

Playwright's own browser download cannot work on these machines, so the system's
Chromium is launched through ``executable_path``. The background-networking flags keep
Chromium from calling out (this machine's closed network refuses those connections);
Playwright gives every launch a fresh, temporary profile directory of its own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: records Content-Security-Policy violations and dialogs (an injected alert) in the page
WATCH_SCRIPT = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber} ${e.sample}`);
});
"""


def browser_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (a dev dependency: make test installs it)"
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        return (
            f"{CHROMIUM} is absent and could not be installed (make test installs Debian's "
            "chromium when run as root with apt-get)"
        )
    return None


def require_browser() -> None:
    """Skip with the reason where Chromium truly cannot run; on CI that is a failure."""
    reason = browser_unavailable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"console browser tests cannot run on CI: {reason}")
    pytest.skip(f"console browser tests skipped: {reason}")


@contextmanager
def chromium() -> Iterator[Browser]:
    """One headless Chromium for a module of tests (or a script), closed at the end."""
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if CHROMIUM.exists() else Path(shutil.which("chromium") or CHROMIUM)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A page's uncaught errors, dialogs and CSP violations, gathered as they come."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def csp_violations(self) -> list[str]:
        violations: list[str] = self.page.evaluate("window.__cspViolations || []")
        return violations
