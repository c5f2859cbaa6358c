"""Shadow variants in the endpoint service over a real SQLite store and real registered
XGBoost models: configs with shadows, every refusal (nothing written), percentage weights,
rollback, promote, and a guarded deployment whose new config holds a shadow."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import (
    Batching,
    CaptureConfig,
    ColumnSpec,
    ConfigChange,
    Predictor,
    Signature,
    Source,
    Trust,
    Variant,
)
from modelyard.domain.deployment_decisions import Action
from modelyard.domain.deployments import DeploymentState
from modelyard.errors import Conflict, EndpointNotFound, InvalidInput, VariantNotFound
from modelyard.services.endpoint_weights import PercentWeights, parse_weights
from modelyard.storage.base import NewVersion
from tests.services.deployment_parts import ENDPOINT, STEP, Parts, open_parts

MIN = timedelta(minutes=1)


@pytest.fixture
def platform(tmp_path: Path, breast_cancer: Any) -> Iterator[Platform]:
    """A SQLite platform with cancer:1..3 registered (real boosters, real signatures)."""
    import xgboost as xgb

    x_train, _, y_train, _ = breast_cancer
    p = build(load_settings({}, home=tmp_path / "home"))
    for rounds in (3, 6, 9):
        booster = xgb.train(
            {"objective": "binary:logistic", "nthread": 1},
            xgb.DMatrix(x_train, label=y_train),
            num_boost_round=rounds,
        )
        p.registry.register("cancer", booster, flavor="xgboost", input_example=x_train.head(3))
    yield p
    p.close()


def state(p: Platform) -> tuple[Any, ...]:
    """Every endpoint and its whole history: what a refused change must leave as it was."""
    found = p.endpoints.list_endpoints()
    return found, [p.endpoints.history(e.name) for e in found]


def summary(variants: tuple[Variant, ...]) -> list[tuple[str, int, float, float | None]]:
    return [(v.name, v.version, v.weight, v.shadow) for v in variants]


def test_a_shadow_takes_no_weight_and_keeps_its_sampling(platform: Platform) -> None:
    first = platform.registry.get_version("cancer:1")
    redact = first.signature.feature_names[0]  # type: ignore[union-attr]
    created = platform.endpoints.create(
        "api",
        {"live": "cancer:1", "dark": "cancer:2"},
        capture={"dark": CaptureConfig.parse(20, [redact])},
        shadows={"dark": 100},
    )
    assert summary(created.config.variants) == [("live", 1, 1.0, None), ("dark", 2, 0.0, 100.0)]
    dark = created.config.variant("dark")
    assert dark is not None and dark.is_shadow and dark.capture.percent == 20
    assert created.config.variant("live").is_shadow is False  # type: ignore[union-attr]
    # What is stored is what was made: the store reads back the shadow and its capture.
    assert platform.endpoints.get("api").config.variants == created.config.variants
    assert dark.to_dict()["shadow"] == 100.0
    # Weights are the production variants' only; a sampling of 0 is a shadow, not off.
    updated = platform.endpoints.update(
        "api",
        {"a": "cancer:1", "b": "cancer:2", "dark": "cancer:3"},
        {"a": 3, "b": 1},
        shadows={"dark": 0},
    )
    assert summary(updated.config.variants) == [
        ("a", 1, 3.0, None),
        ("b", 2, 1.0, None),
        ("dark", 3, 0.0, 0.0),
    ]
    assert updated.config.variant("dark").capture.percent == 0  # type: ignore[union-attr]
    # numpy's numbers are numbers (weights take them too).
    two = {"live": "cancer:1", "dark": "cancer:2"}
    for given, taken in ((np.float32(12.5), 12.5), (np.int64(50), 50.0)):
        again = platform.endpoints.update("api", two, shadows={"dark": given})
        assert summary(again.config.variants)[1] == ("dark", 2, 0.0, taken)
        assert type(again.config.variants[1].shadow) is float


def test_bad_shadows_are_refused_naming_the_problem_and_nothing_is_written(
    platform: Platform,
) -> None:
    eps = platform.endpoints
    eps.create("api", {"live": "cancer:1", "dark": "cancer:2"}, shadows={"dark": 50})
    before = state(platform)
    two = {"live": "cancer:1", "dark": "cancer:2"}
    attempts: list[tuple[Any, str]] = [
        (lambda: eps.create("new", two, shadows={"dark": 101}), r"from 0 to 100, got 101"),
        (lambda: eps.update("api", two, shadows={"dark": -1}), r"from 0 to 100, got -1"),
        (lambda: eps.update("api", two, shadows={"dark": math.nan}), "got nan"),
        (lambda: eps.update("api", two, shadows={"dark": math.inf}), "got inf"),
        (lambda: eps.update("api", two, shadows={"dark": "50"}), "got '50'"),
        (lambda: eps.update("api", two, shadows={"dark": True}), "got True"),
        (lambda: eps.update("api", two, shadows={"dark": np.bool_(True)}), "got np.True_"),
        (
            lambda: eps.update("api", two, shadows={"dark": 10**400}),
            "got an int too large for a float",
        ),
        (lambda: eps.update("api", two, shadows={"dark": np.float64(101)}), "got np.float64"),
        (lambda: eps.update("api", two, shadows={"red": 10}), "unknown variant 'red'"),
        (
            lambda: eps.update("api", two, {"live": 1, "dark": 1}, shadows={"dark": 10}),
            "'dark' is a shadow: it answers no request, so it takes no weight",
        ),
        (
            lambda: eps.update("api", {"dark": "cancer:2"}, shadows={"dark": 10}),
            "a shadow cannot be the only variant: at least one production variant answers",
        ),
        (
            lambda: eps.create("new", two, shadows={"dark": 10, "live": 10}),
            "a shadow cannot be the only variant",
        ),
        # The production weights are checked as ever, the shadows left out.
        (
            lambda: eps.update("api", two, {"live": 0}, shadows={"dark": 10}),
            "at least one variant needs a weight above 0",
        ),
        (
            lambda: eps.deploy("api", two, {"live": math.inf}, shadows={"dark": 10}),
            r"weight of variant 'live' must be a finite number, got inf",
        ),
        (lambda: eps.set_weights("api", {"dark": 1}), "'dark' is a shadow"),
        (lambda: eps.set_weights("api", {"live": 2, "dark": 0}), "'dark' is a shadow"),
    ]
    for attempt, message in attempts:
        with pytest.raises(InvalidInput, match=message):
            attempt()
    assert state(platform) == before


def test_a_shadow_must_take_the_rows_its_production_variants_decode(
    platform: Platform, breast_cancer: Any
) -> None:
    """A shadow is sent the production variant's decoded rows: the same named inputs in
    another order, or fewer of them, are taken (the data plane picks them); an input the
    production variant does not decode is refused by name, wherever a config is made."""
    from sklearn.linear_model import RidgeClassifier

    x_train, _, y_train, _ = breast_cancer
    columns = list(x_train.columns)

    def register(name: str, frame: Any) -> str:
        model = RidgeClassifier().fit(frame, y_train)
        return platform.registry.register(
            name, model, flavor="sklearn", input_example=frame.head(3)
        ).ref

    reordered = register("reordered", x_train[columns[::-1]])
    fewer = register("fewer", x_train[columns[:5]])
    more = register("more", x_train.assign(extra_signal=1.0))
    eps = platform.endpoints
    created = eps.create(
        "api", {"live": "cancer:1", "r": reordered, "f": fewer}, shadows={"r": 100, "f": 50}
    )
    assert summary(created.config.variants) == [
        ("live", 1, 1.0, None), ("r", 1, 0.0, 100.0), ("f", 1, 0.0, 50.0)
    ]  # fmt: skip
    before = state(platform)
    wider = {"live": "cancer:1", "m": more}
    refused = (
        r"shadow variant 'm' \(more:1\) cannot take the rows decoded for production variant "
        r"'live' \(cancer:1\): it takes input 'extra_signal' that the rows do not have"
    )
    attempts = [
        lambda: eps.update("api", wider, shadows={"m": 100}),
        lambda: eps.create("other", wider, shadows={"m": 10}),
        lambda: eps.deploy("api", wider, shadows={"m": 100}),
        lambda: eps.build(wider, shadows={"m": 100}),
        # Every production variant is checked, not only the first.
        lambda: eps.update("api", {"a": more, "b": "cancer:1", "m": more}, shadows={"m": 100}),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidInput, match=refused.replace("'live'", "'(live|b)'")):
            attempt()
    assert state(platform) == before
    # The other way round is a pick: the wider model answers, the narrower one shadows it.
    swapped = eps.update("api", {"live": more, "old": "cancer:1"}, shadows={"old": 100})
    assert summary(swapped.config.variants) == [("live", 1, 1.0, None), ("old", 1, 0.0, 100.0)]


def test_build_checks_shadows_without_writing(platform: Platform) -> None:
    built = platform.endpoints.build(
        {"live": "cancer:1", "dark": "cancer:3"}, shadows={"dark": 12.5}
    )
    assert summary(built) == [("live", 1, 1.0, None), ("dark", 3, 0.0, 12.5)]
    assert platform.endpoints.list_endpoints() == []


def test_set_weights_leaves_the_shadows_as_they_are(platform: Platform) -> None:
    eps = platform.endpoints
    eps.create("api", {"a": "cancer:1", "b": "cancer:2", "dark": "cancer:3"}, shadows={"dark": 30})
    weighted = eps.set_weights("api", {"a": 9})
    assert summary(weighted.config.variants) == [
        ("a", 1, 9.0, None),
        ("b", 2, 1.0, None),
        ("dark", 3, 0.0, 30.0),
    ]
    assert weighted.config.change is ConfigChange.WEIGHTS


def test_percentage_weights_must_add_up_to_100(platform: Platform) -> None:
    parsed = parse_weights("blue=90%, green=10%")
    assert isinstance(parsed, PercentWeights) and parsed == {"blue": 90.0, "green": 10.0}
    assert not isinstance(parse_weights("blue=9,green=1"), PercentWeights)
    # Thirds written out add up to 100 within the tolerance.
    assert sum(parse_weights("a=33.3333333%,b=33.3333333%,c=33.3333334%").values()) == (
        pytest.approx(100)
    )
    with pytest.raises(InvalidInput, match=r"the weights add up to 95%, not 100%"):
        parse_weights("blue=90%,green=5%")
    with pytest.raises(InvalidInput, match=r"add up to 100.1%, not 100%"):
        parse_weights(["blue=90.1%", "green=10%"])
    # Enough digits that the sum shown is not itself 100%.
    with pytest.raises(InvalidInput, match=r"add up to 100.0001%, not 100% \(a=50%, b=50.0001%\)"):
        parse_weights("a=50%,b=50.0001%")
    # An empty value (an unset shell variable) is no weights, not "equal shares".
    for empty in ("", " , ", [""]):
        with pytest.raises(InvalidInput, match="no weights in"):
            parse_weights(empty)
    with pytest.raises(InvalidInput, match=r"mix percentages with plain numbers \(green\)"):
        parse_weights("blue=90%,green=10")
    with pytest.raises(InvalidInput, match="weight of variant 'green' must be >= 0"):
        parse_weights("blue=110%,green=-10%")
    with pytest.raises(InvalidInput, match="malformed weight 'blue=%'"):
        parse_weights("blue=%")

    eps = platform.endpoints
    created = eps.create(
        "api",
        {"blue": "cancer:1", "green": "cancer:2", "dark": "cancer:3"},
        parse_weights("blue=75%,green=25%"),
        shadows={"dark": 5},
    )
    assert summary(created.config.variants) == [
        ("blue", 1, 75.0, None),
        ("green", 2, 25.0, None),
        ("dark", 3, 0.0, 5.0),
    ]
    before = state(platform)
    # Percentages share out all the traffic: one left out would keep its old relative weight.
    with pytest.raises(InvalidInput, match=r"every production variant .*missing: green"):
        eps.set_weights("api", parse_weights("blue=100%"))
    with pytest.raises(InvalidInput, match="'dark' is a shadow"):
        eps.set_weights("api", parse_weights("blue=50%,green=40%,dark=10%"))
    assert state(platform) == before
    weighted = eps.set_weights("api", parse_weights("blue=40%,green=60%"))
    assert summary(weighted.config.variants)[:2] == [
        ("blue", 1, 40.0, None),
        ("green", 2, 60.0, None),
    ]


def test_rollback_returns_to_the_shadows_of_the_config_before(platform: Platform) -> None:
    eps = platform.endpoints
    eps.create("api", {"live": "cancer:1", "dark": "cancer:2"}, shadows={"dark": 40})
    eps.update("api", {"live": "cancer:3"})
    back = eps.rollback("api")
    assert back.config.change is ConfigChange.ROLLBACK
    assert summary(back.config.variants) == [("live", 1, 1.0, None), ("dark", 2, 0.0, 40.0)]


def test_promote_makes_the_shadow_the_sole_production_variant(platform: Platform) -> None:
    eps = platform.endpoints
    platform.registry.set_alias("cancer", "candidate", 2)
    created = eps.create(
        "api",
        {"a": "cancer:1", "b": "cancer:3", "dark": "cancer@candidate"},
        {"a": 1, "b": 3},
        batching={"dark": Batching(max_batch_size=8, max_wait_ms=1.5)},
        predictors={"dark": Predictor.NATIVE},
        capture={"dark": CaptureConfig(percent=10)},
        shadows={"dark": 25},
    )
    promoted = eps.promote("api")
    config = promoted.config
    assert (config.number, config.change) == (2, ConfigChange.PROMOTE)
    shadow = created.config.variant("dark")
    assert shadow is not None
    (only,) = config.variants
    assert (only.name, only.model, only.version, only.weight, only.shadow) == (
        "dark", "cancer", 2, 1.0, None,
    )  # fmt: skip
    assert (only.batching, only.predictor, only.capture, only.requested) == (
        shadow.batching, shadow.predictor, shadow.capture, "cancer@candidate",
    )  # fmt: skip
    assert eps.get("api").config == config
    # A rollback returns to the config it replaced, shadow and all.
    back = eps.rollback("api")
    assert back.config.variants == created.config.variants
    assert [c.change.value for c in eps.history("api")] == ["create", "promote", "rollback"]


def test_promote_names_one_shadow_among_several(platform: Platform) -> None:
    eps = platform.endpoints
    eps.create(
        "api",
        {"live": "cancer:1", "x": "cancer:2", "y": "cancer:3"},
        shadows={"x": 10, "y": 90},
    )
    promoted = eps.promote("api", "y")
    assert summary(promoted.config.variants) == [("y", 3, 1.0, None)]


def test_promote_refusals_write_nothing(platform: Platform) -> None:
    eps = platform.endpoints
    eps.create("plain", {"a": "cancer:1", "b": "cancer:2"})
    eps.create(
        "two", {"live": "cancer:1", "x": "cancer:2", "y": "cancer:3"}, shadows={"x": 1, "y": 2}
    )
    before = state(platform)
    refusals: list[tuple[Any, type[Exception], str]] = [
        (lambda: eps.promote("plain"), InvalidInput, "'plain' has no shadow variant to promote"),
        (lambda: eps.promote("plain", "a"), InvalidInput, "'plain' has no shadow variant"),
        (lambda: eps.promote("two"), InvalidInput, r"2 shadow variants \(x, y\); name the one"),
        # A variant the endpoint lacks is not found, as for `deployments compare --shadow z`
        # (it was InvalidInput: exit 2 here, 3 there, for the same message).
        (lambda: eps.promote("two", "z"), VariantNotFound, "no variant 'z'; its shadow variants"),
        (lambda: eps.promote("two", "live"), InvalidInput, "'live' .* is a production variant"),
        (lambda: eps.promote("nope"), EndpointNotFound, "nope"),
    ]
    for attempt, error, message in refusals:
        with pytest.raises(error, match=message):
            attempt()
    assert state(platform) == before
    assert [len(h) for h in state(platform)[1]] == [1, 1]


# -- guarded deployments ---------------------------------------------------------------------


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    """The deployment tests' stores (SQLite): churn:1..3, ``churn-api`` serving main=churn:1."""
    p = open_parts(f"sqlite:///{tmp_path / 'modelyard.db'}")
    yield p
    p.close()


