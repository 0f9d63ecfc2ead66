"""``mpo`` with a memory probe: ``python benchmarks/_memprobe.py OUT.jsonl SECONDS -- serve ...``.

Runs the ``mpo`` command in this process and, every SECONDS, appends one JSON line to
OUT.jsonl with where the process's memory is: RSS (anonymous and file-backed), glibc
malloc (``mallinfo2``: bytes in use and free in its arenas and mmapped chunks; the arena
count from ``malloc_info``), pyarrow's pool (mimalloc: bytes allocated), DuckDB's own
accounting (``duckdb_memory()`` by tag, and its memory limit), the thread count, and the
number of objects the cyclic collector tracks. Only for measuring (bench_server_memory.py);
with ``MPO_MEMPROBE_TRACEMALLOC=N`` also the N largest Python allocation sites (slow).
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pyarrow as pa

from mpo_realtime.store.duckdb_store import DuckDBEventStore

_STORES: list[DuckDBEventStore] = []
_init = DuckDBEventStore.__init__


def _recording_init(self: DuckDBEventStore, *args: Any, **kwargs: Any) -> None:
    _init(self, *args, **kwargs)
    _STORES.append(self)


DuckDBEventStore.__init__ = _recording_init  # type: ignore[method-assign]


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


_libc = ctypes.CDLL("libc.so.6")
_libc.mallinfo2.restype = _MallInfo2
_libc.fopen.restype = ctypes.c_void_p
_libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
_libc.fclose.argtypes = [ctypes.c_void_p]
_libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]


def _kb(text: str, key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else 0


def _arenas() -> tuple[int, int]:
    """glibc's arenas (heaps) and the bytes they hold from the system, from malloc_info."""
    with tempfile.NamedTemporaryFile(suffix=".xml") as out:
        fp = _libc.fopen(out.name.encode(), b"w")
        _libc.malloc_info(0, fp)
        _libc.fclose(fp)
        xml = Path(out.name).read_text()
    heaps = len(re.findall(r"<heap nr=", xml))
    # the last <system type="current"> is the total over every arena
    current = re.findall(r'<system type="current" size="(\d+)"/>', xml)
    return heaps, int(current[-1]) if current else 0


def _duckdb() -> dict[str, Any]:
    if not _STORES:
        return {}
    store = _STORES[0]
    try:
        cursor = store._cursor()
    except Exception as exc:  # closing
        return {"error": str(exc)}
    try:
        rows = cursor.execute(
            "SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory()"
        ).fetchall()
        limit = cursor.execute("SELECT current_setting('memory_limit')").fetchone()
    finally:
        cursor.close()
    used = {tag: int(mem) for tag, mem, _ in rows if mem}
    spilled = sum(int(tmp) for _, _, tmp in rows)
    return {
        "duckdb_mb": round(sum(used.values()) / 2**20, 1),
        "duckdb_tags_mb": {k: round(v / 2**20, 1) for k, v in used.items()},
        "duckdb_spilled_mb": round(spilled / 2**20, 1),
        "duckdb_limit": limit[0] if limit else None,
    }


def sample() -> dict[str, Any]:
    status = Path("/proc/self/status").read_text()
    info = _libc.mallinfo2()
    heaps, system = _arenas()
    entry: dict[str, Any] = {
        "t": round(time.time(), 2),
        "rss_mb": round(_kb(status, "VmRSS") / 1024, 1),
        "anon_mb": round(_kb(status, "RssAnon") / 1024, 1),
        "file_mb": round(_kb(status, "RssFile") / 1024, 1),
        "hwm_mb": round(_kb(status, "VmHWM") / 1024, 1),
        "threads": threading.active_count(),
        "thread_names": sorted(t.name for t in threading.enumerate()),
        "os_threads": int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1)),  # type: ignore[union-attr]
        "glibc_arenas": heaps,
        "glibc_system_mb": round(system / 2**20, 1),
        "glibc_used_mb": round((info.uordblks + info.hblkhd) / 2**20, 1),
        "glibc_free_mb": round(info.fordblks / 2**20, 1),
        "glibc_mmapped_mb": round(info.hblkhd / 2**20, 1),
        "arrow_mb": round(pa.total_allocated_bytes() / 2**20, 1),
        "gc_objects": len(gc.get_objects()),
    }
    entry.update(_duckdb())
    top = int(os.environ.get("MPO_MEMPROBE_TRACEMALLOC", "0") or 0)
    if top and tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot()
        stats = snapshot.statistics("lineno")
        entry["py_traced_mb"] = round(sum(s.size for s in stats) / 2**20, 1)
        entry["py_top"] = [
            [str(s.traceback[0]), round(s.size / 2**20, 2), s.count] for s in stats[:top]
        ]
    return entry


def _run(out: Path, interval: float) -> None:
    while True:
        try:
            line = json.dumps(sample())
        except Exception as exc:  # a probe must not kill the server
            line = json.dumps({"t": time.time(), "error": repr(exc)})
        with out.open("a") as f:
            f.write(line + "\n")
        time.sleep(interval)


def main() -> None:
    out, interval = Path(sys.argv[1]), float(sys.argv[2])
    args = sys.argv[sys.argv.index("--") + 1 :]
    if int(os.environ.get("MPO_MEMPROBE_TRACEMALLOC", "0") or 0):
        tracemalloc.start(1)
    threading.Thread(target=_run, args=(out, interval), name="memprobe", daemon=True).start()
    sys.argv = ["mpo", *args]
    from mpo_realtime.cli import main as mpo  # noqa: PLC0415

    mpo()


if __name__ == "__main__":
    main()
