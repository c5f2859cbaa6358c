"""A listing's ``limit`` given to the Python API (:func:`modelyard.domain.counts.limit_of`): an
int from 1 to ``MAX_LIMIT``, numpy's too; anything else refused naming the argument and the
value, never read as something else (SQL reads ``LIMIT -1`` as no limit at all)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modelyard.domain.counts import MAX_LIMIT, limit_of
from modelyard.errors import InvalidInput


@pytest.mark.parametrize(("given", "limit"), [(1, 1), (MAX_LIMIT, MAX_LIMIT), (np.int64(7), 7)])
def test_an_int_in_range_is_the_limit(given: Any, limit: int) -> None:
    taken = limit_of(given)
    assert taken == limit and type(taken) is int


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (0, "limit must be from 1 to 10,000, got 0"),
        (-1, "limit must be from 1 to 10,000, got -1"),
        (MAX_LIMIT + 1, "limit must be from 1 to 10,000, got 10001"),
        (10**30, "limit must be from 1 to 10,000, got 1000000000000000000000000000000"),
        (10**400, "limit must be from 1 to 10,000, got an int too large for a float"),
        (True, "limit must be a whole number from 1 to 10,000, got bool True"),
        (2.5, "limit must be a whole number from 1 to 10,000, got float 2.5"),
        (10.0, "limit must be a whole number from 1 to 10,000, got float 10.0"),
        ("10", "limit must be a whole number from 1 to 10,000, got str '10'"),
        (None, "limit must be a whole number from 1 to 10,000, got NoneType None"),
    ],
)
def test_anything_else_is_refused_naming_the_argument_and_the_value(given: Any, said: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        limit_of(given)
    assert str(refused.value) == said


def test_the_refusal_names_the_argument_given() -> None:
    with pytest.raises(InvalidInput, match=r"^runs must be from 1 to 10,000, got 0$"):
        limit_of(0, "runs")
