"""The Estimator: training jobs from Python, scikit-learn style."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard import Estimator
from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.errors import JobFailed


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    p = build(load_settings({}, home=tmp_path / "home"))
    yield p
    p.close()


@pytest.fixture
def iris_csv(tmp_path: Path) -> Path:
    from sklearn.datasets import load_iris

    path = tmp_path / "iris.csv"
    load_iris(as_frame=True).frame.to_csv(path, index=False)
    return path


def test_fit_registers_and_loads(platform: Platform, iris_csv: Path) -> None:
    est = Estimator(
        "random-forest",
        model_name="iris",
        target="target",
        hyperparameters={"n_estimators": 20},
        platform=platform,
    )
    assert est.fit(train=str(iris_csv)) is est
    assert est.model_version_ is not None and est.model_version_.ref == "iris:1"
    assert est.metrics_["train:accuracy"] > 0.9
    rows = pd.read_csv(iris_csv).drop(columns=["target"]).head(10)
    model = est.load()
    assert np.asarray(model.predict(rows)).shape == (10,)
    model.unload()


def test_params_and_failure(platform: Platform, iris_csv: Path) -> None:
    est = Estimator("xgboost", model_name="iris", platform=platform)
    assert est.get_params()["algorithm"] == "xgboost"
    est.set_params(target="no_such_column")
    with pytest.raises(JobFailed, match="no_such_column"):
        est.fit(train=str(iris_csv))
    with pytest.raises(ValueError, match="unknown parameter"):
        est.set_params(learning_rate=0.1)
