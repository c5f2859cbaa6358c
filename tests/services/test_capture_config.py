"""Capture settings are part of an endpoint's config: set by create/update, kept by a weights
change and a rollback, carried to the data plane's plan with the endpoint's hashing salt;
a redacted field the model does not take is refused and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import CaptureConfig, RedactedField, Redaction
from modelyard.domain.capture import KeepCapture
from modelyard.errors import EndpointNotFound, InvalidInput
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.plan_source import SqlPlanSource


@pytest.fixture
def platform(tmp_path: Path, db_url: str) -> Iterator[Platform]:
    from sklearn.linear_model import LogisticRegression

    made = build(load_settings({}, home=tmp_path / "home", db_url=db_url))
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)), columns=["a", "b", "ssn"])
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    made.registry.register("churn", model, flavor="sklearn", input_example=frame[:3])
    # Fitted on an array: a model that names no inputs (one fitted on the frame names them,
    # whatever its input example).
    bare = LogisticRegression().fit(frame.to_numpy(), (frame["a"] > 0).astype(int))
    made.registry.register("bare", bare, flavor="sklearn", input_example=frame.to_numpy()[:3])
    yield made
    made.close()


def _register(platform: Platform, name: str, rows: np.ndarray | pd.DataFrame) -> None:
    """Register a classifier of ``rows`` (named inputs when a frame) as model ``name``."""
    from sklearn.linear_model import LogisticRegression

    first = np.asarray(rows)[:, 0]
    model = LogisticRegression().fit(rows, (first > 0).astype(int))
    platform.registry.register(name, model, flavor="sklearn", input_example=rows[:3])


def plan_of(platform: Platform) -> dict[str, object]:
    engine = make_engine(platform.settings.resolved_db_url)
    try:
        return dict(SqlPlanSource(engine).load_plan().endpoints)
    finally:
        engine.dispose()


def test_capture_is_a_config_change_carried_to_the_plan(platform: Platform) -> None:
    eps = platform.endpoints
    ten = CaptureConfig.parse("10%", ["ssn", "b:drop"])
    eps.create("api", {"blue": "churn:1", "green": "churn:1"}, capture={"blue": ten})
    eps.create("other", {"main": "churn:1"})
    first = plan_of(platform)
    api = first["api"]
    assert [(v.name, v.capture) for v in api.variants] == [  # type: ignore[attr-defined]
        ("blue", CaptureConfig(10.0, (RedactedField("ssn"), RedactedField("b", Redaction.DROP)))),
        ("green", CaptureConfig()),
    ]
    salt = api.capture_salt  # type: ignore[attr-defined]
    assert len(salt) == 32 and salt != first["other"].capture_salt  # type: ignore[attr-defined]

    eps.set_weights("api", {"green": 3})  # capture kept
    assert eps.get("api").config.variants[0].capture == ten
    eps.update("api", {"blue": "churn:1"})  # not given: off
    assert eps.get("api").config.variants[0].capture == CaptureConfig()
    eps.rollback("api")  # back to the weights config, capture and all
    back = eps.get("api").config
    assert (back.number, back.variants[0].capture) == (4, ten)
    assert plan_of(platform)["api"].capture_salt == salt  # type: ignore[attr-defined]


def test_a_redacted_field_the_model_does_not_take_is_refused(platform: Platform) -> None:
    eps = platform.endpoints
    typo = CaptureConfig.parse(50, ["snn"])
    with pytest.raises(InvalidInput, match=r"has no input 'snn' to redact; its inputs: a, b, ssn"):
        eps.create("api", {"main": "churn:1"}, capture={"main": typo})
    with pytest.raises(EndpointNotFound):
        eps.get("api")
    # Without feature names the fields are the column numbers.
    with pytest.raises(InvalidInput, match=r"its inputs: 0, 1, 2"):
        eps.create("api", {"main": "bare:1"}, capture={"main": CaptureConfig.parse(5, ["ssn"])})
    eps.create("api", {"main": "bare:1"}, capture={"main": CaptureConfig.parse(5, ["2:drop"])})
    before = eps.history("api")
    with pytest.raises(InvalidInput, match=r"capture settings name unknown variant nope"):
        eps.update("api", {"main": "churn:1"}, capture={"nope": CaptureConfig.parse(5)})
    with pytest.raises(InvalidInput, match=r"must be a CaptureConfig"):
        eps.update("api", {"main": "churn:1"}, capture={"main": 5})  # type: ignore[dict-item]
    assert eps.history("api") == before


def test_the_python_api_deploys_with_capture(platform: Platform) -> None:
    import modelyard

    with pytest.raises(InvalidInput, match=r"0\.\.100"):
        modelyard.deploy("churn:1", "api", capture=101, wait=False, platform=platform)
    with pytest.raises(EndpointNotFound):
        platform.endpoints.get("api")
    predictor = modelyard.deploy(
        "churn:1", "api", capture=2.5, capture_redact=["ssn:drop"], wait=False, platform=platform
    )
    predictor.close()
    (variant,) = platform.endpoints.get("api").config.variants
    assert variant.capture == CaptureConfig(2.5, (RedactedField("ssn", Redaction.DROP),))


def test_a_redaction_is_never_dropped_for_a_variant_whose_model_names_no_inputs(
    platform: Platform,
) -> None:
    """``bare`` takes the same three columns as ``churn`` but names none: carrying the
    endpoint's redaction of ``ssn`` to it (turning capture on, keeping capture through an
    update) used to drop the redaction, and its column 2 (the same ssn) was captured in
    clear. Such a change is refused, naming the field, and nothing changes."""
    eps = platform.endpoints
    redacted = CaptureConfig.parse(100, ["ssn"])
    eps.create("api", {"blue": "churn:1", "green": "bare:1"}, capture={"blue": redacted})
    before = eps.history("api")
    with pytest.raises(InvalidInput, match=r"'green' \(bare:1\).*'ssn'.*in clear"):
        eps.set_capture("api", 100)
    with pytest.raises(InvalidInput, match=r"'blue' \(bare:1\).*'ssn'.*in clear"):
        eps.update("api", {"blue": "bare:1"}, capture=KeepCapture())
    assert eps.history("api") == before
    eps.set_capture("api", 0)  # turning capture off needs no redaction carried
    assert {v.capture.percent for v in eps.get("api").config.variants} == {0.0}
    # the other way round: a column number redacted where names are unknown
    eps.create(
        "plain",
        {"blue": "bare:1", "green": "churn:1"},
        capture={"blue": CaptureConfig.parse(100, ["2"])},
    )
    with pytest.raises(InvalidInput, match=r"'green' \(churn:1\).*'2'.*in clear"):
        eps.set_capture("plain", 100)
    # redactions that fit every model are carried as before
    eps.create(
        "same",
        {"blue": "bare:1", "green": "bare:1"},
        capture={"blue": CaptureConfig.parse(100, ["2"])},
    )
    eps.set_capture("same", 50)
    assert {str(v.capture) for v in eps.get("same").config.variants} == {
        str(CaptureConfig(50.0, (RedactedField("2"),)))
    }


def test_a_redacted_column_a_model_does_not_have_is_no_reason_to_refuse(
    platform: Platform,
) -> None:
    """Column 4 of a five-column model redacted beside a model of three columns: the second
    has no column 4 to capture, in clear or not, so turning capture on is not refused (it
    was: "captured in clear under another name", with no other name and no way around it);
    nor is a named model's redaction beside an unnamed model's column past its width."""
    _register(platform, "wide", np.random.default_rng(1).normal(size=(50, 5)))
    eps = platform.endpoints
    eps.create(
        "api",
        {"blue": "wide:1", "green": "bare:1"},
        capture={"blue": CaptureConfig.parse(100, ["4"])},
    )
    eps.set_capture("api", 50)
    shown = {v.name: str(v.capture) for v in eps.get("api").config.variants}
    assert shown == {
        "blue": str(CaptureConfig(50.0, (RedactedField("4"),))),
        "green": str(CaptureConfig(50.0)),
    }
    eps.create(
        "named",
        {"blue": "wide:1", "green": "churn:1"},
        capture={"blue": CaptureConfig.parse(100, ["4"])},
    )
    eps.set_capture("named", 50)  # churn names a, b, ssn: it has no fifth column
    # ...but a column it has, under a name, is still refused.
    eps.create(
        "both",
        {"blue": "wide:1", "green": "churn:1"},
        capture={"blue": CaptureConfig.parse(100, ["2"])},
    )
    with pytest.raises(InvalidInput, match=r"'green' \(churn:1\).*'2'.*in clear"):
        eps.set_capture("both", 50)


def test_a_redaction_is_carried_to_a_model_spelling_the_field_otherwise(
    platform: Platform,
) -> None:
    """A new version names the redacted ``ssn`` ``SSN``: the redaction used to be dropped as
    a field the model does not have, and the column captured in clear. It is carried under
    the model's spelling, with its mode."""
    rows = np.random.default_rng(2).normal(size=(50, 3))
    _register(platform, "upper", pd.DataFrame(rows, columns=["a", "b", "SSN"]))
    eps = platform.endpoints
    eps.create(
        "api",
        {"blue": "churn:1", "green": "upper:1"},
        capture={"blue": CaptureConfig.parse(100, ["ssn:drop"])},
    )
    eps.set_capture("api", 50)
    shown = {v.name: v.capture for v in eps.get("api").config.variants}
    assert shown["green"] == CaptureConfig(50.0, (RedactedField("SSN", Redaction.DROP),))
    eps.update("api", {"blue": "upper:1"}, capture=KeepCapture())
    (blue,) = [v for v in eps.get("api").config.variants if v.name == "blue"]
    assert blue.capture.redact == (RedactedField("SSN", Redaction.DROP),)
    # Two redactions meeting on one field (ssn hashed by one variant, SSN dropped by another):
    # the one that keeps less wins, whatever the variants' order.
    for order in (("blue", "green"), ("green", "blue")):
        name = f"both-{order[0]}"
        given = {
            "blue": ("churn:1", CaptureConfig.parse(100, ["ssn:hash"])),
            "green": ("upper:1", CaptureConfig.parse(100, ["SSN:drop"])),
        }
        eps.create(
            name,
            {v: given[v][0] for v in order},
            capture={v: given[v][1] for v in order},
        )
        variants = {v: given[v][0] for v in order} | {"red": "upper:1"}
        eps.update(name, variants, capture=KeepCapture())
        (red,) = [v for v in eps.get(name).config.variants if v.name == "red"]
        assert red.capture.redact == (RedactedField("SSN", Redaction.DROP),), order
