"""Export files: the :class:`FileStore` interface and its local (or shared) directory.

In the scale-out deployment every API process and every worker opens the same
directory (``MPO_EXPORT_DIR`` on a shared volume): a worker writes a file, any API
process serves it. The interface is what runners, the sweeper and downloads use, so an
S3-compatible store can take the directory's place later.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import functools
import io
import os
import platform
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["FileStore", "LocalFileStore"]

#: Bytes written between two starts of write-back (see :class:`_WritingBack`)
_WRITEBACK_BYTES = 16 << 20
#: ``sync_file_range`` flag of Linux's ``fcntl.h``: start writing, do not wait
_SYNC_FILE_RANGE_WRITE = 2


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
            with io.BufferedWriter(_WritingBack(partial), buffer_size=1 << 20) as sink:
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


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """glibc's ``sync_file_range`` (Linux only; Python's ``os`` has none), or None."""
    if platform.system() != "Linux":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


class _WritingBack(io.FileIO):
    """A new file whose bytes the kernel starts writing to disk as they come.

    A published export is ``fsync``-ed first (durability); left to the end, that waits
    for the whole file (0.3 s for 710 MB here, most of it I/O wait after the last row).
    Every :data:`_WRITEBACK_BYTES` this asks Linux to start writing what came since
    (``sync_file_range(..., SYNC_FILE_RANGE_WRITE)``, which does not wait for the disk),
    so the write-back overlaps the export and the final ``fsync`` finds little left, as
    RocksDB's ``bytes_per_sync`` and PostgreSQL's ``backend_flush_after`` do. Only a
    hint: where it is missing or refused, the final ``fsync`` does all the work.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, "wb")
        self._start = _sync_file_range()
        self._started = 0  # bytes handed to write-back so far
        self._written = 0

    @property
    def writeback_started(self) -> int:
        """Bytes from the start of the file whose write-back was started so far."""
        return self._started

    def write(self, data: ReadableBuffer, /) -> int:
        written = super().write(data)
        self._written += written
        if self._start is not None and self._written - self._started >= _WRITEBACK_BYTES:
            pending = self._written - self._started
            if self._start(self.fileno(), self._started, pending, _SYNC_FILE_RANGE_WRITE):
                self._start = None  # refused here (a file system without it): fsync only
            else:
                self._started = self._written
        return written
