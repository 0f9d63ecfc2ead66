"""Pure domain code: validation, error codes, time buckets, query plans. No I/O."""

from __future__ import annotations
