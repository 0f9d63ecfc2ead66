"""The batcher: concurrent requests answered by one call, never by a call made before them.

Each call of the tests' ``Calls`` is held until the test opens its gate, so that which
request lands in which call is decided by the test, not by timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import pytest

from mpo_realtime.api.batcher import Batcher

#: a value: (the number of the call that read it, the key)
Read = tuple[int, str]


class Calls:
    """A call that records its keys and waits for the test to open its gate."""

    def __init__(self, *, failing: Sequence[int] = (), leaving_out: Sequence[str] = ()) -> None:
        self.keys: list[tuple[str, ...]] = []
        self.gates: list[asyncio.Event] = []
        self.failing = set(failing)
        self.leaving_out = set(leaving_out)

    async def __call__(self, keys: Sequence[str]) -> Mapping[str, Read]:
        number = len(self.keys)
        self.keys.append(tuple(keys))
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        if number in self.failing:
            raise RuntimeError(f"call {number} failed")
        return {key: (number, key) for key in keys if key not in self.leaving_out}

    async def started(self, count: int) -> None:
        """Until ``count`` calls have been made."""
        await _until(lambda: len(self.keys) >= count)

    def open(self, number: int) -> None:
        self.gates[number].set()


async def _until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition`` holds (no clock involved)."""
    async with asyncio.timeout(10):  # a hang guard, not a measure
        while not condition():
            await asyncio.sleep(0)


def _run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def test_a_lone_request_makes_its_call_at_once() -> None:
    async def scenario() -> None:
        calls = Calls()
        batcher: Batcher[str, Read] = Batcher(calls)
        task = asyncio.create_task(batcher.get("a"))
        await calls.started(1)
        # made in the request's own first step: nothing waited for company
        assert calls.keys == [("a",)]
        assert batcher.in_flight
        assert batcher.waiting == 0
        calls.open(0)
        assert await task == (0, "a")
        assert not batcher.in_flight

    _run(scenario)


def test_requests_during_a_call_are_answered_by_one_next_call() -> None:
    async def scenario() -> None:
        calls = Calls()
        batcher: Batcher[str, Read] = Batcher(calls)
        first = asyncio.create_task(batcher.get("a"))
        await calls.started(1)
        keys = [f"k{index}" for index in range(50)]
        herd = [asyncio.create_task(batcher.get(key)) for key in keys]
        await _until(lambda: batcher.waiting == len(keys))
        assert len(calls.keys) == 1  # they wait: nothing is read for them yet
        calls.open(0)
        await calls.started(2)
        assert calls.keys[1] == tuple(keys)  # one call, every key, in arrival order
        calls.open(1)
        assert await first == (0, "a")
        assert await asyncio.gather(*herd) == [(1, key) for key in keys]
        assert len(calls.keys) == 2

    _run(scenario)


def test_a_request_arriving_during_a_call_is_never_answered_by_it() -> None:
    async def scenario() -> None:
        calls = Calls()
        batcher: Batcher[str, Read] = Batcher(calls)
        first = asyncio.create_task(batcher.get("a"))
        await calls.started(1)
        later = asyncio.create_task(batcher.get("a"))  # same key, after the read started
        await _until(lambda: batcher.waiting == 1)
        calls.open(0)
        assert await first == (0, "a")
        await calls.started(2)
        assert not later.done()  # the first call's value was not handed to it
        # and while the second call runs, a third request waits for a third call
        third = asyncio.create_task(batcher.get("a"))
        await _until(lambda: batcher.waiting == 1)
        calls.open(1)
        assert await later == (1, "a")
        await calls.started(3)
        calls.open(2)
        assert await third == (2, "a")

    _run(scenario)


def test_requests_of_one_key_in_a_batch_share_its_value() -> None:
    async def scenario() -> None:
        calls = Calls()
        batcher: Batcher[str, Read] = Batcher(calls)
        first = asyncio.create_task(batcher.get("z"))
        await calls.started(1)
        same = [asyncio.create_task(batcher.get(key)) for key in ("x", "y", "x", "x")]
        await _until(lambda: batcher.waiting == 4)
        calls.open(0)
        await calls.started(2)
        assert calls.keys[1] == ("x", "y")  # each key once
        calls.open(1)
        values = await asyncio.gather(*same)
        assert values == [(1, "x"), (1, "y"), (1, "x"), (1, "x")]
        assert values[0] is values[2] is values[3]
        await first

    _run(scenario)


def test_a_failing_call_fails_its_batch_only() -> None:
    async def scenario() -> None:
        calls = Calls(failing=[1])
        batcher: Batcher[str, Read] = Batcher(calls)
        first = asyncio.create_task(batcher.get("a"))
        await calls.started(1)
        doomed = [asyncio.create_task(batcher.get(key)) for key in ("b", "c", "b")]
        await _until(lambda: batcher.waiting == 3)
        calls.open(0)
        await calls.started(2)
        after = [asyncio.create_task(batcher.get(key)) for key in ("b", "d")]
        await _until(lambda: batcher.waiting == 2)
        calls.open(1)
        await calls.started(3)
        calls.open(2)
        assert await first == (0, "a")
        for task in doomed:
            with pytest.raises(RuntimeError, match="call 1 failed"):
                await task
        assert await asyncio.gather(*after) == [(2, "b"), (2, "d")]
        # and the batcher is idle again: the next lone request makes its own call
        lone = asyncio.create_task(batcher.get("e"))
        await calls.started(4)
        calls.open(3)
        assert await lone == (3, "e")

    _run(scenario)


