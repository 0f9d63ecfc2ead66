"""RateLimiter answers exactly as ``limits``' own sliding-window strategy would.

The limiter calls the storage directly (see ``RateLimiter.hit``); the reference is the
library's ``SlidingWindowCounterRateLimiter`` on a second storage of the same kind, fed
the same hits.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from limits import RateLimitItem
from limits.storage import MemoryStorage, RedisStorage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from mpo_realtime.domain.errors import StoreError
from mpo_realtime.exports.ratelimit import (
    Decision,
    MemoryWindows,
    RateLimited,
    RateLimiter,
    RedisWindows,
    per_hour,
    per_minute,
)
from tests.conftest import ManualClock


def _compare(
    limiter: RateLimiter,
    reference: SlidingWindowCounterRateLimiter,
    item: RateLimitItem,
    hits: int,
    *,
    exact_reset: bool = True,
) -> None:
    key = uuid.uuid4().hex
    for _ in range(hits):
        before = time.time()
        decision = limiter.hit("report", key, item)
        allowed = reference.hit(item, "report", key)
        stats = reference.get_window_stats(item, "report", key)
        assert decision.allowed == allowed
        assert decision.remaining == stats.remaining
        assert decision.limit == item.amount
        now = time.time()
        expected_reset = max(int(stats.reset_time + 0.999), int(now) + 1)
        if exact_reset:
            assert abs(decision.reset_at - expected_reset) <= 1
        else:
            # Redis reports whole-millisecond TTLs: read at once after a hit, a TTL of
            # exactly two windows puts the formula's modulo at 0, a moment later at 59.99
            assert int(before) + 1 <= decision.reset_at <= now + item.get_expiry() + 1


@settings(max_examples=40, deadline=None)
@given(amount=st.integers(1, 20), hits=st.integers(1, 30), hourly=st.booleans())
def test_memory_limiter_matches_the_strategy(amount: int, hits: int, hourly: bool) -> None:
    item = per_hour(amount) if hourly else per_minute(amount)
    _compare(RateLimiter(), SlidingWindowCounterRateLimiter(MemoryStorage()), item, hits)


@settings(max_examples=10, deadline=None)
@given(amount=st.integers(1, 10), hits=st.integers(1, 15))
def test_redis_limiter_matches_the_strategy(redis_url: str, amount: int, hits: int) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    limiter = RateLimiter(redis_url, namespace=namespace)
    reference = SlidingWindowCounterRateLimiter(
        storage_from_string(redis_url, key_prefix=f"{namespace}-reference")
    )
    _compare(limiter, reference, per_minute(amount), hits, exact_reset=False)


#: Every TTL under a pattern shorter by ARGV[2] ms (a key run out is deleted): for the
#: sliding windows, whose state in Redis is counts and TTLs only, time passing.
_AGE_KEYS = """
for _, key in ipairs(redis.call('keys', ARGV[1])) do
    local ttl = redis.call('pttl', key)
    if ttl > tonumber(ARGV[2]) then
        redis.call('pexpire', key, ttl - tonumber(ARGV[2]))
    elseif ttl > 0 then
        redis.call('del', key)
    end
