"""Debian's Chromium driven by Playwright, for the console's browser tests and scripts.

Playwright's own browser download cannot work on these machines, so the system's
Chromium is launched through ``executable_path``. The background-networking flags keep
Chromium from calling out (this machine's closed network refuses those connections).
Each launch gets a fresh profile directory; its pages share the HTTP cache (the chart
library is fetched and compiled once per module, not once per test), while each page
(browser tab) has its own sessionStorage, so every test signs in afresh.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

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
def chromium(**options: Any) -> Iterator[BrowserContext]:
    """One headless Chromium on a fresh profile, for a module of tests or a script.

    ``options`` are Playwright's context options (``locale``, ``timezone_id``,
    ``viewport``). The profile directory is deleted when the browser has closed.
    """
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if CHROMIUM.exists() else Path(shutil.which("chromium") or CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="mpo-chromium-") as profile:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=executable, args=CHROMIUM_ARGS, **options
            )
            try:
                context.add_init_script(WATCH_SCRIPT)
                yield context
            finally:
                context.close()


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
