"""Concurrent requests answered by one call: polls of unfinished jobs, shared rate limits.

When many requests need the same kind of I/O at once (a herd of polls of Pending jobs, a
pipeline started by cron at :00 in every integrator's systems), each one going to a
worker thread and to the database on its own makes them fight for threads, the GIL and
pooled connections. A :class:`Batcher` gathers them on the event loop instead and
answers a whole batch with one call (one thread trip, one query or one round trip):

- when no call is in flight, a request makes its call at once, alone: a lone request
  waits for nothing and pays no more than a direct call;
- while a call is in flight, new requests gather for the next call, which starts as soon
  as the one in flight ends. A request therefore never gets an answer read before it
  arrived: it joins only a batch whose call has not started;
- a batch holds at most ``max_batch`` distinct keys (further arrivals start the next
  one); requests of one key in one batch share its value;
- a call that raises fails its own batch's requests only; a cancelled request (its
  client gone) leaves the others of its batch unharmed.

Asyncio only, no timers: nothing ever waits for a batch to fill.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

__all__ = ["MAX_BATCH", "Batcher"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: the most distinct keys one call is given
MAX_BATCH = 500

#: keys gathered for one call, each with the futures of the requests waiting for it
_Batch = dict[K, list[asyncio.Future[V]]]


class Batcher(Generic[K, V]):
    """Answers ``get(key)`` with ``call(keys)``, one call at a time for every key waiting.

    ``call`` gets distinct keys in arrival order and returns a value for each (a key it
    leaves out is a :class:`KeyError` for its requests). A batcher serves one event loop
    at a time; used from another (tests run an app in several), it starts afresh.
    """

    def __init__(
        self,
        call: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._call = call
        self._max_batch = max_batch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight = False
        #: batches gathered and not started, oldest first; arrivals join the last one
        self._waiting: deque[_Batch[K, V]] = deque()
        #: the task running gathered batches (a reference, so that it is not collected)
        self._driver: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> bool:
        """Whether a call is under way (then requests gather for the next one)."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Requests gathered for calls not started yet."""
        return sum(len(futures) for batch in self._waiting for futures in batch.values())

    async def get(self, key: K) -> V:
        """The value of ``key``, read by a call that started after this request arrived."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # whatever was in flight belonged to a loop that is gone
            self._loop, self._in_flight, self._driver = loop, False, None
            self._waiting.clear()
        if not self._in_flight:
            # nothing in flight: this request's call starts now, alone, in this task
            self._in_flight = True
            try:
                values = await self._call((key,))
            finally:
                self._in_flight = False
                self._start_waiting()
            return values[key]
        future: asyncio.Future[V] = loop.create_future()
        batch = self._waiting[-1] if self._waiting else None
        if batch is None or (key not in batch and len(batch) >= self._max_batch):
            batch = {}
            self._waiting.append(batch)
        batch.setdefault(key, []).append(future)
        return await future

    def _start_waiting(self) -> None:
        """Run the gathered batches, if any, in a task of their own."""
        if self._waiting and not self._in_flight:
            assert self._loop is not None
            self._in_flight = True
            self._driver = self._loop.create_task(self._drive())

    async def _drive(self) -> None:
        try:
            while self._waiting:
                await self._answer(self._waiting.popleft())
        finally:
            # cancelled (the loop is closing): nobody will answer the rest
            for batch in self._waiting:
                _cancel(batch)
            self._waiting.clear()
            self._in_flight = False
            self._driver = None

    async def _answer(self, batch: _Batch[K, V]) -> None:
        try:
            values = await self._call(tuple(batch))
        except asyncio.CancelledError:
            _cancel(batch)
            raise
        except Exception as exc:
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for key, futures in batch.items():
            for future in futures:
                if future.done():  # its request was cancelled
                    continue
                if key in values:
                    future.set_result(values[key])
                else:
                    future.set_exception(KeyError(key))


def _cancel(batch: _Batch[K, V]) -> None:
    for futures in batch.values():
        for future in futures:
            future.cancel()
