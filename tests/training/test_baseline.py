"""baseline_profile: the training features' profile, kept to the model's columns, with a real
fitted model's predictions on (an evenly spaced sample of) them; deterministic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelyard.training import baseline as baseline_module
from modelyard.training.baseline import baseline_profile


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, LogisticRegression]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(3000, 3)), columns=["a", "b", "c"])
    model = LogisticRegression().fit(frame[["a", "b"]], frame["a"] > frame["b"])
    frame["id"] = np.arange(3000)
    return frame, model


def test_features_and_predictions(data: tuple[pd.DataFrame, LogisticRegression]) -> None:
    frame, model = data
    profile = baseline_profile(frame, model.predict, ["a", "b"])
    assert profile.columns == ("a", "b") and profile.row_count == 3000
    assert profile.predictions is not None
    (prediction,) = profile.predictions.column_profiles
    assert prediction.name == "prediction"
    predicted = model.predict(frame[["a", "b"]])  # booleans: profiled as numbers 0 and 1
    assert prediction.kind == "numeric" and prediction.numbers is not None
    assert prediction.numbers.count == len(predicted)
    assert prediction.numbers.mean == pytest.approx(predicted.mean())
    assert baseline_profile(frame, model.predict, ["a", "b"]).to_bytes() == profile.to_bytes()
    # The features' profile does not depend on row order (the prediction sample does).
    shuffled = baseline_profile(frame.sample(frac=1, random_state=1), model.predict, ["a", "b"])
    assert shuffled.with_predictions(None).to_bytes() == profile.with_predictions(None).to_bytes()


def test_whole_table_without_columns_and_no_predictions_when_the_model_refuses(
    data: tuple[pd.DataFrame, LogisticRegression],
) -> None:
    frame, model = data
    # The model takes a and b; given the whole table it refuses (4 columns): no predictions.
    profile = baseline_profile(frame, model.predict)
    assert profile.columns == ("a", "b", "c", "id") and profile.predictions is None
    assert baseline_profile(frame, None, ["a", "zz"]).columns == ("a", "b", "c", "id")


def test_predictions_on_an_evenly_spaced_sample(
    data: tuple[pd.DataFrame, LogisticRegression], monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, model = data
    monkeypatch.setattr(baseline_module, "PREDICTION_ROWS", 1000)
    seen: list[int] = []

    def predict(rows: pd.DataFrame) -> np.ndarray:
        seen.extend(rows.index)
        return np.asarray(model.predict_proba(rows))

    profile = baseline_profile(frame, predict, ["a", "b"])
    assert seen == list(range(0, 3000, 3))
    assert profile.predictions is not None and profile.predictions.columns == ("0", "1")
    assert profile.predictions.row_count == 1000
