"""TEMPORARY instrumentation (issue 10): per-stage timings of creates and polls.

Enabled by ``MPO_STAGE_TRACE=<dir>``: each process appends JSON lines to
``<dir>/<pid>.jsonl``. Removed before the branch is merged.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import orjson

_DIR = os.environ.get("MPO_STAGE_TRACE")
ENABLED = bool(_DIR)
_lock = threading.Lock()
_file: Any = None
_local = threading.local()
_monitor_started = False


def _out() -> Any:
    global _file
    if _file is None:
        assert _DIR
        _file = open(os.path.join(_DIR, f"{os.getpid()}.jsonl"), "ab", buffering=0)  # noqa: SIM115
    return _file


def write(record: dict[str, Any]) -> None:
    if not ENABLED:
        return
    line = orjson.dumps(record) + b"\n"
    with _lock:
        _out().write(line)


def now() -> float:
    return time.perf_counter()


def stages() -> dict[str, float]:
    """The stage dict of this thread's current call (reset by ``begin``)."""
    d = getattr(_local, "stages", None)
    if d is None:
        d = _local.stages = {}
    return d


def begin() -> dict[str, float]:
    _local.stages = {}
    return _local.stages


def mark(name: str, since: float) -> float:
    t = time.perf_counter()
    if ENABLED:
        d = stages()
        d[name] = d.get(name, 0.0) + (t - since)
    return t


def threadpool_busy() -> int:
    try:
        import anyio.to_thread

        return int(anyio.to_thread.current_default_thread_limiter().borrowed_tokens)
    except Exception:  # noqa: BLE001
        return -1


def start_loop_monitor() -> None:
    """Record event-loop lag: how late a 20 ms sleep wakes up (only lags > 20 ms)."""
    global _monitor_started
    if not ENABLED or _monitor_started:
        return
    _monitor_started = True

    async def monitor() -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.02)
            lag = time.perf_counter() - t - 0.02
            if lag > 0.02:
                write({"k": "lag", "t": time.time(), "lag": lag, "busy": threadpool_busy()})

    asyncio.get_running_loop().create_task(monitor())
