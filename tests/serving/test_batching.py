"""Micro-batching: concurrent requests share predict calls, answers go back to their callers."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from modelyard.domain import Batching
from modelyard.serving.batching import MicroBatcher, ModelFailure


class Recorder:
    """A real (tiny) model: returns row sums, slowly, remembering every batch size."""

    def __init__(self, delay: float = 0.005, poison: float | None = None) -> None:
        self.calls: list[int] = []
        self.delay = delay
        self.poison = poison
        self.lock = threading.Lock()

    def predict(self, rows: np.ndarray) -> np.ndarray:
        with self.lock:
            self.calls.append(len(rows))
        threading.Event().wait(self.delay)
        if self.poison is not None and (rows == self.poison).any():
            raise ValueError("poisoned row")
        return rows.sum(axis=1)


async def _fire(batcher: MicroBatcher, n: int) -> list[np.ndarray]:
    return await asyncio.gather(*(batcher.predict(np.full((1, 3), float(i))) for i in range(n)))


def test_concurrent_requests_are_batched_and_split_back() -> None:
    model = Recorder()
    with ThreadPoolExecutor(1) as pool:
        batcher = MicroBatcher(model.predict, Batching(max_batch_size=16, max_wait_ms=2), pool)
        results = asyncio.run(_fire(batcher, 50))
    assert [float(r[0]) for r in results] == [3.0 * i for i in range(50)]
    assert len(model.calls) < 50 and max(model.calls) <= 16 and sum(model.calls) == 50


def test_lone_request_is_not_delayed() -> None:
    model = Recorder(delay=0)
    with ThreadPoolExecutor(1) as pool:
        batcher = MicroBatcher(model.predict, Batching(max_batch_size=64, max_wait_ms=500), pool)

        async def timed() -> float:
            loop = asyncio.get_running_loop()
            start = loop.time()
            await batcher.predict(np.ones((1, 3)))
            return loop.time() - start

        assert asyncio.run(timed()) < 0.25, "a lone request must not wait for max_wait"
    assert model.calls == [1]


def test_batching_off_predicts_each_request_alone() -> None:
    model = Recorder(delay=0.001)
    with ThreadPoolExecutor(1) as pool:
        batcher = MicroBatcher(model.predict, Batching(max_batch_size=1), pool)
        asyncio.run(_fire(batcher, 10))
    assert model.calls == [1] * 10


def test_a_failing_request_does_not_fail_its_batch_mates() -> None:
    model = Recorder(poison=7.0)
    with ThreadPoolExecutor(1) as pool:
        batcher = MicroBatcher(model.predict, Batching(max_batch_size=32, max_wait_ms=1), pool)

        async def run() -> list[object]:
            return await asyncio.gather(
                *(batcher.predict(np.full((1, 3), float(i))) for i in range(20)),
                return_exceptions=True,
            )

        results = asyncio.run(run())
    failed = [i for i, r in enumerate(results) if isinstance(r, ModelFailure)]
    assert failed == [7]
    assert float(results[8][0]) == 24.0  # type: ignore[index]


def test_wrong_row_count_is_a_model_failure() -> None:
    with ThreadPoolExecutor(1) as pool:
        batcher = MicroBatcher(lambda rows: np.zeros(len(rows) + 1), Batching(1), pool)
        with pytest.raises(ModelFailure, match="returned"):
            asyncio.run(batcher.predict(np.ones((2, 3))))


def test_idle_fast_model_predicts_inline_and_queues_under_load() -> None:
    threads: list[str] = []
    sequential: list[str] = []

    def predict(rows: np.ndarray) -> np.ndarray:
        threads.append(threading.current_thread().name)
        return rows.sum(axis=1)

    with ThreadPoolExecutor(1, thread_name_prefix="predict") as pool:
        batcher = MicroBatcher(predict, Batching(max_batch_size=64, max_wait_ms=1), pool)

        async def run() -> None:
            await batcher.predict(np.ones((1, 3)))  # first call: timing unknown, thread
            for _ in range(5):  # one at a time: idle and fast, so inline
                await batcher.predict(np.ones((1, 3)))
            sequential.extend(threads[1:])
            threads.clear()
            await _fire(batcher, 40)  # concurrent: they queue for the predict thread

        asyncio.run(run())
    assert sequential == ["MainThread"] * 5, sequential
    assert threads.count("MainThread") <= 1, threads
    assert len(threads) < 40, "concurrent requests were batched"


def test_slow_model_never_runs_on_the_event_loop() -> None:
    threads: list[str] = []

    def predict(rows: np.ndarray) -> np.ndarray:
        threads.append(threading.current_thread().name)
        threading.Event().wait(0.005)  # slower than INLINE_MAX_S
        return rows.sum(axis=1)

    with ThreadPoolExecutor(1, thread_name_prefix="predict") as pool:
        batcher = MicroBatcher(predict, Batching(max_batch_size=64), pool)

        async def run() -> None:
            for _ in range(4):
                await batcher.predict(np.ones((1, 3)))

        asyncio.run(run())
    assert "MainThread" not in threads