def test_a_failing_lone_call_fails_its_request_and_nothing_else() -> None:
    async def scenario() -> None:
        calls = Calls(failing=[0])
        batcher: Batcher[str, Read] = Batcher(calls)
        first = asyncio.create_task(batcher.get("a"))
        await calls.started(1)
        waiting = asyncio.create_task(batcher.get("a"))
        await _until(lambda: batcher.waiting == 1)
        calls.open(0)
        with pytest.raises(RuntimeError, match="call 0 failed"):
            await first
        await calls.started(2)
        calls.open(1)
        assert await waiting == (1, "a")

    _run(scenario)


def test_a_key_the_call_leaves_out_is_a_key_error_for_its_requests_only() -> None:
    async def scenario() -> None:
        calls = Calls(leaving_out=["gone"])
        batcher: Batcher[str, Read] = Batcher(calls)
        first = asyncio.create_task(batcher.get("a"))
        await calls.started(1)
        gone = asyncio.create_task(batcher.get("gone"))
        kept = asyncio.create_task(batcher.get("b"))
        await _until(lambda: batcher.waiting == 2)
        calls.open(0)
        await calls.started(2)
        calls.open(1)
        with pytest.raises(KeyError):
            await gone
        assert await kept == (1, "b")
        await first

    _run(scenario)


def test_a_request_cancelled_while_gathered_leaves_the_others_unharmed() -> None:
    async def scenario() -> None:
        calls = Calls()
        batcher: Batcher[str, Read] = Batcher(calls)
        first = asyncio.create_task(batcher.get("a"))
        await calls.started(1)
        leaving = asyncio.create_task(batcher.get("x"))
        staying = [asyncio.create_task(batcher.get(key)) for key in ("x", "y")]
        await _until(lambda: batcher.waiting == 3)
        leaving.cancel()  # its client hung up while it waited
        calls.open(0)
        await calls.started(2)
        calls.open(1)
        assert await asyncio.gather(*staying) == [(1, "x"), (1, "y")]
        assert leaving.cancelled()
        await first

    _run(scenario)


def test_a_request_cancelled_during_its_batch_call_leaves_the_others_unharmed() -> None:
    async def scenario() -> None:
        calls = Calls()
        batcher: Batcher[str, Read] = Batcher(calls)
        first = asyncio.create_task(batcher.get("a"))
        await calls.started(1)
        leaving = asyncio.create_task(batcher.get("p"))
        staying = asyncio.create_task(batcher.get("q"))
        await _until(lambda: batcher.waiting == 2)
        calls.open(0)
        await calls.started(2)
        leaving.cancel()
        await _until(leaving.done)
        calls.open(1)
        assert await staying == (1, "q")
        assert leaving.cancelled()
        assert not batcher.in_flight
        await first

    _run(scenario)


def test_a_cancelled_lone_request_hands_the_waiting_ones_on() -> None:
    async def scenario() -> None:
        calls = Calls()
        batcher: Batcher[str, Read] = Batcher(calls)
        first = asyncio.create_task(batcher.get("a"))
        await calls.started(1)
        waiting = asyncio.create_task(batcher.get("b"))
        await _until(lambda: batcher.waiting == 1)
        first.cancel()
        await calls.started(2)  # the call for "b" starts although "a" never finished
        calls.open(1)
        assert await waiting == (1, "b")
        assert first.cancelled()

    _run(scenario)


def test_a_batch_holds_at_most_max_batch_keys() -> None:
    async def scenario() -> None:
        calls = Calls()
        batcher: Batcher[str, Read] = Batcher(calls, max_batch=2)
        first = asyncio.create_task(batcher.get("a"))
        await calls.started(1)
        keys = ["b", "c", "b", "d", "e"]
        tasks = [asyncio.create_task(batcher.get(key)) for key in keys]
        await _until(lambda: batcher.waiting == len(keys))
        calls.open(0)
        await calls.started(2)
        calls.open(1)
        await calls.started(3)
        calls.open(2)
        # "b" again joins its batch although the batch is full: it adds no key
        assert calls.keys == [("a",), ("b", "c"), ("d", "e")]
        assert await asyncio.gather(*tasks) == [(1, "b"), (1, "c"), (1, "b"), (2, "d"), (2, "e")]
        await first

    _run(scenario)


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Batcher(Calls(), max_batch=0)


def test_a_batcher_moved_to_another_loop_starts_afresh() -> None:
    calls = Calls()
    batcher: Batcher[str, Read] = Batcher(calls)

    async def abandon() -> None:
        asyncio.create_task(batcher.get("a"))
        await calls.started(1)  # in flight when its loop ends

    async def serve() -> None:
        task = asyncio.create_task(batcher.get("b"))
        await calls.started(2)
        calls.open(1)
        assert await task == (1, "b")

    _run(abandon)
    _run(serve)
