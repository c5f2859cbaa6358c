"""Is the compiled predictor equal to the native one? Checked on three kinds of rows:

1. the version's input example (what the user said requests look like);
2. a seeded sample drawn within each feature's range (the training baseline's min and max, or
   the span of the model's own thresholds when no baseline was stored), a quarter of the values
   snapped onto split thresholds and, where the model takes them, some missing;
3. split-boundary probes: for each split (all of them, or a seeded sample of ``MAX_SPLITS``), a
   row that follows the path to it, with the split feature set exactly on the threshold, one
   float64 step and one float32 step either side of it, and missing. These are what catch a
   float32 operator standing in for float64 thresholds, or a missing value sent the wrong way.

Predictions agree when ``|compiled - native| <= TOLERANCE * max(1, |native|)`` (absolute for
probabilities, relative for large regression outputs, where float32 carries ~7 digits), and
class labels agree exactly. The same model and seed give the same rows, so the same verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelyard.runtimes._common import require

TOLERANCE = 1e-6
SAMPLE_ROWS = 2048
MAX_SPLITS = 4096
_MISSING_SHARE = 0.05
_SNAP_SHARE = 0.25
_HUGE = 1e30  # LightGBM's 1e300 "always left" thresholds are not a feature's range
_MODES_TRUE_BELOW = {"BRANCH_LEQ", "BRANCH_LT"}
_MODES_TRUE_ABOVE = {"BRANCH_GTE", "BRANCH_GT"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one verification."""

    rows: int
    differing: int
    max_diff: float
    classes: bool

    @property
    def equal(self) -> bool:
        return self.differing == 0

    def describe(self) -> str:
        """``2048 predictions agree`` or ``3 of 2048 predictions differ by up to 2e-04``."""
        what = "predicted classes" if self.classes else "predictions"
        if self.equal:
            return f"{self.rows:,} {what} agree"
        if self.classes:
            return f"{self.differing:,} of {self.rows:,} {what} differ"
        return f"{self.differing:,} of {self.rows:,} {what} differ by up to {self.max_diff:.1g}"


@dataclass(frozen=True, slots=True)
class Split:
    """One split of the ensemble, with the bounds on the path that reaches it."""

    feature: int
    threshold: float
    path: tuple[tuple[int, float, float], ...]  # (feature, low, high) bounds on the way


def splits(onnx_bytes: bytes) -> list[Split]:
    """Every split of the graph's tree-ensemble node, with the path bounds to it."""
    onnx = require("onnx", "onnx", "compiled trees")
    proto = onnx.load_from_string(onnx_bytes)
    nodes = [
        n
        for n in proto.graph.node
        if n.op_type in ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
    ]
    found: list[Split] = []
    for node in nodes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if "nodes_values_as_tensor" in attrs:
            values = onnx.numpy_helper.to_array(attrs["nodes_values_as_tensor"]).tolist()
        else:
            values = list(attrs.get("nodes_values", ()))
        table = {
            (t, i): k
            for k, (t, i) in enumerate(
                zip(attrs["nodes_treeids"], attrs["nodes_nodeids"], strict=True)
            )
        }
        modes = [m.decode() if isinstance(m, bytes) else m for m in attrs["nodes_modes"]]
        for tree in sorted(set(attrs["nodes_treeids"])):
            found += _walk(tree, table, attrs, modes, values)
    return found


def _walk(
    tree: int,
    table: dict[tuple[int, int], int],
    attrs: dict[str, Any],
    modes: list[str],
    values: list[float],
) -> list[Split]:
    out: list[Split] = []
    root = min(i for t, i in table if t == tree)
    stack: list[tuple[int, tuple[tuple[int, float, float], ...]]] = [(root, ())]
    while stack:
        node_id, path = stack.pop()
        k = table.get((tree, node_id))
        if k is None or modes[k] == "LEAF":
            continue
        feature, value, mode = int(attrs["nodes_featureids"][k]), float(values[k]), modes[k]
        out.append(Split(feature, value, path))
        low_true = mode in _MODES_TRUE_ABOVE
        below = (feature, -np.inf, value)
        above = (feature, value, np.inf)
        if mode in _MODES_TRUE_BELOW or low_true:
            stack.append(
                (int(attrs["nodes_truenodeids"][k]), (*path, above if low_true else below))
            )
            stack.append(
                (int(attrs["nodes_falsenodeids"][k]), (*path, below if low_true else above))
            )
        else:  # BRANCH_EQ / NEQ (categories): the probes still test both sides at the split
            stack.append((int(attrs["nodes_truenodeids"][k]), path))
            stack.append((int(attrs["nodes_falsenodeids"][k]), path))
    return out


def ranges(
    found: Sequence[Split],
    n_features: int,
    baseline: dict[str, Any] | None,
    names: Sequence[str | None] | None,
) -> np.ndarray:
    """Per-feature [low, high]: the baseline's min and max, else the thresholds' span widened
    by a tenth on each side, else [-1, 1]."""
    span = np.tile([np.inf, -np.inf], (n_features, 1))
    for s in found:
        if abs(s.threshold) < _HUGE and s.feature < n_features:
            span[s.feature, 0] = min(span[s.feature, 0], s.threshold)
            span[s.feature, 1] = max(span[s.feature, 1], s.threshold)
    out = np.empty((n_features, 2))
    stats = _baseline_stats(baseline, names, n_features)
    for j in range(n_features):
        low, high = span[j]
        stat = stats[j]
        if stat is not None:
            low, high = stat
        elif np.isfinite(low):
            pad = max((high - low) / 10, 1e-3 * max(1.0, abs(low)))
            low, high = low - pad, high + pad
        else:
            low, high = -1.0, 1.0
        out[j] = low, high
    return out


