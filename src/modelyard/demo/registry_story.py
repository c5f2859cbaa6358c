"""The registry half of the demo: train two models, register them, promote, load back."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.table import Table

from modelyard.domain import ModelVersion, Source
from modelyard.errors import ModelyardError

if TYPE_CHECKING:
    import pandas as pd

    from modelyard.bootstrap import Platform

MODEL = "breast-cancer"
ALIAS = "production"
SEED = 42
ENDPOINT = MODEL
#: The endpoint's split: the previous production version keeps most traffic, the new one is
#: tried on a tenth of it (a canary).
WEIGHTS = {"blue": 0.9, "green": 0.1}
HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0

#: The two candidates: a deliberately weak first model and a stronger second one.
CANDIDATES: tuple[dict[str, Any], ...] = (
    {"n_estimators": 10, "max_depth": 2, "learning_rate": 0.3},
    {"n_estimators": 200, "max_depth": 4, "learning_rate": 0.05, "subsample": 0.8},
)


@dataclass(frozen=True)
class DemoResult:
    """What the demo registered and checked."""

    versions: tuple[ModelVersion, ...]
    production: ModelVersion
    max_abs_diff: float
    #: The version ``production`` pointed at before this run moved it (None on a first run).
    previous_production: int | None = None
    #: The validation rows (features only), which the traffic part of the demo sends.
    validation: pd.DataFrame | None = field(default=None, repr=False, compare=False)


def _split(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, Any, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer(as_frame=True)
    x_train, x_val, y_train, y_val = train_test_split(
        data.data, data.target, test_size=0.25, random_state=seed, stratify=data.target
    )
    return x_train, x_val, y_train, y_val


def _train(
    params: dict[str, Any], seed: int, split: tuple[Any, ...]
) -> tuple[Any, dict[str, float]]:
    import xgboost as xgb
    from sklearn.metrics import accuracy_score, roc_auc_score

    x_train, x_val, y_train, y_val = split
    # One thread and a fixed seed: the same numbers on every machine and every run.
    model = xgb.XGBClassifier(objective="binary:logistic", random_state=seed, n_jobs=1, **params)
    model.fit(x_train, y_train)
    proba = model.predict_proba(x_val)[:, 1]
    metrics = {
        "auc": float(roc_auc_score(y_val, proba)),
        "accuracy": float(accuracy_score(y_val, proba >= 0.5)),
    }
    return model, metrics


def busy(console: Console, text: str) -> AbstractContextManager[Any]:
    # A spinner only where someone watches; logs and pipes get the plain step lines.
    return console.status(text) if console.is_terminal else nullcontext()


def run_demo(platform: Platform, console: Console, *, seed: int = SEED) -> DemoResult:
    """Run the demo against ``platform``'s registry, printing each step on ``console``.

    Returns:
        The registered versions, the version ``production`` resolved to, and the largest
        difference between the registry's and the in-memory predictions (0.0 expected).

    Raises:
        ModelyardError: when the model loaded back does not predict like the one trained.
    """
    registry = platform.registry
    split = _split(seed)
    x_val = split[1]
    console.print(
        f"Data: breast cancer, {len(split[0])} training and {len(x_val)} validation rows, "
        f"{x_val.shape[1]} features"
    )
    trained: list[tuple[Any, ModelVersion]] = []
    for number, params in enumerate(CANDIDATES, start=1):
        with busy(console, f"Training candidate {number} {params} …"):
            model, metrics = _train(params, seed, split)
        version = registry.register(
            MODEL,
            model,
            flavor="xgboost",
            input_example=x_val.iloc[:5],
            params={**params, "seed": seed},
            metrics=metrics,
            description=f"demo candidate {number}: {params['n_estimators']} trees, "
            f"depth {params['max_depth']}",
            source=Source(kind="demo", uri="sklearn.datasets.load_breast_cancer"),
        )
        trained.append((model, version))
        console.print(
            f"Registered {version.ref}: auc={metrics['auc']:.4f} accuracy={metrics['accuracy']:.4f}"
        )

    first, second = (v for _, v in trained)
    previous = registry.get_model(MODEL).aliases.get(ALIAS)
    registry.set_alias(MODEL, ALIAS, first.version)
    # On a re-run the alias already exists: say where it was, so the log tells the whole story.
    was = f" (was {MODEL}:{previous})" if previous is not None else ""
    console.print(f"Alias {ALIAS} → {first.ref}{was}")
    registry.set_alias(MODEL, ALIAS, second.version)
    console.print(f"Moved alias {ALIAS} from {first.ref} to {second.ref}")

    loaded = registry.load(f"{MODEL}@{ALIAS}")
    try:
        from_registry = np.asarray(loaded.predict(x_val), dtype=np.float64)
        production = loaded.version
    finally:
        loaded.unload()
    expected = np.asarray(trained[-1][0].predict_proba(x_val)[:, 1], dtype=np.float64)
    diff = float(np.max(np.abs(from_registry - expected)))
    if production.version != second.version or diff > 1e-6:
        raise ModelyardError(
            f"demo check failed: {MODEL}@{ALIAS} resolved to {production.ref} and its "
            f"predictions differ from the trained model's by up to {diff:g}"
        )
    console.print(
        f"Loaded {MODEL}@{ALIAS} ({production.ref}) from the registry: its {len(x_val)} "
        f"predictions equal the in-memory model's (max difference {diff:g})"
    )
    console.print(_table(registry.list_versions(MODEL)))
    return DemoResult(
        versions=(first, second),
        production=production,
        max_abs_diff=diff,
        previous_production=previous,
        validation=x_val,
    )


def _table(versions: list[ModelVersion]) -> Table:
    table = Table(title=f"Registry: {MODEL}")
    table.add_column("version", justify="right", style="bold")
    table.add_column("trees", justify="right")
    table.add_column("depth", justify="right")
    table.add_column("auc", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("aliases")
    table.add_column("status")
    for v in versions:
        table.add_row(
            str(v.version),
            v.params.get("n_estimators", "-"),
            v.params.get("max_depth", "-"),
            f"{v.metrics['auc']:.4f}" if "auc" in v.metrics else "-",
            f"{v.metrics['accuracy']:.4f}" if "accuracy" in v.metrics else "-",
            ", ".join(v.aliases) or "-",
            v.status.value,
        )
    return table
