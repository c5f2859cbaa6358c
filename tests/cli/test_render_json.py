"""``--json`` output is JSON a strict parser reads: a float that is not finite is ``null``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from modelyard.cli.render import print_json, to_jsonable


@dataclass
class Point:
    rmse: float
    scores: dict[str, float]


def test_non_finite_floats_become_null_and_the_output_parses_strictly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    value = Point(math.inf, {"a": math.nan, "b": -math.inf, "c": 0.25, "d": np.float64(np.inf)})
    assert to_jsonable(value) == {
        "rmse": None,
        "scores": {"a": None, "b": None, "c": 0.25, "d": None},
    }
    print_json([value, 1.5, True, 3])

    def refuse(constant: str) -> float:
        raise AssertionError(f"not JSON: {constant}")

    parsed = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert parsed == [
        {"rmse": None, "scores": {"a": None, "b": None, "c": 0.25, "d": None}}, 1.5, True, 3,
    ]  # fmt: skip