def _shape(parts: Parts) -> list[tuple[str, int, float, float | None]]:
    return [(v.name, v.version, round(v.weight, 6), v.shadow) for v in parts.current_variants()]


def _traffic(parts: Parts, minutes: int, new_share: float) -> None:
    """Answered requests split between main and main.next, and failing shadow copies: had
    the shadow counted as the new side, its errors would fail the comparison."""
    for i in range(minutes):
        minute = parts.clock.now + i * MIN
        parts.serve("main.next", minute, round(400 * new_share))
        parts.serve("main", minute, 400 - round(400 * new_share))
        parts.serve("dark", minute, 400, errors=400)


def test_a_canary_carries_the_new_shadow_through_its_steps(parts: Parts) -> None:
    started = parts.service.start(
        ENDPOINT, {"main": "churn:2", "dark": "churn:3"}, shadows={"dark": 100},
        strategy="canary", canary_size=10, wait=timedelta(minutes=5), bake=timedelta(0),
        min_requests=50,
    )  # fmt: skip
    d = started.deployment
    assert d is not None and d.state is DeploymentState.RUNNING
    assert summary(d.target) == [("main", 2, 1.0, None), ("dark", 3, 0.0, 100.0)]
    # Prepare: the new variants join at 0 %, the shadow with its sampling from the start.
    assert _shape(parts) == [
        ("main", 1, 1.0, None), ("main.next", 2, 0.0, None), ("dark", 3, 0.0, 100.0),
    ]  # fmt: skip
    # Promoting while the deployment runs is refused (the deployment is named), nothing moves.
    history = parts.endpoints.history(ENDPOINT)
    with pytest.raises(Conflict, match=f"deployment {d.id} running"):
        parts.service.promote(ENDPOINT, "dark")
    assert parts.endpoints.history(ENDPOINT) == history
    controller = parts.controller()
    assert [x.action for x in controller.run_once(parts.clock.advance(STEP))] == [Action.ADVANCE]
    assert _shape(parts) == [
        ("main", 1, 0.9, None), ("main.next", 2, 0.1, None), ("dark", 3, 0.0, 100.0),
    ]  # fmt: skip
    _traffic(parts, 6, 0.1)
    assert controller.run_once(parts.clock.advance(4 * MIN)) == []
    assert [x.action for x in controller.run_once(parts.clock.advance(MIN))] == [Action.COMPLETE]
    assert _shape(parts) == [("main", 2, 1.0, None), ("dark", 3, 0.0, 100.0)]
    assert parts.service.get(ENDPOINT).state is DeploymentState.SUCCEEDED
    # Once it is over, the shadow can be promoted.
    promoted = parts.service.promote(ENDPOINT)
    assert promoted.config.change is ConfigChange.PROMOTE
    assert _shape(parts) == [("dark", 3, 1.0, None)]