end
"""


@contextlib.contextmanager
def _beside_the_library(
    redis_url: str,
) -> Iterator[tuple[RedisStorage, RedisWindows, Callable[[int], None]]]:
    """``limits``' ``RedisStorage`` in one namespace, :class:`RedisWindows` in another, and
    a function moving Redis's clock for both by multiples of 7 s (every TTL shortened at
    once); both namespaces are emptied afterwards."""
    namespace = f"test-{uuid.uuid4().hex}"
    storage = RedisStorage(redis_url, key_prefix=f"{namespace}-reference")
    windows = RedisWindows(RedisStorage(redis_url, key_prefix=namespace))
    age = storage.get_connection().register_script(_AGE_KEYS.encode())
    try:
        yield storage, windows, lambda sevens: age([], [f"{namespace}*", sevens * 7000])
    finally:
        storage.reset()
        RedisStorage(redis_url, key_prefix=namespace).reset()


@settings(max_examples=25, deadline=None)
@given(
    limit=st.integers(1, 4),
    steps=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 3)), min_size=1, max_size=25),
)
def test_redis_windows_answer_as_the_storage_across_windows(
    redis_url: str, limit: int, steps: list[tuple[int, int]]
) -> None:
    """One script answers what ``acquire_sliding_window_entry`` + ``get_sliding_window`` do.

    ``limits``' ``RedisStorage`` in one namespace, :class:`RedisWindows` in another, fed
    the same hits while Redis's clock is moved for both: every TTL shortened at once, by
    multiples of 7 s. The window is 61 s: a prime, so that no hit lands within a second of
    a window's end or of a weighted count's step (the answers there would depend on which
    of the two was asked first), up to 61 × 7 s after the first hit.
    """
    expiry = 61
    with _beside_the_library(redis_url) as (storage, windows, move_clock):
        for sevens, amount in steps:
            if sevens:
                move_clock(sevens)
            acquired, window = windows.hit("k", limit, expiry, amount)
            expected_acquired = storage.acquire_sliding_window_entry("k", limit, expiry, amount)
            expected = storage.get_sliding_window("k", expiry)
            assert acquired == expected_acquired
            assert (window[0], window[2]) == (expected[0], expected[2])
            # the two TTLs are read moments apart
            assert window[1] == pytest.approx(expected[1], abs=0.2)
            assert window[3] == pytest.approx(expected[3], abs=0.2)


@settings(max_examples=25, deadline=None)
@given(
    limit=st.integers(1, 4),
    steps=st.lists(
        st.tuples(
            st.integers(0, 2),
            st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 3)), min_size=1, max_size=6),
        ),
        min_size=1,
        max_size=15,
    ),
)
def test_redis_windows_batched_hits_answer_as_one_by_one_across_windows(
    redis_url: str, limit: int, steps: list[tuple[int, list[tuple[str, int]]]]
) -> None:
    """A batch of hits (one pipeline) answers what the same hits one by one do.

    Batches through :meth:`RedisWindows.hits` in one namespace, the same hits one at a
    time through ``limits``' ``RedisStorage`` in another, with Redis's clock moved for
    both between batches (as in the test above: 61 s windows, steps of 7 s).
    """
    expiry = 61
    with _beside_the_library(redis_url) as (storage, windows, move_clock):
        for sevens, hits in steps:
            if sevens:
                move_clock(sevens)
            answers = windows.hits([(key, limit, expiry, amount) for key, amount in hits])
            assert len(answers) == len(hits)
            for (key, amount), answer in zip(hits, answers, strict=True):
                assert not isinstance(answer, Exception)
                acquired, window = answer
                expected_acquired = storage.acquire_sliding_window_entry(key, limit, expiry, amount)
                expected = storage.get_sliding_window(key, expiry)
                assert acquired == expected_acquired
                assert (window[0], window[2]) == (expected[0], expected[2])
                assert window[1] == pytest.approx(expected[1], abs=0.2)
                assert window[3] == pytest.approx(expected[3], abs=0.2)


def test_redis_limiter_batched_hits_decide_as_one_by_one(redis_url: str) -> None:
    """``RateLimiter.hits`` gives each hit the decision ``hit`` gives it alone."""
    namespace = f"test-{uuid.uuid4().hex}"
    batched = RateLimiter(redis_url, namespace=namespace)
    alone = RateLimiter(redis_url, namespace=f"{namespace}-alone")
    age = alone.storage.get_connection().register_script(_AGE_KEYS.encode())  # type: ignore[attr-defined]
    small, large = per_minute(3), per_minute(5)
    hits = [("report", key, item) for key in ("a", "b", "a") for item in (small, large)] * 3
    for round_ in range(4):
        if round_:
            # a window later for both: the previous window's hits weigh less, then nothing
            age([], [f"{namespace}*", 40_000])
        decisions = batched.hits(hits)
        for (budget, key, item), decision in zip(hits, decisions, strict=True):
            assert not isinstance(decision, Exception)
            expected = alone.hit(budget, key, item)
            assert (decision.allowed, decision.remaining, decision.limit) == (
                expected.allowed,
                expected.remaining,
                expected.limit,
            )
            # as in _compare: a TTL of exactly two windows (read within its millisecond)
            # puts the formula's modulo at 0, a moment later at almost a window
            apart = abs(decision.reset_at - expected.reset_at)
            assert apart <= 1 or abs(apart - item.get_expiry()) <= 1
    assert any(isinstance(d, Decision) and d.allowed for d in decisions)
    batched.reset()
    alone.reset()


def test_redis_batched_hits_survive_a_script_flush(redis_url: str) -> None:
    """Redis lost its scripts (a restart): the batch's calls ran nothing and run again."""
    namespace = f"test-{uuid.uuid4().hex}"
    limiter = RateLimiter(redis_url, namespace=namespace)
    item = per_minute(5)
    limiter.storage.get_connection().script_flush()  # type: ignore[attr-defined]

    decisions = limiter.hits([("report", "k", item)] * 3)

    assert [d.remaining for d in decisions if not isinstance(d, Exception)] == [4, 3, 2]
    assert limiter.peek("report", "k", item).remaining == 2  # each hit counted once
    limiter.reset()


