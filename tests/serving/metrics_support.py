"""What the metrics tests share: a store holding an XGBoost model that takes missing values,
the serving app's ASGI lifespan, and ``GET /metrics`` read through prometheus_client's parser."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from tests.serving.asgi_support import lifespan

FEATURES = ["a", "b", "c"]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def make_platform(home: Path, **settings: Any) -> Platform:
    """A store with ``churn:1`` (XGBoost on a, b, c; NaN is a missing value) deployed as
    endpoints ``api`` and ``minutes`` (variant ``main``)."""
    import xgboost as xgb

    platform = build(load_settings({}, home=home, **settings))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 3)), columns=FEATURES)
    labels = (frame["a"] + frame["b"] > 0).astype(int)
    booster = xgb.train(
        {"objective": "binary:logistic", "nthread": 1, "max_depth": 2},
        xgb.DMatrix(frame, label=labels),
        num_boost_round=4,
    )
    platform.registry.register("churn", booster, flavor="xgboost", input_example=frame[:3])
    platform.endpoints.create("api", {"main": "churn:1"})
    platform.endpoints.create("minutes", {"main": "churn:1"})
    return platform


def parse(text: str) -> Samples:
    """Every sample of an exposition: (name, labels) → value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly ``labels`` (0 when absent, as Prometheus would have no
    series)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of every ``name`` sample whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def csv_body(rows: np.ndarray) -> bytes:
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows).encode()


@asynccontextmanager
async def serving(settings: Any, metrics: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The serving app on ``settings``' store assembled as ``bootstrap`` assembles it, but with
    the ``metrics`` the test made (its own buffer size, drain interval, sink …), lifespan run."""
    from modelyard.serving.app import ServerOptions, build_app, predict_executor
    from modelyard.serving.deployer import Deployer
    from modelyard.serving.loader import load_served
    from modelyard.storage.artifacts import FsspecArtifactStore
    from modelyard.storage.sql.engine import make_engine
    from modelyard.storage.sql.plan_source import SqlPlanSource

    engine = make_engine(settings.resolved_db_url)
    artifacts = FsspecArtifactStore(settings.resolved_artifact_url)
    executor = predict_executor()
    deployer = Deployer(
        SqlPlanSource(engine),
        load=functools.partial(load_served, artifacts, scratch=settings.home / "tmp" / "m"),
        predict_executor=executor,
    )
    app = build_app(
        deployer,
        ServerOptions(),
        [metrics],
        companions=[metrics.companion],
        observer=metrics,
        metrics=metrics,
    )
    try:
        async with lifespan(app) as client:
            yield client
    finally:
        executor.shutdown()
        engine.dispose()
