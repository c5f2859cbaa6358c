"""Micro-batching: concurrent requests share predict calls, answers go back to their callers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import pytest

from modelyard.domain import Batching
from modelyard.serving import batching
from modelyard.serving.batching import BatchLog, MicroBatcher, ModelFailure
from tests.waiting import DEADLINE_S, wait_for

T = TypeVar("T")


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


class FrozenClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock stands still unless the test moves it (``now``): a timer,
    such as a batcher's max_wait, fires only when the test says so, on any machine."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def time(self) -> float:
        return self.now


async def _answered(awaitable: Awaitable[T], what: str) -> T:
    """Await ``awaitable``, failing if it is still pending after ``DEADLINE_S`` of real time.

    A thread keeps the deadline: on a frozen clock the loop's own timers never fire.
    """
    task = asyncio.ensure_future(awaitable)
    finished = threading.Event()
    task.add_done_callback(lambda _: finished.set())
    if not await asyncio.get_running_loop().run_in_executor(None, finished.wait, DEADLINE_S):
        task.cancel()
        raise AssertionError(f"{what} still unanswered after {DEADLINE_S:g} s: it waited")
    return await task


async def _steps(n: int = 10) -> None:
    """Let the event loop run ``n`` rounds: every task that can go on without a timer or
    another thread does so (the batcher needs two rounds to take a queued request)."""
    for _ in range(n):
        await asyncio.sleep(0)


def test_concurrent_requests_are_batched_and_split_back() -> None:
    model = Recorder()
    with ThreadPoolExecutor(1) as pool:
        batcher = MicroBatcher(model.predict, Batching(max_batch_size=16, max_wait_ms=2), pool)
        results = asyncio.run(_fire(batcher, 50))
    assert [float(r[0]) for r in results] == [3.0 * i for i in range(50)]
    assert len(model.calls) < 50 and max(model.calls) <= 16 and sum(model.calls) == 50


def test_lone_request_is_not_delayed() -> None:
    # On a frozen clock max_wait never runs out: a request that waited for batch mates would
    # never be answered, one that does not wait is answered at once.
    model = Recorder(delay=0)
    with ThreadPoolExecutor(1) as pool, asyncio.Runner(loop_factory=FrozenClockLoop) as runner:
        batcher = MicroBatcher(model.predict, Batching(max_batch_size=64, max_wait_ms=1000), pool)
        result = runner.run(_answered(batcher.predict(np.ones((1, 3))), "a lone request"))
    assert float(result[0]) == 3.0
    assert model.calls == [1]


def test_under_load_a_request_waits_for_batch_mates_until_max_wait() -> None:
    # After a batch of 3 the batcher expects company: the next request waits until 3 are
    # queued, or until max_wait has passed. The clock is frozen, so only arrivals, or the test
    # moving the clock past max_wait, can end that wait, however fast or slow the machine.
    model = Recorder()  # 5 ms a call: never fast enough to be predicted inline

    async def run() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, FrozenClockLoop)
        await _fire(batcher, 3)
        assert model.calls == [3]
        first = asyncio.ensure_future(batcher.predict(np.full((1, 3), 1.0)))
        await _steps()  # a batcher that did not wait would have taken it alone by now
        mates = [asyncio.ensure_future(batcher.predict(np.full((1, 3), 2.0))) for _ in range(2)]
        answers = await _answered(asyncio.gather(first, *mates), "a full batch")
        assert [float(a[0]) for a in answers] == [3.0, 6.0, 6.0]
        assert model.calls == [3, 3], "the first request was predicted without its mates"

        alone = asyncio.ensure_future(batcher.predict(np.full((1, 3), 4.0)))
        await _steps()
        assert not alone.done() and model.calls == [3, 3], "it did not wait for mates"
        loop.now += 1.001  # max_wait_ms=1000 has passed: it goes on its own
        assert float((await _answered(alone, "a request past max_wait"))[0]) == 12.0
        assert model.calls == [3, 3, 1]

    with ThreadPoolExecutor(1) as pool, asyncio.Runner(loop_factory=FrozenClockLoop) as runner:
        batcher = MicroBatcher(model.predict, Batching(max_batch_size=64, max_wait_ms=1000), pool)
        runner.run(run())


def test_a_waiting_batch_goes_once_arrivals_stop_for_a_gap_before_max_wait() -> None:
    # After a batch of 4 the batcher expects 4, up to max_wait (1 s). Arrivals within each
    # gap (max_wait / GAP_PARTS = 0.125 s) keep it waiting; a gap with none sends the 3 it has,
    # long before max_wait: their mates may be waiting in another variant's batch. The clock
    # is frozen and moved by the test, so the machine's speed decides nothing.
    model = Recorder()
    gap = 1.0 / batching.GAP_PARTS

    async def run() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, FrozenClockLoop)
        await _fire(batcher, 4)
        assert model.calls == [4]
        waiting = [asyncio.ensure_future(batcher.predict(np.full((1, 3), 1.0)))]
        for _ in range(2):  # each arrives within the gap after the one before
            loop.now += 0.8 * gap
            await _steps()
            assert model.calls == [4], "it went while requests were still arriving"
            waiting.append(asyncio.ensure_future(batcher.predict(np.full((1, 3), 1.0))))
            await _steps()
        loop.now += 1.1 * gap  # the check after the last arrival sees it and waits on
        await _steps()
        assert model.calls == [4], "it went while requests were still arriving"
        loop.now += gap  # the next check sees no arrival since: the batch goes
        answers = await _answered(asyncio.gather(*waiting), "a batch after the arrivals stopped")
        assert [float(a[0]) for a in answers] == [3.0, 3.0, 3.0]
        assert model.calls == [4, 3]
        assert loop.now < 1.0  # max_wait had not run out

    with ThreadPoolExecutor(1) as pool, asyncio.Runner(loop_factory=FrozenClockLoop) as runner:
        batcher = MicroBatcher(model.predict, Batching(max_batch_size=64, max_wait_ms=1000), pool)
        runner.run(run())


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


def test_a_fast_model_predicts_on_the_event_loop_alone_and_in_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "Fast" is judged by the wall clock, which a loaded machine stretches (a preempted
    # predict thread takes milliseconds): a generous threshold makes this model fast on any
    # machine, so the test checks the idle/under-load rule. A slow model is the next test.
    monkeypatch.setattr(batching, "INLINE_MAX_S", 10.0)
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
            await _fire(batcher, 40)  # concurrent: they queue and go in batches, inline too

        asyncio.run(run())
    assert sequential == ["MainThread"] * 5, sequential
    assert set(threads) == {"MainThread"}, threads
    assert len(threads) < 40, "concurrent requests were batched"


def test_a_fast_model_that_exits_on_the_event_loop_is_a_model_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``sys.exit`` in a model predicting on the event loop: asyncio re-raises a SystemExit
    from any task, and the server stopped. It is the request's model failure."""
    monkeypatch.setattr(batching, "INLINE_MAX_S", 10.0)  # fast on any machine (see above)
    threads: list[str] = []

    def predict(rows: np.ndarray) -> np.ndarray:
        threads.append(threading.current_thread().name)
        if (rows == 7).any():
            raise SystemExit("usage: predict rows")
        return rows.sum(axis=1)

    with ThreadPoolExecutor(1) as pool:
        batcher = MicroBatcher(predict, Batching(max_batch_size=64), pool)

        async def run() -> BaseException:
            await batcher.predict(np.ones((1, 3)))  # measured fast: the next call is inline
            with pytest.raises(ModelFailure) as failure:
                await batcher.predict(np.full((1, 3), 7.0))
            assert (await batcher.predict(np.ones((1, 3)))).tolist() == [3.0]
            return failure.value.cause

        cause = asyncio.run(run())
    assert isinstance(cause, SystemExit)
    assert threads[1:] == ["MainThread"] * 2, threads


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
            await _fire(batcher, 10)  # under load: batches, still on the predict thread

        asyncio.run(run())
    assert "MainThread" not in threads
    assert len(threads) < 4 + 10, "concurrent requests were batched"


