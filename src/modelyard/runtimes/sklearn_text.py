"""Which input columns a fitted scikit-learn estimator takes as text.

scikit-learn keeps a fitted estimator's input names (``feature_names_in_``) but not their
types, so a pipeline that one-hot encodes zip codes or plan names looked like a model of
numbers: registered without an input example, its signature said float64 everywhere and every
request sending the codes as text was refused. The encoders do keep what they saw: the
categories of a column fitted on text are an array of objects (strings), and so is the fill
value an imputer learnt from text. This reads those, through the usual shapes of a
preprocessing step: the estimator itself, a :class:`~sklearn.pipeline.Pipeline` (its first step
sees the raw columns) and a :class:`~sklearn.compose.ColumnTransformer` (each transformer on its
own columns, named or by position). Any other shape finds nothing, and the signature stays
numbers (as before): an input example or an explicit signature says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def text_positions(estimator: Any, width: int, names: Sequence[str] | None) -> set[int]:
    """The positions, among the estimator's ``width`` inputs (``names``: their names, when it
    keeps them), of the columns it was fitted on as text."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:  # a Pipeline: its first step sees the columns
        return text_positions(steps[0][1], width, names)
    fitted = getattr(estimator, "transformers_", None)
    if isinstance(fitted, list):  # a ColumnTransformer
        found: set[int] = set()
        for _, transformer, columns in fitted:
            if isinstance(transformer, str):  # "drop", "passthrough"
                continue
            positions = _positions(columns, width, names)
            for j in _text_of(transformer):
                if j < len(positions):
                    found.add(positions[j])
        return found
    return {j for j in _text_of(estimator) if j < width}


def _text_of(transformer: Any) -> list[int]:
    """The positions, among ``transformer``'s own inputs, of those it learnt text from."""
    steps = getattr(transformer, "steps", None)
    if isinstance(steps, list) and steps:
        return _text_of(steps[0][1])
    categories = getattr(transformer, "categories_", None)
    if isinstance(categories, list):  # OneHotEncoder, OrdinalEncoder
        return [j for j, seen in enumerate(categories) if _holds_text(seen)]
    statistics = getattr(transformer, "statistics_", None)
    if isinstance(statistics, np.ndarray) and statistics.dtype == object:  # SimpleImputer
        return [j for j, value in enumerate(statistics) if isinstance(value, str)]
    return []


def _holds_text(values: Any) -> bool:
    return (
        isinstance(values, np.ndarray)
        and values.dtype.kind in "OU"
        and any(isinstance(v, str) for v in values.tolist())
    )


def _positions(columns: Any, width: int, names: Sequence[str] | None) -> list[int]:
    """A ColumnTransformer's column selection as input positions (names, positions, a slice
    or a boolean mask); none for a selection it cannot read."""
    if isinstance(columns, slice):
        bounds = (columns.start, columns.stop, columns.step)
        if all(b is None or isinstance(b, int) for b in bounds):
            return list(range(width))[columns]
        return []  # a slice of names: rare; nothing found
    if callable(columns):
        return []
    selected = np.asarray(columns).tolist()
    if not isinstance(selected, list):  # one column
        selected = [selected]
    if selected and all(isinstance(c, bool) for c in selected):
        return [j for j, keep in enumerate(selected) if keep]
    place = {name: j for j, name in enumerate(names or ())}
    out = []
    for column in selected:
        if isinstance(column, int) and -width <= column < width:
            out.append(column % width)
        elif isinstance(column, str) and column in place:
            out.append(place[column])
        else:
            return []  # not a selection of the inputs
    return out
