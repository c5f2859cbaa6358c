"""The predict thread of a server process, which a model call that never returns does not keep.

The answering variants of a process predict on one thread (see ``app.predict_executor``): their
calls queue behind each other. A model that hangs (a deadlock, a call out with no timeout) would
hold every other model of the process behind it for ever. A watchdog looks at the thread every
:data:`CHECK_S` at most; once it has been in one call for ``stuck_after_s`` (half the predict
timeout, so that the calls queued behind it still answer in time), that thread is left to
finish its call alone and a new one takes the queue. A slow call left so still delivers its
result. Python cannot stop a thread; at most :data:`MAX_ABANDONED` are left at once (each holds
what its call holds), past which the queue waits for one of them to return.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

log = logging.getLogger("modelyard.serving")

T = TypeVar("T")

#: The most threads left in a stuck call at once.
MAX_ABANDONED = 8
#: The longest the watchdog sleeps between two looks at the thread (seconds).
CHECK_S = 1.0

_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class _Runner:
    __slots__ = ("abandoned", "reported", "since")

    def __init__(self) -> None:
        self.since: float | None = None  # when its current call began; None: idle
        self.abandoned = False
        self.reported: float | None = None  # the call found stuck with no thread to spare


class PredictThread(Executor):
    """One thread running submitted calls in order, replaced when a call is stuck in it."""

    def __init__(self, stuck_after_s: float, name: str = "modelyard-predict") -> None:
        if not stuck_after_s > 0:
            raise ValueError(f"stuck_after_s must be above 0, got {stuck_after_s}")
        self.stuck_after_s = stuck_after_s
        self._name = name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._runner: _Runner | None = None
        self._abandoned = 0
        self._closed = threading.Event()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed.is_set():
                raise RuntimeError("cannot predict after shutdown")
            self._queue.put((future, fn, args, kwargs))
            if self._runner is None:
                self._start()
                # A daemon, as the runners: neither may keep the process from exiting.
                threading.Thread(
                    target=self._watch, name=f"{self._name}-watchdog", daemon=True
                ).start()
        return future

    def unstick(self, older_than_s: float) -> bool:
        """Leave the thread to its current call, and start another, if that call began at
        least ``older_than_s`` ago; whether it did."""
        with self._lock:
            runner = self._runner
            if runner is None or runner.since is None:
                return False
            stuck_s = time.monotonic() - runner.since
            if stuck_s < older_than_s:
                return False
            if self._abandoned >= MAX_ABANDONED:
                if runner.reported == runner.since:  # said once per stuck call
                    return False
                runner.reported = runner.since
                log.error(
                    "a model call has been predicting for %.0f s, and %s threads are already "
                    "stuck in models: predictions wait for one of them to return",
                    stuck_s,
                    self._abandoned,
                )
                return False
            runner.abandoned = True
            self._abandoned += 1
            self._start()
        log.error(
            "a model call has been predicting for %.0f s; the other predictions go on in a "
            "new thread (%s left in stuck calls)",
            stuck_s,
            self._abandoned,
        )
        return True

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed.set()
            self._queue.put(None)

    def _watch(self) -> None:
        every = min(CHECK_S, self.stuck_after_s / 4)
        while not self._closed.wait(every):
            self.unstick(self.stuck_after_s)

    def _start(self) -> None:  # with the lock held
        runner = _Runner()
        self._runner = runner
        # A daemon: a thread stuck in a model must not keep the process from exiting.
        threading.Thread(target=self._run, args=(runner,), name=self._name, daemon=True).start()

    def _run(self, runner: _Runner) -> None:
        while True:
            item = self._queue.get()
            if item is None:  # shutdown: pass it on to a successor, if any
                self._queue.put(None)
                return
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            with self._lock:
                runner.since = time.monotonic()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)
            finally:
                del item, future, fn, args, kwargs
            with self._lock:
                runner.since = None
                if runner.abandoned:  # a successor has the queue now
                    self._abandoned -= 1
                    return
