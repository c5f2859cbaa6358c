"""Alarm rules on a class share (``class_share.<class>``) over real stores: refused when every
model watched is a regressor or none predicts the class (by its baseline's predictions), taken
when the class is one of them or the classes are unknown; a refusal creates nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelyard.domain import ColumnSpec, Signature, Source, Trust, Variant
from modelyard.errors import InvalidInput
from modelyard.monitoring.profile import Profile
from modelyard.storage.base import NewVersion
from tests.services.monitoring_parts import ENDPOINT, Parts, open_parts

FEATURES = (ColumnSpec("float64", "age"), ColumnSpec("float64", "tenure"))


@pytest.fixture
def parts(db_url: str) -> Iterator[Parts]:
    p = open_parts(db_url)
    yield p
    p.close()


def _version(parts: Parts, name: str, output: str) -> str:
    version = parts.metadata.create_version(
        NewVersion(
            name=name,
            flavor="sklearn",
            model_format="skops",
            artifact_digest="cd" * 32,
            size_bytes=1,
            source=Source("upload"),
            trust=Trust(),
            signature=Signature(FEATURES, (ColumnSpec(output),)),
        )
    )
    return f"{version.name}:{version.version}"


def _baseline(predictions: Any) -> Profile:
    rows = len(predictions)
    frame = pd.DataFrame({"age": np.arange(rows, dtype=float), "tenure": np.ones(rows)})
    return Profile.from_frame(frame, predictions=np.asarray(predictions))


def _endpoint(parts: Parts, name: str, **variants: str) -> None:
    chosen = [(v, *ref.split(":")) for v, ref in variants.items()]
    parts.endpoint_store.create_endpoint(
        name, tuple(Variant(v, model, int(n), 1 / len(chosen)) for v, model, n in chosen)
    )


def _create(parts: Parts, baselines: dict[str, Profile], **fields: Any) -> Any:
    rule: dict[str, Any] = {"comparison": ">", "threshold": 0.5}
    rule.update(fields)
    name = rule.pop("name", "share")
    return parts.alarms(baselines=baselines).create(name, **rule)


def test_a_class_no_model_predicts_is_refused(parts: Parts) -> None:
    labels = _version(parts, "labels", "<U7")
    numbers = _version(parts, "coded", "int64")
    baselines = {
        labels: _baseline(["churned", "stayed", "churned"]),
        numbers: _baseline([0, 2, 2, 0]),
    }
    _endpoint(parts, "mixed", a=labels, b=numbers)
    with pytest.raises(InvalidInput) as refused:
        _create(parts, baselines, endpoint="mixed", metric="class_share.maybe")
    assert str(refused.value) == (
        "metric 'class_share.maybe' never has a value: endpoint 'mixed' never predicts class "
        "'maybe' (the classes its baselines hold: 0, 2, churned, stayed)"
    )
    # Whole numbers are named as the servers count them: ``2``, not ``2.0``.
    with pytest.raises(InvalidInput, match=r"never predicts class '2\.0'"):
        _create(parts, baselines, endpoint="mixed", metric="class_share.2.0")
    # One variant's classes are that variant's model's alone.
    with pytest.raises(InvalidInput, match=r"variant 'a' of 'mixed' never predicts class '2'"):
        _create(parts, baselines, endpoint="mixed", variant="a", metric="class_share.2")
    assert parts.alarm_store.list_rules() == []
    _create(parts, baselines, name="churned", endpoint="mixed", metric="class_share.churned")
    _create(parts, baselines, name="two", endpoint="mixed", variant="b", metric="class_share.2")
    assert [r.rule.name for r in parts.alarm_store.list_rules()] == ["churned", "two"]


def test_a_regressor_has_no_class_shares(parts: Parts) -> None:
    regressor = _version(parts, "price", "float64")
    labels = _version(parts, "labels", "<U7")
    _endpoint(parts, "prices", a=regressor)
    _endpoint(parts, "both", a=regressor, b=labels)
    with pytest.raises(InvalidInput) as refused:
        _create(parts, {}, endpoint="prices", metric="class_share.high")
    assert str(refused.value) == (
        "metric 'class_share.high' never has a value: endpoint 'prices' serves regressor "
        "price:1, which predicts numbers, not classes"
    )
    with pytest.raises(InvalidInput, match="variant 'a' of 'both' serves regressor price:1"):
        _create(parts, {}, endpoint="both", variant="a", metric="class_share.high")
    assert parts.alarm_store.list_rules() == []
    # The classifier beside it may predict the class (without a baseline, its classes are
    # unknown).
    _create(parts, {}, endpoint="both", metric="class_share.high")
    assert [r.rule.name for r in parts.alarm_store.list_rules()] == ["share"]


def test_unknown_classes_are_not_refused(parts: Parts) -> None:
    """The seeded model's signature names no output: its kind and classes are unknown."""
    _create(parts, {}, endpoint=ENDPOINT, metric="class_share.anything")
    assert [r.rule.metric for r in parts.alarm_store.list_rules()] == ["class_share.anything"]
