"""Export files: the :class:`FileStore` interface and its local (or shared) directory.

In the scale-out deployment every API process and every worker opens the same
directory (``MPO_EXPORT_DIR`` on a shared volume): a worker writes a file, any API
process serves it. The interface is what runners, the sweeper and downloads use, so an
S3-compatible store can take the directory's place later.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

__all__ = ["FileStore", "LocalFileStore"]


class FileStore(Protocol):
    """Where finished export files live; a file appears whole or not at all."""

    def open_new(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A sink for ``name``: visible only if the block ends without an exception."""
        ...

    def path(self, name: str) -> Path:
        """Where ``name`` can be read (a local path, for the HTTP file response)."""
        ...

    def exists(self, name: str) -> bool: ...

    def delete(self, name: str) -> None: ...

    def clean_partials(self) -> int:
        """Remove writes that were never finished by a writer now gone; how many."""
        ...


class LocalFileStore:
    """Files live at ``root/<name>``; writes go to ``root/.partial`` and are renamed in.

    A crash mid-write leaves only a ``.partial`` file, which is never served and is
    removed by :meth:`clean_partials`. A writer holds a POSIX lock on its partial file
    for as long as it writes, so that a process starting on the same shared directory
    (another API process, another worker, another machine over NFS) removes only the
    partials of writers that are gone, never one still being written.
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
                fcntl.lockf(sink.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                yield sink
                sink.flush()
                os.fsync(sink.fileno())
                # renamed while still locked: a cleaner never sees it unlocked before
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
        """Remove files left by writes that never finished; returns how many.

        Files still locked by their writer (in another process) are left alone. Call it
        before this process writes anything: POSIX locks never conflict within one
        process, so this process's own writes would look abandoned.
        """
        removed = 0
        for leftover in self._partial.iterdir():
            try:
                with leftover.open("rb+") as handle:
                    fcntl.lockf(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    leftover.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EACCES, errno.EAGAIN):
                    continue  # a live writer holds it
                raise
            removed += 1
        return removed