def _on_thread(model: Recorder, threads: set[str]) -> Callable[[np.ndarray], np.ndarray]:
    """``model.predict``, noting the name of each thread it runs on in ``threads``."""

    def predict(rows: np.ndarray) -> np.ndarray:
        threads.add(threading.current_thread().name)
        return model.predict(rows)

    return predict


def test_predict_batches_stacks_requests_in_one_call_and_splits_the_answers_back() -> None:
    model, threads = Recorder(delay=0), set[str]()
    predict = _on_thread(model, threads)

    batch = [np.full((n, 3), float(n)) for n in (1, 3, 2)]
    with ThreadPoolExecutor(1, thread_name_prefix="shadowish") as pool:
        batcher = MicroBatcher(predict, Batching(max_batch_size=64), pool, inline=False)
        results = asyncio.run(batcher.predict_batches(batch, 64))[0]
    assert model.calls == [6]  # one model call for the three requests
    assert [r.tolist() for r in results] == [[3.0], [9.0] * 3, [6.0] * 2]  # type: ignore[union-attr]
    assert threads == {"shadowish_0"}
    requests, rows = batcher.batches.take()
    assert (requests.tolist(), rows.tolist()) == ([3], [6])  # one call: 3 requests, 6 rows


def test_predict_batches_calls_the_model_in_groups_within_one_hand_off() -> None:
    # Requests of 1, 2, 1, 4 and 1 rows, at most 3 rows a model call: each group takes the
    # requests that fit, and a request larger than that goes alone; one thread, one hand-off.
    # Each request's seconds are its own group's call, shared with its group only.
    model, threads = Recorder(delay=0), set[str]()
    predict = _on_thread(model, threads)

    sizes = (1, 2, 1, 4, 1)
    batch = [np.full((n, 3), float(i)) for i, n in enumerate(sizes)]
    with ThreadPoolExecutor(1, thread_name_prefix="grouped") as pool:
        batcher = MicroBatcher(predict, Batching(max_batch_size=64), pool, inline=False)
        results, seconds = asyncio.run(batcher.predict_batches(batch, max_rows=3))
    assert model.calls == [3, 1, 4, 1]
    expected = [[3.0 * i] * n for i, n in enumerate(sizes)]
    assert [r.tolist() for r in results] == expected  # type: ignore[union-attr]
    assert threads == {"grouped_0"}
    assert len(seconds) == 5 and seconds[0] == seconds[1] and min(seconds) >= 0.0


