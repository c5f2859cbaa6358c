"""Inferring and checking signatures against real data."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from modelyard.domain import ColumnSpec, Signature
from modelyard.errors import SignatureMismatch

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def _named(label: object) -> str | None:
    # pandas numbers unnamed columns 0, 1, 2…: those are positions, not feature names.
    return None if isinstance(label, int) else str(label)


def infer_signature(example: pd.DataFrame, predictions: np.ndarray) -> Signature:
    """The signature an input example and the model's predictions on it imply."""
    inputs = tuple(
        ColumnSpec(dtype=str(dt), name=_named(col)) for col, dt in example.dtypes.items()
    )
    width = 1 if predictions.ndim == 1 else int(predictions.shape[1])
    outputs = tuple(ColumnSpec(dtype=str(predictions.dtype)) for _ in range(width))
    shape = (-1,) if predictions.ndim == 1 else (-1, *map(int, predictions.shape[1:]))
    return Signature(inputs=inputs, outputs=outputs, output_shape=shape)


def check_example(
    signature: Signature,
    example: pd.DataFrame,
    what: str = "the input example",
    stored_name: Callable[[str], str] | None = None,
) -> None:
    """Raise SignatureMismatch unless ``example`` has the signature's features.

    Named features must all be present (extra columns are an error too); unnamed ones are
    matched by count. ``stored_name`` maps a column's name to the one the model keeps (its
    :meth:`~modelyard.runtimes.base.LoadedModel.stored_feature_name`), when the signature is
    the model's own.
    """
    names = signature.feature_names
    if names is not None and all(isinstance(c, str) for c in example.columns):
        stored = {c: (stored_name or str)(c) for c in example.columns}
        missing = [n for n in names if n not in stored.values()]
        extra = [str(c) for c in example.columns if stored[c] not in names]
        if missing or extra:
            raise SignatureMismatch(
                f"{what} does not match the model's features: "
                f"missing {missing or 'none'}, unexpected {extra or 'none'}"
            )
    elif example.shape[1] != signature.n_features:
        raise SignatureMismatch(
            f"{what} has {example.shape[1]} features; the model expects {signature.n_features}"
        )