def test_a_canary_rolls_back_to_the_old_shadows(parts: Parts) -> None:
    parts.endpoints.update(ENDPOINT, {"main": "churn:1", "dark": "churn:2"}, shadows={"dark": 30})
    parts.service.start(
        ENDPOINT, {"main": "churn:3"}, strategy="canary", canary_size=20, min_requests=50,
    )  # fmt: skip
    assert _shape(parts) == [
        ("main", 1, 1.0, None), ("dark", 2, 0.0, 30.0), ("main.next", 3, 0.0, None),
    ]  # fmt: skip
    rolled = parts.service.rollback(ENDPOINT)
    assert rolled.deployment is not None
    assert rolled.deployment.state is DeploymentState.ROLLED_BACK
    assert _shape(parts) == [("main", 1, 1.0, None), ("dark", 2, 0.0, 30.0)]


def test_a_rollout_whose_new_shadow_cannot_take_the_old_models_rows_is_refused(
    parts: Parts,
) -> None:
    """The old config's production variants answer until the rollout ends, and the new
    shadows get copies of their requests from the first step: a new shadow must take the old
    models' rows too. Refused before anything is written."""

    def version(*names: str) -> str:
        signature = Signature(inputs=tuple(ColumnSpec("float64", n) for n in names))
        made = parts.metadata.create_version(
            NewVersion(
                name="typed", flavor="xgboost", model_format="ubj",
                artifact_digest=os.urandom(32).hex(), size_bytes=1, source=Source("upload"),
                trust=Trust(), signature=signature,
            )
        )  # fmt: skip
        return made.ref

    narrow, wide = version("a", "b", "c"), version("a", "b", "c", "d")
    parts.endpoints.update(ENDPOINT, {"main": narrow})
    history = parts.endpoints.history(ENDPOINT)
    with pytest.raises(InvalidInput) as caught:
        parts.service.start(
            ENDPOINT, {"main": wide, "dark": wide}, shadows={"dark": 100},
            strategy="canary", canary_size=10, wait=timedelta(minutes=5),
        )  # fmt: skip
    assert str(caught.value).startswith(
        f"shadow variant 'dark' ({wide}) cannot take the rows decoded for production variant "
        f"'main' of the config being replaced ({narrow}): it takes input 'd' that the rows do "
        "not have (they have 'a', 'b', 'c')"
    )
    assert parts.endpoints.history(ENDPOINT) == history
    assert parts.service.list_deployments(ENDPOINT) == []
    # All at once there is no old config answering beside the new one: the shadow is taken.
    changed = parts.service.start(
        ENDPOINT, {"main": wide, "dark": wide}, shadows={"dark": 100}, strategy="all-at-once"
    )
    assert [(v.name, v.shadow) for v in changed.endpoint.config.variants] == [
        ("main", None), ("dark", 100.0)
    ]  # fmt: skip


