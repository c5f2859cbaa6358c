"""The numeric sketch: the same values give the same sketch in any order, merging the sketches
of parts gives the sketch of the whole, the bucket count is bounded whatever the row count, the
exact statistics are exact, and a KS statistic from two sketches is within 0.01 of the exact
one (scipy's ``ks_2samp`` on the raw values)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from modelyard.monitoring.pairs import NumericPair
from modelyard.monitoring.profile import Profile
from modelyard.monitoring.sketch import CAP, NumericSketch, float_key
from modelyard.monitoring.stats import STATS

SPECIALS = [0.0, -0.0, 5e-324, -5e-324, 2.2e-308, 1.0, -1.0, 1e308, -1.7976931348623157e308]


def state(sketch: NumericSketch) -> tuple[object, ...]:
    """Everything a sketch holds, comparable."""
    return (
        sketch.shift,
        sketch.buckets.tolist(),
        sketch.counts.tolist(),
        sketch.missing,
        sketch.exact_sum,
        sketch.min_key,
        sketch.max_key,
        sketch.cap,
    )


def reference(values: list[float], cap: int) -> tuple[int, list[int], list[int]]:
    """The sketch's definition, computed the slow way: the smallest shift at which at most
    ``cap`` buckets of (key >> shift) are occupied, and their counts."""
    keys = sorted(float_key(v) for v in values if np.isfinite(v))
    if not keys:
        return 0, [], []
    for shift in range(64):
        counts: dict[int, int] = {}
        for key in keys:
            counts[key >> shift] = counts.get(key >> shift, 0) + 1
        if len(counts) <= cap:
            return shift, sorted(counts), [counts[k] for k in sorted(counts)]
    raise AssertionError("unreachable")


values_strategy = st.lists(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(SPECIALS),
        st.integers(-3, 3).map(float),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(values=values_strategy, cap=st.integers(2, 12), cut=st.integers(0, 60))
def test_matches_its_definition_and_merges_exactly(values: list[float], cap: int, cut: int) -> None:
    sketch = NumericSketch.of(values, cap)
    assert (sketch.shift, sketch.buckets.tolist(), sketch.counts.tolist()) == reference(values, cap)
    finite = [v for v in values if np.isfinite(v)]
    assert sketch.missing == len(values) - len(finite)
    assert Fraction(sketch.exact_sum, 2**1074) == sum((Fraction(v) for v in finite), Fraction(0))
    if finite:
        assert (sketch.min, sketch.max) == (min(finite), max(finite))
    merged = NumericSketch.of(values[:cut], cap).merge(NumericSketch.of(values[cut:], cap))
    assert state(merged) == state(sketch)


def distributions(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mixture = np.where(rng.random(n) < 0.3, rng.normal(-2, 0.5, n), rng.normal(3, 1, n))
    return {
        "normal": rng.normal(size=n),
        "offset N(1000, 1)": rng.normal(1000, 1, n),
        "lognormal": rng.lognormal(0, 2, n),
        "discrete": rng.poisson(3, n).astype(float),
        "mixture": mixture,
        "wide range": rng.normal(size=n) * 10.0 ** rng.integers(-200, 200, n),
        "with missing": np.where(rng.random(n) < 0.1, np.nan, rng.exponential(5, n)),
    }


@pytest.mark.parametrize("name", list(distributions(10, 0)))
def test_same_values_in_any_order_give_the_same_bytes(name: str) -> None:
    values = distributions(50_000, 1)[name]
    shuffled = np.random.default_rng(2).permutation(values)
    assert state(NumericSketch.of(values)) == state(NumericSketch.of(shuffled))
    first = Profile.from_frame(pd.DataFrame({"x": values})).to_bytes()
    assert Profile.from_frame(pd.DataFrame({"x": shuffled})).to_bytes() == first


@pytest.mark.parametrize("name", list(distributions(10, 0)))
def test_merging_parts_gives_the_whole(name: str) -> None:
    values = distributions(60_000, 3)[name]
    whole = NumericSketch.of(values)
    cuts = [0, 7, 20_000, 20_001, 45_000, 60_000]
    parts = [NumericSketch.of(values[a:b]) for a, b in itertools.pairwise(cuts)]
    left_to_right = parts[0]
    for part in parts[1:]:
        left_to_right = left_to_right.merge(part)
    right_to_left = parts[-1]
    for part in reversed(parts[:-1]):
        right_to_left = part.merge(right_to_left)
    assert state(left_to_right) == state(whole) == state(right_to_left)


CASES = [
    ("normal", lambda r, n: r.normal(size=n), lambda r, n: r.normal(0.05, 1, n)),
    ("offset", lambda r, n: r.normal(1000, 1, n), lambda r, n: r.normal(1000.03, 1, n)),
    ("lognormal", lambda r, n: r.lognormal(0, 2, n), lambda r, n: r.lognormal(0.1, 2, n)),
    (
        "discrete",
        lambda r, n: r.poisson(3, n).astype(float),
        lambda r, n: r.poisson(3.2, n).astype(float),
    ),
    (
        "mixture",
        lambda r, n: np.where(r.random(n) < 0.5, r.normal(-2, 0.5, n), r.normal(2, 0.5, n)),
        lambda r, n: np.where(r.random(n) < 0.4, r.normal(-2, 0.5, n), r.normal(2, 0.5, n)),
    ),
    ("same", lambda r, n: r.normal(size=n), lambda r, n: r.normal(size=n)),
    (
        "wide range",
        lambda r, n: r.normal(size=n) * 10.0 ** r.integers(-100, 100, n),
        lambda r, n: r.normal(size=n) * 10.0 ** r.integers(-90, 100, n),
    ),
]


@pytest.mark.parametrize(("name", "draw_a", "draw_b"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("sizes", [(200_000, 200_000), (300_000, 5_000)])
def test_ks_from_sketches_is_within_0_01_of_the_exact_one(
    name: str, draw_a: object, draw_b: object, sizes: tuple[int, int]
) -> None:
    rng = np.random.default_rng(11)
    a, b = draw_a(rng, sizes[0]), draw_b(rng, sizes[1])  # type: ignore[operator]
    exact = ks_2samp(a, b)
    pair = NumericPair.of(NumericSketch.of(a), NumericSketch.of(b))
    result = STATS["ks"].compute(pair)
    assert abs(result.effect - exact.statistic) <= 0.01
    # Read at bucket ends, where both distributions are exact: never above the exact one.
    assert result.effect <= exact.statistic + 1e-12
    assert exact.statistic - result.effect <= pair.resolution + 1e-12


def test_the_bucket_count_and_the_bytes_stay_bounded_as_rows_grow() -> None:
    rng = np.random.default_rng(5)
    sizes = []
    for rows in (1_000, 10_000, 100_000, 1_000_000):
        sketch = NumericSketch.of(rng.lognormal(0, 1.5, rows))
        assert len(sketch.buckets) <= CAP
        sizes.append(len(Profile.from_frame(pd.DataFrame({"x": rng.normal(size=rows)})).to_bytes()))
    # At most CAP buckets of (8-byte gap + 8-byte count), plus a small header.
    assert max(sizes) <= CAP * 16 + 1024
    assert sizes[-1] <= 2 * sizes[1]  # 100x the rows, not 100x the bytes


def test_a_column_without_values_and_empty_merges() -> None:
    nothing = NumericSketch.of([np.nan, None, np.inf, -np.inf])
    assert (nothing.count, nothing.missing, nothing.min, nothing.mean) == (0, 4, None, None)
    some = NumericSketch.of([1.0, 2.0, 4.0])
    merged = nothing.merge(some)
    assert (merged.count, merged.missing, merged.mean, merged.max) == (3, 4, 7 / 3, 4.0)
    assert state(some.merge(nothing)) == state(merged)
    assert state(NumericSketch.empty().merge(NumericSketch.empty())) == state(NumericSketch.empty())


def test_quantiles_are_close() -> None:
    values = np.random.default_rng(9).normal(50, 10, 200_000)
    sketch = NumericSketch.of(values)
    qs = [0.01, 0.25, 0.5, 0.75, 0.99]
    assert np.allclose(sketch.quantiles(qs), np.quantile(values, qs), rtol=0.01)
    assert np.isnan(NumericSketch.empty().quantiles([0.5])).all()


def test_refusals() -> None:
    with pytest.raises(ValueError, match="2 buckets"):
        NumericSketch.of([1.0], cap=1)
    with pytest.raises(ValueError, match="cannot merge sketches of 8 and 16"):
        NumericSketch.of([1.0], cap=8).merge(NumericSketch.of([1.0], cap=16))
    with pytest.raises(ValueError, match="refine"):
        NumericSketch.of(np.arange(100.0), cap=4).at_shift(0)
