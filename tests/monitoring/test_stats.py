"""Each drift statistic against an independent computation on the raw data (scipy's, or the
formula on exact shares), and their noise bounds holding at their level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from modelyard.monitoring.frequencies import Frequencies
from modelyard.monitoring.pairs import CategoricalPair, NumericPair
from modelyard.monitoring.sketch import NumericSketch
from modelyard.monitoring.stats import STATS


def numeric(a: np.ndarray, b: np.ndarray) -> NumericPair:
    return NumericPair.of(NumericSketch.of(a), NumericSketch.of(b))


def categorical(a: list[str], b: list[str]) -> CategoricalPair:
    return CategoricalPair.of(Frequencies.of(pd.Series(a)), Frequencies.of(pd.Series(b)))


def test_ks_p_value_follows_scipy() -> None:
    rng = np.random.default_rng(0)
    for n, m, shift in ((300, 200, 0.3), (50_000, 40_000, 0.02), (5_000, 300, 0.0)):
        a, b = rng.normal(size=n), rng.normal(shift, 1, m)
        result = STATS["ks"].compute(numeric(a, b))
        exact = scipy_stats.ks_2samp(a, b, method="asymp")
        assert result.effect == pytest.approx(exact.statistic, abs=1e-3)
        assert result.p_value == pytest.approx(exact.pvalue, abs=0.01)


def test_wasserstein_is_scipys_in_baseline_standard_deviations() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.gamma(2, 3, 100_000), rng.gamma(2, 3, 80_000) + 0.5
    result = STATS["wasserstein"].compute(numeric(a, b))
    expected = scipy_stats.wasserstein_distance(a, b) / np.std(a)
    assert result.effect == pytest.approx(expected, rel=0.01)
    assert result.p_value is None


@pytest.mark.parametrize("huge", [1e200, 1.7e308, -1.7e308])
def test_wasserstein_of_a_current_value_near_the_float_limit_is_in_baseline_deviations(
    huge: float,
) -> None:
    """A current value far beyond the baseline (a sensor's garbage, 1e200 or near 1.8e308)
    once made the baseline's deviation NaN (warnings on stderr, or an error under
    ``-W error``), so the distance went out unscaled: in the column's unit, not in
    baseline standard deviations."""
    rng = np.random.default_rng(3)
    a = rng.normal(500.0, 50.0, 10_000)
    b = np.concatenate([rng.normal(500.0, 50.0, 9_999), [huge]])
    pair = numeric(a, b)
    assert pair.baseline_std == pytest.approx(np.std(a), rel=0.01)
    result = STATS["wasserstein"].compute(pair)
    # Sketch midpoints are exact to a bucket: compare within the widest occupied one.
    expected = abs(huge) / len(b) / np.std(a)
    assert result.effect == pytest.approx(expected, rel=0.05)


def test_the_deviation_of_a_baseline_of_huge_values_is_not_infinite() -> None:
    a = np.array([-1.5e308, 1.5e308] * 500)
    assert NumericPair.of(NumericSketch.of(a), NumericSketch.of(a)).baseline_std == (
        pytest.approx(1.5e308, rel=0.01)
    )


@pytest.mark.parametrize(
    ("baseline", "current", "expected"),
    [
        ([-1.5e308, 1.5e308], [1.5e308], 1.0),  # half the rows move by 2 deviations
        ([-1.0, 1.0], [-1.7e308, 1.7e308], 1.7e308),  # an ordinary number of deviations
        ([1e308], [-1e308], float("inf")),  # a constant baseline: in the column's unit
    ],
)
def test_wasserstein_across_the_whole_float_range_does_not_overflow_on_the_way(
    baseline: list[float], current: list[float], expected: float
) -> None:
    """Bucket midpoints from -1e308 to 1e308 once made the gaps between them overflow to
    infinity (a RuntimeWarning printed by ``monitor drift``, an error under ``-W error``), so
    a distance of one baseline deviation came out infinite."""
    result = STATS["wasserstein"].compute(
        numeric(np.array(baseline * 500), np.array(current * 500))
    )
    assert result.effect == pytest.approx(expected, rel=0.01)


def test_psi_and_js_on_deciles() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=100_000), rng.normal(0.5, 1, 100_000)
    edges = np.quantile(a, np.linspace(0, 1, 11))
    edges[0], edges[-1] = -np.inf, np.inf
    p = np.histogram(a, edges)[0] / len(a)
    q = np.histogram(b, edges)[0] / len(b)
    psi = float(np.sum((q - p) * np.log(q / p)))
    js = float(
        scipy_stats.entropy(p, (p + q) / 2, base=2) + scipy_stats.entropy(q, (p + q) / 2, base=2)
    )
    pair = numeric(a, b)
    assert STATS["psi"].compute(pair).effect == pytest.approx(psi, rel=0.02)
    assert STATS["jensen_shannon"].compute(pair).effect == pytest.approx(np.sqrt(js / 2), rel=0.02)
    same = numeric(a, a)
    assert STATS["psi"].compute(same).effect == 0.0
    assert STATS["jensen_shannon"].compute(same).effect == 0.0


@pytest.mark.parametrize("name", ["psi", "jensen_shannon"])
def test_binned_statistics_see_values_below_the_baseline_as_above_it(name: str) -> None:
    """Current rows below the baseline's smallest value once shared its lowest decile bin: a
    constant baseline of 5 was one bin, so every row moving to 4 was no shift at all, while
    every row moving to 6 (past the last decile) was the largest shift."""
    constant = np.full(1000, 5.0)
    up = STATS[name].compute(numeric(constant, np.full(1000, 6.0))).effect
    down = STATS[name].compute(numeric(constant, np.full(1000, 4.0))).effect
    assert down == pytest.approx(up) and up > 1.0 - 1e-9
    rng = np.random.default_rng(4)
    mostly_zero = np.concatenate([np.zeros(950), rng.uniform(0.0, 1.0, 50)])
    below = STATS[name].compute(numeric(mostly_zero, np.full(1000, -3.0))).effect
    assert below == pytest.approx(up, rel=0.05)  # no current row is where the baseline was
    assert STATS[name].compute(numeric(constant, constant)).effect == 0.0


def test_categorical_statistics() -> None:
    a = ["x"] * 500 + ["y"] * 300 + ["z"] * 200
    b = ["x"] * 300 + ["y"] * 300 + ["z"] * 300 + ["new"] * 100
    pair = categorical(a, b)
    chi2, p, _, _ = scipy_stats.chi2_contingency(np.array([pair.baseline, pair.current]))
    result = STATS["chi_square"].compute(pair)
    assert result.p_value == pytest.approx(p, rel=1e-6)
    assert result.effect == pytest.approx(np.sqrt(chi2 / 2000))
    js = STATS["jensen_shannon"].compute(pair).effect
    shares_a, shares_b = pair.shares
    assert js == pytest.approx(
        float(scipy_stats.entropy(shares_a, (shares_a + shares_b) / 2, base=2) / 2
              + scipy_stats.entropy(shares_b, (shares_a + shares_b) / 2, base=2) / 2) ** 0.5
    )  # fmt: skip
    disjoint = categorical(["a"] * 50, ["b"] * 50)
    assert STATS["jensen_shannon"].compute(disjoint).effect == pytest.approx(1.0)
    assert STATS["chi_square"].compute(categorical(["a"] * 5, ["a"] * 9)).p_value == 1.0


def test_statistics_refuse_the_other_kind() -> None:
    pair = categorical(["a", "b"], ["a"])
    for name in ("ks", "wasserstein"):
        with pytest.raises(TypeError):
            STATS[name].compute(pair)
    with pytest.raises(TypeError):
        STATS["chi_square"].compute(numeric(np.arange(5.0), np.arange(5.0)))


@pytest.mark.parametrize("rows", [100, 2_000])
def test_noise_bounds_hold_at_their_level(rows: int) -> None:
    """Drawn twice from one distribution, the effect exceeds its noise bound at most about
    ``alpha`` of the time (here: 200 draws, at most 2 * alpha)."""
    rng = np.random.default_rng(rows)
    alpha = 0.05
    over = {"ks": 0, "jensen_shannon": 0, "chi_square": 0}
    draws = 200
    for _ in range(draws):
        a, b = rng.normal(size=5_000), rng.normal(size=rows)
        pair = numeric(a, b)
        for name in ("ks", "jensen_shannon"):
            bound = STATS[name].noise(pair, alpha)
            assert bound is not None
            over[name] += STATS[name].compute(pair).effect > bound
        cats = categorical(
            list(rng.choice(list("abcde"), 5_000)), list(rng.choice(list("abcde"), rows))
        )
        over["chi_square"] += (
            STATS["chi_square"].compute(cats).effect > STATS["chi_square"].noise(cats, alpha)  # type: ignore[operator]
        )
    assert all(count <= 2 * alpha * draws for count in over.values()), over


def test_a_tolerance_reads_near_twins_as_one_value_and_nothing_farther() -> None:
    # A value and its twin 1e-7 off on the other side share a bucket; 0.5 and 0.5 + 1e-5 (ten
    # times the tolerance apart) stay apart; near values never chain into one bucket.
    a = np.array([0.2] * 50 + [0.5] * 50 + [1000.0] * 10)
    b = np.array([0.2 + 1e-7] * 50 + [0.5 + 1e-5] * 50 + [1000.0 * (1 + 5e-7)] * 10)
    exact = NumericPair.of(NumericSketch.of(a), NumericSketch.of(b))
    assert STATS["ks"].compute(exact).effect == pytest.approx(50 / 110)
    pair = NumericPair.of(NumericSketch.of(a), NumericSketch.of(b), tolerance=1e-6)
    assert pair.baseline.tolist() == [50, 50, 0, 10]
    assert pair.current.tolist() == [50, 0, 50, 10]
    assert STATS["ks"].compute(pair).effect == pytest.approx(50 / 110)  # the real gap stays
    # Dense values (probabilities packed near 0) closer than the tolerance to each other: a
    # shift from [0.0010, 0.0015] to [0.0015, 0.0020] is total, not one chained bucket (the
    # first version merged neighbours of any side in chains, and read KS 0).
    rng = np.random.default_rng(5)
    low, high = rng.uniform(0.0010, 0.0015, 5_000), rng.uniform(0.0015, 0.0020, 5_000)
    dense = NumericPair.of(NumericSketch.of(low), NumericSketch.of(high), tolerance=1e-6)
    assert STATS["ks"].compute(dense).effect > 0.99
    assert dense.resolution <= 2 / 5_000  # one merged pair at most per value
    # A value present on both sides keeps its bucket: its twins are itself.
    both = NumericPair.of(
        NumericSketch.of([1.0, 1.0 + 8e-7, 1.0 + 16e-7]), NumericSketch.of([1.0]), tolerance=1e-6
    )
    assert both.baseline.tolist() == [1, 1, 1] and both.resolution == 0.0


def test_a_tolerance_leaves_buckets_of_many_values_alone() -> None:
    a = np.linspace(0.0, 1.0, 100_001)  # past the cap: buckets of many values
    pair = NumericPair.of(NumericSketch.of(a), NumericSketch.of(a), tolerance=1e-6)
    plain = NumericPair.of(NumericSketch.of(a), NumericSketch.of(a))
    assert pair.baseline.tolist() == plain.baseline.tolist()


def test_the_prediction_tolerance_covers_the_compiled_predictors_promise() -> None:
    from modelyard.monitoring.drift import PREDICTION_TOLERANCE
    from modelyard.runtimes.trees.verify import TOLERANCE

    assert PREDICTION_TOLERANCE >= TOLERANCE