def _baseline_stats(
    baseline: dict[str, Any] | None, names: Sequence[str | None] | None, n: int
) -> list[tuple[float, float] | None]:
    none: list[tuple[float, float] | None] = [None] * n
    if not baseline:
        return none
    features = baseline.get("features", {})
    columns = [c for c in baseline.get("columns", []) if c in features]
    if names and all(name in features for name in names):
        order = list(names)
    elif len(columns) == n:
        order = columns
    else:
        return none
    out = []
    for name in order:
        stat = features[str(name)]
        low, high = stat.get("min"), stat.get("max")
        ok = stat.get("kind") == "numeric" and low is not None and high is not None
        out.append((float(low), float(high)) if ok else None)
    return out


def verification_rows(
    onnx_bytes: bytes,
    n_features: int,
    example: np.ndarray | None,
    baseline: dict[str, Any] | None = None,
    names: Sequence[str | None] | None = None,
    allow_missing: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """The example, the seeded sample and the boundary probes, as one float64 array."""
    rng = np.random.default_rng(seed)
    found = splits(onnx_bytes)
    bounds = ranges(found, n_features, baseline, names)
    sample = rng.uniform(bounds[:, 0], bounds[:, 1], size=(SAMPLE_ROWS, n_features))
    by_feature: dict[int, list[float]] = {}
    for s in found:
        if abs(s.threshold) < _HUGE:
            by_feature.setdefault(s.feature, []).append(s.threshold)
    for j, thresholds in by_feature.items():
        if j < n_features:
            snap = rng.random(SAMPLE_ROWS) < _SNAP_SHARE
            sample[snap, j] = rng.choice(np.asarray(thresholds), size=int(snap.sum()))
    if allow_missing:
        sample[rng.random(sample.shape) < _MISSING_SHARE] = np.nan
    found = [s for s in found if abs(s.threshold) < _HUGE]
    if len(found) > MAX_SPLITS:
        found = [found[i] for i in sorted(rng.choice(len(found), MAX_SPLITS, replace=False))]
    centre = bounds.mean(axis=1)
    parts = [sample, _probes(found, centre, allow_missing)]
    if example is not None and example.ndim == 2 and example.shape[1] == n_features:
        parts.insert(0, example.astype(np.float64))
    return np.concatenate(parts)


def _probes(found: Sequence[Split], centre: np.ndarray, allow_missing: bool) -> np.ndarray:
    width = len(centre)
    values_per = 6 if allow_missing else 5
    rows = np.tile(centre, (len(found) * values_per, 1))
    r = 0
    for s in found:
        base = rows[r]
        for feature, low, high in s.path:
            if feature < width:
                base[feature] = _inside(low, high, base[feature], allow_missing)
        t = s.threshold
        with np.errstate(over="ignore"):
            f32 = np.float32(t)
        values = [
            t,
            np.nextafter(t, -np.inf),
            np.nextafter(t, np.inf),
            float(np.nextafter(f32, np.float32(-np.inf))),
            float(np.nextafter(f32, np.float32(np.inf))),
        ]
        if allow_missing:
            values.append(np.nan)
        for i, v in enumerate(values):
            rows[r + i] = base
            if s.feature < width:
                rows[r + i, s.feature] = v
        r += values_per
    return rows


def _inside(low: float, high: float, current: float, allow_missing: bool) -> float:
    """A finite value strictly inside (low, high) (either may be infinite), near ``current``.

    No number lies above an infinite threshold (scikit-learn splits "missing goes right" at
    +inf): only a missing value takes that path, so the probe is NaN there when the model
    takes NaN, and stays at ``current`` (another path) when it does not."""
    if low < current < high:
        return current
    if np.isfinite(low) and np.isfinite(high):
        value = (low + high) / 2
    elif np.isfinite(high):
        value = high - max(1.0, abs(high))
    elif np.isfinite(low):
        value = low + max(1.0, abs(low))
    else:
        value = float("nan")
    if np.isfinite(value) and low < value < high:
        return float(value)
    return float("nan") if allow_missing else current


def compare(native: np.ndarray, compiled: np.ndarray, classes: bool) -> Verdict:
    """Count the rows whose predictions differ (any element, for multi-output rows)."""
    native, compiled = np.asarray(native), np.asarray(compiled)
    rows = len(native)
    if native.shape != compiled.shape:
        return Verdict(rows, rows, float("inf"), classes)
    if classes or native.dtype.kind not in "fc":
        wrong = native != compiled
        max_diff = 0.0
    else:
        a, b = native.astype(np.float64), compiled.astype(np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.abs(a - b)
            diff[np.isnan(a) != np.isnan(b)] = np.inf  # missing against a number
            both_nan = np.isnan(a) & np.isnan(b)
            wrong = ~both_nan & ~(diff <= TOLERANCE * np.maximum(1.0, np.abs(a)))
        max_diff = float(diff[wrong].max()) if wrong.any() else 0.0
    per_row = wrong.reshape(rows, -1).any(axis=1) if rows else wrong
    return Verdict(rows, int(per_row.sum()), max_diff, classes)
