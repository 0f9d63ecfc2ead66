"""mpo-realtime: real-time reporting for marketplace ad performance."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
