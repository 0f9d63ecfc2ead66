"""The process's own allocators: fewer glibc malloc arenas, and freed memory handed back.

A server process allocates through three allocators: DuckDB's (jemalloc, inside its
library, bounded by its memory limit), pyarrow's (mimalloc) and glibc's ``malloc`` (Python
objects, ingest bodies, DuckDB's memory outside its buffer pool). glibc gives each thread
that allocates an arena of its own, up to 8 per core; the ingest and export threads of
``mpo serve`` filled 16 on 2 cores, and memory freed in one arena is not reused by the
others, so under ingest 40-75 MB of freed memory stayed in the process
(docs/benchmarks.md, "Server memory under ingest"). :func:`limit_arenas` caps the arenas
(``MPO_MALLOC_ARENA_MAX``), before the process starts its threads; :func:`release_free_memory`
hands what the allocators keep freed back to the system, after each export.

Both only measure-and-act on Linux with glibc; elsewhere they do nothing and say so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import platform

import pyarrow as pa

__all__ = [
    "ARENA_MAX_ENV",
    "ARROW_POOL_ENV",
    "limit_arenas",
    "prepare_allocators",
    "release_free_memory",
    "use_system_arrow_pool",
]

log = logging.getLogger(__name__)

#: glibc's own variable: an operator who sets it keeps it (it is read at the first malloc)
ARENA_MAX_ENV = "MALLOC_ARENA_MAX"
#: Arrow's own variable: an operator who sets it keeps the pool it names
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
#: ``mallopt`` parameter number of ``M_ARENA_MAX`` in glibc's ``malloc.h``
_M_ARENA_MAX = -8


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    return libc


def limit_arenas(count: int) -> bool:
    """Let glibc's malloc use at most ``count`` arenas in this process; True if applied.

    Call it before the process starts threads: an arena made before stays. ``0`` keeps
    glibc's default (8 per core), as does ``MALLOC_ARENA_MAX`` set in the environment
    (glibc has applied it already). Fewer arenas means threads share them: with 2 the
    ingest rate and export times were unchanged on 2 cores (docs/benchmarks.md).
    """
    if count <= 0 or ARENA_MAX_ENV in os.environ:
        return False
    libc = _glibc()
    if libc is None:
        log.debug("not glibc: malloc arenas left as they are")
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, count))


def use_system_arrow_pool() -> bool:
    """Make Arrow allocate with glibc's malloc instead of its bundled mimalloc; True if done.

    mimalloc keeps freed segments per thread for reuse, beside glibc's arenas: with both,
    a 10M-row export under 20k events/s of ingest peaked 10-25 MB higher, while the
    writers' CPU time differed by 3 % (CSV) to 7 % (JSON) (docs/benchmarks.md). With
    one allocator, :func:`release_free_memory` returns Arrow's freed memory too. Call it
    before Arrow allocates; ``ARROW_DEFAULT_MEMORY_POOL`` in the environment wins.
    """
    if ARROW_POOL_ENV in os.environ or _glibc() is None:
        return False
    pa.set_memory_pool(pa.system_memory_pool())
    return True


def prepare_allocators(arena_max: int) -> None:
    """What ``mpo serve`` and ``mpo worker`` do first, before any thread or Arrow
    allocation: at most ``arena_max`` glibc arenas, and Arrow on glibc's malloc."""
    limit_arenas(arena_max)
    use_system_arrow_pool()


def release_free_memory() -> None:
    """Hand freed memory back to the system: pyarrow's pool, then glibc's arenas.

    ``malloc_trim`` returns the free pages inside every arena, not only the top of the
    main heap; it takes each arena's lock in turn for a few milliseconds, so it is called
    after a large piece of work (an export), off the event loop.
    """
    pa.default_memory_pool().release_unused()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
