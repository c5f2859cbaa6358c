"""ModelLoads on its own: a failed load waits ``retry_s`` before it is started again, and a
model that loaded beside one that failed is kept for the retry, then unloaded when the plan
drops it. (The deployer around it: tests/serving/test_deployer_loads.py.)"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from modelyard.domain import ModelSpec, Trust
from modelyard.serving.model_loads import ModelLoads
from tests.waiting import DEADLINE_S, wait_for


class Model:
    """What a load gives: a model that knows whether it was unloaded."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.closed = False

    def close(self) -> None:
        self.closed = True


def spec(name: str) -> ModelSpec:
    return ModelSpec(name, 1, "sklearn", "skops", f"sha256:{name}", Trust())


class Loads:
    """Loads ``good`` at once; ``bad`` fails once ``release`` is set (a slow failure)."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.made: list[Model] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, wanted: ModelSpec) -> Any:
        self.calls.append(wanted.name)
        if wanted.name == "bad":
            self.release.wait(DEADLINE_S)
            raise OSError("no such file")
        model = Model(wanted)
        self.made.append(model)
        return model


def test_a_failed_load_is_not_started_again_before_retry_s_whatever_it_took() -> None:
    # A load failing after longer than the deployer's retry interval was started again at
    # once, back to back, each time on a new thread.
    loads = Loads()
    clock = [0.0]
    models = ModelLoads(loads, wait_s=DEADLINE_S, retry_s=5.0, clock=lambda: clock[0])
    wanted = {spec("bad").key: spec("bad")}

    async def scenario() -> None:
        _, failed = await models.gather(wanted)
        assert "bad:1 failed to load: no such file" in failed[spec("bad").key]
        clock[0] += 4.9  # not yet: the same failure, nothing started
        _, again = await models.gather(wanted)
        assert again == failed and loads.calls == ["bad"]
        assert not models.due()
        clock[0] += 0.2
        await models.gather(wanted)
        assert loads.calls == ["bad", "bad"]

    asyncio.run(scenario())


def test_a_model_loaded_beside_one_that_failed_is_kept_then_unloaded_with_its_endpoint() -> None:
    loads = Loads()
    models = ModelLoads(loads, wait_s=DEADLINE_S, retry_s=0.0)
    wanted = {s.key: s for s in (spec("good"), spec("bad"))}

    async def scenario() -> None:
        loaded, failed = await models.gather(wanted)
        assert list(loaded) == [spec("good").key] and list(failed) == [spec("bad").key]
        again, _ = await models.gather(wanted)  # the retry reuses it, loads it not again
        assert again[spec("good").key] is loaded[spec("good").key]
        assert loads.calls.count("good") == 1
        assert "good:1 (loaded)" in models.status(wanted.values())
        models.forget_unplanned([])  # the endpoint was deleted
        (good,) = loads.made
        assert good.closed

    asyncio.run(scenario())


def test_a_load_still_running_at_close_is_unloaded_when_it_ends() -> None:
    loads = Loads()
    blocked = threading.Event()
    done = threading.Event()

    def slow(wanted: ModelSpec) -> Any:
        blocked.wait(DEADLINE_S)
        model = loads(wanted)
        done.set()
        return model

    models = ModelLoads(slow, wait_s=0.0)

    async def scenario() -> None:
        loaded, _ = await models.gather({spec("good").key: spec("good")})
        assert loaded == {}

    asyncio.run(scenario())
    models.close()  # its loop is closed by now
    blocked.set()
    assert done.wait(DEADLINE_S)
    wait_for("the late model to be unloaded", lambda: bool(loads.made) and loads.made[0].closed)
