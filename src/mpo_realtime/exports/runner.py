"""Job runners: claim Pending jobs, stream their query into a file, mark them Done.

In the embedded deployment runners are asyncio tasks of the server; ``mpo worker``
runs the same :class:`JobRunner` in its own process.

Claims are fair between clients (see ``SqlJobStore.claim_next``), and one client holds
at most ``max_running_per_client`` of a runner's loops, so that another client's export
never waits for a whole queue of somebody else's.

A job that fails gets a stable message with an error ID; what went wrong inside (engine
errors, SQL, paths) goes to the log under that ID, never to the client.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import BinaryIO

import pyarrow as pa

from mpo_realtime.domain.errors import StoreError
from mpo_realtime.domain.jobs import Job
from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.domain.report import FileFormat
from mpo_realtime.exports.files import FileStore
from mpo_realtime.exports.jobstore import SqlJobStore
from mpo_realtime.exports.service import Clock, file_name_for, utcnow
from mpo_realtime.exports.writers import WriteResult, write_export, write_lines, write_parquet
from mpo_realtime.memory import release_free_memory
from mpo_realtime.store.base import EventStore, LineExporter

__all__ = ["JobRunner", "LeaseLost", "failure_message", "runner_id"]

log = logging.getLogger(__name__)

#: Rows per batch read for an export. CSV and JSON text of a batch is made at once
#: (several times the batch's own size); at 65,536 rows a 9.4M-row export peaked
#: 36-49 MB higher than at 16,384 (Parquet, whose row groups gather batches: 16 MB),
#: and took no longer (``docs/benchmarks.md``).
_READ_BATCH_ROWS = 16_384


def _new_error_id() -> str:
    """An ID that ties a failure message to its log lines (32 hex digits, like trace IDs)."""
    return uuid.uuid4().hex


def runner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseLost(Exception):
    """Another runner took the job over: stop without finishing it."""


class _Released(Exception):
    """The runner is stopping and gives the job back (see :meth:`JobRunner.stop`)."""


def failure_message(error_id: str, *, file: bool = False) -> str:
    """What a failed job tells its client: what failed, in words, and where to look."""
    what = "the export file could not be written" if file else "the export could not be produced"
    return f"{what}; the operator can look it up with error id {error_id}"


class JobRunner:
    """Runs export jobs; safe to run many of them against one job store."""

    def __init__(
        self,
        *,
        jobs: SqlJobStore,
        events: EventStore,
        files: FileStore,
        export_ttl: timedelta = timedelta(hours=24),
        lease: timedelta = timedelta(seconds=60),
        owner: str | None = None,
        clock: Clock = utcnow,
        on_finished: Callable[[Job], None] | None = None,
        max_running_per_client: int | None = None,
        text_in_engine: bool = False,
    ) -> None:
        """``max_running_per_client``: how many of this runner's loops one client's jobs
        may hold at once; ``None`` is all of them, until :meth:`serve` picks its default.
        ``text_in_engine``: CSV and JSON text made by the store (see :meth:`_write`)."""
        self.jobs = jobs
        self.events = events
        self.files = files
        self.export_ttl = export_ttl
        self.lease = lease
        self.owner = owner or runner_id()
        self.clock = clock
        self.on_finished = on_finished
        self.max_running_per_client = max_running_per_client
        self.text_in_engine = text_in_engine
        self._wake = asyncio.Event()
        self._loop_ref: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._releasing = threading.Event()

    def stop(self, *, release: bool = False) -> None:
        """Claim no more jobs: :meth:`serve` returns once the jobs being run are done.

        With ``release``, those jobs are given up too: each stops at its next batch,
        leaves no file and releases its lease, so that another runner claims it at once
        (a graceful stop that ran out of time). Callable from any thread.
        """
        self._stopping.set()
        if release:
            self._releasing.set()
        self.wake()

    def run_one(self) -> Job | None:
        """Claim and run the next Pending job (in fair order); None when there is none
        (or when stopping)."""
        if self._stopping.is_set():
            return None
        job = self.jobs.claim_next(
            owner=self.owner,
            now=self.clock(),
            lease=self.lease,
            max_running=self.max_running_per_client,
        )
        if job is None:
            return None
        self.execute(job)
        return self.jobs.get_job(job.id)

    def execute(self, job: Job) -> None:
        started = time.perf_counter()
        try:
            plan = QueryPlan.from_json(job.spec["plan"])
            name = file_name_for(job)
            first_batch: list[float] = []
            lease = _LeaseKeeper(self, job)
            with self.files.open_new(name) as sink:
                with lease:
                    result = self._write(job, plan, first_batch, sink, lease)
                # the file is published (renamed into place) only while the job is still
                # ours: a runner that lost it leaves no file behind for the new owner
                lease.confirm()
            # Arrow's pool and glibc's arenas keep what an export freed for later: hand it
            # back, so that the server's memory does not creep up export after export.
            release_free_memory()
        except LeaseLost:
            log.warning("job %s: lease lost, leaving it to its new owner", job.id)
            return
        except _Released:
            self._release(job)
            return
        except Exception as exc:
            if self._releasing.is_set():
                self._release(job)  # the process is stopping under it: not the job's fault
                return
            error_id = _new_error_id()
            log.exception(
                "job %s failed (error id %s)",
                job.id,
                error_id,
                extra={"traceId": error_id, "jobId": job.id},
            )
            self._fail(job, failure_message(error_id, file=isinstance(exc, OSError)))
            return
        total = time.perf_counter() - started
        query = (first_batch[0] - started) if first_batch else total
        now = self.clock()
        finished = self.jobs.finish_job(
            job.id,
            owner=self.owner,
            now=now,
            row_count=result.rows,
            byte_size=result.bytes,
            file_name=name,
            expires_at=now + self.export_ttl,
            query_seconds=query,
            write_seconds=total - query,
        )
        if not finished:
            log.warning("job %s finished after its lease moved on; result discarded", job.id)
        elif self.on_finished is not None:
            done = self.jobs.get_job(job.id)
            if done is not None:
                self.on_finished(done)

    def _write(
        self,
        job: Job,
        plan: QueryPlan,
        first_batch: list[float],
        sink: BinaryIO,
        lease: _LeaseKeeper,
    ) -> WriteResult:
        """Stream the job's rows into ``sink`` in its format.

        By default the writers format the typed rows as they stream (``write_export``).
        With ``text_in_engine`` and a :class:`LineExporter` store (DuckDB), CSV and JSON
        rows come from the store already as the file's text, made in the engine's threads
        before its sort (``render_export_lines``, byte for byte the same files): the
        runner only copies bytes. That overlaps the
        formatting with the query on idle cores, but DuckDB's sort then carries more bytes
        per row than the typed columns, and on the loaded machine it was measured on it
        gained no time (``docs/benchmarks.md``): not the default until measured further.
        Parquet takes the typed rows and writes them in row groups as they come.
        """
        file_format = FileFormat(job.file_format)
        columns = plan.columns
        if file_format is FileFormat.PARQUET:
            typed = self._renewing(
                job, self.events.aggregate(plan, batch_rows=_READ_BATCH_ROWS), first_batch, lease
            )
            return write_parquet(typed, columns=columns, timezone=plan.timezone, sink=sink)
        if self.text_in_engine and isinstance(self.events, LineExporter):
            lines = self._renewing(
                job,
                self.events.export_lines(plan, file_format, batch_rows=_READ_BATCH_ROWS),
                first_batch,
                lease,
            )
            return write_lines(lines, columns=columns, file_format=file_format, sink=sink)
        rows = self._renewing(
            job, self.events.aggregate(plan, batch_rows=_READ_BATCH_ROWS), first_batch, lease
        )
        return write_export(
            rows, columns=columns, file_format=file_format, timezone=plan.timezone, sink=sink
        )

    def _release(self, job: Job) -> None:
        """End our lease now: the job stays Pending and the next claim takes it."""
        released = self.jobs.renew_lease(job.id, owner=self.owner, until=self.clock())
        if released:
            log.info("job %s: released for another runner (stopping)", job.id)

    def _fail(self, job: Job, message: str) -> None:
        self.jobs.fail_job(job.id, owner=self.owner, now=self.clock(), message=message)
        failed = self.jobs.get_job(job.id)
        if failed is not None and self.on_finished is not None:
            self.on_finished(failed)

    def _renewing(
        self,
        job: Job,
        batches: Iterator[pa.RecordBatch],
        first: list[float],
        lease: _LeaseKeeper,
    ) -> Iterator[pa.RecordBatch]:
        """Pass batches through; stop at the next batch once the lease is lost or the
        runner gives the job back (the keeper renews the lease meanwhile)."""
        for batch in batches:
            if self._releasing.is_set():
                raise _Released(job.id)
            if lease.lost:
                raise LeaseLost(job.id)
            if not first:
                first.append(time.perf_counter())
            yield batch

    def wake(self) -> None:
        """Tell idle runner tasks that a job was created; callable from any thread."""
        if self._loop_ref is not None and not self._loop_ref.is_closed():
            self._loop_ref.call_soon_threadsafe(self._wake.set)

    async def serve(self, *, concurrency: int, poll_interval: float = 1.0) -> None:
        """Run ``concurrency`` loops until cancelled.

        Unless set, ``max_running_per_client`` becomes ``concurrency - 1`` (at least 1):
        one loop always stays free for the other clients.
        """
        if self.max_running_per_client is None:
            self.max_running_per_client = max(1, concurrency - 1)
        self._wake = asyncio.Event()
        self._loop_ref = asyncio.get_running_loop()
        await asyncio.gather(*(self._loop(poll_interval) for _ in range(concurrency)))

    async def _loop(self, poll_interval: float) -> None:
        while not self._stopping.is_set():
            try:
                job = await asyncio.to_thread(self.run_one)
            except Exception:
                log.exception("runner loop error")
                job = None
            if job is None:
                self._wake.clear()
                if self._stopping.is_set():
                    break
                try:
                    await asyncio.wait_for(self._wake.wait(), poll_interval)
                except TimeoutError:
                    pass


class _LeaseKeeper:
    """Renews a running job's lease a few times per lease period, from a thread of its
    own: a query that takes longer than the lease before its first batch (a large
    export on a busy ClickHouse) keeps its job, instead of another runner claiming it
    and doing the same work again. A renewal refused (another runner owns the job now)
    marks the lease ``lost``; the export then stops at its next batch."""

    def __init__(self, runner: JobRunner, job: Job) -> None:
        self.runner = runner
        self.job = job
        self.lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job.id[:8]}", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def confirm(self) -> None:
        """Renew once more, now, with the keeper stopped; LeaseLost if the job is not ours."""
        if self.lost or not self._renew():
            raise LeaseLost(self.job.id)

    def _run(self) -> None:
        every = self.runner.lease.total_seconds() / 3
        while not self._done.wait(every):
            if not self._renew():
                return

    def _renew(self) -> bool:
        """Extend the lease by one period; False (and ``lost``) if another runner owns
        the job. A job store that cannot be reached for now counts as renewed: the lease
        may still hold, the next period tries again, and the finish checks ownership."""
        until = self.runner.clock() + self.runner.lease
        try:
            renewed = self.runner.jobs.renew_lease(
                self.job.id, owner=self.runner.owner, until=until
            )
        except StoreError:
            log.warning("job %s: could not renew its lease", self.job.id, exc_info=True)
            return True
        if not renewed:
            self.lost = True
        return bool(renewed)
