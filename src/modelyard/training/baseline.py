"""Baseline statistics of the training features, the reference drift monitoring compares to.

Format (version 1), JSON-able and deterministic (same frame, same dict)::

    {
      "version": 1,
      "row_count": 569,                     # rows in the frame
      "columns": ["age", "city", ...],      # column names (as strings), in frame order
      "features": {
        "age": {                            # a numeric column (any numeric dtype but bool)
          "kind": "numeric",
          "count": 560,                     # finite values
          "missing": 9,                     # NaN/None/NA and +-inf
          "mean": 41.2, "std": 12.9,        # std with ddof=1; None below 2 values
          "min": 18.0, "max": 90.0,
          "quantiles": {"0.01": 19.0, "0.05": 21.0, "0.25": 30.0, "0.5": 40.0,
                        "0.75": 52.0, "0.95": 66.0, "0.99": 80.0},   # linear interpolation
          "histogram": {"edges": [18.0, 25.2, ..., 90.0],   # 11 edges, 10 equal-width bins
                        "counts": [40, 71, ...]}            # 10 counts; the last bin is closed
        },
        "city": {                           # any other column (text, bool, category, dates)
          "kind": "categorical",
          "count": 569, "missing": 0,
          "distinct": 12,                   # distinct present values
          "top": [{"value": "Paris", "count": 130}, ...]   # at most 20, most frequent first,
        }                                                   # ties by value; values as str()
      }
    }

A numeric column with no finite value has None for mean, std, min, max, every quantile and
the histogram. When min equals max the histogram spans [min - 0.5, max + 0.5] (numpy's rule).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

FORMAT_VERSION = 1
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 10
TOP_VALUES = 20


def baseline_statistics(features: pd.DataFrame) -> dict[str, Any]:
    """Per-feature statistics of ``features`` in the format described in this module's
    docstring.

    Args:
        features: The training features (the target excluded).

    Returns:
        A JSON-able dict: plain ints, floats (never NaN or inf), strings, lists and None.
    """
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    stats: dict[str, Any] = {}
    for name in features.columns:
        column = features[name]
        if is_numeric_dtype(column) and not is_bool_dtype(column):
            stats[str(name)] = _numeric(column)
        else:
            stats[str(name)] = _categorical(column)
    return {
        "version": FORMAT_VERSION,
        "row_count": len(features),
        "columns": [str(c) for c in features.columns],
        "features": stats,
    }


def _numeric(column: pd.Series) -> dict[str, Any]:
    import numpy as np

    values = column.to_numpy(dtype="float64", na_value=np.nan)
    finite = values[np.isfinite(values)]
    result: dict[str, Any] = {
        "kind": "numeric",
        "count": len(finite),
        "missing": len(values) - len(finite),
    }
    if len(finite) == 0:
        result.update(mean=None, std=None, min=None, max=None, histogram=None)
        result["quantiles"] = {str(q): None for q in QUANTILES}
        return result
    counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS)
    result.update(
        mean=_float(np.mean(finite)),
        std=_float(np.std(finite, ddof=1)) if len(finite) > 1 else None,
        min=_float(np.min(finite)),
        max=_float(np.max(finite)),
        quantiles={
            str(q): _float(v)
            for q, v in zip(QUANTILES, np.quantile(finite, QUANTILES), strict=True)
        },
        histogram={"edges": [_float(e) for e in edges], "counts": [int(c) for c in counts]},
    )
    return result


def _categorical(column: pd.Series) -> dict[str, Any]:
    present = column.dropna()
    counts: dict[str, int] = {}
    for value, count in present.astype(str).value_counts(sort=False).items():
        counts[str(value)] = counts.get(str(value), 0) + int(count)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {
        "kind": "categorical",
        "count": len(present),
        "missing": len(column) - len(present),
        "distinct": len(counts),
        "top": [{"value": value, "count": count} for value, count in ranked[:TOP_VALUES]],
    }


def _float(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None
