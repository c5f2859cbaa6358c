"""The endpoint service over real stores: configs, history, weights, rollback, protection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import ConfigChange
from modelyard.domain.capture import KeepCapture
from modelyard.errors import (
    AlreadyExists,
    ArtifactCorrupted,
    Conflict,
    EndpointNotFound,
    InvalidInput,
    InvalidName,
    InvalidReference,
    VersionNotFound,
    VersionProtected,
)
from modelyard.services.endpoints import parse_weights
from modelyard.storage import packages


@pytest.fixture
def platform(db_url: str, tmp_path: Path, breast_cancer: Any) -> Iterator[Platform]:
    import xgboost as xgb

    x_train, _, y_train, _ = breast_cancer
    p = build(load_settings({}, home=tmp_path / "home", db_url=db_url))
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
    return p.endpoints.list_endpoints(), [
        p.endpoints.history(e.name) for e in p.endpoints.list_endpoints()
    ]


def test_create_update_weights_rollback_history(platform: Platform) -> None:
    eps = platform.endpoints
    platform.registry.set_alias("cancer", "production", 1)
    created = eps.create(
        "api", {"blue": "cancer@production", "green": "cancer:2"}, {"blue": 0.9, "green": 0.1}
    )
    blue = created.config.variant("blue")
    assert blue is not None and (blue.version, blue.requested, blue.weight) == (
        1,
        "cancer@production",
        0.9,
    )
    platform.registry.set_alias("cancer", "production", 3)
    assert eps.get("api").config.variant("blue").version == 1, "moving an alias deploys nothing"  # type: ignore[union-attr]

    eps.update("api", {"blue": "cancer:3"})
    weighted = eps.set_weights("api", {"blue": 0.5})
    assert [(v.name, v.version, v.weight) for v in weighted.config.variants] == [("blue", 3, 0.5)]
    back = eps.rollback("api")
    assert back.config.change is ConfigChange.ROLLBACK
    assert [(v.name, v.version, v.weight) for v in back.config.variants] == [("blue", 3, 1.0)]
    again = eps.rollback("api")
    assert [(v.name, v.version) for v in again.config.variants] == [("blue", 1), ("green", 2)]
    with pytest.raises(InvalidInput, match="no earlier config"):
        eps.rollback("api")
    history = eps.history("api")
    assert [c.number for c in history] == [1, 2, 3, 4, 5]
    assert [c.change.value for c in history] == [
        "create",
        "update",
        "weights",
        "rollback",
        "rollback",
    ]


def test_served_versions_are_protected(platform: Platform) -> None:
    platform.endpoints.create("api", {"main": "cancer:2"})
    with pytest.raises(VersionProtected, match="endpoint api"):
        platform.registry.delete_version("cancer:2")
    with pytest.raises(VersionProtected, match="endpoint api"):
        platform.registry.archive("cancer:2")
    platform.endpoints.update("api", {"main": "cancer:3"})
    assert platform.registry.delete_version("cancer:2").version == 2
    platform.endpoints.delete("api")
    assert platform.registry.delete_version("cancer:3").version == 3


def test_bad_changes_leave_everything_as_it_was(platform: Platform) -> None:
    eps = platform.endpoints
    eps.create("api", {"main": "cancer:1"})
    before = state(platform)
    attempts: list[tuple[type[Exception], Any]] = [
        (AlreadyExists, lambda: eps.create("api", {"main": "cancer:1"})),
        (InvalidInput, lambda: eps.create("other", {})),
        (InvalidName, lambda: eps.create("bad name", {"main": "cancer:1"})),
        (InvalidReference, lambda: eps.create("other", {"main": "cancer:0"})),
        (VersionNotFound, lambda: eps.update("api", {"main": "cancer:99"})),
        (EndpointNotFound, lambda: eps.update("nope", {"main": "cancer:1"})),
        (InvalidInput, lambda: eps.set_weights("api", {"red": 1.0})),
        (InvalidInput, lambda: eps.set_weights("api", {"main": 0.0})),
        (InvalidInput, lambda: eps.set_weights("api", {"main": -1.0})),
        (InvalidInput, lambda: eps.update("api", {"a": "cancer:1"}, {"b": 1.0})),
        (InvalidInput, lambda: eps.rollback("api")),
        (EndpointNotFound, lambda: eps.delete("nope")),
        # issue 14: an overflowing sum (shown as nan%, all traffic to the last variant), a name
        # or reference with a final newline, a 10,000-character name
        (
            InvalidInput,
            lambda: eps.create("o", {"a": "cancer:1", "b": "cancer:2"}, {"a": 1e308, "b": 1e308}),
        ),
        (InvalidInput, lambda: eps.set_weights("api", {"main": float("inf")})),
        (InvalidName, lambda: eps.create("api2\n", {"main": "cancer:1"})),
        (InvalidName, lambda: eps.create("other", {"main\n": "cancer:1"})),
        (InvalidReference, lambda: eps.create("other", {"main": "cancer:1\n"})),
        (InvalidName, lambda: eps.create("x" * 10_000, {"main": "cancer:1"})),
        # from Python, a reference that is not text (an AttributeError from the parser)
        (InvalidReference, lambda: eps.create("other", {"main": 1})),  # type: ignore[dict-item]
        (InvalidReference, lambda: eps.update("api", {"main": None})),  # type: ignore[dict-item]
        # settings of another Python type than a mapping (AttributeErrors: no .items, .to_dict)
        (InvalidInput, lambda: eps.create("other", "cancer:1")),  # type: ignore[arg-type]
        (InvalidInput, lambda: eps.create("other", {"main": "cancer:1"}, "main=1")),  # type: ignore[arg-type]
        (InvalidInput, lambda: eps.set_weights("api", [("main", 2.0)])),  # type: ignore[arg-type]
        (InvalidInput, lambda: eps.update("api", {"main": "cancer:1"}, batching={"main": 64})),  # type: ignore[dict-item]
        (InvalidInput, lambda: eps.update("api", "cancer:1", capture=KeepCapture())),  # type: ignore[arg-type]
        # a percent where a mapping per variant goes (modelyard.deploy takes one; this does not)
        (InvalidInput, lambda: eps.update("api", {"main": "cancer:1"}, capture=100)),  # type: ignore[arg-type]
        (InvalidInput, lambda: eps.create("o", {"main": "cancer:1"}, predictors="native")),  # type: ignore[arg-type]
    ]
    for error, attempt in attempts:
        with pytest.raises(error):
            attempt()
    # Said to CLI and Python users alike: no flag named.
    with pytest.raises(InvalidInput, match="at least one variant: name it and the model") as none:
        eps.create("empty", {})
    assert "--" not in none.value.message
    assert state(platform) == before


def test_a_model_that_cannot_load_is_never_deployed(platform: Platform) -> None:
    platform.endpoints.create("api", {"main": "cancer:1"})
    version = platform.registry.get_version("cancer:2")
    manifest = packages.read_manifest(platform.artifacts, version.artifact_digest)
    weights = next(f for f in manifest["files"] if f["path"].startswith("model/"))
    blob = (
        Path(platform.settings.resolved_artifact_url)
        / "sha256"
        / weights["sha256"][:2]
        / weights["sha256"]
    )
    blob.write_bytes(b"garbage")
    before = state(platform)
    with pytest.raises(ArtifactCorrupted, match="variant 'main'"):
        platform.endpoints.update("api", {"main": "cancer:2"})
    assert state(platform) == before


def test_parse_weights() -> None:
    assert parse_weights("blue=0.9, green=0.1") == {"blue": 0.9, "green": 0.1}
    assert parse_weights(["a=1", "b=2,c=3"]) == {"a": 1.0, "b": 2.0, "c": 3.0}
    # Plain ASCII decimals only: float() also reads Arabic-Indic digits, 1_0 and other spaces.
    for bad in (
        "blue",
        "blue=x",
        "=1x",
        "=1",
        "blue=\u0661\u0660%,green=90%",
        "blue=1_0",
        "blue=10\u00a0%,green=90%",
        "blue=\u20031",
    ):
        with pytest.raises(InvalidInput, match="malformed weight"):
            parse_weights(bad)
    with pytest.raises(InvalidInput, match="'blue' is given twice"):
        parse_weights("blue=1,green=1,blue=2")


def test_huge_weights_that_fit_are_split_as_asked(platform: Platform) -> None:
    """Weights near the largest float whose sum still fits give the shares they say."""
    created = platform.endpoints.create(
        "api", {"a": "cancer:1", "b": "cancer:2"}, {"a": 8e307, "b": 2e307}
    )
    from modelyard.cli.render import shares

    assert shares(created.config) == pytest.approx({"a": 80.0, "b": 20.0})


def test_errors_quote_long_values_cut(platform: Platform) -> None:
    with pytest.raises(InvalidName) as caught:
        platform.endpoints.create("y" * 10_000, {"main": "cancer:1"})
    message = str(caught.value)
    assert len(message) < 400 and "characters cut" in message and "y" * 50 in message


def test_a_rollback_judged_on_a_config_no_longer_current_is_a_conflict(
    platform: Platform,
) -> None:
    """A caller that decided on config N (a deployment's completion, say) rolls back only while
    N is current: two such rollbacks at once both rolled back, the second one config further
    than either meant (found in review)."""
    eps = platform.endpoints
    eps.create("api", {"main": "cancer:1"})
    eps.update("api", {"main": "cancer:2"})
    eps.update("api", {"main": "cancer:3"})
    first = eps.rollback("api", expected=3)
    assert [(v.name, v.version) for v in first.config.variants] == [("main", 2)]
    before = state(platform)
    with pytest.raises(Conflict, match="changed meanwhile"):
        eps.rollback("api", expected=3)
    assert state(platform) == before
