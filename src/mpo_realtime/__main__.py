"""``python -m mpo_realtime`` is the ``mpo`` command."""

from __future__ import annotations

from mpo_realtime.client.cli import main

main()
