"""The scale-out event store: a ClickHouse database shared by every API process.

Writes are batched per process, as in DuckDB: :meth:`ClickHouseEventStore.submit` queues a
request and a writer thread stores everything queued every ``flush_interval`` seconds (or
at ``max_buffer_rows`` rows) as one pre-aggregated insert, so ClickHouse sees few, large
inserts. A future resolves only after its rows are stored.

Idempotency across processes and crashes (``docs/clickhouse.md`` has the full argument).
ClickHouse has no transactions, so a keyed request is stored in two steps, each one insert:

1. an *intent* in ``ingest_keys``: the key, the body digest, the flush's ``batch_id`` and a
   *probe*, the (advertiser, minute) of one of the request's rows;
2. the rows, every one tagged with that ``batch_id`` (one block: all or nothing).

A key counts as stored exactly when one of its intents has its probe row, which the
primary key finds at once. A retry therefore finds either a stored intent (answered as a
duplicate, never stored again), or intents without rows: those of a writer still at work,
or of one that died between the two steps. Such an intent is waited for until its
``lease`` has passed (a writer's inserts time out well before), then ignored, and the retry
stores the rows itself. Two first attempts racing in two processes both write intents; the
earlier (by creation time, then batch) stores, the other waits for it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors

from mpo_realtime.domain.errors import StoreError
from mpo_realtime.domain.events import EventBatchError, EventIssue
from mpo_realtime.domain.money import COST_SCALE
from mpo_realtime.domain.plan import QueryPlan
from mpo_realtime.store.base import Catalog, IdempotencyConflict, IngestReceipt, IngestRequest
from mpo_realtime.store.clickhouse_rows import aggregate_batches, pre_aggregated
from mpo_realtime.store.clickhouse_sql import SCHEMA, quote_ident
from mpo_realtime.store.writer import conformed, gathered, settle

__all__ = ["ClickHouseEventStore", "parse_url"]

log = logging.getLogger(__name__)
_STOP = object()
_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: options of ``clickhouse://`` URLs that are the store's own, not the driver's
_STORE_OPTIONS = ("flush_interval", "lease")


@dataclass
class _Ingest:
    request: IngestRequest
    future: Future[IngestReceipt] = field(default_factory=Future)


@dataclass(frozen=True, slots=True)
class _Intent:
    batch_id: int
    events: int
    digest: str
    created_us: int
    probe: tuple[int, int]


def parse_url(url: str) -> tuple[str, str, dict[str, float]]:
    """``clickhouse://[user:password@]host:port/database[?options]``: driver URL, database,
    and the store's own options (``flush_interval``, ``lease`` in seconds)."""
    parts = urlsplit(url)
    if parts.scheme not in ("clickhouse", "clickhouses"):
        raise StoreError(f"not a ClickHouse URL: {url!r}")
    database = parts.path.strip("/") or "default"
    query = parse_qsl(parts.query)
    own = {k: float(v) for k, v in query if k in _STORE_OPTIONS}
    rest = [(k, v) for k, v in query if k not in _STORE_OPTIONS]
    # The server's default database; tables are always named with the database.
    driver = urlunsplit((parts.scheme, parts.netloc, "/default", urlencode(rest), ""))
    return driver, database, own


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except (ch_errors.Error, OSError, EOFError) as exc:
        raise StoreError(f"event store could not {action}: {exc}") from exc


