"""Cluster-wide leadership for periodic work that must run in one process at a time.

The sweeper expires exports, deletes their files and purges old roll-up rows. Every
worker (and every ``mpo serve`` with runners) runs a sweep loop, but only the process
that holds a PostgreSQL session advisory lock sweeps; the others try again at their
next period. The lock belongs to a connection kept open for it: when the leader's
process dies, PostgreSQL ends its session and frees the lock, and the next process to
try becomes the leader. No table, no clock: the database decides.

On SQLite the job store belongs to one process, which is always the leader.

Session locks need a session: behind a connection pooler in transaction mode
(PgBouncer's ``pool_mode = transaction``), point ``MPO_JOB_STORE_URL`` at PostgreSQL
itself or at a session-mode pool.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from mpo_realtime.exports.jobstore import SqlJobStore

__all__ = ["SWEEPER_LOCK_KEY", "ClusterLeader"]

log = logging.getLogger(__name__)

#: Advisory lock key of the sweeper's leadership ("mpo_swep").
SWEEPER_LOCK_KEY = 0x6D706F5F73776570


class ClusterLeader:
    """Whether this process leads the work named by ``key``; thread-safe."""

    def __init__(self, store: SqlJobStore, *, key: int = SWEEPER_LOCK_KEY) -> None:
        self._store = store
        self._key = key
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    def lead(self) -> bool:
        """True while this process holds the leadership; tries to take it if not.

        Checks that the lock's connection is still alive each time: a leader whose
        connection broke has lost the lock (the server ended its session).
        """
        if self._store.engine.dialect.name != "postgresql":
            return True
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.execute(text("SELECT 1"))
                    return True
                except SQLAlchemyError:
                    log.warning("lost the connection holding the sweeper's leadership")
                    self._drop()
            try:
                connection = self._store.engine.connect()
            except SQLAlchemyError:
                return False
            try:
                # autocommit: the lock is held by the session, not by a transaction
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                taken = connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                ).scalar_one()
            except SQLAlchemyError:
                connection.close()
                return False
            if not taken:
                connection.close()
                return False
            self._connection = connection
            log.info("this process now leads the sweeper (cluster-wide, one at a time)")
            return True

    def release(self) -> None:
        """Give up the leadership (at shutdown), so another process takes it at once."""
        with self._lock:
            if self._connection is None:
                return
            try:
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": self._key}
                )
            except SQLAlchemyError:
                pass  # closing the connection ends the session and its locks anyway
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            try:
                self._connection.invalidate()
                self._connection.close()
            except SQLAlchemyError:
                pass
            self._connection = None
