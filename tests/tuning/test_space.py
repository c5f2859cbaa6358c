"""Search spaces: the ``--range`` syntax, its errors, grids, and checks against an algorithm."""

from __future__ import annotations

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from modelyard.errors import InvalidInput
from modelyard.training.algorithms import get_algorithm
from modelyard.tuning.space import MAX_GRID, SearchSpace, parse_range


@pytest.mark.parametrize(
    ("text", "distribution"),
    [
        ("max_depth=int:3:10", IntDistribution(3, 10)),
        ("num_round=int:50:500:step=50", IntDistribution(50, 500, step=50)),
        ("eta=float:0.01:0.3:log", FloatDistribution(0.01, 0.3, log=True)),
        ("subsample=float:0.5:1:step=0.1", FloatDistribution(0.5, 1.0, step=0.1)),
        ("objective=cat:binary:logistic", None),
        ("booster=cat:gbtree,dart", CategoricalDistribution(["gbtree", "dart"])),
    ],
)
def test_ranges_parse_and_round_trip(text: str, distribution: object) -> None:
    parsed = parse_range(text)
    assert parse_range(parsed.text()) == parsed
    if distribution is not None:
        assert parsed.distribution() == distribution


def test_a_categorical_value_may_hold_colons() -> None:
    assert parse_range("objective=cat:binary:logistic,binary:hinge").choices == (
        "binary:logistic",
        "binary:hinge",
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("max_depth", "no '=KIND:…' after 'max_depth'"),
        ("=int:1:2", "no hyperparameter name"),
        ("x=nope:1:2", "unknown kind 'nope'"),
        ("x=int:10:3", "LOW must be a number no larger than HIGH"),
        ("x=float:a:b", "LOW and HIGH must be numbers"),
        ("x=float:1", "LOW and HIGH are needed"),
        ("x=float:0:1:cubic", "unknown option 'cubic'"),
        ("x=float:0:1:log", "a log range needs LOW > 0"),
        ("x=float:0.1:1:log:step=0.1", "log and step cannot be combined"),
        ("x=float:0:1:step=0", "step must be positive"),
        ("x=float:0:1:step=z", "step 'z' is not a number"),
        # Only LOW could ever be tried: a range in name only.
        ("x=float:0.01:0.3:step=1", "step 1 is wider than the range from 0.01 to 0.3"),
        ("x=int:1:3:step=5", "step 5 is wider than the range from 1 to 3"),
        ("x=int:1.5:3", "an int range needs whole numbers"),
        ("x=float:0:inf", "LOW must be a number no larger than HIGH"),
        ("x=cat:", "empty choice"),
        ("x=cat:a,,b", "empty choice"),
        ("x=cat:a,a", "a choice is listed twice"),
    ],
)
def test_malformed_ranges_name_the_problem_and_the_syntax(text: str, why: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_range(text)
    assert why in info.value.message
    assert repr(text) in info.value.message and "expected NAME=int:LOW:HIGH" in info.value.message


def test_a_step_as_wide_as_the_range_is_taken_whatever_the_floats_round_to() -> None:
    # 0.3 - 0.1 is 0.19999999999999998 in floats: a step of 0.2 still spans it.
    assert parse_range("x=float:0.1:0.3:step=0.2").grid() == [0.1, 0.3]
    assert parse_range("x=int:1:3:step=2").grid() == [1, 3]


def test_a_space_needs_ranges_and_each_name_once() -> None:
    with pytest.raises(InvalidInput, match="at least one hyperparameter range"):
        SearchSpace.parse([])
    with pytest.raises(InvalidInput, match="eta has more than one range"):
        SearchSpace.parse(["eta=float:0.1:0.2", "eta=float:0.2:0.3"])


def test_grid_points() -> None:
    space = SearchSpace.parse(
        ["max_depth=int:2:6:step=2", "subsample=float:0.5:1:step=0.25", "b=cat:x,y"]
    )
    grid = space.grid()
    assert grid == {"max_depth": [2, 4, 6], "subsample": [0.5, 0.75, 1.0], "b": ["x", "y"]}
    assert SearchSpace.grid_size(grid) == 18


def test_a_grid_needs_steps_for_floats_and_a_sane_size() -> None:
    with pytest.raises(
        InvalidInput, match=r"grid search needs a step .*eta=float:0\.01:0\.3:step=S"
    ):
        SearchSpace.parse(["eta=float:0.01:0.3"]).grid()
    huge = SearchSpace.parse(["a=int:1:1000", "b=int:1:1000"])
    with pytest.raises(InvalidInput, match=f"more than {MAX_GRID:,}"):
        huge.grid()


def test_ranges_are_checked_against_the_algorithm() -> None:
    specs = get_algorithm("xgboost").hyperparameters
    SearchSpace.parse(["max_depth=int:2:8", "eta=float:0.01:0.3:log"]).check_against(specs)
    cases = {
        "depth=int:1:3": "unknown hyperparameter 'depth' in range depth=int:1:3; known: num_round",
        "eta=float:0.1:5": "range eta=float:0.1:5: hyperparameter 'eta' must be a number in [0, 1]",
        "max_depth=float:1:3": "hyperparameter 'max_depth' is an integer",
        "objective=int:1:3": "tune it with objective=cat:A,B",
        "objective=cat:binary:logistic,nonsense": "'objective' must be one of",
        "num_round=int:0:10": "hyperparameter 'num_round' must be an integer in [1, 10000]",
        # An int range's bound shown as it was written, not as a float.
        "num_round=int:1:100000000000": "in [1, 10000], got 100000000000",
    }
    for text, message in cases.items():
        with pytest.raises(InvalidInput) as info:
            SearchSpace.parse([text]).check_against(specs)
        assert message in info.value.message, (text, info.value.message)
        if "=int:" in text:  # whole bounds shown whole
            assert ".0" not in info.value.message.rsplit("got", 1)[-1], info.value.message


def test_a_huge_float_grid_is_refused_before_it_is_built() -> None:
    space = SearchSpace.parse(["x=float:0:1000000:step=0.000001"])
    with pytest.raises(InvalidInput, match="more than"):
        space.grid()


def test_grid_points_by_slot_cover_the_grid_once_in_a_seeded_order() -> None:
    from modelyard.tuning.strategies import grid_point

    space = SearchSpace.parse(["a=int:1:3", "b=cat:x,y", "c=float:0:1:step=0.5"])
    points = [grid_point(space, seed=5, slot=slot) for slot in range(18)]
    keys = {(p["a"], p["b"], p["c"]) for p in points}
    assert len(keys) == 18, "a grid point came up twice"
    assert keys == {(a, b, c) for a in (1, 2, 3) for b in ("x", "y") for c in (0.0, 0.5, 1.0)}
    assert points != [grid_point(space, seed=6, slot=slot) for slot in range(18)]
    assert points == [grid_point(space, seed=5, slot=slot) for slot in range(18)]
