"""``mpo worker``: export runners and the sweeper, without HTTP.

A worker claims Pending jobs from the shared job store (PostgreSQL), queries the shared
event store (ClickHouse), writes the files into the shared export directory and marks
the jobs Done; API processes (``mpo serve --no-runner``) answer the polls and serve the
files. Run as many workers as the exports need, on as many machines: claims never hand
one job to two workers, and a worker that dies (even SIGKILLed) loses nothing: its
lease runs out (``MPO_LEASE_SECONDS``) and another worker claims the job again.

Every worker runs a sweep loop; only the one that holds the sweeper's leadership sweeps
(:class:`~mpo_realtime.exports.leader.ClusterLeader`), so expiry and retention run in
one process of the cluster at a time.

SIGTERM or SIGINT stops it gracefully: no new claims, running jobs get
``MPO_SHUTDOWN_GRACE_SECONDS`` to finish, then are released to another worker; a second
signal releases them at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from mpo_realtime.deployment import require_shared
from mpo_realtime.domain.errors import MpoError
from mpo_realtime.logs import configure_logging, flush_logs
from mpo_realtime.memory import prepare_allocators
from mpo_realtime.services import Services
from mpo_realtime.settings import Settings

__all__ = ["run_worker"]

log = logging.getLogger(__name__)


def run_worker(settings: Settings, *, say: Callable[[str], None] = print) -> None:
    """Run export jobs and sweeps until SIGTERM or SIGINT; raises ``NotShared`` at once
    when the event or job store cannot be shared with the API processes."""
    prepare_allocators(settings.malloc_arena_max)  # before any thread (mpo_realtime.memory)
    configure_logging(logging.INFO, log_format=settings.log_format)
    require_shared(settings, "mpo worker", rate_limits=False)
    if settings.runner_concurrency < 1:
        raise MpoError("a worker needs MPO_RUNNER_CONCURRENCY of at least 1")
    services = Services.open(settings)
    try:
        asyncio.run(_work(services, say))
    finally:
        services.close()
        log.info("worker stopped: jobs finished or released, stores closed")
        flush_logs()


async def _work(services: Services, say: Callable[[str], None]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            services.runner.stop(release=True)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    services.start_background(runners=True, sweeper=True)
    say(
        f"worker {services.runner.owner}: {services.settings.runner_concurrency} export "
        "runners and the sweeper (when it leads); Ctrl+C stops"
    )
    await stop.wait()
    grace = services.settings.shutdown_grace_seconds
    log.info("stopping: no new jobs; running ones get %.0fs", grace)
    await services.stop_background()
