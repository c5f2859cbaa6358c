"""A serving worker takes what it loaded at startup out of the cyclic GC's reach while it
serves, and gives it back at shutdown.

A full collection walks every tracked object (about 160k in a worker with XGBoost loaded:
100-400 ms on a busy 2-core machine, with the event loop stopped); the V2 benchmark's p99
outliers were those pauses. The real serving app (bootstrap's, on a real SQLite store with a
deployed XGBoost model) is driven through its ASGI lifespan in this process.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import numpy as np

from modelyard.bootstrap import build, serving_app
from modelyard.config import load_settings
from tests.waiting import DEADLINE_S


class Lifespan:
    """The ASGI lifespan protocol, from the server's side."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def _receive(self) -> dict[str, str]:
        return await self._inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def _until(self, kind: str) -> None:
        async with asyncio.timeout(DEADLINE_S):
            while not any(m["type"].startswith(kind) for m in self.sent):
                await asyncio.sleep(0.01)

    async def startup(self) -> None:
        self._task = asyncio.create_task(self.app({"type": "lifespan"}, self._receive, self._send))
        await self._inbox.put({"type": "lifespan.startup"})
        await self._until("lifespan.startup.")

    async def shutdown(self) -> None:
        await self._inbox.put({"type": "lifespan.shutdown"})
        await self._until("lifespan.shutdown.")
        assert self._task is not None
        await self._task


async def _get(app: Any, path: str) -> int:
    """The status ``GET path`` answers through the ASGI app."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    await app(scope, receive, send)
    return int(sent[0]["status"])


def _tracked(marker: object) -> bool:
    """Whether the cyclic GC would walk ``marker`` (frozen objects are not listed)."""
    return any(item is marker for item in gc.get_objects())


def test_the_startup_heap_is_frozen_while_serving_and_released_at_shutdown(
    tmp_path: Path,
) -> None:
    import xgboost as xgb

    settings = load_settings({}, home=tmp_path / "home")
    platform = build(settings)
    rows = np.random.default_rng(0).normal(size=(40, 3))
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
        xgb.DMatrix(rows, label=(rows[:, 0] > 0).astype(int)),
        num_boost_round=2,
    )
    platform.registry.register("churn", booster, flavor="xgboost", input_example=rows[:3])
    platform.endpoints.create("api", {"main": "churn:1"})
    platform.close()

    marker: list[object] = []  # a container the collector tracks, made before startup
    assert gc.get_freeze_count() == 0
    assert _tracked(marker)

    async def scenario() -> None:
        lifespan = Lifespan(serving_app(settings))
        try:
            await lifespan.startup()
            assert lifespan.sent[-1]["type"] == "lifespan.startup.complete", lifespan.sent
            assert await _get(lifespan.app, "/ping") == 200  # the model is loaded
            assert gc.get_freeze_count() > 0
            assert not _tracked(marker), "an object from before startup is still walked"
            after: list[object] = []  # made while serving: the collector still sees it
            assert _tracked(after)
        finally:
            await lifespan.shutdown()
        assert lifespan.sent[-1]["type"] == "lifespan.shutdown.complete", lifespan.sent

    try:
        asyncio.run(scenario())
    finally:
        frozen_at_end = gc.get_freeze_count()
        gc.unfreeze()  # never leave this test process frozen, whatever happened
    assert frozen_at_end == 0
    assert _tracked(marker)
