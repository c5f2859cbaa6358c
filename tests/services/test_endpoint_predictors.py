"""The predictor option of endpoints (auto / native / compiled) through the endpoint service
over real stores and real models: stored per variant, kept by re-weighting and rollback,
unknown variants refused, and ``compiled`` refused up front (with the reason, nothing
written) for a model whose compiled predictor would not serve, accepted for one whose would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelyard
from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import ModelSpec, Predictor
from modelyard.errors import EndpointNotFound, InvalidInput

AUTO, NATIVE, COMPILED = Predictor.AUTO, Predictor.NATIVE, Predictor.COMPILED


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> Iterator[Platform]:
    """trees:1 and trees:2 (XGBoost gbtree, binary:logistic: they compile), dart:1 (an XGBoost
    dart booster) and linear:1 (a LogisticRegression): neither of those two compiles."""
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    rows = np.random.default_rng(3).normal(size=(60, 3))
    labels = (rows[:, 0] + rows[:, 1] > 0).astype(int)
    data = xgb.DMatrix(rows, label=labels)
    p = build(load_settings({}, home=tmp_path / "home", db_url=db_url))
    for objective, rounds in (("binary:logistic", 2), ("binary:logistic", 3), ("rank", 2)):
        booster = "gbtree" if objective == "binary:logistic" else "rank"
        objective = "rank:pairwise" if booster == "rank" else objective
        params = {"objective": objective, "max_depth": 2}
        model = xgb.train({**params, "nthread": 1}, data, num_boost_round=rounds)
        name = "trees" if booster == "gbtree" else "dart"
        p.registry.register(name, model, flavor="xgboost", input_example=rows[:3])
    linear = LogisticRegression().fit(rows, labels)
    p.registry.register("linear", linear, flavor="sklearn", input_example=rows[:3])
    yield p
    p.close()


def predictors(endpoint: Any) -> dict[str, Predictor]:
    return {v.name: v.predictor for v in endpoint.config.variants}


def state(p: Platform) -> Any:
    return [(e, p.endpoints.history(e.name)) for e in p.endpoints.list_endpoints()]


def test_predictors_are_stored_per_variant_and_default_to_auto(platform: Platform) -> None:
    eps = platform.endpoints
    variants = {"blue": "trees:1", "green": "trees:2", "red": "dart:1"}
    created = eps.create("api", variants, predictors={"blue": NATIVE, "green": COMPILED})
    expected = {"blue": NATIVE, "green": COMPILED, "red": AUTO}
    assert predictors(created) == expected
    assert predictors(eps.get("api")) == expected, "read back from the store"
    assert [v.to_dict()["predictor"] for v in eps.get("api").config.variants] == [
        "native",
        "compiled",
        "auto",
    ]
    # Python callers may give the plain words.
    words: dict[str, Any] = {"blue": "compiled"}
    updated = eps.update("api", {"blue": "trees:2"}, predictors=words)
    assert predictors(updated) == {"blue": COMPILED}
    assert updated.config.variants[0].predictor is COMPILED


def test_unknown_variant_or_predictor_is_refused_before_anything_loads(
    platform: Platform,
) -> None:
    eps = platform.endpoints
    eps.create("api", {"blue": "trees:1"})
    before = state(platform)
    with pytest.raises(InvalidInput, match="predictors name unknown variant red"):
        eps.update("api", {"blue": "trees:2"}, predictors={"red": NATIVE})
    with pytest.raises(InvalidInput, match="predictors name unknown variant red"):
        eps.create("other", {"blue": "trees:2"}, predictors={"blue": NATIVE, "red": AUTO})
    with pytest.raises(InvalidInput, match="unknown predictor 'fast'; choose one of auto"):
        eps.create("other", {"blue": "trees:2"}, predictors={"blue": "fast"})  # type: ignore
    assert state(platform) == before


#: Models that cannot be compiled, and why (the refusal's reason, without "native: ").
CANNOT_COMPILE = {
    "dart:1": "objective 'rank:pairwise' is not compiled",
    "linear:1": "LogisticRegression is not a tree ensemble the compiler takes",
}


def test_compiled_is_refused_for_a_model_that_cannot_compile(platform: Platform) -> None:
    eps = platform.endpoints
    eps.create("api", {"blue": "trees:1"}, predictors={"blue": COMPILED})
    before = state(platform)
    for ref, reason in CANNOT_COMPILE.items():
        message = f"variant 'green' ({ref}) cannot use the compiled predictor: {reason}"
        with pytest.raises(InvalidInput) as refused:
            eps.update("api", {"blue": "trees:1", "green": ref}, predictors={"green": COMPILED})
        assert str(refused.value) == message
        with pytest.raises(InvalidInput, match="cannot use the compiled predictor"):
            eps.create("new", {"green": ref}, predictors={"green": COMPILED})
        with pytest.raises(InvalidInput, match="cannot use the compiled predictor"):
            eps.deploy("api", {"green": ref}, predictors={"green": COMPILED})
    assert state(platform) == before, "nothing written: same config, no new endpoint"
    assert eps.get("api").config.number == 1
    with pytest.raises(EndpointNotFound):
        eps.get("new")
    # Without the promise the same models serve, natively.
    assert predictors(eps.update("api", {"green": "dart:1"})) == {"green": AUTO}
    native = eps.update("api", {"green": "linear:1"}, predictors={"green": NATIVE})
    assert predictors(native) == {"green": NATIVE}


def test_compiled_is_accepted_and_left_cached_for_the_servers(
    platform: Platform, tmp_path: Path
) -> None:
    from modelyard.serving.loader import load_served

    created = platform.endpoints.create("api", {"blue": "trees:1"}, predictors={"blue": COMPILED})
    assert predictors(created) == {"blue": COMPILED}
    # A server loading it afterwards takes the conversion and verdict the check stored.
    spec = ModelSpec.from_version(platform.registry.get_version("trees:1"))
    served = load_served(platform.artifacts, replace(spec, predictor=COMPILED), tmp_path)
    try:
        assert (served.choice.kind, served.choice.cached) == ("compiled", True)
        assert served.choice.reason.startswith("compiled (onnxruntime tree ensemble): ")
    finally:
        served.close()


def test_predictors_are_kept_by_weights_and_rollback(platform: Platform) -> None:
    eps = platform.endpoints
    eps.create(
        "api",
        {"blue": "trees:1", "green": "trees:2"},
        predictors={"blue": NATIVE, "green": COMPILED},
    )
    weighted = eps.set_weights("api", {"blue": 3.0})
    assert [(v.weight, v.predictor) for v in weighted.config.variants] == [
        (3.0, NATIVE),
        (1.0, COMPILED),
    ]
    replaced = eps.update("api", {"blue": "trees:2", "green": "trees:1"})
    assert predictors(replaced) == {"blue": AUTO, "green": AUTO}
    back = eps.rollback("api")
    assert back.config.number == 4
    assert [(v.model_ref, v.weight, v.predictor) for v in back.config.variants] == [
        ("trees:1", 3.0, NATIVE),
        ("trees:2", 1.0, COMPILED),
    ]
    assert predictors(eps.rollback("api")) == {"blue": NATIVE, "green": COMPILED}
    assert [c.change.value for c in eps.history("api")] == [
        "create",
        "weights",
        "update",
        "rollback",
        "rollback",
    ]


def test_python_deploy_takes_the_predictor(platform: Platform) -> None:
    deployed = modelyard.deploy(
        "trees:1", "api", predictor="compiled", wait=False, platform=platform
    )
    deployed.close()
    assert predictors(platform.endpoints.get("api")) == {"AllTraffic": COMPILED}
    before = state(platform)
    with pytest.raises(InvalidInput, match=r"\(dart:1\) cannot use the compiled predictor"):
        modelyard.deploy("dart:1", "api", predictor="compiled", wait=False, platform=platform)
    with pytest.raises(InvalidInput, match="unknown predictor 'Compiled'"):
        modelyard.deploy("trees:2", "api", predictor="Compiled", wait=False, platform=platform)
    assert state(platform) == before
    modelyard.deploy("dart:1", "api", wait=False, platform=platform).close()
    assert predictors(platform.endpoints.get("api")) == {"AllTraffic": AUTO}
