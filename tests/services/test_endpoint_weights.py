"""Weights mean one thing whoever takes them: ``update`` (a new config) and ``set_weights``
(weights alone) parse and check them through the same rule, over real stores and a real
model. Percentages name every production variant; relative weights leave the variants not
named at the weight they have now; a variant new to the endpoint must be named; a refusal
changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import Endpoint
from modelyard.errors import InvalidInput
from modelyard.services.endpoints import EndpointService, parse_weights

BOTH = {"blue": "cancer:1", "green": "cancer:1"}
Apply = Callable[[EndpointService, str], Endpoint]
COMMANDS: dict[str, Apply] = {
    "update": lambda eps, text: eps.update("api", BOTH, parse_weights(text)),
    "set_weights": lambda eps, text: eps.set_weights("api", parse_weights(text)),
}


@pytest.fixture
def platform(db_url: str, tmp_path: Path, breast_cancer: Any) -> Iterator[Platform]:
    import xgboost as xgb

    x_train, _, y_train, _ = breast_cancer
    p = build(load_settings({}, home=tmp_path / "home", db_url=db_url))
    booster = xgb.train(
        {"objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(x_train, label=y_train),
        num_boost_round=2,
    )
    p.registry.register("cancer", booster, flavor="xgboost", input_example=x_train.head(3))
    yield p
    p.close()


def weights(endpoint: Endpoint) -> dict[str, float]:
    return {v.name: v.weight for v in endpoint.config.variants}


@pytest.mark.parametrize("command", COMMANDS)
def test_update_and_set_weights_read_weights_alike(platform: Platform, command: str) -> None:
    eps = platform.endpoints
    apply = COMMANDS[command]
    eps.create("api", BOTH, parse_weights("blue=1,green=3"))
    refusals = [
        ("blue=100%", "percentages share out all the traffic: give one for every production "
         "variant of endpoint 'api' (missing: green)"),
        ("red=1", "weights name unknown variant red; endpoint 'api' has blue, green"),
        ("blue=0,green=0", "at least one variant needs a weight above 0"),
    ]  # fmt: skip
    for text, message in refusals:
        with pytest.raises(InvalidInput) as refused:
            apply(eps, text)
        assert str(refused.value) == message
    assert len(eps.history("api")) == 1, "a refusal changes nothing"
    # A variant not named keeps its weight (green: 3), in both.
    assert weights(apply(eps, "blue=1")) == {"blue": 1.0, "green": 3.0}
    assert weights(apply(eps, "blue=40%,green=60%")) == {"blue": 40.0, "green": 60.0}
    assert weights(apply(eps, "green=20")) == {"blue": 40.0, "green": 20.0}


def test_a_variant_new_to_the_endpoint_must_be_named(platform: Platform) -> None:
    eps = platform.endpoints
    with pytest.raises(InvalidInput, match=r"variant new to the config \(none yet: green\)"):
        eps.create("api", BOTH, parse_weights("blue=1"))
    assert eps.list_endpoints() == []
    eps.create("api", {"blue": "cancer:1"})
    with pytest.raises(InvalidInput, match=r"new to endpoint 'api' \(none yet: green\)"):
        eps.update("api", BOTH, parse_weights("blue=1"))
    assert len(eps.history("api")) == 1
    assert weights(eps.update("api", BOTH, parse_weights("blue=1,green=0"))) == {
        "blue": 1.0,
        "green": 0.0,
    }
    assert weights(eps.update("api", BOTH)) == {"blue": 1.0, "green": 1.0}, "equal shares"


def test_weights_from_python_are_real_numbers_or_refused_by_name(platform: Platform) -> None:
    """Weights given in Python, not parsed from text: numpy's numbers are numbers; text, None,
    a bool and an int too large for a float are refused naming the variant (an int past the
    largest float, and text, were OverflowError and ValueError tracebacks), and nothing
    changes."""
    import numpy as np

    eps = platform.endpoints
    eps.create("api", BOTH, {"blue": np.int64(3), "green": np.float32(1.5)})
    assert weights(eps.get("api")) == {"blue": 3.0, "green": 1.5}
    refusals: list[tuple[Any, str]] = [
        (10**400, "got an int too large for a float"),
        ("2", "got '2'"),
        (None, "got None"),
        (True, "got True"),
        ([1], "got [1]"),
    ]
    for given, said in refusals:
        attempts = [
            ("green", lambda given=given: eps.update("api", BOTH, {"blue": 1, "green": given})),
            ("green", lambda given=given: eps.set_weights("api", {"green": given})),
            ("blue", lambda given=given: eps.create("other", BOTH, {"blue": given, "green": 1})),
        ]
        for variant, attempt in attempts:
            with pytest.raises(InvalidInput) as refused:
                attempt()
            assert (
                str(refused.value) == f"the weight of variant {variant!r} must be a number, {said}"
            )
    assert len(eps.history("api")) == 1 and len(eps.list_endpoints()) == 1
