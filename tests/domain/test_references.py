from __future__ import annotations

import pytest

from modelyard.domain import ModelRef
from modelyard.domain.references import validate_name
from modelyard.errors import InvalidName, InvalidReference


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("churn", ModelRef("churn")),
        ("churn:3", ModelRef("churn", version=3)),
        ("churn@production", ModelRef("churn", alias="production")),
        ("my.model-2_b:12", ModelRef("my.model-2_b", version=12)),
    ],
)
def test_parse(text: str, expected: ModelRef) -> None:
    assert ModelRef.parse(text) == expected
    assert ModelRef.parse(str(expected)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a:b:c",
        "name:0",
        "name:-1",
        "name:",
        "name:x",
        "name@",
        "@prod",
        ":3",
        "a@b@c",
        "a:1@b",
        "",
        "bad name",
        "name:1.5",
        "-lead",
        " churn",
        "churn\n",
        "churn:3\n",
        "churn@prod\n",
        "a" * 129,
        # Past a database integer, digits that are not ASCII, more digits than int() reads.
        "name:9223372036854775808",
        "name:²",
        "name:٣",
        "name:" + "9" * 5000,
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(InvalidReference, match="malformed model reference"):
        ModelRef.parse(text)


def test_the_largest_version_a_database_holds_is_taken() -> None:
    assert ModelRef.parse("name:9223372036854775807").version == 2**63 - 1


@pytest.mark.parametrize("given", [5, None, b"api", ["api"]])
def test_a_name_that_is_not_text_is_refused_by_name(given: object) -> None:
    """From Python an int or None may come where a name goes: it was a TypeError out of the
    regular expression (endpoints.get(5), capture.list(5), alarms.create(endpoint=5))."""
    with pytest.raises(InvalidName, match=r"^invalid endpoint name: it must be text, got "):
        validate_name(given, "endpoint name")  # type: ignore[arg-type]


@pytest.mark.parametrize("given", [5, None, b"churn:1", ["churn:1"]])
def test_a_reference_that_is_not_text_is_refused_as_malformed(given: object) -> None:
    """From Python an int or None may come where a reference goes (registry.get_version(5),
    endpoints.create(NAME, {"main": 5})): it was an AttributeError ('int' object has no
    attribute 'count')."""
    with pytest.raises(InvalidReference, match=r"^malformed model reference: it must be text"):
        ModelRef.parse(given)  # type: ignore[arg-type]
