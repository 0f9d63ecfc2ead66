"""The process's allocators (``mpo_realtime.memory``), each in a real process of its own:
malloc arenas are per process and fixed once made, so a test cannot share one."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="glibc's malloc only",
)

#: glibc's arena count, from malloc_info's XML (one <heap> per arena)
_ARENAS = textwrap.dedent(
    """
    import ctypes, re, tempfile
    def arenas():
        libc = ctypes.CDLL("libc.so.6")
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        with tempfile.NamedTemporaryFile(suffix=".xml") as out:
            fp = libc.fopen(out.name.encode(), b"w")
            libc.malloc_info(0, fp)
            libc.fclose(fp)
            return len(re.findall("<heap nr=", open(out.name).read()))
    """
)

#: 8 threads alive at once, each allocating with malloc (blocks past pymalloc's 512 bytes)
_THREADS = _ARENAS + textwrap.dedent(
    """
    import json, sys, threading
    from mpo_realtime.memory import limit_arenas
    applied = limit_arenas(int(sys.argv[1]))
    barrier = threading.Barrier(8)
    def work():
        barrier.wait()
        blocks = [bytearray(4096) for _ in range(200)]
        barrier.wait()
        del blocks
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"applied": applied, "arenas": arenas()}))
    """
)


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_limit_arenas_caps_the_arenas_of_the_threads() -> None:
    assert _run(_THREADS, "2") == {"applied": True, "arenas": 2}


def test_limit_arenas_zero_keeps_glibcs_default_an_arena_per_thread() -> None:
    # the case the cap is for: 8 threads, 9 arenas with the main one (up to 8 per core)
    result = _run(_THREADS, "0")
    assert result["applied"] is False
    assert result["arenas"] > 2


def test_limit_arenas_leaves_an_operators_malloc_arena_max() -> None:
    result = _run(_THREADS, "2", env={"MALLOC_ARENA_MAX": "4"})
    assert result == {"applied": False, "arenas": 4}


_FREED = textwrap.dedent(
    """
    import json, re, threading
    from mpo_realtime.memory import release_free_memory
    def anon_kb():
        text = open("/proc/self/status").read()
        return int(re.search(r"RssAnon:\\s+(\\d+)", text).group(1))
    kept = []
    def work():
        # 160 MB in a thread's arena, of which 1 block in 50 stays: the free memory is
        # between live blocks, where freeing alone never gives it back
        blocks = [bytearray(1000) for _ in range(160_000)]
        kept.extend(blocks[::50])
        del blocks
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    before = anon_kb()
    release_free_memory()
    print(json.dumps({"before_kb": before, "after_kb": anon_kb(), "kept": len(kept)}))
    """
)


def test_release_free_memory_gives_freed_pages_back_to_the_system() -> None:
    result = _run(_FREED)
    assert result["kept"] == 3200
    # about 150 MB were freed between the kept blocks; most of it must leave the process
    assert result["before_kb"] - result["after_kb"] > 100_000, result


_POOL = textwrap.dedent(
    """
    import json
    import pyarrow as pa
    from mpo_realtime.memory import use_system_arrow_pool
    applied = use_system_arrow_pool()
    table = pa.table({"x": list(range(100_000))})
    print(json.dumps({"applied": applied, "pool": pa.default_memory_pool().backend_name,
                      "allocated": pa.system_memory_pool().bytes_allocated()}))
    del table
    """
)


def test_use_system_arrow_pool_moves_arrows_allocations_to_glibc() -> None:
    result = _run(_POOL)
    assert result["applied"] is True
    assert result["pool"] == "system"
    assert result["allocated"] >= 800_000  # the table's 100,000 int64 values


def test_use_system_arrow_pool_leaves_an_operators_choice() -> None:
    base = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run(
        [sys.executable, "-c", _POOL],
        env={**base, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["applied"] is False
    assert result["pool"] == "mimalloc"
