"""Export files on a local (or shared) directory, written atomically."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["LocalFileStore"]


class LocalFileStore:
    """Files live at ``root/<name>``; writes go to ``root/.partial`` and are renamed in.

    A crash mid-write leaves only a ``.partial`` file, which is never served and is
    removed by :meth:`clean_partials`.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._partial = root / ".partial"
        self._partial.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad export file name {name!r}")
        return self.root / name

    @contextlib.contextmanager
    def open_new(self, name: str) -> Iterator[BinaryIO]:
        """Write ``name``: visible only if the block ends without an exception."""
        final = self.path(name)
        partial = self._partial / f"{name}.{uuid.uuid4().hex}"
        try:
            with partial.open("wb", buffering=1 << 20) as sink:
                yield sink
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(partial, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(name).unlink()

    def clean_partials(self) -> int:
        """Remove files left by writes that never finished; returns how many."""
        removed = 0
        for leftover in self._partial.iterdir():
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                removed += 1
        return removed
