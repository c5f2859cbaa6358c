"""What the capture tests share: a real store with a fitted model and endpoints that capture,
a serving app assembled as bootstrap assembles it (but with the capture writer the test
chooses), driven over HTTP through the ASGI transport, and a destination that blocks.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from modelyard.bootstrap import Platform, build
from modelyard.config import Settings, load_settings
from modelyard.domain import CaptureConfig
from modelyard.serving.app import ServerOptions, build_app, predict_executor
from modelyard.serving.capture import CaptureWrapper
from modelyard.serving.capture_writer import CaptureWriter
from modelyard.serving.deployer import Deployer
from modelyard.serving.loader import load_served
from modelyard.storage.artifacts import FsspecArtifactStore
from modelyard.storage.capture_files import CaptureFolder
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.plan_source import SqlPlanSource
from tests.waiting import DEADLINE_S

FEATURES = ["a", "b", "ssn"]


def make_platform(home: Path) -> Platform:
    """A store holding ``churn:1`` (a logistic regression on a, b, ssn) and endpoints
    ``api`` (capturing every request, ssn hashed and b dropped), ``sampled`` (25 %) and
    ``quiet`` (capture off)."""
    from sklearn.linear_model import LogisticRegression

    platform = build(load_settings({}, home=home))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 3)), columns=FEATURES)
    model = LogisticRegression().fit(frame, (frame["a"] + frame["b"] > 0).astype(int))
    platform.registry.register("churn", model, flavor="sklearn", input_example=frame[:3])
    everything = CaptureConfig.parse(100, ["ssn", "b:drop"])
    platform.endpoints.create("api", {"main": "churn:1"}, capture={"main": everything})
    platform.endpoints.create(
        "sampled", {"main": "churn:1"}, capture={"main": CaptureConfig.parse(25)}
    )
    platform.endpoints.create("quiet", {"main": "churn:1"})
    return platform


@asynccontextmanager
async def serving(
    settings: Settings, writer: CaptureWriter, draw: Callable[[], float] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The serving app on ``settings``' store with ``writer`` capturing (started here, and
    closed on the way out, which writes what it holds)."""
    engine = make_engine(settings.resolved_db_url)
    executor = predict_executor()
    artifacts = FsspecArtifactStore(settings.resolved_artifact_url)
    deployer = Deployer(
        SqlPlanSource(engine),
        load=functools.partial(load_served, artifacts, scratch=settings.home / "tmp" / "s"),
        predict_executor=executor,
    )
    wrapper = CaptureWrapper(writer) if draw is None else CaptureWrapper(writer, draw=draw)
    try:
        await deployer.sync()
        writer.open()
        app = build_app(deployer, ServerOptions(), [wrapper])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
            yield client
    finally:
        await asyncio.to_thread(writer.close)
        deployer.close()
        executor.shutdown()
        engine.dispose()


async def invoke(client: httpx.AsyncClient, endpoint: str, rows: Any) -> tuple[str, list[Any]]:
    """POST ``rows`` as CSV; the answer's inference id and predictions (asserts a 200)."""
    body = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in np.atleast_2d(rows))
    answer = await client.post(
        f"/endpoints/{endpoint}/invocations",
        content=body,
        headers={"content-type": "text/csv", "accept": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    return answer.headers["x-modelyard-inference-id"], answer.json()["predictions"]


class GatedFolder:
    """A real capture folder whose writes wait at a gate: while closed, the writer's thread
    is stuck inside ``write`` (as on a hung network filesystem) and drains nothing."""

    def __init__(self, folder: CaptureFolder) -> None:
        self._folder = folder
        self.gate = threading.Event()
        self.waiting = threading.Event()  # set while a write waits at the gate

    @property
    def url(self) -> str:
        return self._folder.url

    def write(self, path: str, data: bytes) -> None:
        self.waiting.set()
        if not self.gate.wait(DEADLINE_S):
            raise TimeoutError("the test never opened the gate")
        self.waiting.clear()
        self._folder.write(path, data)
