"""Compiled tree inference through real servers: the tree ensemble serves what verifies equal,
``native`` is honoured per variant, and the conversion made when the endpoint was created is
what every later server process loads (none converts again)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np

from modelyard.bootstrap import Platform
from modelyard.domain import Predictor
from tests.e2e.conftest import expected

ENDPOINT = "trees"


def _derived(platform: Platform) -> dict[str, int]:
    """Every derived-artifact pointer under the artifact store, with its modification time."""
    root = Path(platform.settings.resolved_artifact_url) / "derived"
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _predictors(url: str) -> dict[str, dict[str, Any]]:
    described = httpx.get(f"{url}/endpoints", timeout=10).json()
    (endpoint,) = [e for e in described["endpoints"] if e["name"] == ENDPOINT]
    return {v["name"]: v["predictor"] for v in endpoint["variants"]}


def _invoke(url: str, rows: np.ndarray, variant: str) -> httpx.Response:
    return httpx.post(
        f"{url}/endpoints/{ENDPOINT}/invocations",
        json=rows.tolist(),
        headers={"x-amzn-sagemaker-target-variant": variant},
        timeout=10,
    )


def test_compiled_and_native_variants_and_the_cache_across_servers(
    platform: Platform, serve: Any, models: dict[str, Any]
) -> None:
    platform.endpoints.create(
        ENDPOINT,
        {"fast": "churn:3", "slow": "churn:3"},
        predictors={"slow": Predictor.NATIVE},
    )
    made_at_create = _derived(platform)
    assert made_at_create, "creating the endpoint converts, verifies and caches the trees"
    assert any(name.endswith(".verdict") for name in made_at_create), made_at_create

    first = serve()
    chosen = _predictors(first.url)
    assert chosen["fast"]["kind"] == "compiled", chosen
    assert chosen["fast"]["reason"].startswith("compiled (onnxruntime tree ensemble): ")
    assert chosen["fast"]["cached"] is True, "the server loaded the conversion made at create"
    assert chosen["slow"] == {**chosen["slow"], "kind": "native", "reason": "native (asked for)"}

    rows = models["x"][:50]
    want = expected(models, 3, rows)
    for variant in ("fast", "slow"):
        res = _invoke(first.url, rows, variant)
        assert res.status_code == 200, res.text
        assert res.headers["x-amzn-invoked-production-variant"] == variant
        got = np.asarray(res.json()["predictions"])
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=variant)

    second = serve()
    again = _predictors(second.url)
    assert again["fast"]["kind"] == "compiled" and again["fast"]["cached"] is True, again
    assert again["fast"]["reason"] == chosen["fast"]["reason"], "the same verdict, read back"
    assert _derived(platform) == made_at_create, "no server converted or verified again"


def test_a_model_that_does_not_compile_serves_natively_with_its_reason(
    platform: Platform, serve: Any, models: dict[str, Any]
) -> None:
    import xgboost as xgb

    x = models["x"]
    y = (x[:, 0] > 0).astype(int)
    dart = xgb.train(
        {"objective": "rank:pairwise", "nthread": 1},
        xgb.DMatrix(x, label=y),
        num_boost_round=5,
    )
    platform.registry.register("darts", dart, flavor="xgboost", input_example=x[:3])
    platform.endpoints.create(ENDPOINT, {"main": "darts:1"})
    server = serve()
    chosen = _predictors(server.url)["main"]
    assert chosen["kind"] == "native", chosen
    assert chosen["reason"] == "native: objective 'rank:pairwise' is not compiled"
    res = _invoke(server.url, x[:5], "main")
    assert res.status_code == 200, res.text
    want = dart.predict(xgb.DMatrix(x[:5]))
    np.testing.assert_allclose(res.json()["predictions"], want, rtol=1e-6, atol=1e-6)
