"""The export file store: whole files or none, and partials of live writers kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mpo_realtime.exports import files as files_module
from mpo_realtime.exports.files import LocalFileStore

#: holds a lock on a partial file as a writer in another process does, until killed
_WRITER = """
import fcntl, sys, time
with open(sys.argv[1], "wb") as sink:
    fcntl.lockf(sink.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    sink.write(b"half an export")
    sink.flush()
    print("locked", flush=True)
    time.sleep(120)
"""


def test_files_open_new_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    files = LocalFileStore(tmp_path)
    with files.open_new("a.csv") as sink:
        sink.write(b"x,y\n")
        assert not files.exists("a.csv")
    assert files.path("a.csv").read_bytes() == b"x,y\n"
    with pytest.raises(RuntimeError), files.open_new("b.csv") as sink:
        sink.write(b"half")
        raise RuntimeError("the query failed")
    assert not files.exists("b.csv")
    assert list((tmp_path / ".partial").iterdir()) == []


def test_files_clean_partials_keeps_those_another_process_writes(tmp_path: Path) -> None:
    """A process starting on a shared export directory removes only abandoned partials."""
    files = LocalFileStore(tmp_path)
    abandoned = tmp_path / ".partial" / "dead.csv.0"
    abandoned.write_bytes(b"left by a crash")
    live = tmp_path / ".partial" / "live.csv.1"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(live)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "locked\n"

        assert files.clean_partials() == 1

        assert sorted(p.name for p in (tmp_path / ".partial").iterdir()) == ["live.csv.1"]
    finally:
        writer.kill()
        writer.communicate()
    assert files.clean_partials() == 1
    assert list((tmp_path / ".partial").iterdir()) == []


def test_files_open_new_starts_writeback_as_it_writes(tmp_path: Path) -> None:
    """Large files are handed to the disk step by step (Linux), and stay byte for byte."""
    files = LocalFileStore(tmp_path)
    step = files_module._WRITEBACK_BYTES
    # odd sizes: some pieces stay in the buffer, some pass it, steps end mid-piece
    pieces = [bytes([i % 251]) * size for i, size in enumerate([7, 3 << 20, 1 << 19] * 12)]
    with files.open_new("big.csv") as sink:
        for piece in pieces:
            sink.write(piece)
        started = sink.raw.writeback_started  # type: ignore[attr-defined]
    expected = b"".join(pieces)
    assert files.path("big.csv").read_bytes() == expected
    if sys.platform == "linux":
        # every full step handed over (all but what the 1 MiB buffer and the last, short
        # step still held), and only bytes written already
        assert len(expected) - step - (1 << 20) < started <= len(expected)
