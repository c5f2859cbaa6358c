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
    "CSVDeserializer",
    "CSVSerializer",
    "CategoricalParameter",
    "ColumnSpec",
    "ContinuousParameter",
    "DataCaptureConfig",
    "Estimator",
    "HyperparameterTuner",
    "IntegerParameter",
    "JSONDeserializer",
    "JSONSerializer",
    "ModelRef",
    "NumpyDeserializer",
    "NumpySerializer",
    "Predictor",
    "Registry",
    "Settings",
    "Signature",
    "Transformer",
    "Trust",
    "deploy",
    "errors",
    "load_settings",
    "open_platform",
    "open_registry",
    "upgrade_database",
]

_LAZY = {
    "CSVDeserializer": ("modelyard.serializers", "CSVDeserializer"),
    "CSVSerializer": ("modelyard.serializers", "CSVSerializer"),
    "CategoricalParameter": ("modelyard.tuner", "CategoricalParameter"),
    "ColumnSpec": ("modelyard.domain", "ColumnSpec"),
    "ContinuousParameter": ("modelyard.tuner", "ContinuousParameter"),
    "DataCaptureConfig": ("modelyard.data_capture", "DataCaptureConfig"),
    "Estimator": ("modelyard.estimator", "Estimator"),
    "HyperparameterTuner": ("modelyard.tuner", "HyperparameterTuner"),
    "IntegerParameter": ("modelyard.tuner", "IntegerParameter"),
    "JSONDeserializer": ("modelyard.serializers", "JSONDeserializer"),
    "JSONSerializer": ("modelyard.serializers", "JSONSerializer"),
    "ModelRef": ("modelyard.domain", "ModelRef"),
    "Transformer": ("modelyard.transformer", "Transformer"),
    "NumpyDeserializer": ("modelyard.serializers", "NumpyDeserializer"),
    "NumpySerializer": ("modelyard.serializers", "NumpySerializer"),
    "Predictor": ("modelyard.predictor", "Predictor"),
    "Registry": ("modelyard.services.registry", "RegistryService"),
    "Settings": ("modelyard.config", "Settings"),
    "Signature": ("modelyard.domain", "Signature"),
    "Trust": ("modelyard.domain", "Trust"),
    "deploy": ("modelyard.predictor", "deploy"),
    "errors": ("modelyard.errors", None),
    "load_settings": ("modelyard.config", "load_settings"),
    "open_platform": ("modelyard.bootstrap", "open_platform"),
    "open_registry": ("modelyard.bootstrap", "open_registry"),
    "upgrade_database": ("modelyard.bootstrap", "upgrade_database"),
}

if TYPE_CHECKING:
    from modelyard import errors
    from modelyard.bootstrap import open_platform, open_registry, upgrade_database
    from modelyard.config import Settings, load_settings
    from modelyard.data_capture import DataCaptureConfig
    from modelyard.domain import ColumnSpec, ModelRef, Signature, Trust
    from modelyard.estimator import Estimator
    from modelyard.predictor import Predictor, deploy
    from modelyard.serializers import (
        CSVDeserializer,
        CSVSerializer,
        JSONDeserializer,
        JSONSerializer,
        NumpyDeserializer,
        NumpySerializer,
    )
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