def test_predict_batches_gives_the_culprit_its_error_and_the_others_their_answers() -> None:
    model = Recorder(delay=0, poison=7.0)
    batch = [np.full((1, 3), float(i)) for i in (1, 7, 2)]
    with ThreadPoolExecutor(1) as pool:
        batcher = MicroBatcher(model.predict, Batching(max_batch_size=64), pool)
        results = asyncio.run(batcher.predict_batches(batch, 64))[0]
    assert model.calls == [3, 1, 1, 1]  # the batch, then each on its own
    assert isinstance(results[1], ModelFailure) and "poisoned" in str(results[1])
    assert [float(results[i][0]) for i in (0, 2)] == [3.0, 6.0]  # type: ignore[index]


def test_predict_batches_without_keeping_gives_only_the_failures() -> None:
    # keep=False (a shadow nobody records): the same model calls, each success None, each
    # failure its own; in a stacked call, as when the batch is retried one by one.
    model = Recorder(delay=0, poison=7.0)
    with ThreadPoolExecutor(1) as pool:
        batcher = MicroBatcher(model.predict, Batching(max_batch_size=64), pool)
        whole = [np.full((n, 3), 1.0) for n in (1, 2)]
        kept = asyncio.run(batcher.predict_batches(whole, 64, keep=False))
        mixed = [np.full((1, 3), float(i)) for i in (1, 7, 2)]
        results, seconds = asyncio.run(batcher.predict_batches(mixed, 64, keep=False))
    assert kept == ([None, None], kept[1]) and len(kept[1]) == 2
    assert model.calls == [3, 3, 1, 1, 1]
    assert results[0] is None and results[2] is None and len(seconds) == 3
    assert isinstance(results[1], ModelFailure) and "poisoned" in str(results[1])


def test_rows_of_types_that_do_not_stack_fail_alone() -> None:
    # A record array among float rows: numpy refuses to stack them (a TypeError, not the
    # ValueError of other widths). Each request is then predicted on its own, and only the
    # one the model cannot take fails; before, the TypeError failed the whole hand-off.
    model = Recorder(delay=0)
    odd = np.zeros((1, 3), dtype=[("a", "f4")])
    batch = [np.ones((1, 3)), odd, np.ones((2, 3)), np.ones((1, 3))]
    with ThreadPoolExecutor(1) as pool:
        batcher = MicroBatcher(model.predict, Batching(max_batch_size=64), pool)
        results, _ = asyncio.run(batcher.predict_batches(batch, max_rows=3))
    assert isinstance(results[1], ModelFailure)
    assert [r.tolist() for r in (results[0], results[2], results[3])] == [  # type: ignore[union-attr]
        [3.0],
        [3.0, 3.0],
        [3.0],
    ]


def test_predict_batches_predicts_rows_of_other_widths_one_by_one() -> None:
    model = Recorder(delay=0)
    batch = [np.ones((1, 3)), np.ones((2, 4))]  # they do not stack: no stacked call fails
    with ThreadPoolExecutor(1) as pool:
        batcher = MicroBatcher(model.predict, Batching(max_batch_size=64), pool)
        results = asyncio.run(batcher.predict_batches(batch, 64))[0]
    assert model.calls == [1, 2]
    assert [r.tolist() for r in results] == [[3.0], [4.0, 4.0]]  # type: ignore[union-attr]


