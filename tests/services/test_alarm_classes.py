"""Alarm rules on a class share (``class_share.<class>``) over real stores: refused when every
model watched answers numbers (a regressor, or probabilities), taken for any class otherwise
(a baseline may lack a rare class); a refusal creates nothing."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.domain import ColumnSpec, Signature, Source, Trust, Variant
from modelyard.errors import InvalidInput
from modelyard.storage.base import NewVersion
from tests.services.fixtures import parts_fixture
from tests.services.monitoring_parts import ENDPOINT, Parts, open_parts

FEATURES = (ColumnSpec("float64", "age"), ColumnSpec("float64", "tenure"))


parts = parts_fixture(open_parts)


def _version(parts: Parts, name: str, output: str, **fields: Any) -> str:
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
            **fields,
        )
    )
    return f"{version.name}:{version.version}"


def _endpoint(parts: Parts, name: str, **variants: str) -> None:
    chosen = [(v, *ref.split(":")) for v, ref in variants.items()]
    parts.endpoint_store.create_endpoint(
        name, tuple(Variant(v, model, int(n), 1 / len(chosen)) for v, model, n in chosen)
    )


def _create(parts: Parts, **fields: Any) -> Any:
    rule: dict[str, Any] = {"comparison": ">", "threshold": 0.5}
    rule.update(fields)
    name = rule.pop("name", "share")
    return parts.alarms().create(name, **rule)


def test_any_class_of_a_model_answering_labels_is_taken(parts: Parts) -> None:
    """The classes a model answers are not known before it answers (a baseline is a sample,
    and may lack the rare class one most wants an alarm on): any is taken."""
    labels = _version(parts, "labels", "<U7")
    numbers = _version(parts, "coded", "int64")
    _endpoint(parts, "mixed", a=labels, b=numbers)
    _create(parts, name="churned", endpoint="mixed", metric="class_share.churned")
    _create(parts, name="one", endpoint="mixed", variant="b", metric="class_share.1")
    assert [r.rule.name for r in parts.alarm_store.list_rules()] == ["churned", "one"]


def test_a_regressor_has_no_class_shares(parts: Parts) -> None:
    regressor = _version(parts, "price", "float64")
    labels = _version(parts, "labels", "<U7")
    _endpoint(parts, "prices", a=regressor)
    _endpoint(parts, "both", a=regressor, b=labels)
    with pytest.raises(InvalidInput) as refused:
        _create(parts, endpoint="prices", metric="class_share.high")
    assert str(refused.value) == (
        "metric 'class_share.high' never has a value: endpoint 'prices' serves price:1, "
        "whose output is numbers (values or probabilities), not class labels"
    )
    with pytest.raises(InvalidInput, match="variant 'a' of 'both' serves price:1, whose output"):
        _create(parts, endpoint="both", variant="a", metric="class_share.high")
    assert parts.alarm_store.list_rules() == []
    # The classifier beside it may predict the class (without a baseline, its classes are
    # unknown).
    _create(parts, endpoint="both", metric="class_share.high")
    assert [r.rule.name for r in parts.alarm_store.list_rules()] == ["share"]


def test_a_classifier_answering_probabilities_has_no_class_shares(parts: Parts) -> None:
    """A classifier's float output is its probabilities, which the servers count no classes
    of: a class-share rule on it could never leave INSUFFICIENT_DATA (one was once taken,
    when only a regressor's numbers were refused)."""
    by_metrics = _version(parts, "binary", "float32", metrics={"auc": 0.99})
    by_objective = _version(parts, "booster", "float32", params={"objective": "binary:logistic"})
    labels = _version(parts, "labels", "int64", metrics={"accuracy": 0.9})
    _endpoint(parts, "probabilities", a=by_metrics, b=by_objective, c=labels)
    for variant, ref in (("a", by_metrics), ("b", by_objective)):
        with pytest.raises(InvalidInput, match=f"serves {ref}, whose output is numbers"):
            _create(parts, endpoint="probabilities", variant=variant, metric="class_share.1")
    assert parts.alarm_store.list_rules() == []
    _create(parts, endpoint="probabilities", variant="c", metric="class_share.1")
    _create(parts, name="any", endpoint="probabilities", metric="class_share.1")
    assert [r.rule.name for r in parts.alarm_store.list_rules()] == ["any", "share"]


def test_unknown_classes_are_not_refused(parts: Parts) -> None:
    """The seeded model's signature names no output: its kind and classes are unknown."""
    _create(parts, endpoint=ENDPOINT, metric="class_share.anything")
    assert [r.rule.metric for r in parts.alarm_store.list_rules()] == ["class_share.anything"]
