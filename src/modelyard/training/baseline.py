"""The baseline stored with a version: the profile of its training features and of the
model's predictions on them, the reference that drift monitoring compares captured data with.

A profile (``modelyard.monitoring.profile``) holds mergeable, deterministic sketches: a quantile
sketch per numeric column, category counts per categorical column, missing counts, and the same
for the predictions. It is written into the model package as ``baseline.profile`` by the
registry, which has the loaded model at hand to predict with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidInput
from modelyard.monitoring.profile import Profile, prediction_frame

if TYPE_CHECKING:
    import pandas as pd

#: Predictions are sketched on at most this many training rows, evenly spaced, so that a large
#: training set does not make registering slow; enough for a KS resolution near 0.004.
PREDICTION_ROWS = 100_000


def baseline_profile(
    features: pd.DataFrame,
    predict: Callable[[pd.DataFrame], Any] | None = None,
    columns: Sequence[str] | None = None,
) -> Profile:
    """The baseline profile of training ``features``.

    Args:
        features: The training features (the target excluded).
        predict: The model's predict; its output on (a sample of) the features is sketched as
            the profile's predictions. A model that cannot predict on the features as they are
            (a script's model trained on transformed data) leaves the predictions out.
        columns: The model's input columns: when the features hold them all, the profile keeps
            only these, in this order (the model's signature, not the whole training table).

    Returns:
        A profile, deterministic for the same features and model.
    """
    if columns and all(c in features.columns for c in columns):
        features = features.loc[:, list(columns)]
    profile = Profile.from_frame(features)
    if predict is None:
        return profile
    return profile.with_predictions(prediction_profile(features, predict))


def prediction_profile(
    features: pd.DataFrame, predict: Callable[[pd.DataFrame], Any]
) -> Profile | None:
    """The profile of ``predict``'s output on an evenly spaced sample of at most
    :data:`PREDICTION_ROWS` rows of ``features``; None when there are no rows or the model
    cannot predict on them as they are (a script's model trained on transformed data)."""
    if len(features) == 0:
        return None
    try:
        return sampled_predictions(features, predict)
    except Exception:  # any model library's refusal means: no prediction sketch
        return None


def sampled_predictions(features: pd.DataFrame, predict: Callable[[pd.DataFrame], Any]) -> Profile:
    """The profile of ``predict``'s output on an evenly spaced sample of at most
    :data:`PREDICTION_ROWS` rows of ``features`` (at least one row).

    Raises:
        InvalidInput: the predictions are not one per row, or not a table.
        Exception: whatever ``predict`` raises.
    """
    step = -(-len(features) // PREDICTION_ROWS)  # ceiling division
    sample = features.iloc[::step]
    table = prediction_frame(predict(sample))
    if len(table) != len(sample):
        raise InvalidInput(f"the model gave {len(table)} predictions for {len(sample)} rows")
    return Profile.from_frame(table)
