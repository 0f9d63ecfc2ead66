"""Named SQL queries, one file per dialect, split on ``-- name: x`` headers."""

from __future__ import annotations

import functools
import re
from importlib import resources

__all__ = ["queries"]

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@functools.cache
def queries(dialect: str) -> dict[str, str]:
    text = resources.files(__package__).joinpath(f"{dialect}.sql").read_text("utf-8")
    parts = _HEADER.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}
