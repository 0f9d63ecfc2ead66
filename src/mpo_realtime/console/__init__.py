"""The reports console: one page, our own JavaScript and CSS, and the chart library that
the ``plotly`` package ships, served at ``/console`` by the API process.

The console is a client of the public API like any integrator: the page signs in at
``/oauth2/token`` and sends every request to the same endpoints, with the bearer token
it keeps in the browser tab. Nothing here reads a store.
"""

from __future__ import annotations

from mpo_realtime.console.routes import CONSOLE_PATH, console_router
from mpo_realtime.console.security import CONTENT_SECURITY_POLICY, SECURITY_HEADERS

__all__ = ["CONSOLE_PATH", "CONTENT_SECURITY_POLICY", "SECURITY_HEADERS", "console_router"]