def test_a_shadow_named_again_must_say_whether_it_stays_one(platform: Platform) -> None:
    """Updating the production model while listing the shadow again, without its share, used
    to make the model under trial answer half the callers (equal shares)."""
    platform.endpoints.create(
        "api", {"live": "cancer:1", "dark": "cancer:2"}, shadows={"dark": 100}
    )
    before = state(platform)
    for update in (
        lambda: platform.endpoints.update("api", {"live": "cancer:3", "dark": "cancer:2"}),
        lambda: platform.endpoints.update("api", {"dark": "cancer:2"}),
        lambda: platform.endpoints.update(
            "api", {"live": "cancer:3", "dark": "cancer:2"}, {"live": 1}
        ),
    ):
        with pytest.raises(
            InvalidInput, match="'dark' \\(100% of requests\\) of endpoint 'api' is a shadow now"
        ):
            update()
    assert state(platform) == before
    # Said either way, it is done.
    kept = platform.endpoints.update(
        "api", {"live": "cancer:3", "dark": "cancer:2"}, shadows={"dark": 50}
    )
    assert summary(kept.config.variants) == [("live", 3, 1.0, None), ("dark", 2, 0.0, 50.0)]
    answering = platform.endpoints.update(
        "api", {"live": "cancer:3", "dark": "cancer:2"}, {"live": 9, "dark": 1}
    )
    assert summary(answering.config.variants) == [("live", 3, 9.0, None), ("dark", 2, 1.0, None)]
    # Left out, a shadow simply goes.
    platform.endpoints.update("api", {"live": "cancer:3", "dark": "cancer:2"}, shadows={"dark": 5})
    gone = platform.endpoints.update("api", {"live": "cancer:1"})
    assert summary(gone.config.variants) == [("live", 1, 1.0, None)]


