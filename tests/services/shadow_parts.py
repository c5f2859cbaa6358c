"""Real parts for the shadow comparison tests: fitted scikit-learn models registered in a real
store, captured rows written by the servers' own capture writer (real loaded models behind the
variant routes it tables), and per-minute metric rows written by the servers' own minute
series into the real metric store.

Models take features ``a`` and ``b``: ``clf:1`` predicts ``a > 0`` and ``clf:2`` ``a > 0.4``
(logistic regressions: 0/1 labels); ``reg:1`` predicts ``2a + b`` and ``reg:2`` ``2.2a + b``
(linear regressions).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from modelyard.bootstrap import Platform
from modelyard.domain import Batching, ModelRef, ModelSpec
from modelyard.domain.inference_ids import new_inference_id
from modelyard.domain.metric_stats import LATENCY_BOUNDS_S, MetricStats
from modelyard.serving.batching import MicroBatcher
from modelyard.serving.capture import CaptureRecord
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.serving.loader import ServedModel, load_served
from modelyard.serving.metrics_compute import bucket_counts
from modelyard.serving.metrics_series import MinuteSeries, minute_of
from modelyard.serving.stack import RequestMeta
from modelyard.serving.table import VariantRoute
from modelyard.storage.capture_files import CaptureFolder
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.metric_store import SqlMetricStore

FEATURES = ["a", "b"]


def register_models(platform: Platform) -> None:
    """``clf:1``, ``clf:2``, ``reg:1``, ``reg:2`` (see the module docstring); the classifiers
    carry a validation accuracy, so quality points compare with it."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(400, 2)), columns=FEATURES)
    reg = platform.registry
    for cut in (0.0, 0.4):
        model = LogisticRegression(C=1e4).fit(frame, (frame["a"] > cut).astype(int))
        reg.register(
            "clf", model, flavor="sklearn", input_example=frame[:3], metrics={"accuracy": 0.95}
        )
    for slope in (2.0, 2.2):
        model = LinearRegression().fit(frame, slope * frame["a"] + frame["b"])
        reg.register("reg", model, flavor="sklearn", input_example=frame[:3])


@dataclass
class Call:
    """One captured one-row-or-more request of one variant."""

    variant: str
    inference_id: str
    rows: np.ndarray
    predictions: np.ndarray
    time_s: float
    latency_s: float = 0.002


class Capturer:
    """Writes captured rows of ``platform``'s endpoints as a server's capture writer does,
    with the variant routes a server builds around real loaded models."""

    def __init__(self, platform: Platform, scratch: Any) -> None:
        self.platform = platform
        self._scratch = scratch
        self._served: dict[str, ServedModel] = {}
        self._executor = ThreadPoolExecutor(1)

    def served(self, ref: str) -> ServedModel:
        if ref not in self._served:
            version = self.platform.registry.get_version(ModelRef.parse(ref))
            spec = ModelSpec.from_version(version)
            self._served[ref] = load_served(self.platform.artifacts, spec, self._scratch)
        return self._served[ref]

    def predict(self, ref: str, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.served(ref).model.predict(rows))

    def write(self, endpoint: str, calls: Sequence[Call]) -> None:
        """Capture ``calls`` of ``endpoint`` (its variants as its current config has them)
        and write them into the platform's capture root (the writer's shutdown writes all)."""
        config = self.platform.endpoints.get(endpoint).config
        routes = {}
        for variant in config.variants:
            served = self.served(variant.model_ref)
            batcher = MicroBatcher(served.model.predict, Batching(), self._executor)
            routes[variant.name] = VariantRoute(
                name=variant.name, served=served, batcher=batcher, weight=variant.weight,
                capture=variant.capture,
            )  # fmt: skip
        writer = CaptureWriter(CaptureFolder(self.platform.settings.resolved_capture_url))
        writer.open()
        try:
            for call in calls:
                meta = RequestMeta(endpoint=endpoint, inference_id=call.inference_id)
                record = CaptureRecord(
                    meta,
                    routes[call.variant],
                    call.rows,
                    call.predictions,
                    call.latency_s,
                    call.time_s,
                )
                assert writer.offer(record)
        finally:
            writer.close()
        assert writer.written_rows == sum(len(c.rows) for c in calls)

    def close(self) -> None:
        for served in self._served.values():
            served.close()
        self._executor.shutdown()


def mirrored(
    capturer: Capturer,
    endpoint: str,
    rows: np.ndarray,
    *,
    production: tuple[str, str],
    shadow: tuple[str, str],
    shadow_predictions: np.ndarray | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Capture one one-row request per row of ``rows``, answered by ``production`` (variant,
    model ref) and copied to ``shadow``, each side predicting with its own real model (or the
    shadow's predictions given); the ids, production's and the shadow's predictions."""
    ours = capturer.predict(production[1], rows)
    theirs = capturer.predict(shadow[1], rows) if shadow_predictions is None else shadow_predictions
    ids = [new_inference_id() for _ in rows]
    now = time.time()
    calls = []
    for i, inference_id in enumerate(ids):
        # Near the time its id says (feedback finds a row by it), all of them in the past.
        at = now - 1 + i * 0.001
        one = rows[i : i + 1]
        calls.append(Call(production[0], inference_id, one, ours[i : i + 1], at))
        calls.append(Call(shadow[0], inference_id, one, theirs[i : i + 1], at + 0.003, 0.02))
    capturer.write(endpoint, calls)
    return ids, ours, theirs


def write_minutes(
    platform: Platform,
    endpoint: str,
    variant: str,
    latencies_s: Sequence[float],
    errors: int,
    *,
    worker: str,
) -> None:
    """One minute of ``variant``'s requests (one per latency, ``errors`` of them failed),
    written through a server's minute series into the real metric store, five minutes ago."""
    took = np.asarray(latencies_s, dtype=np.float64)
    stats = MetricStats()
    stats.add("requests", len(took))
    stats.add("latency_s", float(took.sum()))
    counts = bucket_counts(took, LATENCY_BOUNDS_S)
    for i in np.flatnonzero(counts):
        stats.add(f"lat.{i}", float(counts[i]))
    if errors:
        stats.add("errors", errors)
    engine = make_engine(platform.settings.resolved_db_url)
    try:
        series = MinuteSeries(SqlMetricStore(engine, minute_retention=timedelta(days=2)), worker)
        now = time.time()
        series.update(minute_of(now - 300), {(endpoint, variant): stats})
        assert series.flush(now)
    finally:
        engine.dispose()
