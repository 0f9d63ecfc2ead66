"""Shared pieces of the benchmark scripts: a real ``mpo serve`` process, percentiles, RSS.

Everything binds 127.0.0.1 only. A server started here is always stopped by its PID
(SIGINT, then SIGKILL after a grace period) when the ``with`` block ends, also on error.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "BENCH_SERVER_ENV",
    "CpuWindow",
    "MPO",
    "STATS",
    "RssSampler",
    "Server",
    "cpu_seconds",
    "create_client",
    "free_port",
    "get_token",
    "machine_cpu",
    "percentile",
    "print_table",
    "run_delay_seconds",
    "running_server",
    "spawn",
    "start_server",
    "stop_process",
    "summary_ms",
]

#: the ``mpo`` command of the interpreter running the benchmark (the project's venv)
MPO = str(Path(sys.executable).with_name("mpo"))
STATS = "/preview/marketing-solutions/marketplace-performance-outcomes/stats"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: Settings for benchmark servers: the rate limits are policy, not capacity, so they are
#: raised far above what one machine can do (the ingest budget is per server setting).
BENCH_SERVER_ENV = {"MPO_INGEST_REQUESTS_PER_MINUTE": "100000000"}


def create_client(
    data_dir: Path,
    name: str,
    advertisers: Sequence[int],
    *,
    ingest: bool = False,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``mpo clients create ... --json``: client_id and client_secret.

    The client's own rate limit and export quota are raised far above what a benchmark
    spends, so that polling every 10 ms is never refused.
    """
    command = [
        MPO,
        "clients",
        "create",
        name,
        "--advertisers",
        ",".join(str(a) for a in advertisers),
        "--requests-per-minute",
        "100000000",
        "--exports-per-hour",
        "100000000",
        "--json",
        "--data-dir",
        str(data_dir),
    ]
    if ingest:
        command.append("--ingest")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True, env=env)
    created: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return created


@dataclass
class Server:
    """A running ``mpo serve`` subprocess."""

    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_healthy(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"mpo serve exited with {server.process.returncode}:\n{server.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if http.get("/health").status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"mpo serve not healthy after {timeout} s:\n{server.log_tail()}")


def spawn(command: Sequence[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output in ``log_path``, in a session of its own.

    Under ``setpriv --pdeathsig TERM`` where it exists (it execs, so the PID is the
    command's): a benchmark killed outright leaves no server behind on a shared machine.
    """
    command = list(command)
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        command = [setpriv, "--pdeathsig", "TERM", "--", *command]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C of the benchmark reaches it only via stop
        )


def stop_process(
    process: subprocess.Popen[bytes], grace: float, first: int = signal.SIGINT
) -> None:
    """Stop one process by its PID: ``first`` (SIGINT: uvicorn shuts down cleanly), then
    SIGKILL after ``grace`` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, first)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def start_server(
    data_dir: Path,
    *,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    base_env: dict[str, str] | None = None,
    startup_timeout: float = 120.0,
) -> Server:
    """``mpo serve --data-dir D --port P [args]`` on 127.0.0.1, healthy; the caller stops it
    (:func:`stop_process`). ``base_env`` replaces this process's environment."""
    port = free_port()
    log_path = data_dir / "server.log"
    command = [MPO, "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1"]
    command += ["--port", str(port), *args]
    base = os.environ if base_env is None else base_env
    process = spawn(command, log_path, {**base, **BENCH_SERVER_ENV, **(env or {})})
    server = Server(process, f"http://127.0.0.1:{port}", data_dir, log_path)
    try:
        _wait_healthy(server, startup_timeout)
    except BaseException:
        stop_process(process, grace=30.0)
        raise
    return server


@contextlib.contextmanager
def running_server(
    data_dir: Path, *, env: dict[str, str] | None = None, startup_timeout: float = 120.0
) -> Iterator[Server]:
    """``mpo serve --data-dir D --port P`` on 127.0.0.1, healthy, stopped at the end."""
    server = start_server(data_dir, env=env, startup_timeout=startup_timeout)
    try:
        yield server
    finally:
        stop_process(server.process, grace=60.0)


def get_token(url: str, client_id: str, client_secret: str) -> str:
    with httpx.Client(base_url=url, timeout=30.0) as http:
        answer = http.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
            },
        )
        answer.raise_for_status()
        token: str = answer.json()["access_token"]
        return token


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def machine_cpu() -> tuple[float, float, float]:
    """Jiffies of the whole machine so far: (busy, steal, total), from ``/proc/stat``."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    busy = user + nice + system + irq + softirq
    return float(busy), float(steal), float(busy + idle + iowait + steal)


class CpuWindow:
    """CPU and run-queue wait of some processes, and the machine's busy and steal share,
    between :meth:`start` and :meth:`stop`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.result: dict[str, Any] = {}

    def start(self) -> None:
        self._cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._wait = {name: run_delay_seconds(pid) for name, pid in self.pids.items()}
        self._machine = machine_cpu()
        self._started = time.monotonic()

    def stop(self) -> dict[str, Any]:
        machine = machine_cpu()
        total = machine[2] - self._machine[2]
        self.result = {
            "seconds": round(time.monotonic() - self._started, 2),
            "cpu_s": {
                name: round(cpu_seconds(pid) - self._cpu[name], 2)
                for name, pid in self.pids.items()
            },
            # runnable but waiting for a core (summed over threads)
            "runqueue_wait_s": {
                name: round(run_delay_seconds(pid) - self._wait[name], 2)
                for name, pid in self.pids.items()
            },
            # share of all cores busy (every process of the machine) and taken by the host
            "machine_busy": round((machine[0] - self._machine[0]) / total, 3) if total else None,
            "machine_steal": round((machine[1] - self._machine[1]) / total, 3) if total else None,
        }
        return self.result


def run_delay_seconds(pid: int) -> float:
    """Seconds the threads of process ``pid`` have spent runnable but waiting for a CPU
    (``/proc/PID/task/*/schedstat``, second field; threads that ended are not counted)."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(stat.read_text().split()[1])
    return total / 1e9


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Samples VmRSS of a process every ``interval`` seconds in a thread (max and last)."""

    def __init__(self, pid: int, interval: float = 0.05, max_seconds: float = 3600.0) -> None:
        self.pid = pid
        self.interval = interval
        self.max_seconds = max_seconds
        self.peak_kb = 0
        self.start_kb = _status_kb(pid, "VmRSS") or 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            rss = _status_kb(self.pid, "VmRSS")
            if rss is None:
                return
            self.peak_kb = max(self.peak_kb, rss)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def hwm_kb(self) -> int | None:
        """VmHWM: the peak RSS of the process since it started."""
        return _status_kb(self.pid, "VmHWM")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """n, p50, p90, p99 and max of durations given in seconds, in milliseconds."""
    return {
        "n": len(seconds),
        "p50_ms": round(percentile(seconds, 50) * 1000, 2),
        "p90_ms": round(percentile(seconds, 90) * 1000, 2),
        "p99_ms": round(percentile(seconds, 99) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2) if seconds else float("nan"),
    }


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A small fixed-width table on stdout."""
    cells = [[str(h) for h in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            print("  " + "  ".join("-" * w for w in widths))
    sys.stdout.flush()
