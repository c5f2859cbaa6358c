"""A deadline on reading a request body: a client that sends its headers and then a trickle of
body bytes, or none (slowloris), gets 408 instead of holding a connection, and the model it
chose, for ever.

Per request this is one dict entry while its body is read: a timer per request (what
``asyncio.timeout`` arms) costs more than the rest of reading a small body. One timer per
route, armed while any body is being read, sweeps the entries every :data:`SWEEP_S` and
cancels the reads past their deadline; :func:`~modelyard.serving.http.read_body` turns that
cancellation, and only that one, into :class:`~modelyard.errors.RequestTimeout`. So a read
times out between ``timeout_s`` and ``timeout_s + SWEEP_S`` after it began.
"""

from __future__ import annotations

import asyncio
import time

#: How often the reads in progress are checked against their deadlines (seconds).
SWEEP_S = 1.0


class BodyDeadline:
    """The bodies one route is reading on one event loop, and their deadlines.

    Args:
        timeout_s: How long reading one body may take, from its first ``receive``.
    """

    __slots__ = ("_expired", "_loop", "_reading", "_timer", "timeout_s")

    def __init__(self, timeout_s: float) -> None:
        if not timeout_s > 0:
            raise ValueError(f"a body timeout must be above 0 s, got {timeout_s}")
        self.timeout_s = timeout_s
        self._reading: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def enter(self) -> asyncio.Task[object] | None:
        """The current task starts reading a body (None: not in a task, nothing is watched)."""
        task = asyncio.current_task()
        if task is None:
            return None
        self._reading[task] = time.monotonic() + self.timeout_s
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(SWEEP_S, self._sweep)
            self._loop = loop
        elif self._loop is not asyncio.get_running_loop():  # its loop closed before it ran
            self._reading = {task: self._reading[task]}
            self._timer = None
            return self.enter()
        return task

    def leave(self, task: asyncio.Task[object] | None) -> None:
        """``task`` is done reading (or gave up)."""
        if task is not None:
            self._reading.pop(task, None)

    def timed_out(self, task: asyncio.Task[object] | None) -> bool:
        """Whether ``task`` was cancelled by this deadline (asked once, when the cancellation
        arrives: the task's cancel request is withdrawn, so it may go on to answer 408)."""
        if task is None or task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    def _sweep(self) -> None:
        self._timer = None
        now = time.monotonic()
        for task, deadline in list(self._reading.items()):
            if deadline <= now:
                del self._reading[task]
                self._expired.add(task)
                task.cancel()
        if self._reading:
            self._timer = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)
