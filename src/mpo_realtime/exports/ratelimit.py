"""Rate limits and quotas on the ``limits`` library: in memory, or shared through Redis."""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.storage import (
    RedisStorage,
    SlidingWindowCounterSupport,
    Storage,
    storage_from_string,
)
from redis.exceptions import NoScriptError

from mpo_realtime.domain.errors import MpoError, StoreError

__all__ = [
    "Clock",
    "Decision",
    "MemoryWindows",
    "RateLimited",
    "RateLimiter",
    "per_hour",
    "per_minute",
]

#: epoch seconds now, as ``time.time``: tests pass a clock they move themselves
Clock = Callable[[], float]


def per_minute(amount: int) -> RateLimitItem:
    return RateLimitItemPerMinute(amount)


def per_hour(amount: int) -> RateLimitItem:
    return RateLimitItemPerHour(amount)


@dataclass(frozen=True, slots=True)
class Decision:
    """The state of one budget after a hit, as the ``x-ratelimit-*`` headers report it."""

    budget: str
    allowed: bool
    limit: int
    remaining: int
    #: epoch seconds at which a new call could be made
    reset_at: int
    #: epoch seconds (whole) on the limiter's clock when the decision was made
    decided_at: int

    @property
    def retry_after(self) -> int:
        """Seconds to wait from the decision on: one number for every place that says it."""
        return max(1, self.reset_at - self.decided_at)

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """``x-ratelimit-limit``, ``-remaining`` and ``-reset``, as ASGI header pairs."""
        return [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % self.remaining),
            (b"x-ratelimit-reset", b"%d" % self.reset_at),
        ]


class RateLimited(MpoError):
    """A rate limit or quota was exceeded."""

    def __init__(self, decision: Decision, detail: str) -> None:
        super().__init__(detail)
        self.decision = decision


class MemoryWindows:
    """Sliding-window counters in this process's memory, read on an injectable clock.

    The same keys and arithmetic as ``limits``' ``MemoryStorage`` (its sliding-window
    counter, ``incr``/``get``/``clear``; ``tests/unit/test_ratelimit.py`` checks the
    answers against the library's strategy), written here for two reasons: ``limits``'
    storage reads ``time.time()`` itself, so a test could only reach a new window by
    waiting for it; and it starts a 10 ms timer thread whenever the previous one ended
    (about a hundred thread starts a second under steady traffic, each blocking the
    caller, here the event loop), which was only avoidable by replacing a name-mangled
    private method. Here expired keys are dropped when read, and all of them at most
    once a second of the clock, by the caller; one lock makes each operation atomic.
    """

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        #: key -> [count, expires at (clock seconds)]
        self._counts: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def _get(self, key: str, now: float) -> int:
        entry = self._counts.get(key)
        if entry is None:
            return 0
        if entry[1] <= now:
            del self._counts[key]
            return 0
        return int(entry[0])

    def _incr(self, key: str, expiry: float, amount: int, now: float) -> int:
        if now >= self._next_sweep:
            self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            self._next_sweep = now + 1
        count = self._get(key, now)
        if count:
            self._counts[key][0] = count + amount
        else:
            # a new count (or one decremented to nothing) starts its expiry afresh
            self._counts[key] = [amount, now + expiry]
        return count + amount

    def _window(self, key: str, expiry: int, now: float) -> tuple[int, float, int, float]:
        previous_count = self._get(f"{key}/{int((now - expiry) / expiry)}", now)
        current_count = self._get(f"{key}/{int(now / expiry)}", now)
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous_count else 0.0
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return previous_count, previous_ttl, current_count, current_ttl

    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        """Count ``amount`` hits in the current window if they fit under ``limit``."""
        if amount > limit:
            return False
        with self._lock:
            now = self._clock()
            previous_count, previous_ttl, current_count, _ = self._window(key, expiry, now)
            if math.floor(previous_count * previous_ttl / expiry + current_count) + amount > limit:
                return False
            self._incr(f"{key}/{int(now / expiry)}", 2 * expiry, amount, now)
            return True

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        """``(previous count, its seconds to live, current count, its seconds to live)``."""
        with self._lock:
            return self._window(key, expiry, self._clock())

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        with self._lock:
            return self._incr(key, expiry, amount, self._clock())

    def get(self, key: str) -> int:
        with self._lock:
            return self._get(key, self._clock())

    def clear(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)

    def check(self) -> bool:
        return True

    def reset(self) -> int:
        with self._lock:
            dropped = len(self._counts)
            self._counts.clear()
            return dropped


