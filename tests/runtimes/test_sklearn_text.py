"""Which inputs a fitted scikit-learn estimator takes as text, read from its encoders: a
pipeline one-hot encoding zip codes was described as all numbers (scikit-learn keeps no input
types), so requests sending the codes as text were refused."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

pytest.importorskip("sklearn")

from sklearn.compose import ColumnTransformer, make_column_selector, make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from modelyard.runtimes.sklearn_runtime import SklearnLoaded
from modelyard.runtimes.sklearn_text import text_positions

FRAME = pd.DataFrame(
    {"age": [31.0, 42.0, 53.0, 64.0], "zip": ["02139", "94105", "02139", "10001"],
     "plan": ["gold", "basic", "gold", "basic"]}
)  # fmt: skip
LABELS = [0, 1, 0, 1]


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (make_column_transformer((OneHotEncoder(), ["zip"]), (StandardScaler(), ["age"])), {1}),
        (ColumnTransformer([("o", OrdinalEncoder(), [1, 2])], remainder="passthrough"), {1, 2}),
        (ColumnTransformer([("o", OrdinalEncoder(), [-1])], remainder="passthrough"), {2}),
        (ColumnTransformer([("o", OneHotEncoder(), [False, True, False])]), {1}),
        (ColumnTransformer([("o", OneHotEncoder(), slice(1, 3))]), {1, 2}),
        (
            make_column_transformer(
                (OneHotEncoder(), make_column_selector(dtype_exclude="number"))
            ),
            {1, 2},
        ),
        (
            make_column_transformer(
                (make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()), ["plan"]),
                remainder="passthrough",
            ),
            {2},
        ),
        # Numbers one-hot encoded are still numbers; a name slice is not read (nothing found).
        (make_column_transformer((OneHotEncoder(), ["age"]), remainder="drop"), set()),
        (ColumnTransformer([("o", OneHotEncoder(), slice("zip", "plan"))]), set()),
    ],
)
def test_the_encoders_columns_learnt_from_text_are_found(
    selection: Any, expected: set[int]
) -> None:
    model = make_pipeline(selection, LogisticRegression()).fit(FRAME, LABELS)
    assert text_positions(model, 3, list(FRAME.columns)) == expected


def test_an_encoder_alone_and_a_model_of_numbers() -> None:
    encoder = OneHotEncoder().fit(FRAME[["zip", "age"]])
    assert text_positions(encoder, 2, ["zip", "age"]) == {0}
    numbers = LogisticRegression().fit(FRAME[["age"]], LABELS)
    assert text_positions(numbers, 1, ["age"]) == set()


def test_the_signature_hint_gives_text_columns_as_objects() -> None:
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["zip", "plan"]), remainder="passthrough"),
        LogisticRegression(),
    ).fit(FRAME, LABELS)
    hint = SklearnLoaded(model).signature_hint()
    assert hint is not None
    assert [(c.name, c.dtype) for c in hint.inputs] == [
        ("age", "float64"), ("zip", "object"), ("plan", "object"),
    ]  # fmt: skip
