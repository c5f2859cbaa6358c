"""modelyard: a self-hosted machine-learning deployment platform.

The public Python API. Heavy modules load on first use, so ``import modelyard`` stays cheap::

    from modelyard import open_registry
    registry = open_registry()
    version = registry.register("churn", booster, flavor="xgboost", input_example=X[:5])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "CategoricalParameter",
    "ColumnSpec",
    "ContinuousParameter",
    "Estimator",
    "HyperparameterTuner",
    "IntegerParameter",
    "ModelRef",
    "Registry",
    "Settings",
    "Signature",
    "Trust",
    "errors",
    "load_settings",
    "open_platform",
    "open_registry",
]

_LAZY = {
    "CategoricalParameter": ("modelyard.tuner", "CategoricalParameter"),
    "ColumnSpec": ("modelyard.domain", "ColumnSpec"),
    "ContinuousParameter": ("modelyard.tuner", "ContinuousParameter"),
    "Estimator": ("modelyard.estimator", "Estimator"),
    "HyperparameterTuner": ("modelyard.tuner", "HyperparameterTuner"),
    "IntegerParameter": ("modelyard.tuner", "IntegerParameter"),
    "ModelRef": ("modelyard.domain", "ModelRef"),
    "Registry": ("modelyard.services.registry", "RegistryService"),
    "Settings": ("modelyard.config", "Settings"),
    "Signature": ("modelyard.domain", "Signature"),
    "Trust": ("modelyard.domain", "Trust"),
    "errors": ("modelyard.errors", None),
    "load_settings": ("modelyard.config", "load_settings"),
    "open_platform": ("modelyard.bootstrap", "open_platform"),
    "open_registry": ("modelyard.bootstrap", "open_registry"),
}

if TYPE_CHECKING:
    from modelyard import errors
    from modelyard.bootstrap import open_platform, open_registry
    from modelyard.config import Settings, load_settings
    from modelyard.domain import ColumnSpec, ModelRef, Signature, Trust
    from modelyard.estimator import Estimator
    from modelyard.services.registry import RegistryService as Registry
    from modelyard.tuner import (
        CategoricalParameter,
        ContinuousParameter,
        HyperparameterTuner,
        IntegerParameter,
    )


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'modelyard' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)