#: ``limits``' ``acquire_sliding_window.lua`` followed by its ``sliding_window.lua``, as
#: one script: what ``acquire_sliding_window_entry`` and then ``get_sliding_window`` of
#: its ``RedisStorage`` do, with the same keys, TTLs and arithmetic, in one round trip.
#: KEYS: the previous window's key, the current one's; ARGV: limit, expiry (seconds),
#: amount. Returns {acquired (1 or 0), previous count, its PTTL, current count, its PTTL}.
HIT_SLIDING_WINDOW_LUA = """
local limit = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2]) * 1000
local amount = tonumber(ARGV[3])

-- once the current window's key has lived a window, it becomes the previous one
local function shift()
    local current_ttl = tonumber(redis.call('pttl', KEYS[2]))
    if current_ttl > 0 and current_ttl < expiry then
        redis.call('rename', KEYS[2], KEYS[1])
        redis.call('set', KEYS[2], 0, 'PX', current_ttl + expiry)
    end
end

local acquired = 0
if amount <= limit then
    shift()
    local previous_count = tonumber(redis.call('get', KEYS[1])) or 0
    local previous_ttl = tonumber(redis.call('pttl', KEYS[1])) or 0
    local current_count = tonumber(redis.call('get', KEYS[2])) or 0
    if previous_ttl <= 0 then
        previous_ttl = 0
    end
    local weighted_count = math.floor(previous_count * previous_ttl / expiry) + current_count
    if weighted_count + amount <= limit then
        if redis.call('exists', KEYS[2]) == 1 then
            redis.call('incrby', KEYS[2], amount)
        else
            redis.call('set', KEYS[2], amount, 'PX', expiry * 2)
        end
        acquired = 1
    end
end

shift()
return {
    acquired,
    redis.call('get', KEYS[1]),
    redis.call('pttl', KEYS[1]),
    redis.call('get', KEYS[2]),
    redis.call('pttl', KEYS[2]),
}
"""


class RedisWindows:
    """A hit and the window after it in one Redis round trip, on ``limits``' storage.

    ``limits``' ``RedisStorage`` needs two (two scripts: take a unit, read the window),
    each from a thread-pool thread on the poll path; this runs
    :data:`HIT_SLIDING_WINDOW_LUA`, registered on the storage's own connection, on the
    keys the storage uses (``<prefix>:{<key>}`` and ``<prefix>:{<key>}/-1``), so both
    share every window. ``tests/unit/test_ratelimit.py`` checks it against the library.
    """

    def __init__(self, storage: RedisStorage) -> None:
        self._storage = storage
        self._script = storage.get_connection().register_script(HIT_SLIDING_WINDOW_LUA.encode())
        # the storage's own client (limits types it by a protocol without pipelines)
        self._connection = self._script.registered_client

    def hit(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> tuple[bool, tuple[int, float, int, float]]:
        """``acquire_sliding_window_entry`` and then ``get_sliding_window``'s answers."""
        return _hit_answer(self._script(self._keys(key), [limit, expiry, amount]))

    def _keys(self, key: str) -> list[str]:
        """The script's KEYS: the storage's previous and current window keys of ``key``."""
        current_key = self._storage.prefixed_key(f"{{{key}}}")
        return [f"{current_key}/-1", current_key]

    def hits(
        self, hits: Sequence[tuple[str, int, int, int]]
    ) -> list[tuple[bool, tuple[int, float, int, float]] | Exception]:
        """:meth:`hit` of each ``(key, limit, expiry, amount)``, in order, in one round trip.

        A pipeline without a transaction of the same script calls: Redis runs them one
        after the other, as it would one by one, so each answer is the one :meth:`hit`
        would give there. A call that fails is its exception, in its place; a connection
        that fails raises.
        """
        answers: list[Any] = self._run(hits)
        unknown = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
        if unknown:
            # Redis lost its scripts (restart, SCRIPT FLUSH): those calls ran nothing
            self._script.sha = self._connection.script_load(self._script.script)
            for i, answer in zip(unknown, self._run([hits[i] for i in unknown]), strict=True):
                answers[i] = answer
        return [
            answer if isinstance(answer, Exception) else _hit_answer(answer) for answer in answers
        ]

    def _run(self, hits: Sequence[tuple[str, int, int, int]]) -> list[Any]:
        # EVALSHA itself: redis-py's Script on a pipeline asks SCRIPT EXISTS first, a second
        # round trip on every batch
        pipeline = self._connection.pipeline(transaction=False)
        for key, limit, expiry, amount in hits:
            pipeline.evalsha(self._script.sha, 2, *self._keys(key), limit, expiry, amount)
        answers: list[Any] = pipeline.execute(raise_on_error=False)
        return answers


def _hit_answer(answer: Any) -> tuple[bool, tuple[int, float, int, float]]:
    """The script's answer as ``(acquired, get_sliding_window's answer)``."""
    acquired, previous_count, previous_ttl, current_count, current_ttl = answer
    return bool(acquired), (
        int(previous_count or 0),
        max(0, float(previous_ttl or 0)) / 1000,
        int(current_count or 0),
        max(0, float(current_ttl or 0)) / 1000,
    )


class _Windows(Protocol):
    """What :class:`RateLimiter` needs of a storage: ``limits``' public storage API."""

    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool: ...

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]: ...

    def incr(self, key: str, expiry: int, amount: int = 1) -> int: ...

    def get(self, key: str) -> int: ...

    def clear(self, key: str) -> None: ...

    def check(self) -> bool: ...

    def reset(self) -> int | None: ...


