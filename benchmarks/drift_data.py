"""The drift benchmarks' data: 30 numeric features of varied shapes, seeded, and the shifts.

Each feature is drawn column by column from its own random stream (a ``SeedSequence`` keyed by
seed, role and column), so a baseline and a current window of the same seed are independent
draws, the same seed always gives the same numbers, and a column does not change when another
is added. The shapes are chosen to be awkward for sketches and tests: heavy tails, skew,
bounded supports, bimodality, and integer-valued columns (many ties).

Five features are shifted in the current window (``SHIFTS``); the other 25 are drawn from the
same distribution as the baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

Draw = Callable[[np.random.Generator, int], np.ndarray]

N_FEATURES = 30
BASELINE, CURRENT = 0, 1


@dataclass(frozen=True)
class Feature:
    """One column: how it is drawn and, for a shifted one, its standard deviation (shifts are
    in sd units) and how the current window draws it instead."""

    name: str
    shape: str
    draw: Draw
    sd: float | None = None
    shift: str | None = None
    shifted_draw: Draw | None = None


def _normal(mu: float, sd: float) -> Draw:
    return lambda rng, n: rng.normal(mu, sd, n)


def _mixture(mu: float, sd: float, share: float, offset_sd: float) -> Draw:
    """``share`` of the rows from N(mu + offset_sd * sd, sd), the rest from N(mu, sd)."""

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        values = rng.normal(mu, sd, n)
        values[rng.random(n) < share] += offset_sd * sd
        return values

    return draw


def _bimodal(a: float, b: float, sd: float, share_b: float) -> Draw:
    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        return np.where(rng.random(n) < share_b, rng.normal(b, sd, n), rng.normal(a, sd, n))

    return draw


def _features() -> list[Feature]:
    """The 30 features: f00..f04 shifted in the current window, f05..f29 not."""
    gamma_sd = float(np.sqrt(2.0) * 3.0)
    shifted = [
        Feature(
            "f00", "normal(50, 10)", _normal(50, 10), 10.0,
            "mean +0.1 sd", _normal(51, 10),
        ),
        Feature(
            "f01", "gamma(k=2, theta=3)",
            lambda rng, n: rng.gamma(2.0, 3.0, n), gamma_sd,
            "mean -0.1 sd (values moved down by 0.1 sd)",
            lambda rng, n: rng.gamma(2.0, 3.0, n) - 0.1 * gamma_sd,
        ),
        Feature(
            "f02", "normal(0, 1)", _normal(0, 1), 1.0,
            "variance change: sd x1.3, same mean", _normal(0, 1.3),
        ),
        Feature(
            "f03", "normal(100, 15)", _normal(100, 15), 15.0,
            "10% mixture: 10% of rows from N(mean + 2 sd, sd)", _mixture(100, 15, 0.10, 2.0),
        ),
        Feature(
            "f04", "poisson(4) counts (integer-valued, ties)",
            lambda rng, n: rng.poisson(4.0, n).astype(np.float64), 2.0,
            "count rate +10%: poisson(4) -> poisson(4.4)",
            lambda rng, n: rng.poisson(4.4, n).astype(np.float64),
        ),
    ]  # fmt: skip
    unshifted_specs: list[tuple[str, Draw]] = [
        ("normal(0, 1)", _normal(0, 1)),
        ("normal(-3, 0.5)", _normal(-3, 0.5)),
        ("normal(1e4, 2e3)", _normal(1e4, 2e3)),
        ("normal(0, 1e-3)", _normal(0, 1e-3)),
        ("normal(7, 2)", _normal(7, 2)),
        ("normal(-40, 8)", _normal(-40, 8)),
        ("lognormal(3, 0.5)", lambda rng, n: rng.lognormal(3.0, 0.5, n)),
        ("lognormal(0, 1)", lambda rng, n: rng.lognormal(0.0, 1.0, n)),
        ("lognormal(10, 2)", lambda rng, n: rng.lognormal(10.0, 2.0, n)),
        ("exponential(1)", lambda rng, n: rng.exponential(1.0, n)),
        ("exponential(250)", lambda rng, n: rng.exponential(250.0, n)),
        ("uniform(0, 1)", lambda rng, n: rng.random(n)),
        ("uniform(-100, 100)", lambda rng, n: rng.uniform(-100, 100, n)),
        ("uniform(0, 1e6)", lambda rng, n: rng.uniform(0, 1e6, n)),
        ("gamma(k=0.5, theta=2)", lambda rng, n: rng.gamma(0.5, 2.0, n)),
        ("gamma(k=9, theta=0.5)", lambda rng, n: rng.gamma(9.0, 0.5, n)),
        ("student t(3) (heavy tails)", lambda rng, n: rng.standard_t(3, n)),
        ("student t(5) x 20 + 300", lambda rng, n: 300 + 20 * rng.standard_t(5, n)),
        (
            "poisson(1.5) counts (ties)",
            lambda rng, n: rng.poisson(1.5, n).astype(np.float64),
        ),
        (
            "poisson(30) counts (ties)",
            lambda rng, n: rng.poisson(30.0, n).astype(np.float64),
        ),
        (
            "binomial(10, 0.3) (11 values)",
            lambda rng, n: rng.binomial(10, 0.3, n).astype(np.float64),
        ),
        (
            "price: lognormal(2, 0.7) rounded to 0.01",
            lambda rng, n: np.round(rng.lognormal(2.0, 0.7, n), 2),
        ),
        ("bimodal: N(-2, 0.5) / N(2, 0.5), 30%", _bimodal(-2.0, 2.0, 0.5, 0.3)),
        ("bimodal: N(0, 2) / N(10, 2), 50%", _bimodal(0.0, 10.0, 2.0, 0.5)),
        ("beta(0.5, 0.5) (U-shaped)", lambda rng, n: rng.beta(0.5, 0.5, n)),
    ]
    unshifted = [
        Feature(f"f{i:02d}", shape, draw)
        for i, (shape, draw) in enumerate(unshifted_specs, start=len(shifted))
    ]
    features = shifted + unshifted
    assert len(features) == N_FEATURES
    return features


FEATURES: tuple[Feature, ...] = tuple(_features())
SHIFTED: tuple[str, ...] = tuple(f.name for f in FEATURES if f.shift is not None)
UNSHIFTED: tuple[str, ...] = tuple(f.name for f in FEATURES if f.shift is None)


def frame(rows: int, seed: int, role: int, *, shifted: bool) -> pd.DataFrame:
    """``rows`` rows of every feature, float64, drawn for ``seed`` and ``role`` (``BASELINE``
    or ``CURRENT``); with ``shifted`` the five shifted features take their shifted form."""
    columns: dict[str, np.ndarray] = {}
    for index, feature in enumerate(FEATURES):
        rng = np.random.default_rng(np.random.SeedSequence([seed, role, index]))
        draw = feature.shifted_draw if shifted and feature.shifted_draw else feature.draw
        columns[feature.name] = draw(rng, rows)
    return pd.DataFrame(columns)


def write_parquet(data: pd.DataFrame, path: Path) -> int:
    """Write ``data`` as one Parquet file (pyarrow, snappy, no index); returns its size."""
    data.to_parquet(path, engine="pyarrow", compression="snappy", index=False)
    return path.stat().st_size


def describe() -> list[dict[str, str | None]]:
    """What each feature is, for the report."""
    return [{"name": f.name, "shape": f.shape, "shift": f.shift} for f in FEATURES]
