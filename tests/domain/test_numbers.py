"""The one number grammar (:mod:`modelyard.domain.numbers`) read as a percentage, the way every
percentage people type is read (weights, capture, canary and step sizes, shadow sampling)."""

from __future__ import annotations

import math

import pytest

from modelyard.domain.numbers import parse_percent_text


@pytest.mark.parametrize(
    ("text", "value"),
    [("10", 10.0), ("12.5%", 12.5), (" 10 % ", 10.0), ("\t.5%", 0.5), ("1e1", 10.0),
     ("-5", -5.0), ("+0", 0.0), ("5.", 5.0), ("1E-1%", 0.1)],
)  # fmt: skip
def test_plain_ascii_decimals_are_read(text: str, value: float) -> None:
    assert parse_percent_text(text) == value


def test_the_range_is_left_to_the_caller() -> None:
    assert math.isnan(parse_percent_text("nan"))
    assert parse_percent_text("inf%") == math.inf
    assert parse_percent_text("1e400") == math.inf  # a canary of 1e400 is "over 100%"


@pytest.mark.parametrize(
    "text",
    [
        "\u0661\u0660",  # Arabic-Indic ten: float() reads it as 10
        "\uff11\uff10",  # fullwidth ten
        "1_0",
        "\u00a010",  # a no-break space before
        "10\u2003%",  # an em space before the sign
        "10\n",
        "0x10",
        "10%%",
        "%",
        "",
        "1.2.3",
    ],
)
def test_what_float_takes_besides_is_refused_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="is not a decimal number") as refused:
        parse_percent_text(text)
    assert repr(text) in str(refused.value)