@functools.lru_cache(maxsize=4096)
def _storage_key(item: RateLimitItem, budget: str, key: str) -> str:
    return item.key_for(budget, key)


def _window_stats(
    amount: int,
    expiry: int,
    previous_count: int,
    previous_expires_in: float,
    current_count: int,
    current_expires_in: float,
    now: float,
) -> tuple[int, float]:
    """Remaining hits and reset time (epoch seconds): ``get_window_stats``' arithmetic."""
    weighted = previous_count * previous_expires_in / expiry + current_count
    remaining = max(0, amount - math.floor(weighted))
    if not (previous_count or current_count):
        return remaining, now
    previous_reset_in = (
        previous_expires_in % (expiry / previous_count) if previous_count else math.inf
    )
    current_reset_in = current_expires_in % expiry if current_count else math.inf
    return remaining, now + min(previous_reset_in, current_reset_in)


class RateLimiter:
    """Sliding-window budgets keyed by ``(budget, key)``.

    ``storage_url`` is ``memory://`` (one process) or ``redis://host:port/db`` (shared
    by every process of a deployment); ``namespace`` separates deployments on one Redis.
    ``clock`` (epoch seconds) drives the memory windows and every reset time reported;
    Redis keeps its windows on its own clock.
    """

    def __init__(
        self, storage_url: str = "memory://", *, namespace: str = "mpo", clock: Clock = time.time
    ) -> None:
        self.shared = not storage_url.startswith("memory://")
        self._clock = clock
        self._redis_windows: RedisWindows | None = None
        if not self.shared:
            self.storage: _Windows = MemoryWindows(clock)
            return
        try:
            storage = storage_from_string(storage_url, key_prefix=namespace)
        except Exception as exc:  # limits raises ConfigurationError and driver errors
            raise StoreError(f"rate-limit storage {storage_url!r} is unusable: {exc}") from exc
        if not isinstance(storage, Storage) or not isinstance(storage, SlidingWindowCounterSupport):
            raise StoreError(f"rate-limit storage {storage_url!r} is asynchronous; use redis://")
        self.storage = storage
        if isinstance(storage, RedisStorage):
            self._redis_windows = RedisWindows(storage)

    def hit(self, budget: str, key: str, item: RateLimitItem) -> Decision:
        """Spend one unit of ``budget`` for ``key``; ``allowed`` is False when it is spent.

        ``SlidingWindowCounterRateLimiter.hit`` and ``.get_window_stats`` of ``limits``,
        made straight on the storage with the key built once: on the poll path the
        strategy's layers were half the cost of a hit. On Redis both are one script, one
        round trip (:class:`RedisWindows`). ``tests/unit/test_ratelimit.py`` checks the
        answers against the strategy's.
        """
        storage_key = _storage_key(item, budget, key)
        expiry = item.get_expiry()
        try:
            if self._redis_windows is not None:
                allowed, window = self._redis_windows.hit(storage_key, item.amount, expiry)
            else:
                allowed = self.storage.acquire_sliding_window_entry(
                    storage_key, item.amount, expiry, 1
                )
                window = self.storage.get_sliding_window(storage_key, expiry)
        except Exception as exc:
            raise StoreError(f"rate-limit storage failed: {exc}") from exc
        return self._decision(budget, allowed, item, expiry, window)

    def hits(self, hits: Sequence[tuple[str, str, RateLimitItem]]) -> list[Decision | StoreError]:
        """:meth:`hit` of each ``(budget, key, item)``, in order: each its decision or error.

        On Redis, several hits are one round trip (:meth:`RedisWindows.hits`), each
        answered as it would be alone; a storage that fails as a whole raises
        :class:`StoreError`. Elsewhere, and for a lone hit, this is :meth:`hit` of each.
        """
        if self._redis_windows is None or len(hits) == 1:
            decisions: list[Decision | StoreError] = []
            for budget, key, item in hits:
                try:
                    decisions.append(self.hit(budget, key, item))
                except StoreError as exc:
                    decisions.append(exc)
            return decisions
        try:
            answers = self._redis_windows.hits(
                [
                    (_storage_key(item, budget, key), item.amount, item.get_expiry(), 1)
                    for budget, key, item in hits
                ]
            )
        except Exception as exc:
            raise StoreError(f"rate-limit storage failed: {exc}") from exc
        results: list[Decision | StoreError] = []
        for (budget, _, item), answer in zip(hits, answers, strict=True):
            if isinstance(answer, Exception):
                results.append(StoreError(f"rate-limit storage failed: {answer}"))
            else:
                allowed, window = answer
                results.append(self._decision(budget, allowed, item, item.get_expiry(), window))
        return results

    def peek(self, budget: str, key: str, item: RateLimitItem) -> Decision:
        """The state of ``budget`` for ``key`` without spending; ``allowed``: one more fits."""
        storage_key = _storage_key(item, budget, key)
        expiry = item.get_expiry()
        try:
            window = self.storage.get_sliding_window(storage_key, expiry)
        except Exception as exc:
            raise StoreError(f"rate-limit storage failed: {exc}") from exc
        return self._decision(budget, None, item, expiry, window)

    def _decision(
        self,
        budget: str,
        allowed: bool | None,
        item: RateLimitItem,
        expiry: int,
        window: tuple[int, float, int, float],
    ) -> Decision:
        """The decision of a hit (``allowed`` given) or a peek (one more fits)."""
        now = self._clock()
        remaining, reset_time = _window_stats(item.amount, expiry, *window, now)
        reset_at = max(int(reset_time + 0.999), int(now) + 1)
        allowed = remaining > 0 if allowed is None else allowed
        return Decision(budget, allowed, item.amount, remaining, reset_at, int(now))

    def remember(self, marker: str, key: str, seconds: int) -> None:
        """Mark ``key`` under ``marker`` for ``seconds`` from now (a later mark extends it)."""
        storage_key = f"{marker}/{key}"
        try:
            self.storage.clear(storage_key)
            self.storage.incr(storage_key, seconds)
        except Exception as exc:
            raise StoreError(f"rate-limit storage failed: {exc}") from exc

    def remembers(self, marker: str, key: str) -> bool:
        """Whether ``key`` was marked under ``marker`` and the mark has not run out."""
        try:
            return self.storage.get(f"{marker}/{key}") > 0
        except Exception as exc:
            raise StoreError(f"rate-limit storage failed: {exc}") from exc

    def check(self, budget: str, key: str, item: RateLimitItem, detail: str) -> Decision:
        """Like :meth:`hit`, raising :class:`RateLimited` when over."""
        decision = self.hit(budget, key, item)
        if not decision.allowed:
            raise RateLimited(decision, detail)
        return decision

    def ping(self) -> bool:
        try:
            return bool(self.storage.check())
        except Exception:
            return False

    def reset(self) -> None:
        """Forget every budget (tests and operators)."""
        self.storage.reset()
