"""The columns a shadow takes of each production variant's decoded rows, as the route table
works them out (``VariantRoute.shadow_columns``), and as a copy picks them (``_columns``).
The served models are stand-ins: only their signatures are read here."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from modelyard.domain.signature import ColumnSpec, Signature
from modelyard.serving.routing.weighted import WeightedRandom
from modelyard.serving.shadow import _columns
from modelyard.serving.table import EndpointRoute, VariantRoute


def route(name: str, names: list[str], shadow: float | None = None) -> VariantRoute:
    signature = Signature(inputs=tuple(ColumnSpec("float64", n) for n in names))
    spec = SimpleNamespace(signature=signature, ref=f"{name}:1")
    served = SimpleNamespace(spec=spec)
    return VariantRoute(name, served, batcher=None, weight=1.0, shadow=shadow)  # type: ignore[arg-type]


def test_each_production_variant_knows_the_columns_of_each_shadow_that_differs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "modelyard.serving")
    main, other = route("main", ["a", "b", "c"]), route("other", ["c", "b", "a"])
    same, picked, wider = (
        route("same", ["a", "b", "c"], 100.0),
        route("picked", ["c", "a"], 100.0),
        route("wider", ["a", "b", "c", "d"], 100.0),  # stored before the control plane checked
    )
    variants = {r.name: r for r in (main, other, same, picked, wider)}
    EndpointRoute("api", 1, variants, WeightedRandom())
    assert {s.name: c.tolist() for s, c in main.shadow_columns.items()} == {"picked": [2, 0]}
    assert {s.name: c.tolist() for s, c in other.shadow_columns.items()} == {
        "same": [2, 1, 0],
        "picked": [0, 2],
    }
    for shadow in (same, picked, wider):
        assert shadow.shadow_columns == {}  # a shadow's own copies are not copied on
    # The shadow that cannot take the rows gets them as it did before, and a warning says so.
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and all("'wider'" in w and "'d'" in w for w in warned), warned


def test_a_copy_holds_the_columns_its_shadow_takes_in_its_order() -> None:
    rows = np.arange(6.0).reshape(2, 3)
    picked = _columns(rows, np.array([2, 0]))
    assert picked.tolist() == [[2.0, 0.0], [5.0, 3.0]]
    assert picked.flags.c_contiguous  # ready to stack with the shadow's other copies
    assert rows.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]  # the caller's rows untouched
    table = pd.DataFrame({"a": [1.0], "b": ["x"], "c": [3.0]})
    assert list(_columns(table, np.array([2, 1])).columns) == ["c", "b"]
    assert _columns([[1.0, 2.0]], np.array([1])) == [[1.0, 2.0]]  # anything else as it is
