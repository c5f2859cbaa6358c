"""The columns a shadow takes of each production variant's decoded rows, as the route table
works them out (``VariantRoute.shadow_columns``), and as the fan-out sets each copy aside
(``ShadowWrapper._send``). The served models are stand-ins: only their signatures, in-flight
counts and batch sizes are read here."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelyard.domain.signature import ColumnSpec, Signature
from modelyard.serving.routing.weighted import WeightedRandom
from modelyard.serving.shadow import ShadowWrapper
from modelyard.serving.table import EndpointRoute, ShadowColumns, VariantRoute


def route(name: str, names: list[str], shadow: float | None = None) -> VariantRoute:
    signature = Signature(inputs=tuple(ColumnSpec("float64", n) for n in names))
    spec = SimpleNamespace(signature=signature, ref=f"{name}:1", version=1)
    served = SimpleNamespace(spec=spec, inflight=0)
    batcher = SimpleNamespace(options=SimpleNamespace(max_batch_size=1000))
    return VariantRoute(name, served, batcher, weight=1.0, shadow=shadow)  # type: ignore[arg-type]


def picks(variant: VariantRoute) -> dict[str, Any]:
    return {
        s.name: None if c is None else (c.positions.tolist(), c.names, c.width)
        for s, c in variant.shadow_columns.items()
    }


def test_each_production_variant_knows_what_each_shadow_takes_of_its_rows(
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
    assert picks(main) == {"picked": ([2, 0], ("c", "a"), 3), "wider": None}
    assert picks(other) == {
        "same": ([2, 1, 0], ("a", "b", "c"), 3),
        "picked": ([0, 2], ("c", "a"), 3),
        "wider": None,
    }
    for shadow in (same, picked, wider):
        assert shadow.shadow_columns == {}  # a shadow's own copies are not copied on
    # The shadow that cannot take the rows is dropped from them, and a warning says why.
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2, warned
    assert all("'wider'" in w and "'d'" in w and "dropped" in w for w in warned), warned


def test_each_copy_holds_what_its_shadow_takes_and_a_shadow_that_cannot_is_counted() -> None:
    main = route("main", ["a", "b", "c"])
    plain, picked, unable = (
        route("plain", ["a", "b", "c"], 100.0),
        route("picked", ["c", "a"], 100.0),
        route("unable", ["a", "z"], 100.0),
    )
    main.shadow_columns = {
        picked: ShadowColumns(np.array([2, 0], dtype=np.intp), ("c", "a"), 3),
        unable: None,
    }
    shadows = (plain, picked, unable)
    rows = np.arange(6.0).reshape(2, 3)
    narrow = np.arange(4.0).reshape(2, 2)  # what an input_fn might give: not main's width
    table = pd.DataFrame({"a": [1.0], "b": ["x"], "c": [3.0]})
    untitled = pd.DataFrame({"p": [1.0], "q": ["x"], "r": [3.0]})

    async def scenario() -> tuple[ShadowWrapper, dict[str, list[Any]]]:
        wrapper = ShadowWrapper(linger_s=60.0)  # no batch goes: the copies stay to be read
        for given in (rows, narrow, table, untitled):
            call = SimpleNamespace(
                meta=SimpleNamespace(endpoint="api", inference_id="i"),
                rows=given,
                selection=SimpleNamespace(variant=main),
            )
            wrapper._send(call, shadows)  # type: ignore[arg-type]
        held = {s.name: [r for _, r in lane.copies] for s, lane in wrapper._lanes.items()}
        for lane in wrapper._lanes.values():
            assert lane.task is not None
            lane.task.cancel()
        return wrapper, held

    wrapper, held = asyncio.run(scenario())
    assert set(held) == {"plain", "picked"}
    assert all(a is b for a, b in zip(held["plain"], (rows, narrow, table, untitled), strict=True))
    first, second, third, fourth = held["picked"]
    assert first.tolist() == [[2.0, 0.0], [5.0, 3.0]] and first.flags.c_contiguous
    assert rows.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]  # the caller's rows untouched
    assert second is narrow  # other rows than the pick was made for go as they are
    assert list(third.columns) == ["c", "a"] and third.iloc[0].tolist() == [3.0, 1.0]
    assert fourth is untitled  # a table without the shadow's names too
    assert (plain.served.inflight, picked.served.inflight, unable.served.inflight) == (4, 4, 0)
    counted = wrapper.counters()
    assert counted.dropped == {("api", "unable", 1): 4} and counted.queued == 8
