"""How a shadow's copies are gathered into batches: copies set aside together are predicted in
one model call per ``max_batch_size`` rows, each copy then goes through the layers below with
its own share of the batch's answer; a lone copy waits for its linger (on a clock the test
moves, so no machine is too slow or too fast for it), and a stop predicts what still waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelyard.bootstrap import Platform, build
from modelyard.config import load_settings
from modelyard.domain import Batching
from modelyard.serving.shadow import ShadowWrapper
from modelyard.serving.stack import Call, RequestMeta
from modelyard.serving.table import EndpointRoute
from tests.serving.test_batching import FrozenClockLoop, _answered, _steps
from tests.serving.test_shadow import FEATURES, _deployer

LINGER_S = 5.0


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """``churn:1`` (a logistic regression) behind ``gathered``: ``main`` answers, ``copy``
    shadows all of it in batches of at most 4 rows."""
    from sklearn.linear_model import LogisticRegression

    made = build(load_settings({}, home=tmp_path_factory.mktemp("batches") / "home"))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=FEATURES)
    model = LogisticRegression().fit(frame, (frame["a"] + frame["b"] > 0).astype(int))
    made.registry.register("churn", model, flavor="sklearn", input_example=frame[:3])
    made.endpoints.create(
        "gathered",
        {"main": "churn:1", "copy": "churn:1"},
        shadows={"copy": 100},
        batching={"copy": Batching(max_batch_size=4)},
    )
    yield made
    made.close()


class Below:
    """The layers below the fan-out, as seen by a test: the production calls answer at once
    (without yielding to the loop), and every copy is kept with what it was answered."""

    def __init__(self) -> None:
        self.copies: list[Call] = []

    async def __call__(self, call: Call) -> Any:
        if call.predicted is None:
            return np.zeros(len(call.rows))
        self.copies.append(call)
        return call.predicted.result()


def _route(platform: Platform) -> Iterator[EndpointRoute]:
    with _deployer(platform) as deployer:
        asyncio.run(deployer.sync())
        yield deployer.table.endpoints["gathered"]


def test_copies_set_aside_together_go_in_batches_of_the_shadows_rows(platform: Platform) -> None:
    rows = [np.array([[float(i), 1.0, -1.0]]) for i in range(10)]

    async def scenario(route: EndpointRoute) -> tuple[ShadowWrapper, Below]:
        shadows, below = ShadowWrapper(linger_s=LINGER_S), Below()
        handler = shadows.wrap(below)
        selection = route.select(None)
        for i, x in enumerate(rows):  # none of them yields: all 10 wait before a batch goes
            await handler(Call(RequestMeta("gathered", f"id-{i}"), selection, x))
        assert shadows.counters().queued == 10
        # 4 rows make a batch, so the copies go at once, without the linger (the clock
        # stands still): all 10 in one hand-off, to the model in batches of at most 4 rows.
        waited = asyncio.ensure_future(_until(lambda: len(below.copies) == 10))
        await _answered(waited, "the 10 copies, in full batches")
        await shadows.stop()
        return shadows, below

    for route in _route(platform):
        with asyncio.Runner(loop_factory=FrozenClockLoop) as runner:
            shadows, below = runner.run(scenario(route))
        copy = route.variants["copy"]
        assert copy.batcher.batches.take()[1].tolist() == [4, 4, 2]
        assert copy.served.inflight == 0
    model = platform.registry.load("churn:1")
    for i, call in enumerate(below.copies):
        assert call.meta.inference_id == f"id-{i}" and call.selection.variant.name == "copy"
        assert call.predicted is not None and call.predicted.seconds >= 0.0
        expected = model.predict(pd.DataFrame(rows[i], columns=FEATURES))
        assert np.asarray(call.predicted.result()).tolist() == np.asarray(expected).tolist()
    assert shadows.counters().dropped == {}


def test_a_lone_copy_waits_for_its_linger_and_a_stop_sends_what_waits(platform: Platform) -> None:
    async def scenario(route: EndpointRoute) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, FrozenClockLoop)
        shadows, below = ShadowWrapper(linger_s=LINGER_S), Below()
        handler = shadows.wrap(below)
        x = np.array([[0.5, 0.5, 0.5]])
        await handler(Call(RequestMeta("gathered", "lone"), route.select(None), x))
        await _steps()
        seen: dict[str, Any] = {"before linger": (shadows.counters().queued, len(below.copies))}
        loop.now += LINGER_S  # the linger is over: the copy goes on its own
        await _answered(_until(lambda: len(below.copies) == 1), "a copy past its linger")
        await handler(Call(RequestMeta("gathered", "late"), route.select(None), x))
        await _steps()
        seen["second"] = shadows.counters().queued
        await _answered(shadows.stop(), "a stop with a copy waiting")  # no linger at a stop
        seen["after stop"] = [c.meta.inference_id for c in below.copies]
        return seen

    for route in _route(platform):
        with asyncio.Runner(loop_factory=FrozenClockLoop) as runner:
            seen = runner.run(scenario(route))
        assert route.variants["copy"].batcher.batches.take()[1].tolist() == [1, 1]
    assert seen["before linger"] == (1, 0), "a lone copy went before its linger"
    assert seen["second"] == 1, "the next lone copy did not wait for its own linger"
    assert seen["after stop"] == ["lone", "late"]


async def _until(done: Any) -> None:
    """Yield to the loop until ``done()`` (the caller bounds it in real time)."""
    while not done():
        await asyncio.sleep(0)


def test_a_batch_that_cannot_reach_its_thread_fails_its_copies_and_the_next_batch_goes(
    platform: Platform,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from modelyard.serving.batching import MicroBatcher, ModelFailure

    async def scenario(route: EndpointRoute) -> list[Call]:
        copy = route.variants["copy"]
        working = copy.batcher
        gone = ThreadPoolExecutor(1)
        gone.shutdown()  # a pool that takes no more work, as at a shutdown
        copy.batcher = MicroBatcher(working._predict, working.options, gone, inline=False)
        shadows, below = ShadowWrapper(linger_s=0.0), Below()
        handler = shadows.wrap(below)
        x = np.array([[0.5, 0.5, 0.5]])
        for name in ("lost-1", "lost-2"):
            await handler(Call(RequestMeta("gathered", name), route.select(None), x))
        await _until(lambda: len(below.copies) == 2)
        copy.batcher = working
        await handler(Call(RequestMeta("gathered", "after"), route.select(None), x))
        await _until(lambda: len(below.copies) == 3)
        await shadows.stop()
        assert copy.served.inflight == 0 and shadows.counters().dropped == {}
        return below.copies

    for route in _route(platform):
        copies = asyncio.run(asyncio.wait_for(scenario(route), 60))
    for lost in copies[:2]:
        assert lost.predicted is not None and isinstance(lost.predicted.error, ModelFailure)
        assert isinstance(lost.predicted.error.cause, RuntimeError)
    last = copies[2].predicted
    assert copies[2].meta.inference_id == "after" and last is not None and last.error is None


def test_with_nothing_below_to_record_a_batch_is_predicted_and_its_failures_logged(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    # Metrics and capture off: the fan-out wraps the batcher itself and has no observer, so a
    # batch of copies is predicted with one hand-off and no copy goes through a layer. The
    # shadow still predicts every copy, a failing one is logged (not raised to anyone), and
    # the copies' hold on the shadow's model ends with their batch.
    from modelyard.serving.batching import ModelFailure
    from modelyard.serving.stack import batched

    async def scenario(route: EndpointRoute) -> tuple[list[int], int]:
        copy = route.variants["copy"]
        copy.batcher.batches.take()  # forget the calls of earlier tests
        shadows = ShadowWrapper(linger_s=0.0)
        handler = shadows.wrap(batched)
        good = np.array([[0.5, 0.5, 0.5], [1.0, -1.0, 0.0]])
        answer = await handler(Call(RequestMeta("gathered", "good"), route.select(None), good))
        assert answer.shape == (2,)
        with pytest.raises(ModelFailure):  # the production variant refuses 2 columns too
            bad = np.ones((1, 2))
            await handler(Call(RequestMeta("gathered", "bad-width"), route.select(None), bad))
        await _until(lambda: copy.served.inflight == 0 and shadows.counters().queued == 0)
        await shadows.stop()
        requests, _ = copy.batcher.batches.take()
        return requests.tolist(), len(shadows.counters().dropped)

    with caplog.at_level("WARNING", logger="modelyard.serving.shadow"):
        for route in _route(platform):
            calls, dropped = asyncio.run(asyncio.wait_for(scenario(route), 60))
    assert sum(calls) >= 2 and dropped == 0  # both copies reached the shadow's model
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "bad-width" in warned[0] and "copy" in warned[0], warned


def test_copies_that_gather_while_a_batch_runs_wait_for_their_linger(platform: Platform) -> None:
    # A full batch goes at once and is held in the model; a copy that arrives meanwhile does
    # not follow it as a batch of one when it ends, but waits for its linger (the clock stands
    # still until the test moves it), so low load still makes batches, not a hand-off a copy.
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from modelyard.serving.batching import MicroBatcher
    from tests.waiting import DEADLINE_S

    gate = threading.Event()

    async def scenario(route: EndpointRoute, pool: ThreadPoolExecutor) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, FrozenClockLoop)
        copy = route.variants["copy"]
        working = copy.batcher

        def held(rows: np.ndarray) -> np.ndarray:
            gate.wait(DEADLINE_S)
            return working._predict(rows)

        copy.batcher = MicroBatcher(held, working.options, pool, inline=False)
        try:
            shadows, below = ShadowWrapper(linger_s=LINGER_S), Below()
            handler = shadows.wrap(below)
            x = np.array([[0.5, 0.5, 0.5]])
            for i in range(4):
                await handler(Call(RequestMeta("gathered", f"full-{i}"), route.select(None), x))
            await _answered(_until(lambda: shadows.counters().queued == 0), "a full batch")
            await handler(Call(RequestMeta("gathered", "late"), route.select(None), x))
            gate.set()
            await _answered(_until(lambda: len(below.copies) == 4), "the full batch's copies")
            await _steps()
            seen: dict[str, Any] = {"after the batch": (len(below.copies), shadows.counters())}
            loop.now += LINGER_S
            await _answered(_until(lambda: len(below.copies) == 5), "a copy past its linger")
            await shadows.stop()
            seen["batches"] = copy.batcher.batches.take()[1].tolist()
            seen["inflight"] = copy.served.inflight
            return seen
        finally:
            copy.batcher = working

    for route in _route(platform):
        with ThreadPoolExecutor(1) as pool, asyncio.Runner(loop_factory=FrozenClockLoop) as r:
            seen = r.run(scenario(route, pool))
    copies, counters = seen["after the batch"]
    assert copies == 4 and counters.queued == 1, "the late copy did not wait for its linger"
    assert seen["batches"] == [4, 1] and seen["inflight"] == 0


def test_copies_skip_the_layers_below_only_while_they_record_none_of_the_shadows_calls(
    platform: Platform,
) -> None:
    # The server's stack always has the monitoring layer below the fan-out. With metrics off
    # and a shadow that captures nothing, that layer records none of the shadow's calls (its
    # ``records`` says so), so the copies are predicted and go no further; once the shadow
    # captures, each copy goes through the layer and is captured.
    from modelyard.domain.capture import CaptureConfig
    from modelyard.serving.monitoring import MonitoringWrapper
    from tests.serving.test_capture_table import Keeper

    kept = Keeper()
    layer = MonitoringWrapper(capture=kept)

    async def scenario(route: EndpointRoute) -> dict[str, Any]:
        copy = route.variants["copy"]
        original = copy.capture
        copy.batcher.batches.take()  # forget the calls of earlier tests
        shadows, below = ShadowWrapper(linger_s=0.0, records=layer.records), Below()
        handler = shadows.wrap(layer.wrap(below))
        x = np.array([[0.5, 0.5, 0.5]])
        seen: dict[str, Any] = {}
        try:
            for name in ("quiet-1", "quiet-2"):
                await handler(Call(RequestMeta("gathered", name), route.select(None), x))
            await _until(lambda: copy.served.inflight == 0)
            seen["unrecorded"] = (len(below.copies), len(kept.records))
            seen["predicted"] = int(copy.batcher.batches.take()[0].sum())
            copy.capture = CaptureConfig(percent=100.0)
            await handler(Call(RequestMeta("gathered", "captured"), route.select(None), x))
            await _until(lambda: copy.served.inflight == 0)
        finally:
            copy.capture = original
        await shadows.stop()
        seen["recorded"] = [c.meta.inference_id for c in below.copies]
        seen["captured"] = [(r.meta.inference_id, r.variant.name) for r in kept.records]
        return seen

    for route in _route(platform):
        seen = asyncio.run(asyncio.wait_for(scenario(route), 60))
    assert seen["unrecorded"] == (0, 0) and seen["predicted"] == 2
    assert seen["recorded"] == ["captured"]
    assert seen["captured"] == [("captured", "copy")]


def test_a_copy_of_a_full_batch_of_rows_goes_without_its_linger(platform: Platform) -> None:
    """``max_batch_size`` counts rows: one copy of 4 rows fills the shadow's batch and goes at
    once; 3 copies of one row wait for their linger (the clock stands still), and a copy of 2
    rows more brings them to 5 rows, past the batch: they go, as batches of at most 4 rows."""

    async def scenario(route: EndpointRoute) -> list[Any]:
        shadows, below = ShadowWrapper(linger_s=LINGER_S), Below()
        handler = shadows.wrap(below)
        selection, seen = route.select(None), []
        big = np.arange(12.0).reshape(4, 3)
        await handler(Call(RequestMeta("gathered", "big"), selection, big))
        await _answered(_until(lambda: len(below.copies) == 1), "a copy of a full batch")
        for i in range(3):
            await handler(Call(RequestMeta("gathered", f"one-{i}"), selection, big[:1]))
        await _steps()
        seen.append((shadows.counters().queued, len(below.copies)))
        await handler(Call(RequestMeta("gathered", "two"), selection, big[:2]))
        await _answered(_until(lambda: len(below.copies) == 5), "5 rows of copies")
        await shadows.stop()
        seen.append([c.meta.inference_id for c in below.copies])
        return seen

    for route in _route(platform):
        with asyncio.Runner(loop_factory=FrozenClockLoop) as runner:
            seen = runner.run(scenario(route))
        assert route.variants["copy"].batcher.batches.take()[1].tolist() == [4, 3, 2]
    assert seen == [(3, 1), ["big", "one-0", "one-1", "one-2", "two"]]
