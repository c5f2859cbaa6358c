"""Batch transform fixtures: a real registry (SQLite, a local artifact store) holding real fitted
XGBoost models (see ``support.py`` for what they are and the helpers)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from tests.batch.support import NAMES, Model, features, register


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("batch-home")
    built = build(load_settings({}, home=home / "home"))
    yield built
    built.close()


@pytest.fixture(scope="session")
def model(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Model:
    import pandas as pd
    import xgboost as xgb

    x = features(400, seed=1)
    y = (np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 4]) > 0).astype(int)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": 0},
        xgb.DMatrix(x, label=y, feature_names=NAMES),
        num_boost_round=8,
    )
    example = pd.DataFrame(x[:5], columns=NAMES)
    return register(
        platform, "batch-xgb", booster, tmp_path_factory.mktemp("scratch"), input_example=example
    )


@pytest.fixture(scope="session")
def multi_model(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Model:
    """A 3-class softprob model: two-dimensional predictions (one column a class)."""
    import xgboost as xgb

    x = features(300, seed=2)
    y = np.digitize(np.nan_to_num(x[:, 0]), [-1.0, 1.0])
    booster = xgb.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 2, "nthread": 1},
        xgb.DMatrix(x, label=y),
        num_boost_round=4,
    )
    return register(platform, "batch-multi", booster, tmp_path_factory.mktemp("scratch"))
