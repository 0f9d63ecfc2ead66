"""The writer-thread parts every store shares: gathering a flush, answering waiters once."""

from __future__ import annotations

import queue
from concurrent.futures import Future
from decimal import Decimal

import pyarrow as pa
import pytest

from mpo_realtime.store.base import ROLLUP_SCHEMA
from mpo_realtime.store.writer import conformed, gathered, settle


def test_gathered_yields_the_first_item_then_everything_already_queued() -> None:
    pending: queue.Queue[object] = queue.Queue()
    for queued in ("b", "c"):
        pending.put(queued)
    assert list(gathered(pending, "a", window=0.05)) == ["a", "b", "c"]
    assert pending.empty()


def test_gathered_after_its_window_leaves_the_rest_queued() -> None:
    pending: queue.Queue[object] = queue.Queue()
    pending.put("b")
    assert list(gathered(pending, "a", window=0)) == ["a"]
    assert pending.get_nowait() == "b"


def test_gathered_without_a_first_item_is_empty_and_takes_nothing() -> None:
    pending: queue.Queue[object] = queue.Queue()
    pending.put("b")
    assert list(gathered(pending, None, window=1)) == []
    assert pending.qsize() == 1


def test_a_caller_may_stop_early_and_the_rest_stays_queued() -> None:
    pending: queue.Queue[object] = queue.Queue()
    for queued in ("b", "STOP", "d"):
        pending.put(queued)
    taken: list[object] = []
    for item in gathered(pending, "a", window=1):
        if item == "STOP":
            break
        taken.append(item)
    assert taken == ["a", "b"] and pending.get_nowait() == "d"


def test_settle_answers_once_and_leaves_a_cancelled_waiter_alone() -> None:
    answered: Future[int] = Future()
    settle(answered, 1)
    settle(answered, 2)
    settle(answered, error=RuntimeError("late"))
    assert answered.result() == 1
    failed: Future[int] = Future()
    settle(failed, error=ValueError("bad"))
    with pytest.raises(ValueError, match="bad"):
        failed.result()
    gone: Future[int] = Future()
    gone.cancel()
    settle(gone, 1)  # no InvalidStateError: the waiter gave up first
    assert gone.cancelled()


def _rows(**overrides: object) -> pa.Table:
    row: dict[str, object] = {
        field.name: 0 if pa.types.is_integer(field.type) else None for field in ROLLUP_SCHEMA
    }
    for field in ROLLUP_SCHEMA:
        if pa.types.is_timestamp(field.type):
            row[field.name] = 0
        elif pa.types.is_decimal(field.type):
            row[field.name] = Decimal("0.5")
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            row[field.name] = "SKU-1"
    row.update(overrides)
    return pa.Table.from_pylist([row], schema=ROLLUP_SCHEMA)


def test_conformed_keeps_good_rows_and_names_what_is_wrong() -> None:
    good = _rows(displays=3)
    assert conformed(good).equals(good)
    with pytest.raises(ValueError, match="displays must not be negative"):
        conformed(_rows(displays=-1))
    as_float = good.set_column(
        good.schema.get_field_index("cost"), "cost", pa.array([0.5], pa.float64())
    )
    with pytest.raises(ValueError, match="cost must be a decimal amount"):
        conformed(as_float)