def test_requests_of_other_widths_queued_together_each_get_their_own_answer() -> None:
    # A model without a signature takes any width: rows that cannot be stacked are predicted
    # one request at a time instead of failing (or stranding) the batch they queued in.
    model = Recorder(delay=0.005)
    with ThreadPoolExecutor(1) as pool:
        batcher = MicroBatcher(model.predict, Batching(max_batch_size=64, max_wait_ms=1), pool)

        async def run() -> list[np.ndarray]:
            first = asyncio.ensure_future(batcher.predict(np.ones((1, 3))))
            await _steps()  # the first is inside the model: the next three queue together
            rest = [batcher.predict(np.ones((1, width))) for width in (3, 4, 5)]
            return await _answered(asyncio.gather(first, *rest), "requests of other widths")

        results = asyncio.run(run())
    assert [float(r[0]) for r in results] == [3.0, 3.0, 4.0, 5.0]
    assert model.calls == [1, 1, 1, 1]


def test_the_batch_log_gives_each_call_once_in_order_from_any_thread() -> None:
    log = BatchLog(limit=10_000)
    log.add(64, 2**40 - 1)  # rows fill their 40 bits: nothing leaks into the requests
    log.add(1, 1)
    requests, rows = log.take()
    assert (requests.tolist(), rows.tolist()) == ([64, 1], [2**40 - 1, 1])
    assert [a.tolist() for a in log.take()] == [[], []], "a call was given twice"

    def record(thread: int) -> None:
        for i in range(2000):
            log.add(thread + 1, i)

    taken: list[tuple[list[int], list[int]]] = []
    workers = [threading.Thread(target=record, args=(t,)) for t in range(4)]
    for worker in workers:
        worker.start()
    while any(w.is_alive() for w in workers):  # taking while they record
        taken.append(tuple(a.tolist() for a in log.take()))  # type: ignore[arg-type]
    taken.append(tuple(a.tolist() for a in log.take()))  # type: ignore[arg-type]
    pairs = [p for requests, rows in taken for p in zip(requests, rows, strict=True)]
    assert sorted(pairs) == sorted((t + 1, i) for t in range(4) for i in range(2000))
    for thread in range(4):  # each thread's calls in the order it made them
        assert [i for r, i in pairs if r == thread + 1] == list(range(2000))


def test_the_batch_log_stops_recording_at_its_bound() -> None:
    """A server without metrics never takes: the log stops growing, it does not fail."""
    log = BatchLog(limit=3)
    for i in range(5):
        log.add(1, i)
    assert log.take()[1].tolist() == [0, 1, 2]
    log.add(1, 9)  # room again once taken
    assert log.take()[1].tolist() == [9]


def test_requests_whose_callers_went_away_are_neither_kept_nor_predicted() -> None:
    # The model hangs in its first call; 300 callers give up on theirs meanwhile (a predict
    # timeout, a disconnect). The queue must not keep them all while nothing is taken, and
    # once the model returns, none of their rows are predicted: nobody waits for them.
    release = threading.Event()
    seen: list[float] = []

    def predict(rows: np.ndarray) -> np.ndarray:
        seen.extend(float(v) for v in rows[:, 0])
        release.wait(DEADLINE_S)
        return rows.sum(axis=1)

    async def run(batcher: MicroBatcher) -> None:
        first = asyncio.ensure_future(batcher.predict(np.zeros((1, 3))))
        await _answered(
            asyncio.get_running_loop().run_in_executor(
                None, lambda: wait_for("the model called", lambda: seen)
            ),
            "the first call reaching the model",
        )
        for i in range(1, 301):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(batcher.predict(np.full((1, 3), float(i))), 0.001)
        assert batcher.queued <= 2 * batching._FORGET_AFTER, batcher.queued
        release.set()
        last = await _answered(batcher.predict(np.full((1, 3), -1.0)), "a request after")
        assert float(last[0]) == -3.0
        assert float((await first)[0]) == 0.0

    with ThreadPoolExecutor(1) as pool:
        batcher = MicroBatcher(predict, Batching(max_batch_size=16, max_wait_ms=1), pool)
        asyncio.run(run(batcher))
    assert seen == [0.0, -1.0], "rows of callers that went away were predicted"
    assert batcher.queued == 0
