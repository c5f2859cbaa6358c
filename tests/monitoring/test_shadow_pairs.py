"""The shadow comparison's prediction distribution (``shadow_pairs.distribution``)."""

from __future__ import annotations

import numpy as np

from modelyard.domain.drift import Verdict
from modelyard.monitoring.shadow_pairs import distribution


def test_a_shadow_answering_within_the_compiled_predictors_tolerance_does_not_drift() -> None:
    """A shadow of the same tree model on the other predictor (compiled against native)
    answers each of a few repeated values up to 1e-6 apart: the same predictions, not a
    distribution shift (exact values put each bunch beside its twin, and KS read one whole
    bunch's share as the gap)."""
    rng = np.random.default_rng(3)
    bunches = np.array([0.0347835645, 0.21, 0.5, 0.77, 0.9652164355])
    production = rng.choice(bunches, 2_000, p=[0.4, 0.1, 0.1, 0.1, 0.3])
    shadow = production + np.where(production < 0.5, 4e-8, -3e-8)  # the value order holds
    same = distribution(production.tolist(), shadow.tolist(), min_rows=100)
    assert same.verdict is Verdict.NO_DRIFT, same
    assert same.effect is not None and same.effect < 0.05
    # A real shift of the same bunches still drifts.
    moved = rng.choice(bunches, 2_000, p=[0.1, 0.1, 0.1, 0.1, 0.6])
    shifted = distribution(production.tolist(), moved.tolist(), min_rows=100)
    assert shifted.verdict is Verdict.DRIFT, shifted
