"""Downloaded files: written whole or not at all, and checked while they stream."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["AtomicFile", "IncompleteFile", "Receiver", "RowCounter", "format_of"]

_JSON_TAIL = re.compile(rb'"rows":(\d+)\}\s*$')


class IncompleteFile(Exception):
    """The body ended where a whole export file cannot end."""


def format_of(content_type: str | None) -> str:
    """``csv``, ``json``, or the subtype of any other content type."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "text/csv":
        return "csv"
    if media == "application/json":
        return "json"
    return media.rpartition("/")[2] or "unknown"


class RowCounter:
    """Counts the data rows of a CSV or JSON export as its bytes go by.

    CSV: line ends outside quotes, less the header (quotes are doubled inside a quoted
    field, so the parity of the quotes seen tells inside from outside). JSON: the final
    ``"rows":N}`` of the API's columnar object. Either check also proves that the body
    ended where a whole file ends.
    """

    def __init__(self, file_format: str) -> None:
        self.format = file_format
        self._lines = 0
        self._quoted = False
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._tail = (self._tail + chunk)[-64:]
        if self.format != "csv":
            return
        if not self._quoted and b'"' not in chunk:
            self._lines += chunk.count(b"\n")
            return
        parts = chunk.split(b'"')
        for index, part in enumerate(parts):
            if not self._quoted:
                self._lines += part.count(b"\n")
            if index < len(parts) - 1:
                self._quoted = not self._quoted

    def rows(self) -> int | None:
        """The row count; None for formats it cannot count. Raises if the file is cut."""
        if self.format == "csv":
            if self._quoted or not self._tail.endswith(b"\n"):
                raise IncompleteFile("the CSV file does not end with a whole line")
            return max(0, self._lines - 1)
        if self.format == "json":
            match = _JSON_TAIL.search(self._tail)
            if match is None:
                raise IncompleteFile('the JSON file does not end with its "rows" count')
            return int(match.group(1))
        return None


class AtomicFile:
    """A file written beside ``path`` under a hidden temporary name, renamed on commit.

    Until ``commit`` nothing exists at ``path`` (or its previous content stays); a
    ``discard`` (or any failure) removes the temporary file. The file gets the usual
    permissions (0666 less the umask), as any file the user creates.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
        fd = os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self._file = os.fdopen(fd, "wb")
        self.size = 0
        self.committed = False

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self.size += len(chunk)

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.temporary, self.path)
        self.committed = True

    def discard(self) -> None:
        if self.committed:
            return
        self._file.close()
        self.temporary.unlink(missing_ok=True)


class Receiver:
    """Where a download's chunks go: counted and checked, then into a file or memory."""

    def __init__(self, content_type: str, path: Path | None, file: BinaryIO | None) -> None:
        self.content_type = content_type
        self.counter = RowCounter(format_of(content_type))
        self.target = AtomicFile(path) if path is not None else None
        self.buffer = bytearray()
        self.size = 0
        if self.target is not None:
            self.write: Callable[[bytes], object] = self.target.write
        elif file is not None:
            self.write = file.write
        else:
            self.write = self.buffer.extend

    def __call__(self, chunk: bytes) -> None:
        self.counter.feed(chunk)
        self.write(chunk)
        self.size += len(chunk)

    def finish(self) -> int | None:
        """The row count, once the body is known whole; the file is then renamed in."""
        rows = self.counter.rows()
        if self.target is not None:
            self.target.commit()
        return rows

    def discard(self) -> None:
        if self.target is not None:
            self.target.discard()
