"""What the DuckDB store checks at its edges: rows coming in, errors going out, old files.

Kept apart from the writer's loop in ``duckdb_store.py``; see its docstring for how these
keep one request's content from failing the others.
"""

from __future__ import annotations

import contextlib
import logging

import duckdb

from mpo_realtime.domain.errors import StoreError
from mpo_realtime.domain.events import EventBatchError, EventIssue
from mpo_realtime.store.sql import queries

__all__ = ["migrate", "refusal"]

log = logging.getLogger("mpo_realtime.store.duckdb_store")
SQL = queries("duckdb")
#: what DuckDB raises for values it cannot store: the request's fault, not the store's
_DATA_ERRORS = (duckdb.DataError, duckdb.IntegrityError, duckdb.InvalidInputException)
_CURRENT_COST_TYPE = "DECIMAL(18,9)"


def refusal(exc: BaseException) -> EventBatchError | StoreError:
    """The error a request hears when committing it alone failed with ``exc``.

    Values the engine refuses are the request's fault (400); anything else, such as a
    full disk, is the store's (503).
    """
    cause = exc.__cause__ if isinstance(exc, StoreError) else exc
    if isinstance(cause, _DATA_ERRORS):
        issue = EventIssue(1, None, "the event store refused these events' values; none stored")
        return EventBatchError([issue], 1)
    return exc if isinstance(exc, StoreError) else StoreError(f"flush failed: {exc}")


def migrate(conn: duckdb.DuckDBPyConnection, path: str) -> None:
    """Bring a store made by an earlier version to the current schema, in place, once."""
    found = conn.execute(SQL["cost_type"]).fetchone()
    if found is None or found[0] == _CURRENT_COST_TYPE:
        return
    log.warning("event store %s: converting costs from %s to exact decimals", path, found[0])
    conn.execute("BEGIN")
    try:
        conn.execute(SQL["migrate_cost"])
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        raise
    row = conn.execute("SELECT count(*) FROM rollup_quarantine").fetchone()
    if row and row[0]:
        log.error(
            "event store %s: %d roll-up rows had costs no decimal can hold; they were moved"
            " to the table rollup_quarantine and are left out of reports",
            path,
            row[0],
        )
