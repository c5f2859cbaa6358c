"""A model whose load hangs (a handler's model_fn waiting on a network call, a lock, a huge
file on a slow disk) holds up neither the rest of its plan nor the plans after it: the server
applies them without it, keeps that endpoint as it was, and takes the model once it loads,
without loading it a second time meanwhile."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.bootstrap import Platform
from modelyard.domain import ModelSpec, Trust
from modelyard.serving.app import predict_executor
from modelyard.serving.deployer import Deployer, returns_for_sure
from modelyard.serving.loader import ServedModel, load_served
from modelyard.storage.artifacts import FsspecArtifactStore
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.plan_source import SqlPlanSource
from tests.serving.capture_support import FEATURES, make_platform
from tests.waiting import DEADLINE_S, POLL_S


class GatedLoads:
    """The server's loader, except that ``slow:1`` waits for ``gate`` (a hung load), and
    ``churn:2`` for ``second`` when it is shut."""

    def __init__(self, load: Callable[[ModelSpec], ServedModel]) -> None:
        self._load = load
        self.gate = threading.Event()
        self.second = threading.Event()
        self.second.set()
        self.calls: list[str] = []
        self.made: list[ServedModel] = []

    def __call__(self, spec: ModelSpec) -> ServedModel:
        self.calls.append(spec.ref)
        if spec.ref == "slow:1":
            self.gate.wait(DEADLINE_S)
        if spec.ref == "churn:2":
            self.second.wait(DEADLINE_S)
        model = self._load(spec)
        self.made.append(model)
        return model


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Platform, Deployer, GatedLoads]]:
    from sklearn.linear_model import LogisticRegression

    platform = make_platform(tmp_path / "home")  # api, sampled, quiet: churn:1
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(100, 3)), columns=FEATURES)
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    for name in ("churn", "slow"):  # churn:2 and slow:1
        platform.registry.register(name, model, flavor="sklearn", input_example=frame[:3])
    settings = platform.settings
    engine = make_engine(settings.resolved_db_url)
    artifacts = FsspecArtifactStore(settings.resolved_artifact_url)
    loads = GatedLoads(
        functools.partial(load_served, artifacts, scratch=settings.home / "tmp" / "s")
    )
    deployer = Deployer(
        SqlPlanSource(engine), load=loads, predict_executor=predict_executor(), load_wait_s=0.2
    )
    try:
        yield platform, deployer, loads
    finally:
        loads.gate.set()
        loads.second.set()
        deployer.close()
        engine.dispose()
        platform.close()


def served(deployer: Deployer, endpoint: str) -> list[str]:
    route = deployer.table.endpoints.get(endpoint)
    return [] if route is None else [v.served.spec.ref for v in route.variants.values()]


async def synced_until(deployer: Deployer, done: Callable[[], bool]) -> None:
    async with asyncio.timeout(DEADLINE_S):
        while True:
            await deployer.sync()
            if done():
                return
            await asyncio.sleep(POLL_S)


def test_a_hung_load_holds_up_neither_its_plan_nor_the_next_and_is_taken_once_loaded(
    setup: tuple[Platform, Deployer, GatedLoads],
) -> None:
    platform, deployer, loads = setup

    async def scenario() -> None:
        await deployer.sync()
        assert served(deployer, "api") == ["churn:1"]
        platform.endpoints.create("hung", {"main": "slow:1"})
        async with asyncio.timeout(DEADLINE_S):  # returns, though slow:1 never loads
            await deployer.sync()
        assert "hung" not in deployer.table.endpoints
        assert "slow:1" in deployer.loading["hung"]
        assert not deployer.ready and "hung" not in deployer.failures
        # The next plan change goes through while slow:1 still hangs.
        platform.endpoints.update("api", {"main": "churn:2"})
        await synced_until(deployer, lambda: served(deployer, "api") == ["churn:2"])
        assert served(deployer, "quiet") == ["churn:1"] and "hung" in deployer.loading
        loads.gate.set()  # the load returns: the endpoint is served, from that one load
        await synced_until(deployer, lambda: served(deployer, "hung") == ["slow:1"])
        assert deployer.ready and deployer.loading == {}

    asyncio.run(scenario())
    assert loads.calls.count("slow:1") == 1


def test_an_update_waiting_on_a_hung_load_keeps_the_config_it_had(
    setup: tuple[Platform, Deployer, GatedLoads],
) -> None:
    platform, deployer, loads = setup

    async def scenario() -> None:
        await deployer.sync()
        platform.endpoints.update("api", {"main": "slow:1"})
        async with asyncio.timeout(DEADLINE_S):
            await deployer.sync()
        assert served(deployer, "api") == ["churn:1"]  # answering as before meanwhile
        assert deployer.ready  # every endpoint answers: an update still loading is no outage
        loads.gate.set()
        await synced_until(deployer, lambda: served(deployer, "api") == ["slow:1"])

    asyncio.run(scenario())
    assert loads.calls.count("slow:1") == 1


def test_a_model_that_loads_after_its_endpoint_left_the_plan_is_unloaded(
    setup: tuple[Platform, Deployer, GatedLoads],
) -> None:
    platform, deployer, loads = setup

    async def scenario() -> None:
        await deployer.sync()
        platform.endpoints.create("hung", {"main": "slow:1"})
        await deployer.sync()
        platform.endpoints.delete("hung")
        await synced_until(deployer, lambda: "hung" not in deployer.loading)
        loads.gate.set()
        async with asyncio.timeout(DEADLINE_S):
            while not [m for m in loads.made if m.spec.ref == "slow:1"]:
                await asyncio.sleep(POLL_S)
            (late,) = [m for m in loads.made if m.spec.ref == "slow:1"]
            while not late.closed:
                await deployer.sync()
                await asyncio.sleep(POLL_S)
        assert "hung" not in deployer.table.endpoints

    asyncio.run(scenario())


def test_an_endpoint_of_two_models_both_slower_than_the_wait_is_served_each_loaded_once(
    setup: tuple[Platform, Deployer, GatedLoads],
) -> None:
    # The first to load was unloaded while the second still loaded (its endpoint could not be
    # served yet), and loaded again at the next plan change: with both slower than the wait,
    # for ever.
    platform, deployer, loads = setup

    async def scenario() -> None:
        await deployer.sync()
        loads.second.clear()
        platform.endpoints.create("pair", {"a": "slow:1", "b": "churn:2"},
                                  weights={"a": 50, "b": 50})  # fmt: skip
        await deployer.sync()  # slow:1 started, waited for; churn:2 started or queued
        loads.gate.set()  # slow:1 loads while churn:2 still loads
        await synced_until(deployer, lambda: "slow:1 (loaded)" in deployer.loading["pair"])
        assert "pair" not in deployer.table.endpoints
        loads.second.set()
        await synced_until(deployer, lambda: sorted(served(deployer, "pair")) ==
                           ["churn:2", "slow:1"])  # fmt: skip

    asyncio.run(scenario())
    assert (loads.calls.count("slow:1"), loads.calls.count("churn:2")) == (1, 1)
    assert not [m for m in loads.made if m.closed]  # nothing loaded was thrown away


def test_an_endpoint_deleted_and_made_again_while_its_model_loads_starts_no_second_load(
    setup: tuple[Platform, Deployer, GatedLoads],
) -> None:
    platform, deployer, loads = setup

    async def scenario() -> None:
        await deployer.sync()
        platform.endpoints.create("hung", {"main": "slow:1"})
        await deployer.sync()
        platform.endpoints.delete("hung")
        await deployer.sync()
        assert "hung" not in deployer.loading  # a 404 now, not "not ready"
        platform.endpoints.create("again", {"main": "slow:1"})
        await deployer.sync()
        assert "slow:1" in deployer.loading["again"]
        loads.gate.set()
        await synced_until(deployer, lambda: served(deployer, "again") == ["slow:1"])

    asyncio.run(scenario())
    assert loads.calls.count("slow:1") == 1


@pytest.mark.parametrize(
    ("flavor", "trust", "inline"),
    [
        ("xgboost", Trust(), True),
        ("sklearn", Trust(types=("sklearn.preprocessing._data.StandardScaler",)), True),
        ("sklearn", Trust(types=("numpy.dtype", "scipy.sparse._csr.csr_matrix")), True),
        # A type of the user's own, or a function a FunctionTransformer calls: their code.
        ("sklearn", Trust(types=("mymod.MyTransformer",)), False),
        ("sklearn", Trust(types=("sklearn.base.BaseEstimator", "builtins.eval")), False),
        ("sklearn", Trust(user_code=True), True),  # a handler: input_fn, output_fn only
        ("sklearn", Trust(pickle=True), False),
        ("pyfunc", Trust(user_code=True), False),
    ],
)
def test_only_a_runtimes_own_code_may_predict_on_the_event_loop(
    flavor: str, trust: Trust, inline: bool
) -> None:
    spec = ModelSpec("m", 1, flavor, "skops", "sha256:0", trust)
    assert returns_for_sure(spec) is inline
