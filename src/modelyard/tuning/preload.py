"""Importing, once, what every trial of a tuning job needs.

The coordinator imports it before it starts its trial runners, which are forked from it: each
runner then begins with the model library, pandas and Optuna in memory instead of spending
seconds importing them (XGBoost pulls in scikit-learn and SciPy: about 3 s here).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

# The library behind each built-in algorithm's flavor.
_LIBRARIES = {"xgboost": "xgboost", "lightgbm": "lightgbm", "sklearn": "sklearn.base"}


def preload(training_spec: Mapping[str, Any]) -> list[str]:
    """Import the modules a trial of ``training_spec`` uses; returns their names.

    Only imports: no library does any work here (an OpenMP pool started before a fork would
    not survive in the child).
    """
    names = [
        "pandas",
        "optuna",
        "modelyard.training.runner",
        "modelyard.training.data",
        "modelyard.training.baseline",
    ]
    algorithm = training_spec.get("algorithm")
    if algorithm:
        from modelyard.training.algorithms import get_algorithm

        flavor = get_algorithm(algorithm).flavor
        names += [type(get_algorithm(algorithm)).__module__, _LIBRARIES.get(flavor, flavor)]
        names.append(f"modelyard.runtimes.{flavor}_runtime")
    else:
        names.append("modelyard.training.script")
    for name in names:
        importlib.import_module(name)
    return names
