"""Traffic policies: proportions within statistical bounds, sticky keys stable."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from modelyard.serving.routing import StickyByKey, WeightedChoice, WeightedRandom


def test_weighted_random_proportions() -> None:
    choice = WeightedChoice(["blue", "green"], [0.9, 0.1])
    policy = WeightedRandom(random.Random(1234))
    n = 20_000
    counts = Counter(policy.choose(choice, None) for _ in range(n))
    # binomial: 5 standard deviations either side
    sd = math.sqrt(n * 0.9 * 0.1)
    assert abs(counts["green"] - n * 0.1) < 5 * sd, counts


def test_zero_weight_is_never_chosen_and_all_zero_is_refused() -> None:
    choice = WeightedChoice(["a", "b", "c"], [1, 0, 3])
    policy = WeightedRandom(random.Random(7))
    assert "b" not in {policy.choose(choice, None) for _ in range(5000)}
    with pytest.raises(ValueError):
        WeightedChoice(["a"], [0])


def test_bounds_cover_the_unit_interval() -> None:
    choice = WeightedChoice(["a", "b"], [1 / 3, 2 / 3])
    assert choice.pick(0.0) == "a"
    assert choice.pick(0.9999999999999999) == "b"


def test_sticky_keys_are_stable_and_split_by_weight() -> None:
    choice = WeightedChoice(["blue", "green"], [0.5, 0.5])
    policy = StickyByKey(WeightedRandom(random.Random(0)))
    users = [f"user-{i}" for i in range(4000)]
    first = {u: policy.choose(choice, u) for u in users}
    again = {u: policy.choose(choice, u) for u in reversed(users)}
    assert first == again
    share = Counter(first.values())["green"] / len(users)
    assert 0.45 < share < 0.55, share


def test_sticky_moves_only_the_shifted_share() -> None:
    before = WeightedChoice(["blue", "green"], [0.9, 0.1])
    after = WeightedChoice(["blue", "green"], [0.8, 0.2])
    policy = StickyByKey(WeightedRandom())
    users = [f"u{i}" for i in range(5000)]
    moved = [u for u in users if policy.choose(before, u) != policy.choose(after, u)]
    assert all(policy.choose(before, u) == "blue" for u in moved), "only blue users move to green"
    assert 0.05 < len(moved) / len(users) < 0.15
