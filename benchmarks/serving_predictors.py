"""What served the serving benchmark's requests: modelyard's predictor per worker (read from
``GET /endpoints``), and the compiled and native predictors timed in-process for context."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import orjson
from serverproc import http_request


def median_call_us(call: Callable[[], object], calls: int = 2000) -> float:
    """Median wall time of one call, in microseconds, over batches of 100."""
    call()
    batches = []
    for _ in range(calls // 100):
        start = time.perf_counter()
        for _ in range(100):
            call()
        batches.append((time.perf_counter() - start) / 100 * 1e6)
    return statistics.median(batches)


def inprocess_compiled(booster: Any, example: np.ndarray, row: list[float]) -> dict[str, Any]:
    """modelyard's choice for the booster (no cache) and its single-row predict time.

    For context beside the servers' numbers; a failure is recorded, not raised.
    """
    try:
        from modelyard.runtimes.trees import choose
        from modelyard.runtimes.xgboost_runtime import XGBoostLoaded

        native = XGBoostLoaded(booster)
        started = time.perf_counter()
        choice = choose(native, "xgboost", "auto", example=example)
        choose_s = time.perf_counter() - started
        one_row = np.asarray([row], dtype=np.float64)  # what the JSON codec hands the model
        return {
            "kind": choice.kind,
            "reason": choice.reason,
            "choose_s": choose_s,
            "single_row_predict_us": median_call_us(partial(choice.model.predict, one_row)),
            "native_loaded_single_row_predict_us": median_call_us(partial(native.predict, one_row)),
        }
    except Exception as exc:  # the benchmark still measures the servers
        return {"error": f"{type(exc).__name__}: {exc}"}


def served_predictors(url: str, workers: int, endpoint: str, timeout_s: float) -> dict[str, Any]:
    """Which predictor each worker serves the benchmark endpoint's variants with.

    Reads ``GET /endpoints`` until every worker has answered with the endpoint loaded (each
    request opens a new connection, which the kernel hands to either worker), or until
    ``timeout_s``. ``kinds`` is every predictor kind seen (``compiled``/``native``).
    """
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(seen) < workers and time.monotonic() < deadline:
        try:
            status, body = http_request(url)
            payload = orjson.loads(body) if status == 200 else {}
        except (OSError, orjson.JSONDecodeError):
            payload = {}
        endpoint = next(
            (e for e in payload.get("endpoints", []) if e.get("name") == endpoint), None
        )
        if endpoint is not None and "worker" in payload:
            seen[str(payload["worker"])] = {
                v["name"]: v.get("predictor") for v in endpoint["variants"]
            }
        else:
            time.sleep(0.05)
    kinds = sorted(
        {(p or {}).get("kind", "unknown") for variants in seen.values() for p in variants.values()}
    )
    return {"workers_seen": len(seen), "kinds": kinds, "by_worker": seen}


def predictor_label(record: dict[str, Any], workers: int) -> str | None:
    """What served a server's rows: modelyard's predictor kind(s), or the baseline's own."""
    served = record.get("served_predictors", {}).get(str(workers))
    if served is not None:
        return "+".join(served["kinds"]) or "unknown"
    return record.get("details", {}).get("predictor")
