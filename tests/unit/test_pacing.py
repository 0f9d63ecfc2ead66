"""Live simulated traffic is paced to the rate and stops at exactly rate x duration."""

from __future__ import annotations

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from mpo_realtime.pacing import TICK_SECONDS, paced_counts


def test_pacing_100_per_second_for_2_seconds_is_200_events_in_4_ticks() -> None:
    assert list(paced_counts(100, 200)) == [50, 50, 50, 50]


def test_pacing_ends_with_a_partial_batch() -> None:
    assert list(paced_counts(100, 120)) == [50, 50, 20]


@given(rate=st.integers(1, 100_000), seconds=st.floats(0.1, 30))
def test_pacing_sends_exactly_the_total_never_ahead_of_the_rate(rate: int, seconds: float) -> None:
    total = max(1, round(rate * seconds))
    counts = list(paced_counts(rate, total))
    assert sum(counts) == total and all(count >= 0 for count in counts)
    for tick, sent in enumerate(itertools.accumulate(counts), start=1):
        assert sent <= rate * tick * TICK_SECONDS
    # and never slower: the last event leaves within a tick of its due time
    assert len(counts) <= math.ceil(total / (rate * TICK_SECONDS)) + 1


def test_pacing_without_a_total_goes_on_at_the_rate() -> None:
    assert list(itertools.islice(paced_counts(3), 6)) == [1, 2, 1, 2, 1, 2]
