"""The embedded event store: a DuckDB file with one writer thread.

Writes are micro-batched: :meth:`DuckDBEventStore.submit` queues rows and the
writer thread flushes everything queued at least every ``flush_interval`` seconds in
one transaction (group commit), so a small HTTP batch does not pay for an insert of
its own. Futures resolve after the commit, so an acknowledged event is durable and
visible. Reads use their own cursors and always aggregate, so they see exact sums
whether or not compaction has folded the rows yet.

One request's content never fails the others: rows are checked before they join a
flush (``writer.conformed``), folds keep the keys whose sums would not fit a row
(``store/base.py`` has the argument), and if a flush still fails its requests are
committed again one by one, each in its own transaction, so that only the culprit hears
of it: a data error as :class:`EventBatchError` (400), anything else as
:class:`StoreError` (503). A request whose waiter was cancelled before the writer took it
is dropped, as an executor drops a cancelled task.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mpo_realtime.domain.errors import StoreError
from mpo_realtime.domain.events import EventBatchError, EventIssue
from mpo_realtime.domain.plan import ID_COLUMNS, QueryPlan
from mpo_realtime.domain.report import Dimension, FileFormat
from mpo_realtime.store.base import (
    Catalog,
    IdempotencyConflict,
    IngestReceipt,
    IngestRequest,
)
from mpo_realtime.store.duckdb_checks import migrate, refusal
from mpo_realtime.store.plan_sql import (
    key_expressions,
    render_aggregate,
    render_export_lines,
    render_where,
)
from mpo_realtime.store.sql import queries
from mpo_realtime.store.writer import conformed, gathered, settle

__all__ = ["DuckDBEventStore"]

log = logging.getLogger(__name__)
SQL = queries("duckdb")
# Minutes this recent still receive live appends; compacting them would be wasted work.
_LIVE = timedelta(minutes=2)
_DAY = timedelta(days=1)
#: every advertiser ID a BIGINT can hold: compaction folds them all
_EVERY_ADVERTISER = (-(2**63), 2**63 - 1)


@dataclass
class _Ingest:
    request: IngestRequest
    future: Future[IngestReceipt] = field(default_factory=Future)


@dataclass
class _Call:
    fn: Callable[[duckdb.DuckDBPyConnection], Any]
    future: Future[Any] = field(default_factory=Future)


_STOP = object()


def _resolve_repeat(item: _Ingest, events: int, digest: str | None) -> None:
    """Answer a request whose key is already stored: a duplicate, or a conflict."""
    if digest != item.request.body_digest:
        settle(item.future, error=IdempotencyConflict(item.request.idempotency_key))
    else:
        settle(item.future, IngestReceipt(events, duplicate=True))


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn DuckDB errors into :class:`StoreError`, keeping the cause."""
    try:
        yield
    except duckdb.Error as exc:
        raise StoreError(f"event store could not {action}: {exc}") from exc


@contextlib.contextmanager
def _transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN … COMMIT, or ROLLBACK and re-raise."""
    conn.execute("BEGIN")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # A COMMIT that failed (a full disk) has ended the transaction already; the first
        # error is the one to report, not "no transaction is active".
        with contextlib.suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        raise


_UNITS = {"bytes": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_UNITS |= {"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}


def _bytes(setting: str) -> int:
    """DuckDB's text of a memory size (``152.5 MiB``) in bytes."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", setting)
    if not match:
        raise ValueError(f"unreadable memory size: {setting!r}")
    return int(float(match.group(1)) * _UNITS.get(match.group(2).lower() or "bytes", 1))


