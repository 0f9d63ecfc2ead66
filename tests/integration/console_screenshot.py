"""Takes ``docs/console.png``: the console with a real chart of simulated traffic.

Three hours of the simulator's traffic (what ``make run`` back-fills), a real
``mpo serve``, Debian's Chromium: sign in, run the default report for one advertiser,
take the screenshot.

    .venv/bin/python -m tests.integration.console_screenshot [docs/console.png]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from mpo_realtime.store.simulator import World
from tests.integration.browser import chromium
from tests.integration.server import Server, create_client, mpo


def take(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="console-shot-") as scratch:
        data_dir = Path(scratch)
        filled = mpo("simulate", "--hours", "3", data_dir=data_dir)
        assert filled.returncode == 0, filled.stderr
        # the simulator's advertisers (seed 7, as `mpo simulate` and `make run` use)
        scope = ",".join(str(a.advertiser_id) for a in World.generate(seed=7).advertisers)
        client = create_client(data_dir, scope)
        server = Server(data_dir).start()
        try:
            with chromium(
                locale="en-US", timezone_id="Europe/Paris", viewport={"width": 1400, "height": 1000}
            ) as context:
                page = context.new_page()
                page.set_default_timeout(120_000)
                page.goto(f"{server.base}/console")
                page.get_by_label("Client ID").fill(client["client_id"])
                page.get_by_label("Client secret").fill(client["client_secret"])
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_selector("#workspace:not([hidden])")
                boxes = page.locator("#advertiser-choices input")
                for index in range(1, boxes.count()):
                    boxes.nth(index).uncheck()
                page.get_by_label("Lookback window").fill("60")
                page.get_by_label("Time bucket").select_option("minute")
                page.get_by_role("button", name="Run report").click()
                page.wait_for_selector("#result[data-state=ready]")
                page.get_by_label("Chart metric").select_option("displays")
                # Playwright scrolled to the buttons it clicked: back to the top of the page
                page.evaluate(
                    "window.scrollTo(0, 0); document.querySelector('#builder').scrollTo(0, 0)"
                )
                page.wait_for_timeout(1500)  # the chart's own transition, for a still picture
                page.screenshot(path=str(out))
        finally:
            server.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    take(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console.png"))