def test_promote_refuses_a_shadow_that_would_read_the_callers_rows_otherwise(
    platform: Platform,
) -> None:
    """A shadow may take production's inputs in another order, or fewer of them: its copies
    hold its own columns. Promoted, it decodes the callers' requests by its own inputs: a CSV
    row ``1,0,0`` meaning a=1 would have been read as c=1 (a silently wrong answer), and
    named rows with ``b`` refused. Promoting such a shadow is refused, naming both models'
    inputs, and nothing is written; one that takes the same inputs is promoted."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    target = 10 * frame["a"] + frame["b"]
    for columns in (["a", "b", "c"], ["c", "b", "a"], ["c", "a"], ["a", "b", "c"]):
        model = LinearRegression().fit(frame[columns], target)
        platform.registry.register(
            "lin", model, flavor="sklearn", input_example=frame[columns].head(3)
        )
    eps = platform.endpoints
    for name, shadow in (("reordered", "lin:2"), ("fewer", "lin:3"), ("same", "lin:4")):
        eps.create(name, {"live": "lin:1", "dark": shadow}, shadows={"dark": 100})
    before = state(platform)
    refusals = [
        ("reordered", "inputs 'c', 'b', 'a'"),
        ("fewer", "inputs 'c', 'a'"),
    ]
    for name, taken in refusals:
        for promote in (eps.promote, platform.deployments.promote):
            with pytest.raises(InvalidInput) as refused:
                promote(name, "dark")
            message = refused.value.message
            assert f"shadow variant 'dark' of endpoint {name!r} cannot be promoted" in message
            assert f"takes {taken}, and callers send the inputs of production variant " in message
            assert "'live' (lin:1): inputs 'a', 'b', 'c'" in message
            assert "--" not in message  # said to CLI and Python users alike
    assert state(platform) == before
    promoted = platform.deployments.promote("same")
    assert summary(promoted.config.variants) == [("dark", 4, 1.0, None)]