def _distinct(values: list[Any]) -> list[Any]:
    """``values`` (sorted) without repeats."""
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def _day(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC day."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _steps(counts: list[tuple[int, int]], rows: int) -> list[tuple[int, int]]:
    """Consecutive advertiser ranges (first, last ID) of at most ``rows`` rows each, from
    (advertiser, rows) sorted by advertiser; one advertiser is never cut."""
    steps: list[list[int]] = []  # first, last, rows
    for advertiser, count in counts:
        if steps and steps[-1][2] + count <= rows:
            steps[-1][1:] = [advertiser, steps[-1][2] + count]
        else:
            steps.append([advertiser, advertiser, count])
    return [(first, last) for first, last, _ in steps]


def _implied_bounds(
    plan: QueryPlan, fields: int, low: Any, high: Any
) -> tuple[list[str], dict[str, Any]]:
    """Plain column conditions that ``low <= key < high`` implies, over the first
    ``fields`` sort keys (a struct past one), for DuckDB to skip row groups by their
    min/max: a struct comparison is not pushed into the scan.

    The leading fields that ``low`` and ``high`` share are equal in every row of the
    range, and the next one lies between theirs. A time bucket is bounded through
    ``minute``: a bucket at or after a bucket start B holds only minutes at or after B.
    """
    if fields == 1 and not plan.dimensions[0].is_time:
        return [], {}  # the range is on the column itself already
    lows = [None] * fields if low is None else ([low] if fields == 1 else list(low.values()))
    highs = [None] * fields if high is None else ([high] if fields == 1 else list(high.values()))
    conditions: list[str] = []
    values: dict[str, Any] = {}
    for i, dimension in enumerate(plan.dimensions[:fields]):
        last = i == fields - 1 or lows[i] is None or highs[i] is None or lows[i] != highs[i]
        name = f"implied_{i}"
        if dimension.is_time:
            if lows[i] is not None:
                conditions.append(f"minute >= ${name}_low")
                values[f"{name}_low"] = lows[i]
            if fields == 1 and highs[i] is not None:
                conditions.append(f"minute < ${name}_high")  # bucket < B: minute < B
                values[f"{name}_high"] = highs[i]
        else:
            column = ID_COLUMNS[dimension]
            if lows[i] is not None:
                conditions.append(f"{column} >= ${name}_low")
                values[f"{name}_low"] = lows[i]
            if highs[i] is not None:
                conditions.append(f"{column} <= ${name}_high")
                values[f"{name}_high"] = highs[i]
        if last:
            break
    return conditions, values


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class DuckDBEventStore:
    """Minute roll-up in DuckDB; see the module docstring for the concurrency model."""

    def __init__(
        self,
        path: str | Path,
        *,
        flush_interval: float = 0.1,
        max_buffer_rows: int = 500_000,
        maintenance_interval: float = 30.0,
        threads: int | None = None,
        memory_limit: str | None = None,
        on_stored: Callable[[int, int], None] | None = None,
    ) -> None:
        self.path = str(path)
        #: called by the writer thread after each commit with (requests, events) stored
        self.on_stored = on_stored
        self.flush_interval = flush_interval
        self.max_buffer_rows = max_buffer_rows
        self.maintenance_interval = maintenance_interval
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {}
        if threads:
            config["threads"] = threads
        if memory_limit:
            # Big sorts then spill to a temporary directory instead of growing the process.
            config["memory_limit"] = memory_limit
            # Results are ordered by ORDER BY; keeping scan order only costs memory.
            config["preserve_insertion_order"] = False
            if self.path != ":memory:":
                config["temp_directory"] = f"{self.path}.tmp"
        try:
            self._conn = duckdb.connect(self.path, config=config)
            self._conn.execute("SET TimeZone = 'UTC'")
            for statement in _statements(SQL["schema"]):
                self._conn.execute(statement)
            migrate(self._conn, self.path)
            self.part_rows, self.overlap_rows = self._part_rows(self._conn)
            self._clustered = {
                row[0] for row in self._conn.execute(SQL["clustered_days"]).fetchall()
            }
            self._unclustered = {
                row[0] for row in self._conn.execute(SQL["unclustered_days"]).fetchall()
            }
        except duckdb.IOException as exc:
            raise StoreError(
                f"cannot open event store {self.path}: {exc}. Is another process using it?"
            ) from exc
        except duckdb.Error as exc:
            raise StoreError(f"event store {self.path} is unreadable or corrupt: {exc}") from exc
        self._cursor_lock = threading.Lock()
        self._readers = 0  # report reads streaming now (under _cursor_lock)
        self._queue: queue.Queue[object] = queue.Queue()
        self._dirty: tuple[datetime, datetime] | None = None
        # the day being clustered and its advertiser ranges still to rewrite
        self._clustering: tuple[datetime, list[tuple[int, int]]] | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="duckdb-writer", daemon=True)
        self._thread.start()

    # -- writes -------------------------------------------------------------------------

    def submit(self, request: IngestRequest) -> Future[IngestReceipt]:
        item = _Ingest(request)
        try:
            rows = conformed(request.rows)
        except (pa.ArrowException, KeyError, ValueError) as exc:
            # Refused alone, so that it cannot fail the other requests of its flush.
            issue = EventIssue(1, None, f"rows do not fit the roll-up: {exc}")
            item.future.set_exception(EventBatchError([issue], 1))
            return item.future
        if rows is not request.rows:
            item = _Ingest(dataclasses.replace(request, rows=rows))
        self._put(item)
        return item.future

    def append(self, rows: pa.Table | pa.RecordBatchReader) -> int:
        table = rows.read_all() if isinstance(rows, pa.RecordBatchReader) else rows
        try:
            table = conformed(table)
        except (pa.ArrowException, KeyError, ValueError) as exc:
            raise ValueError(f"rows do not fit the roll-up: {exc}") from exc

        def bulk(conn: duckdb.DuckDBPyConnection) -> int:
            # One transaction: roll-up rows never stand without their catalog entries.
            with _transaction(conn):
                self._insert(conn, table, aggregate=False)
            return int(table.num_rows)

        return int(self.call(bulk))

    def call(self, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        """Run ``fn`` on the writer connection, after everything queued before it."""
        item = _Call(fn)
        self._put(item)
        return item.future.result()

    def purge(self, before: datetime) -> int:
        def run(conn: duckdb.DuckDBPyConnection) -> int:
            row = conn.execute(SQL["purge_rollup"], {"before": before}).fetchone()
            conn.execute(SQL["purge_keys"], {"before": before})
            conn.execute(SQL["purge_write_marks"], {"before": before})
            conn.execute(SQL["purge_clustered_days"], {"before": before})
            self._clustered = {day for day in self._clustered if day >= before - _DAY}
            self._unclustered = {day for day in self._unclustered if day + _DAY > before}
            return int(row[0]) if row else 0

        return int(self.call(run))

    def compact(self, now: datetime | None = None, *, step: timedelta | None = None) -> bool:
        """Fold rows of settled minutes touched since the last compaction.

        With ``step``, fold at most that span of minutes; True if more remain.
        """
        moment = now or datetime.now(UTC)
        return bool(self.call(lambda conn: self._compact(conn, moment, step=step)))

    def maintain(self, now: datetime | None = None) -> bool:
        """One step of the maintenance the writer runs on its own (a compaction step, else
        a clustering step, below), now; True if more is waiting."""
        moment = now or datetime.now(UTC)
        return bool(self.call(lambda conn: self._maintenance(conn, moment)))

    #: minutes folded per maintenance step, so ingestion waits at most one step's time
    compaction_step = timedelta(minutes=15)
    #: how long maintenance may wait for running report reads (exports) to end: a
    #: compaction step competes with a read for the same cores and doubled its time
    maintenance_max_delay = 60.0

    def _put(self, item: object) -> None:
        if self._closed:
            raise StoreError("event store is closed")
        self._queue.put(item)

    # -- writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        next_maintenance = time.monotonic() + self.maintenance_interval
        due_since: float | None = None
        stop = False
        while not stop:
            timeout = max(0.0, next_maintenance - time.monotonic())
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                first = None
            batch: list[_Ingest] = []
            rows = 0
            for item in gathered(self._queue, first, self.flush_interval):
                if item is _STOP:
                    stop = True
                    break
                if (
                    isinstance(item, _Call | _Ingest)
                    and not item.future.set_running_or_notify_cancel()
                ):
                    pass  # its waiter gave up before the writer came to it: dropped
                elif isinstance(item, _Call):
                    self._flush(batch)
                    batch, rows = [], 0
                    self._execute_call(item)
                elif isinstance(item, _Ingest):
                    batch.append(item)
                    rows += item.request.rows.num_rows
                if rows >= self.max_buffer_rows:
                    break
            self._flush(batch)
            now = time.monotonic()
            if now >= next_maintenance:
                due_since = now if due_since is None else due_since
                if self._readers and now - due_since < self.maintenance_max_delay:
                    # Around running exports: look again shortly, run once they end.
                    next_maintenance = now + 0.25
                    continue
                due_since = None
                more = self._maintenance(self._conn, datetime.now(UTC))
                # With more to fold, the next step follows the next flush at once.
                next_maintenance = time.monotonic() + (0.0 if more else self.maintenance_interval)

    def _execute_call(self, item: _Call) -> None:
        try:
            with _translated("run a write"):
                result = item.fn(self._conn)
        except BaseException as exc:  # handed to the caller, who re-raises it
            settle(item.future, error=exc)
        else:
            settle(item.future, result)

    def _maintenance(self, conn: duckdb.DuckDBPyConnection, now: datetime) -> bool:
        """One compaction step, else one clustering step; True if more work is waiting.

        Clustering waits until compaction has no settled minute left: folded after it,
        those minutes would move to the table's end.
        """
        if self._compact(conn, now, step=self.compaction_step):
            return True
        return self._cluster(conn, now)

    def _insert(self, conn: duckdb.DuckDBPyConnection, table: pa.Table, *, aggregate: bool) -> None:
        if table.num_rows == 0:
            return
        conn.register("incoming", table)
        try:
            conn.execute(SQL["insert_aggregated" if aggregate else "insert_raw"])
            conn.execute(SQL["insert_catalog"])
            conn.execute(SQL["insert_seller_names"])
            conn.execute(SQL["mark_writes"], {"now": datetime.now(UTC)})
        finally:
            # In an aborted transaction unregister fails too; the first error is the one.
            with contextlib.suppress(duckdb.Error):
                conn.unregister("incoming")
        low, high = pc.min_max(table["minute"]).values()
        span = (low.as_py(), high.as_py())
        day = _day(span[0])
        while day <= span[1]:
            if day not in self._clustered:
                self._unclustered.add(day)
            day += _DAY
        self._dirty = (
            span
            if self._dirty is None
            else (min(self._dirty[0], span[0]), max(self._dirty[1], span[1]))
        )

    def _flush(self, batch: list[_Ingest]) -> None:
        if not batch:
            return
        accepted: list[_Ingest] = []
        # Repeats of a key first seen in this very flush: answered only after the commit,
        # or a crash right after the answer could lose an acknowledged batch.
        repeats: list[_Ingest] = []
        leaders: dict[str, _Ingest] = {}
        keys = [i.request.idempotency_key for i in batch if i.request.idempotency_key]
        try:
            with _translated("look up idempotency keys"):
                found = (
                    self._conn.execute(SQL["find_keys"], {"keys": keys}).fetchall() if keys else []
                )
        except StoreError as exc:
            log.error("flush of %d requests failed: %s", len(batch), exc)
            for item in batch:
                settle(item.future, error=exc)
            return
        committed = {key: (int(events), digest) for key, events, digest in found}
        for item in batch:
            key = item.request.idempotency_key
            if key is None:
                accepted.append(item)
            elif key in committed:
                events, digest = committed[key]
                _resolve_repeat(item, events, digest)
            elif key in leaders:
                repeats.append(item)
            else:
                leaders[key] = item
                accepted.append(item)
        stored = self._store(accepted)
        if self.on_stored is not None and stored:
            # before the answers, so an answered request is already counted
            try:
                self.on_stored(len(stored), sum(item.request.events for item in stored))
            except Exception:
                log.exception("on_stored hook failed")
        for item in stored:
            settle(item.future, IngestReceipt(item.request.events))
        for item in repeats:
            leader = leaders[item.request.idempotency_key or ""]
            # every leader is answered by now; one that failed fails its repeats alike
            error = leader.future.exception(timeout=0)
            if error is not None:
                settle(item.future, error=error)
            else:
                _resolve_repeat(item, leader.request.events, leader.request.body_digest)

    def _store(self, accepted: list[_Ingest]) -> list[_Ingest]:
        """Commit ``accepted`` in one transaction, or else each alone; the ones stored."""
        if not accepted:
            return []
        try:
            self._commit(self._conn, accepted)
            return accepted
        except Exception as exc:
            if len(accepted) == 1:
                log.error("flush of 1 request failed: %s", exc)
                settle(accepted[0].future, error=refusal(exc))
                return []
            log.warning("flush of %d requests failed, storing each alone: %s", len(accepted), exc)
        stored = []
        for item in accepted:
            try:
                self._commit(self._conn, [item])
            except Exception as exc:
                log.error(
                    "request of %d events refused by the event store: %s", item.request.events, exc
                )
                settle(item.future, error=refusal(exc))
            else:
                stored.append(item)
        return stored

    def _commit(self, conn: duckdb.DuckDBPyConnection, accepted: list[_Ingest]) -> None:
        """Store the rows and idempotency keys of ``accepted`` in one transaction."""
        now = datetime.now(UTC)
        with _translated("store events"), _transaction(conn):
            table = pa.concat_tables([i.request.rows for i in accepted])
            self._insert(conn, table, aggregate=True)
            for item in accepted:
                if item.request.idempotency_key:
                    conn.execute(
                        SQL["insert_key"],
                        {
                            "key": item.request.idempotency_key,
                            "events": item.request.events,
                            "digest": item.request.body_digest,
                            "created_at": now,
                        },
                    )

    def _compact(
        self, conn: duckdb.DuckDBPyConnection, now: datetime, *, step: timedelta | None = None
    ) -> bool:
        """Fold the dirty settled minutes, at most ``step`` of them; True if more remain.

        A span that fails is logged and left unfolded (reads are exact either way): the
        next step goes on after it rather than failing on the same rows forever.
        """
        if self._dirty is None:
            return False
        low, high = self._dirty
        cutoff = now.replace(second=0, microsecond=0) - _LIVE
        if low >= cutoff:
            return False
        stop = min(high + timedelta(minutes=1), cutoff)
        if step is not None:
            stop = min(stop, low + step)
        try:
            self._fold(conn, low, stop, _EVERY_ADVERTISER)
        except Exception as exc:
            log.error("compaction of [%s, %s) failed; its rows stay unfolded: %s", low, stop, exc)
        self._dirty = None if stop > high else (stop, high)
        return self._dirty is not None and self._dirty[0] < cutoff

    @staticmethod
    def _fold(
        conn: duckdb.DuckDBPyConnection, low: datetime, high: datetime, advertisers: tuple[int, int]
    ) -> None:
        """Rewrite the rows of [low, high) of ``advertisers`` (first and last ID) folded,
        in (advertiser, campaign, minute) order, in one transaction."""
        params = {"lo": low, "hi": high, "adv_lo": advertisers[0], "adv_hi": advertisers[1]}
        with _translated("compact"), _transaction(conn):
            for statement in _statements(SQL["compact"]):
                names = [name for name in params if f"${name}" in statement]
                conn.execute(statement, {name: params[name] for name in names})

    # -- clustering ---------------------------------------------------------------------
    #
    # Appends leave the table in arrival order: every row group of a day holds every
    # advertiser, so a read of some advertisers (a tenant's report, or one range of a
    # large export's parts, below) scans the whole day. Once a UTC day is settled, the
    # maintenance rewrites its rows folded and in (advertiser, campaign, minute) order, a
    # range of advertisers per step (at most ``cluster_step_rows`` rows, one advertiser
    # never cut), and marks the day in ``clustered_days``. DuckDB's per-row-group min/max
    # of ``advertiser_id`` then skips the row groups of other advertisers: a large
    # export's 8 parts cost what its one query costs instead of 1.2-1.5 times as much
    # (docs/benchmarks.md). Sums are unchanged (the fold is compaction's); rows that arrive
    # for a day after it was clustered are appended and folded as usual, and only make
    # that day's reads a little less selective. A stopped clustering is redone whole.

    #: rows rewritten per clustering step at most (an advertiser with more takes one step)
    cluster_step_rows = 2_000_000

    def _cluster(self, conn: duckdb.DuckDBPyConnection, now: datetime) -> bool:
        """Rewrite one advertiser range of the oldest settled unclustered day; True if
        more clustering is waiting."""
        settled = now.replace(second=0, microsecond=0) - _LIVE

        def waiting() -> bool:
            return self._clustering is not None or any(
                day + _DAY <= settled for day in self._unclustered
            )

        if self._clustering is None:
            ready = sorted(day for day in self._unclustered if day + _DAY <= settled)
            if not ready:
                return False
            day = ready[0]
            try:
                with _translated("plan clustering"):
                    counts = conn.execute(
                        SQL["day_advertisers"], {"lo": day, "hi": day + _DAY}
                    ).fetchall()
            except StoreError as exc:
                log.error("clustering of %s failed; its rows stay as they are: %s", day, exc)
                self._unclustered.discard(day)
                return waiting()
            rows = min(self.cluster_step_rows, self.part_rows)
            self._clustering = (day, _steps([(int(a), int(n)) for a, n in counts], rows))
        day, steps = self._clustering
        if steps:
            advertisers = steps.pop(0)
            try:
                self._fold(conn, day, day + _DAY, advertisers)
            except Exception as exc:
                log.error("clustering of %s failed; its rows stay as they are: %s", day, exc)
                self._clustering = None
                self._unclustered.discard(day)  # tried again when the store next opens
                return waiting()
        if not steps:
            try:
                with _translated("mark a clustered day"):
                    conn.execute(SQL["mark_clustered"], {"day": day, "now": datetime.now(UTC)})
            except StoreError as exc:
                log.error("clustering of %s is done but could not be recorded: %s", day, exc)
            self._clustering = None
            self._unclustered.discard(day)
            self._clustered.add(day)
        return waiting()

    # -- reads --------------------------------------------------------------------------
    #
    # A report read runs as one query while its input fits the engine's memory, and in
    # parts beyond that. DuckDB spills its GROUP BY and its ORDER BY, each alone, but not
    # both in one query: an aggregate with millions of groups feeding the sort needs more
    # than the memory limit at once (measured with 2 threads: 9.4M groups failed at
    # 160 MB and passed at 200 MB; 0.9M failed at 50 MB), and the need grows with the
    # result. So a large read is cut into ranges of its sort order (quantiles of a sample
    # of the sort keys), each range aggregated and sorted by a query of its own, one
    # after the other, in one transaction (one snapshot): the concatenation is the
    # same rows in the same order, and each query's memory is bounded by its range.

    #: memory one input row may take in a query (GROUP BY + ORDER BY), and the engine's
    #: fixed share per thread, from the measurements above (with a margin)
    _BYTES_PER_ROW = 48
    _BYTES_PER_THREAD = 12_000_000
    #: sort-key rows sampled to choose the ranges
    _SAMPLE_ROWS = 20_000
    _MIN_PART_ROWS = 50_000
    #: parts smaller than this (for want of memory) are not worth overlapping
    _MIN_OVERLAP_ROWS = 500_000

    @classmethod
    def _part_rows(cls, conn: duckdb.DuckDBPyConnection) -> tuple[int, int | None]:
        """Input rows one report query may read, from the engine's memory limit: alone, and
        beside a second query (None if too few to be worth it)."""
        limit_text, threads = conn.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads')"
        ).fetchall()[0]
        limit, fixed = _bytes(str(limit_text)), cls._BYTES_PER_THREAD * int(threads)
        alone = max(cls._MIN_PART_ROWS, (limit - fixed) // cls._BYTES_PER_ROW)
        # Two queries at once, each with its whole need: the part being read keeps its
        # sorted rows pinned while the next part aggregates and sorts.
        beside = (limit - 2 * fixed) // (2 * cls._BYTES_PER_ROW)
        return alone, (beside if beside >= cls._MIN_OVERLAP_ROWS else None)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._cursor_lock, _translated("open a cursor"):
            cursor = self._conn.cursor()
            cursor.execute("SET TimeZone = 'UTC'")
            return cursor

    def aggregate(self, plan: QueryPlan, *, batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        return self._stream(lambda part: render_aggregate(plan, part=part), plan, batch_rows)

    def export_lines(
        self, plan: QueryPlan, file_format: FileFormat, *, batch_rows: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        return self._stream(
            lambda part: render_export_lines(plan, file_format, part=part), plan, batch_rows
        )

    def _stream(
        self, render: Callable[[str | None], str], plan: QueryPlan, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """The rows of ``render``'s SQL, in parts if large (see "reads" above)."""
        params: dict[str, Any] = {"start": plan.start, "end": plan.end}
        cursor = self._cursor()
        ahead: duckdb.DuckDBPyConnection | None = None
        with self._cursor_lock:
            self._readers += 1
        try:
            with _translated("run a report query"):
                # one snapshot for every part (closing the cursor ends the transaction)
                cursor.execute("BEGIN TRANSACTION")
                count = self._input_rows(cursor, plan, params)
                overlap = self.overlap_rows is not None and self._stored_in_order(plan)
                if count <= self.part_rows or not overlap:
                    for part, bounds in self._parts(cursor, plan, params, count, self.part_rows):
                        reader: pa.RecordBatchReader = cursor.sql(
                            render(part), params={**params, **bounds}
                        ).to_arrow_reader(batch_rows)
                        yield from reader
                    return
                # In parts, each part's query running while the one before is read, on a
                # second cursor that sees the same snapshot (see _pinned).
                ahead = self._cursor()
                self._pinned(cursor, ahead)
                assert self.overlap_rows is not None
                parts = self._parts(cursor, plan, params, count, self.overlap_rows)
            yield from self._overlapped((cursor, ahead), render, parts, params, batch_rows)
        finally:
            with self._cursor_lock:
                self._readers -= 1
            if ahead is not None:
                ahead.close()
            cursor.close()

    def _stored_in_order(self, plan: QueryPlan) -> bool:
        """Whether ``plan``'s first sort key is one its rows are stored in order of: time,
        or the advertiser where most of the plan's days are clustered. A range of such a
        key reads only its own row groups, so more parts cost little more; of any other,
        every part scans all the input (measured: 18 parts 25.9 CPU s, 8 parts 19.1)."""
        first = plan.dimensions[0]
        if first.is_time:
            return True
        if first is not Dimension.ADVERTISER_ID:
            return False
        days, day = [], _day(plan.start)
        while day < plan.end:
            days.append(day)
            day += _DAY
        # membership only: the writer thread may be adding to the set meanwhile
        return 2 * sum(day in self._clustered for day in days) >= len(days)

    def _pinned(self, *cursors: duckdb.DuckDBPyConnection) -> None:
        """Start a transaction on each of ``cursors`` with one snapshot: on the writer
        thread, between two of its commits (it makes every commit to the store)."""

        def begin(_: duckdb.DuckDBPyConnection) -> None:
            for cursor in cursors:
                with contextlib.suppress(duckdb.Error):
                    cursor.execute("ROLLBACK")  # the snapshot of the count, if any
                cursor.execute("BEGIN TRANSACTION")
                # DuckDB takes a transaction's snapshot when it first reads the store
                cursor.execute("SELECT count(*) FROM rollup WHERE false").fetchall()

        self.call(begin)

    @staticmethod
    def _overlapped(
        cursors: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection],
        render: Callable[[str | None], str],
        parts: list[tuple[str | None, dict[str, Any]]],
        params: dict[str, Any],
        batch_rows: int,
    ) -> Iterator[pa.RecordBatch]:
        """The parts' rows in turn; each part's query (aggregate and sort, before its first
        row) runs on a helper thread while the caller writes the part before it."""

        def start(index: int) -> pa.RecordBatchReader:
            part, bounds = parts[index]
            with _translated("run a report query"):
                return (
                    cursors[index % 2]
                    .sql(render(part), params={**params, **bounds})
                    .to_arrow_reader(batch_rows)
                )

        with ThreadPoolExecutor(1, thread_name_prefix="report-part") as pool:
            coming: Future[pa.RecordBatchReader] = pool.submit(start, 0)
            index = -1
            try:
                for index in range(len(parts)):
                    reader = coming.result()
                    if index + 1 < len(parts):
                        # the other cursor: its last part was read to the end already
                        coming = pool.submit(start, index + 1)
                    with _translated("run a report query"):
                        yield from reader
            finally:
                if not coming.cancel() and not coming.done():
                    # given up (or failed) while the next part's query runs: stop it
                    cursors[(index + 1) % 2].interrupt()
                with contextlib.suppress(BaseException):
                    coming.result()

    @staticmethod
    def _input_rows(
        cursor: duckdb.DuckDBPyConnection, plan: QueryPlan, params: dict[str, Any]
    ) -> int:
        """Rows of the store that ``plan`` reads."""
        where = render_where(plan)
        rows = cursor.execute(f"SELECT count(*) FROM rollup WHERE {where}", params).fetchall()
        return int(rows[0][0])

    def _parts(
        self,
        cursor: duckdb.DuckDBPyConnection,
        plan: QueryPlan,
        params: dict[str, Any],
        count: int,
        part_rows: int,
    ) -> list[tuple[str | None, dict[str, Any]]]:
        """Conditions cutting ``plan``'s rows (``count`` of them) into consecutive ranges of
        its sort order, each of at most about ``part_rows`` input rows; one part, no
        condition, if it fits."""
        if count <= part_rows:
            return [(None, {})]
        where = render_where(plan)
        wanted = math.ceil(count / part_rows)
        keys = key_expressions(plan)
        quantiles = [i / wanted for i in range(1, wanted)]
        # For each prefix of the sort keys, the quantiles of a sample; the shortest prefix
        # that separates every range is used (a first key of few values, as `day` over a
        # short span, needs the next keys too).
        prefixes = [self._key([f"k{i}" for i in range(n)]) for n in range(1, len(keys) + 1)]
        columns = ", ".join(f"{expr} AS k{i}" for i, expr in enumerate(keys))
        # The stored rows are sampled and the keys computed over the sample only (time
        # buckets are CASE expressions): 0.29 s instead of 0.48 s on 20M rows.
        sample = (
            f"(SELECT * FROM (SELECT * FROM rollup WHERE {where})"
            f" USING SAMPLE reservoir({self._SAMPLE_ROWS} ROWS) REPEATABLE (7)) AS rollup"
        )
        sampled = cursor.execute(
            f"SELECT {', '.join(f'quantile_disc({p}, {quantiles})' for p in prefixes)}"
            f" FROM (SELECT {columns} FROM {sample})",
            params,
        ).fetchall()[0]
        chosen, bounds = len(keys), _distinct(sampled[-1] or [])
        for n, found in enumerate(sampled, start=1):
            distinct = _distinct(found or [])
            if len(distinct) == len(quantiles):
                chosen, bounds = n, distinct
                break
        key = self._key(keys[:chosen])
        edges: list[Any] = [None, *bounds, None]
        parts: list[tuple[str | None, dict[str, Any]]] = []
        for low, high in zip(edges, edges[1:], strict=False):
            conditions, values = [], {}
            if low is not None:
                conditions.append(f"{key} >= $part_low")
                values["part_low"] = low
            if high is not None:
                conditions.append(f"{key} < $part_high")
                values["part_high"] = high
            implied, more = _implied_bounds(plan, chosen, low, high)
            parts.append((" AND ".join(implied + conditions), values | more))
        log.info("report read of %d input rows in %d parts", count, len(parts))
        return parts

    @staticmethod
    def _key(exprs: list[str]) -> str:
        """One sort key, or a struct of several (compared field by field, as the ORDER BY
        compares the rows)."""
        if len(exprs) == 1:
            return exprs[0]
        return "{" + ", ".join(f"'k{i}': {expr}" for i, expr in enumerate(exprs)) + "}"

    def catalog(self, advertiser_ids: tuple[int, ...]) -> Catalog:
        cursor = self._cursor()
        try:
            with _translated("read the catalog"):
                rows = cursor.execute(
                    SQL["catalog"], {"advertisers": list(advertiser_ids)}
                ).fetchall()
        finally:
            cursor.close()
        return Catalog(
            campaign_ids=frozenset(r[0] for r in rows),
            seller_ids=frozenset(r[1] for r in rows),
            partner_ids=frozenset(r[2] for r in rows),
        )

    def totals(self) -> dict[str, int | Decimal]:
        cursor = self._cursor()
        try:
            with _translated("read totals"):
                row = cursor.execute(SQL["totals"]).fetchone()
        finally:
            cursor.close()
        assert row is not None
        return {"rows": row[0], "displays": row[1], "clicks": row[2], "cost": row[3]}

    def latest_minute(self) -> datetime | None:
        cursor = self._cursor()
        try:
            with _translated("read the latest minute"):
                row = cursor.execute(SQL["latest_minute"]).fetchone()
        finally:
            cursor.close()
        return row[0] if row else None

    def last_write(
        self, advertiser_ids: tuple[int, ...], start: datetime, end: datetime
    ) -> datetime | None:
        params = {"advertisers": list(advertiser_ids), "start": start, "end": end}
        cursor = self._cursor()
        try:
            with _translated("read the last write"):
                row = cursor.execute(SQL["last_write"], params).fetchone()
        finally:
            cursor.close()
        return row[0] if row else None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        with contextlib.suppress(duckdb.Error):
            self._conn.execute("CHECKPOINT")
        self._conn.close()
