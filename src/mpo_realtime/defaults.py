"""Defaults that ``mpo --help`` shows, shared with :class:`~mpo_realtime.settings.Settings`.

Plain values in a module that imports nothing heavy, so that the command line can show
them without importing pydantic (``mpo --help`` should answer at once).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA_DIR", "HOST", "PORT"]

DATA_DIR = Path("var")
HOST = "127.0.0.1"
PORT = 8080