def _seconds(column: pa.ChunkedArray) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Epoch seconds of a UTC microsecond timestamp column."""
    micros = pc.cast(column, pa.int64()).to_numpy()
    return np.asarray(micros // 1_000_000, dtype=np.int64)


def _now_us() -> int:
    return time.time_ns() // 1000


class ClickHouseEventStore:
    """Minute roll-up in ClickHouse; see the module docstring for writes and idempotency."""

    def __init__(
        self,
        url: str,
        *,
        flush_interval: float = 0.5,
        max_buffer_rows: int = 100_000,
        lease: float = 20.0,
        on_stored: Callable[[int, int], None] | None = None,
    ) -> None:
        driver_url, self.database, own = parse_url(url)
        self.url = url
        self.flush_interval = own.get("flush_interval", flush_interval)
        self.lease_us = int(own.get("lease", lease) * 1_000_000)
        self.max_buffer_rows = max_buffer_rows
        self.on_stored = on_stored
        self._driver_url = driver_url
        self._db = quote_ident(self.database)
        # An insert that has not finished well within the lease has failed (see above).
        timeout = max(1.0, own.get("lease", lease) / 3)
        self._writer = self._client(send_receive_timeout=timeout)
        #: inserts send NumPy columns: no Python object per value on the way
        self._rows_writer = self._client(send_receive_timeout=timeout, use_numpy="true")
        #: batches whose insert the server refused: their intents need no waiting for
        self._dead: set[int] = set()
        #: a hook between steps of a flush, for tests of the crash windows
        self.step_hook: Callable[[str], None] | None = None
        with _translated("create its tables"):
            self._writer.execute(f"CREATE DATABASE IF NOT EXISTS {self._db}")
            for statement in SCHEMA:
                self._writer.execute(statement.format(db=self._db))
        self._queue: queue.Queue[object] = queue.Queue()
        self._waiting: list[_Ingest] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="clickhouse-writer", daemon=True)
        self._thread.start()

    def _client(self, **options: Any) -> Client:
        """A new connection; ``options`` are the driver's connection settings."""
        url = self._driver_url
        if options:
            url += ("&" if "?" in url else "?") + urlencode(options)
        return Client.from_url(url)

    def _query(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        """A read on a connection of its own (reads run in many threads)."""
        client = self._client()
        try:
            return list(client.execute(sql, params))
        finally:
            client.disconnect()

    # -- writes -------------------------------------------------------------------------

    def submit(self, request: IngestRequest) -> Future[IngestReceipt]:
        try:
            rows = conformed(request.rows)
        except (pa.ArrowException, KeyError, ValueError) as exc:
            item = _Ingest(request)
            issue = EventIssue(1, None, f"rows do not fit the roll-up: {exc}")
            item.future.set_exception(EventBatchError([issue], 1))
            return item.future
        item = _Ingest(
            IngestRequest(rows, request.events, request.idempotency_key, request.body_digest)
        )
        self._put(item)
        return item.future

    def append(self, rows: pa.Table | pa.RecordBatchReader) -> int:
        table = rows.read_all() if isinstance(rows, pa.RecordBatchReader) else rows
        try:
            table = conformed(table)
        except (pa.ArrowException, KeyError, ValueError) as exc:
            raise ValueError(f"rows do not fit the roll-up: {exc}") from exc
        item = _Ingest(IngestRequest(table, table.num_rows))
        self._put(item)
        item.future.result()
        return int(table.num_rows)

    def _put(self, item: object) -> None:
        if self._closed:
            raise StoreError("event store is closed")
        self._queue.put(item)

    def purge(self, before: datetime) -> int:
        """Drop whole days older than ``before``, then delete the rest of its day.

        ``ALTER ... DELETE`` runs in the background on ClickHouse: the count is of the rows
        it will delete.
        """
        cutoff = int((before - _EPOCH) / timedelta(seconds=1))
        where = f"minute < toDateTime({cutoff}, 'UTC')"
        with _translated("purge"):
            (count,) = self._query(f"SELECT count() FROM {self._db}.rollup WHERE {where}")[0]
            if count:
                self._writer.execute(f"ALTER TABLE {self._db}.rollup DELETE WHERE {where}")
            keys = f"created_at < toDateTime({cutoff}, 'UTC')"
            if self._query(f"SELECT count() FROM {self._db}.ingest_keys WHERE {keys}")[0][0]:
                self._writer.execute(f"ALTER TABLE {self._db}.ingest_keys DELETE WHERE {keys}")
            marks = f"hour < toDateTime({cutoff - 3600}, 'UTC')"
            if self._query(f"SELECT count() FROM {self._db}.write_marks WHERE {marks}")[0][0]:
                self._writer.execute(f"ALTER TABLE {self._db}.write_marks DELETE WHERE {marks}")
        return int(count)

    # -- writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            timeout = self.flush_interval if self._waiting else None
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
                assert isinstance(item, _Ingest)
                if item.future.set_running_or_notify_cancel():
                    batch.append(item)
                    rows += item.request.rows.num_rows
                if rows >= self.max_buffer_rows:
                    break
            waiting, self._waiting = self._waiting, []
            try:
                self._flush(waiting + batch)
            except Exception as exc:  # answered, never left hanging
                log.exception("flush of %d requests failed", len(waiting) + len(batch))
                error = exc if isinstance(exc, StoreError) else StoreError(f"flush failed: {exc}")
                for entry in waiting + batch:
                    settle(entry.future, error=error)
        for entry in self._waiting:
            settle(entry.future, error=StoreError("event store closed while waiting"))

    def _step(self, name: str) -> None:
        if self.step_hook is not None:
            self.step_hook(name)

    def _flush(self, batch: list[_Ingest]) -> None:
        if not batch:
            return
        keyed = {i.request.idempotency_key for i in batch if i.request.idempotency_key}
        with _translated("look up idempotency keys"):
            intents = self._intents(sorted(keyed))
            stored = self._stored_batches(intents)
        now = _now_us()
        accepted: list[_Ingest] = []
        leaders: dict[str, _Ingest] = {}
        repeats: list[_Ingest] = []
        for item in batch:
            key = item.request.idempotency_key
            if key is None:
                accepted.append(item)
                continue
            done = [i for i in intents.get(key, []) if i.batch_id in stored]
            if done:
                _answer_repeat(item, done[0].events, done[0].digest)
            elif key in leaders:
                repeats.append(item)
            elif any(self._live(i, now) for i in intents.get(key, [])):
                self._waiting.append(item)  # another writer may be storing it: wait
            else:
                leaders[key] = item
                accepted.append(item)
        if accepted:
            batch_id = random.getrandbits(63)
            if leaders:
                accepted = self._claim(accepted, leaders, batch_id)
            self._store(accepted, batch_id)
        for item in repeats:
            leader = leaders.get(item.request.idempotency_key or "")
            if leader is None or not leader.future.done():  # its leader waits: so does it
                self._waiting.append(item)
                continue
            error = leader.future.exception(timeout=0)
            if error is not None:
                settle(item.future, error=error)
            else:
                _answer_repeat(item, leader.request.events, leader.request.body_digest or "")

    def _live(self, intent: _Intent, now_us: int) -> bool:
        return intent.batch_id not in self._dead and now_us - intent.created_us < self.lease_us

    def _claim(
        self, accepted: list[_Ingest], leaders: dict[str, _Ingest], batch_id: int
    ) -> list[_Ingest]:
        """Write the intents of ``leaders``; those another writer claimed first wait."""
        created = _now_us()
        rows = []
        for key, item in leaders.items():
            table = item.request.rows
            probe = (table["advertiser_id"][0].as_py(), table["minute"][0].as_py())
            rows.append(
                (
                    key,
                    batch_id,
                    item.request.events,
                    item.request.body_digest or "",
                    created,
                    probe[0],
                    probe[1],
                    datetime.fromtimestamp(created / 1e6, UTC),
                )
            )
        with _translated("record idempotency keys"):
            self._writer.execute(
                f"INSERT INTO {self._db}.ingest_keys (key, batch_id, events, digest, created_us,"
                " probe_advertiser, probe_minute, created_at) VALUES",
                rows,
            )
            self._step("intents")
            intents = self._intents(sorted(leaders))
        yielded = set()
        for key in leaders:
            rivals = [i for i in intents.get(key, []) if self._live(i, created + 1)]
            first = min(rivals, key=lambda i: (i.created_us, i.batch_id), default=None)
            if first is not None and first.batch_id != batch_id:
                yielded.add(key)
        for key in yielded:
            self._waiting.append(leaders.pop(key))
        return [i for i in accepted if i.request.idempotency_key not in yielded]

    def _store(self, accepted: list[_Ingest], batch_id: int) -> None:
        if not accepted:
            return
        table = pa.concat_tables([i.request.rows for i in accepted])
        try:
            with _translated("store events"):
                self._insert(table, batch_id)
        except StoreError as exc:
            if isinstance(exc.__cause__, ch_errors.ServerException):
                self._dead.add(batch_id)  # the server refused it: nothing of it is stored
            log.error("flush of %d requests failed: %s", len(accepted), exc)
            for item in accepted:
                settle(item.future, error=exc)
            return
        self._step("rows")
        if self.on_stored is not None:
            try:
                self.on_stored(len(accepted), sum(i.request.events for i in accepted))
            except Exception:
                log.exception("on_stored hook failed")
        for item in accepted:
            settle(item.future, IngestReceipt(item.request.events))

    def store_batch(self, table: pa.Table, batch_id: int) -> int:
        """Store ``table`` now as batch ``batch_id``, on a connection of the caller's own
        (imports: ``store/migrate.py``); the roll-up rows written."""
        table = conformed(table)
        client = self._client(use_numpy="true")
        try:
            with _translated("store events"):
                return self._insert(table, batch_id, client)
        finally:
            client.disconnect()

    def batch_sums(self, batch_id: int, start: datetime, end: datetime) -> tuple[int, ...]:
        """Rows, displays, clicks and cost nano-units of batch ``batch_id`` in ``[start, end)``."""
        low = int((start - _EPOCH) / timedelta(seconds=1))
        high = int((end - _EPOCH) / timedelta(seconds=1))
        with _translated("read a batch"):
            row = self._query(
                "SELECT count(), toString(sum(toDecimal128(displays, 0))),"
                " toString(sum(toDecimal128(clicks, 0))),"
                f" toString(sum(toDecimal128(cost_nanos, 0))) FROM {self._db}.rollup"
                f" WHERE minute >= toDateTime({low}, 'UTC') AND minute < toDateTime({high}, 'UTC')"
                f" AND batch_id = {int(batch_id)}"
            )[0]
        return tuple(int(v) for v in row)

    def delete_batch(self, batch_id: int, start: datetime, end: datetime) -> None:
        """Delete the rows of batch ``batch_id`` in ``[start, end)``; returns once done."""
        low = int((start - _EPOCH) / timedelta(seconds=1))
        high = int((end - _EPOCH) / timedelta(seconds=1))
        where = (
            f"minute >= toDateTime({low}, 'UTC') AND minute < toDateTime({high}, 'UTC')"
            f" AND batch_id = {int(batch_id)}"
        )
        with _translated("delete a batch"):
            self._query(f"ALTER TABLE {self._db}.rollup DELETE WHERE {where}")
            deadline = time.monotonic() + 300
            while self._query(f"SELECT count() FROM {self._db}.rollup WHERE {where}")[0][0]:
                if time.monotonic() > deadline:
                    raise StoreError("ClickHouse did not finish deleting a batch in 5 minutes")
                time.sleep(0.1)

    def _insert(self, table: pa.Table, batch_id: int, client: Client | None = None) -> int:
        """Write marks and catalog first (repeats are harmless), the rows last, in one block.

        ``client`` must have been opened with ``use_numpy``: columns go over as arrays.
        """
        client = client or self._rows_writer
        rows = pre_aggregated(table)
        seconds = _seconds(table["minute"])
        marks = (
            pa.table({"a": table["advertiser_id"], "h": pa.array(seconds - seconds % 3600)})
            .group_by(["a", "h"], use_threads=False)
            .aggregate([])
        )
        # Stamped ahead by the lease: an export created after this time is sure to see the
        # rows, which are stored (or have failed) well within it.
        stamp = _now_us() + self.lease_us
        client.execute(
            f"INSERT INTO {self._db}.write_marks (advertiser_id, hour, written_us) VALUES",
            [
                marks["a"].to_numpy(),
                marks["h"].to_numpy().astype("datetime64[s]"),
                np.full(marks.num_rows, stamp, dtype=np.int64),
            ],
            columnar=True,
        )
        names = ["advertiser_id", "partner_id", "campaign_id", "seller_id"]
        entries = table.select(names).group_by(names, use_threads=False).aggregate([])
        client.execute(
            f"INSERT INTO {self._db}.catalog ({', '.join(names)}) VALUES",
            [entries[name].to_numpy() for name in names],
            columnar=True,
        )
        columns = [
            _seconds(rows["minute"]).astype("datetime64[s]"),
            *(
                rows[name].to_numpy()
                for name in ("advertiser_id", "partner_id", "campaign_id", "seller_id")
            ),
            np.array(rows["product_id"].to_pylist(), dtype=object),
            rows["displays"].to_numpy(),
            rows["clicks"].to_numpy(),
            rows["cost_nanos"].to_numpy(),
            np.full(rows.num_rows, batch_id, dtype=np.uint64),
        ]
        client.execute(
            f"INSERT INTO {self._db}.rollup (minute, advertiser_id, partner_id, campaign_id,"
            " seller_id, product_id, displays, clicks, cost_nanos, batch_id) VALUES",
            columns,
            columnar=True,
            settings={"max_insert_block_size": max(1_048_576, rows.num_rows)},
        )
        return int(rows.num_rows)

    def _intents(self, keys: list[str]) -> dict[str, list[_Intent]]:
        if not keys:
            return {}
        found: dict[str, list[_Intent]] = {}
        for key, batch_id, events, digest, created, advertiser, minute in self._writer.execute(
            "SELECT key, batch_id, events, digest, created_us, probe_advertiser,"
            f" toInt64(probe_minute) FROM {self._db}.ingest_keys WHERE key IN %(keys)s",
            {"keys": tuple(keys)},
        ):
            found.setdefault(key, []).append(
                _Intent(batch_id, events, digest, created, (advertiser, minute))
            )
        return found

    def _stored_batches(self, intents: dict[str, list[_Intent]]) -> set[int]:
        """The batches among ``intents`` whose probe row is stored."""
        probes = {(i.probe, i.batch_id) for found in intents.values() for i in found}
        if not probes:
            return set()
        rows = self._writer.execute(
            f"SELECT DISTINCT advertiser_id, toInt64(minute), batch_id FROM {self._db}.rollup"
            " WHERE advertiser_id IN %(a)s AND minute IN %(m)s AND batch_id IN %(b)s",
            {
                "a": tuple({p[0] for p, _ in probes}),
                "m": tuple({datetime.fromtimestamp(p[1], UTC) for p, _ in probes}),
                "b": tuple({b for _, b in probes}),
            },
        )
        present = {((a, m), b) for a, m, b in rows}
        return {b for probe, b in probes if (probe, b) in present}

    # -- reads --------------------------------------------------------------------------

    def aggregate(self, plan: QueryPlan, *, batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        client = self._client()
        try:
            with _translated("run a report query"):
                yield from aggregate_batches(client, plan, f"{self._db}.rollup", batch_rows)
        finally:
            client.disconnect()

    def catalog(self, advertiser_ids: tuple[int, ...]) -> Catalog:
        if not advertiser_ids:
            return Catalog(frozenset(), frozenset(), frozenset())
        with _translated("read the catalog"):
            rows = self._query(
                f"SELECT DISTINCT campaign_id, seller_id, partner_id FROM {self._db}.catalog"
                " WHERE advertiser_id IN %(a)s",
                {"a": tuple(int(a) for a in advertiser_ids)},
            )
        return Catalog(
            campaign_ids=frozenset(r[0] for r in rows),
            seller_ids=frozenset(r[1] for r in rows),
            partner_ids=frozenset(r[2] for r in rows),
        )

    def totals(self) -> dict[str, int | Decimal]:
        with _translated("read totals"):
            row = self._query(
                "SELECT count(), toString(sum(toDecimal128(displays, 0))),"
                " toString(sum(toDecimal128(clicks, 0))),"
                " toString(sum(toDecimal128(cost_nanos, 0)))"
                f" FROM {self._db}.rollup"
            )[0]
        return {
            "rows": int(row[0]),
            "displays": int(row[1]),
            "clicks": int(row[2]),
            "cost": Decimal(int(row[3])).scaleb(-COST_SCALE),
        }

    def latest_minute(self) -> datetime | None:
        with _translated("read the latest minute"):
            count, latest = self._query(
                f"SELECT count(), toInt64(max(minute)) FROM {self._db}.rollup"
            )[0]
        return datetime.fromtimestamp(latest, UTC) if count else None

    def last_write(
        self, advertiser_ids: tuple[int, ...], start: datetime, end: datetime
    ) -> datetime | None:
        if not advertiser_ids:
            return None
        low = int((start - _EPOCH) / timedelta(seconds=1)) - 3600
        high = int((end - _EPOCH) / timedelta(seconds=1))
        with _translated("read the last write"):
            count, latest = self._query(
                f"SELECT count(), max(written_us) FROM {self._db}.write_marks"
                " WHERE advertiser_id IN %(a)s AND toInt64(hour) > %(lo)s"
                " AND toInt64(hour) < %(hi)s",
                {"a": tuple(int(a) for a in advertiser_ids), "lo": low, "hi": high},
            )[0]
        return _EPOCH + latest * _US if count else None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        self._writer.disconnect()
        self._rows_writer.disconnect()


def _answer_repeat(item: _Ingest, events: int, digest: str) -> None:
    """A request whose key is stored: a duplicate, or a conflict if its body differs."""
    if digest != (item.request.body_digest or ""):
        settle(item.future, error=IdempotencyConflict(item.request.idempotency_key))
    else:
        settle(item.future, IngestReceipt(events, duplicate=True))
