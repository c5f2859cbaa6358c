"""baseline_statistics: values on a small frame, JSON-ability, determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelyard.training.baseline import QUANTILES, baseline_statistics


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [10.0, 20.0, 30.0, 40.0, np.nan, 50.0, np.inf],
            "city": ["Paris", "Lyon", "Paris", None, "Nice", "Paris", "Lyon"],
            "flag": [True, False, True, True, False, True, True],
            "empty": [np.nan] * 7,
            "count": pd.array([1, 2, 3, 4, 5, 6, None], dtype="Int64"),
        }
    )


def test_numeric_statistics(frame: pd.DataFrame) -> None:
    stats = baseline_statistics(frame)
    age = stats["features"]["age"]
    assert age["kind"] == "numeric"
    assert age["count"] == 5 and age["missing"] == 2  # NaN and inf
    assert age["mean"] == pytest.approx(30.0)
    assert age["std"] == pytest.approx(np.std([10, 20, 30, 40, 50], ddof=1))
    assert (age["min"], age["max"]) == (10.0, 50.0)
    assert list(age["quantiles"]) == [str(q) for q in QUANTILES]
    assert age["quantiles"]["0.5"] == 30.0
    assert age["quantiles"]["0.25"] == 20.0
    assert age["quantiles"]["0.01"] == pytest.approx(10.4)
    edges = age["histogram"]["edges"]
    assert len(edges) == 11 and edges[0] == 10.0 and edges[-1] == 50.0
    assert age["histogram"]["counts"] == [1, 0, 1, 0, 0, 1, 0, 1, 0, 1]
    assert sum(age["histogram"]["counts"]) == age["count"]

    count = stats["features"]["count"]
    assert count["kind"] == "numeric" and count["count"] == 6 and count["missing"] == 1
    assert count["mean"] == pytest.approx(3.5)


def test_categorical_statistics(frame: pd.DataFrame) -> None:
    stats = baseline_statistics(frame)
    city = stats["features"]["city"]
    assert city == {
        "kind": "categorical",
        "count": 6,
        "missing": 1,
        "distinct": 3,
        "top": [
            {"value": "Paris", "count": 3},
            {"value": "Lyon", "count": 2},
            {"value": "Nice", "count": 1},
        ],
    }
    flag = stats["features"]["flag"]
    assert flag["kind"] == "categorical"
    assert flag["top"] == [{"value": "True", "count": 5}, {"value": "False", "count": 2}]


def test_all_missing_numeric_column(frame: pd.DataFrame) -> None:
    empty = baseline_statistics(frame)["features"]["empty"]
    assert empty["count"] == 0 and empty["missing"] == 7
    assert empty["mean"] is None and empty["histogram"] is None
    assert set(empty["quantiles"].values()) == {None}


def test_frame_level_fields_json_and_determinism(frame: pd.DataFrame) -> None:
    stats = baseline_statistics(frame)
    assert stats["version"] == 1
    assert stats["row_count"] == 7
    assert stats["columns"] == ["age", "city", "flag", "empty", "count"]
    assert list(stats["features"]) == stats["columns"]
    text = json.dumps(stats, allow_nan=False)  # no NaN/inf, only plain types
    assert json.dumps(baseline_statistics(frame.copy()), allow_nan=False) == text


def test_top_values_are_capped_and_ties_ordered() -> None:
    values = [f"v{i:02d}" for i in range(30)] + ["v29", "v28"]
    stats = baseline_statistics(pd.DataFrame({"code": values}))["features"]["code"]
    assert stats["distinct"] == 30
    assert len(stats["top"]) == 20
    assert stats["top"][:3] == [
        {"value": "v28", "count": 2},
        {"value": "v29", "count": 2},
        {"value": "v00", "count": 1},
    ]
    assert stats["top"][-1] == {"value": "v17", "count": 1}


def test_constant_column_histogram() -> None:
    stats = baseline_statistics(pd.DataFrame({"x": [2.0, 2.0, 2.0]}))["features"]["x"]
    assert stats["std"] == 0.0
    assert stats["histogram"]["edges"][0] == 1.5 and stats["histogram"]["edges"][-1] == 2.5
    assert sum(stats["histogram"]["counts"]) == 3
