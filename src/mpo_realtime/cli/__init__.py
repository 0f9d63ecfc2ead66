"""The ``mpo`` command line (see :mod:`mpo_realtime.cli.main`)."""

from __future__ import annotations

from mpo_realtime.cli.main import app, main

__all__ = ["app", "main"]