def test_redis_a_failing_hit_in_a_batch_is_its_own_error(redis_url: str) -> None:
    namespace = f"test-{uuid.uuid4().hex}"
    limiter = RateLimiter(redis_url, namespace=namespace)
    item = per_minute(5)
    storage = limiter.storage
    assert isinstance(storage, RedisStorage)
    # a key of the wrong type where the window of "bad" lives
    storage.get_connection().hset(  # type: ignore[attr-defined]
        storage.prefixed_key("{" + item.key_for("report", "bad") + "}"), "x", "1"
    )

    good, bad, again = limiter.hits([("report", k, item) for k in ("good", "bad", "good")])

    assert isinstance(bad, StoreError)
    assert "rate-limit storage failed" in str(bad)
    assert not isinstance(good, Exception) and not isinstance(again, Exception)
    assert (good.remaining, again.remaining) == (4, 3)
    limiter.reset()


def test_redis_limiter_shares_windows_with_the_library(redis_url: str) -> None:
    """The script's keys are ``limits``' own: hits through either count in one window."""
    namespace = f"test-{uuid.uuid4().hex}"
    limiter = RateLimiter(redis_url, namespace=namespace)
    reference = SlidingWindowCounterRateLimiter(
        storage_from_string(redis_url, key_prefix=namespace)
    )
    item = per_minute(4)
    assert limiter.hit("report", "k", item).remaining == 3
    assert reference.hit(item, "report", "k")
    assert limiter.hit("report", "k", item).remaining == 1
    assert reference.get_window_stats(item, "report", "k").remaining == 1
    assert reference.hit(item, "report", "k")
    decision = limiter.hit("report", "k", item)
    assert (decision.allowed, decision.remaining) == (False, 0)
    assert not reference.hit(item, "report", "k")
    assert limiter.peek("report", "other", item).remaining == 4
    limiter.reset()


def test_check_refuses_past_the_budget_with_the_decision() -> None:
    clock = ManualClock(1_800_000_030.0)
    limiter = RateLimiter(clock=clock)
    item = per_minute(2)
    assert [limiter.check("ingest", "c", item, "over").remaining for _ in range(2)] == [1, 0]
    with pytest.raises(RateLimited) as refused:
        limiter.check("ingest", "c", item, "over the ingest budget")
    assert str(refused.value) == "over the ingest budget"
    decision = refused.value.decision
    assert (decision.allowed, decision.remaining, decision.limit) == (False, 0, 2)
    assert (decision.reset_at, decision.decided_at, decision.retry_after) == (
        1_800_000_060,
        1_800_000_030,
        30,
    )
    assert decision.raw_headers() == [
        (b"x-ratelimit-limit", b"2"),
        (b"x-ratelimit-remaining", b"0"),
        (b"x-ratelimit-reset", str(decision.reset_at).encode()),
    ]
    # budgets and keys are separate
    assert limiter.check("ingest", "other", item, "over").allowed
    assert limiter.check("report", "c", item, "over").allowed


def test_the_clock_moves_the_windows() -> None:
    """The sliding window on a clock the test moves: the arithmetic of ``limits``."""
    clock = ManualClock(1_800_000_000.0)  # a minute's start
    limiter = RateLimiter(clock=clock)
    item = per_minute(4)
    assert [limiter.hit("r", "k", item).allowed for _ in range(5)] == [True] * 4 + [False]
    clock.advance(59.9)  # the same window
    assert not limiter.hit("r", "k", item).allowed
    clock.advance(0.1 + 15)  # a quarter into the next: the last window weighs 4 * 3/4 = 3
    assert [limiter.hit("r", "k", item).allowed for _ in range(2)] == [True, False]
    clock.advance(15)  # halfway: 4 * 1/2 + 1 = 3 counted
    decision = limiter.peek("r", "k", item)
    assert (decision.allowed, decision.remaining) == (True, 1)
    clock.advance(60)  # two windows on: everything has run out
    assert limiter.peek("r", "k", item).remaining == 4
    assert [limiter.hit("r", "k", item).allowed for _ in range(5)] == [True] * 4 + [False]


def test_marks_run_out_on_the_clock() -> None:
    clock = ManualClock(1_800_000_000.0)
    limiter = RateLimiter(clock=clock)
    limiter.remember("trusted", "k", 10)
    clock.advance(9.9)
    assert limiter.remembers("trusted", "k")
    limiter.remember("trusted", "k", 10)  # a later mark extends it
    clock.advance(9.9)
    assert limiter.remembers("trusted", "k")
    clock.advance(0.1)
    assert not limiter.remembers("trusted", "k")
    assert not limiter.remembers("trusted", "other")


def test_memory_windows_drop_expired_keys() -> None:
    """Keys that ran out are swept (at most once a second), so memory stays bounded."""
    clock = ManualClock(1_800_000_000.0)
    windows = MemoryWindows(clock)
    for n in range(1000):
        assert windows.acquire_sliding_window_entry(f"k{n}", 1, 60)
    assert windows.reset() == 1000
    for n in range(1000):
        windows.acquire_sliding_window_entry(f"k{n}", 1, 60)
    clock.advance(121)  # past two windows: every count has run out
    windows.acquire_sliding_window_entry("fresh", 1, 60)
    assert windows.reset() == 1
    assert windows.check()
