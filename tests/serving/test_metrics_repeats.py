"""The worker's memory of recent requests: repeats within one drain and within the window count,
older ones do not, and the memory stays bounded, forgetting the requests seen longest ago."""

from __future__ import annotations

import numpy as np

from modelyard.serving.metrics_repeats import RecentDigests


def _digests(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


def test_repeats_count_within_a_drain_and_within_the_window() -> None:
    recent = RecentDigests()
    assert recent.repeats(_digests(5, 9, 5, 5), now=100.0, window_s=60.0) == 2
    assert recent.repeats(_digests(9, 1), now=130.0, window_s=60.0) == 1  # 9: 30 s ago
    assert recent.repeats(_digests(5), now=170.0, window_s=60.0) == 0  # 5: 70 s ago
    assert recent.repeats(_digests(5), now=171.0, window_s=60.0) == 1  # seen again at 170
    assert len(recent) == 3


def test_memory_is_bounded_and_forgets_the_oldest_first() -> None:
    recent = RecentDigests(capacity=100)
    recent.repeats(_digests(0), now=0.0, window_s=1e9)
    for drain in range(1, 20):
        fresh = np.arange(drain * 10, drain * 10 + 10, dtype=np.uint64)
        recent.repeats(fresh, now=float(drain), window_s=1e9)
        recent.repeats(_digests(0), now=float(drain), window_s=1e9)  # kept fresh
        assert len(recent) <= 125  # capacity and a quarter before it forgets
    assert recent.repeats(_digests(0), now=20.0, window_s=1e9) == 1  # still remembered
    assert recent.repeats(_digests(10), now=20.0, window_s=1e9) == 0  # forgotten: oldest
    assert recent.repeats(_digests(190), now=20.0, window_s=1e9) == 1  # among the newest
