"""``python -m mpo_realtime`` is the ``mpo`` command."""

from __future__ import annotations

from mpo_realtime.cli import main

main()
