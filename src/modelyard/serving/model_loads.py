"""The model loads of one server process: each on a thread of its own, waited for a bounded
time, never started twice, kept until their endpoint can be served.

A plan change used to load its new models one after another with no bound, on the event
loop's thread pool: a load that hung (a pyfunc model's loading code waiting on a network call,
a lock) held up that plan and every plan after it, other endpoints' updates and rollbacks
included, and at startup kept the server from listening. Here:

- A load runs on a daemon thread of its own: one that hangs keeps only that thread.
- :meth:`ModelLoads.gather` starts the plan's loads one at a time (``at_once``), and waits
  for them until ``wait_s`` from its start has passed; it then returns what has loaded and
  what failed, and the deployer applies the plan without the rest. A load running longer than
  ``wait_s`` is presumed stuck and no longer holds back the next one, so one hung model
  delays the others by ``wait_s`` at most, and at most ``at_once`` loads run at once
  otherwise (parallel loads of large models would each take the memory and cores, and skew
  the load-time timings the predictor is chosen by).
- A model that has loaded is kept here until its endpoint is served (:meth:`served`): an
  endpoint of two models waits for both, without the first being unloaded and loaded again
  at every plan change meanwhile.
- A load is never started twice at once; a model no longer in the plan is unloaded as soon as
  its load ends (:meth:`forget_unplanned`), and at :meth:`close`.
- A load that failed is not started again until ``retry_s`` after it ended (a model whose
  load fails after 20 s was reloaded back to back, each time on a new thread).
- :meth:`due` tells the deployer's poll when to apply the plan again: a load ended that no
  apply has taken, or a queued load may start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass

from modelyard.domain import ModelSpec
from modelyard.serving.loader import ServedModel

log = logging.getLogger("modelyard.serving")

LoadModel = Callable[[ModelSpec], ServedModel]
#: What a load ends with: the model, or why it could not load.
Loaded = tuple[ServedModel | None, str | None]
#: How long one plan change waits for its new models' loads in all; a load running longer is
#: presumed stuck.
LOAD_WAIT_S = 30.0
#: Loads running at once, those presumed stuck not counted.
AT_ONCE = 1
#: A load that failed is started again this long after it ended, at the soonest.
RETRY_S = 5.0


@dataclass(eq=False)
class _Load:
    spec: ModelSpec
    future: asyncio.Future[Loaded]
    started: float  # the clock's time
    taken: bool = False  # an apply has seen it end


class ModelLoads:
    """The loads of one server process (see the module docstring).

    Args:
        load: Loads and warms one model version (called on a thread of its own).
        wait_s: How long :meth:`gather` waits for its loads in all.
        at_once: Loads running at once, not counting those running longer than ``wait_s``.
        retry_s: How long after a failed load ended it may be started again.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        load: LoadModel,
        wait_s: float = LOAD_WAIT_S,
        at_once: int = AT_ONCE,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._wait_s = wait_s
        self._at_once = at_once
        self._retry_s = retry_s
        self._clock = clock
        self._loads: dict[str, _Load] = {}  # by model key: running, or loaded and not served
        self._queued: dict[str, ModelSpec] = {}  # by model key: not started yet
        self._failed: dict[str, tuple[float, str]] = {}  # by model key: when it ended, why

    async def gather(
        self, wanted: Mapping[str, ModelSpec]
    ) -> tuple[dict[str, ServedModel], dict[str, str]]:
        """Start or take the loads of ``wanted`` (models the plan needs that are not served
        yet): the models loaded, and why each that failed did (a failed load is started again
        by a call ``retry_s`` after it ended). Waits until ``wait_s`` from now at most."""
        deadline = self._clock() + self._wait_s
        loaded: dict[str, ServedModel] = {}
        failed: dict[str, str] = {}
        queued: dict[str, ModelSpec] = {}
        for key, spec in wanted.items():
            load = self._loads.get(key)
            if load is None:
                ended = self._failed.get(key)
                if ended is not None and self._clock() - ended[0] < self._retry_s:
                    failed[key] = ended[1]
                    continue
                if self._running() >= self._at_once:
                    queued[key] = spec
                    continue
                load = self._loads[key] = self._start(spec)
                wait = deadline - self._clock()
                if wait > 0:
                    await asyncio.wait({load.future}, timeout=wait)
            if not load.future.done():
                continue
            load.taken = True
            model, reason = load.future.result()
            if model is not None:
                loaded[key] = model
                self._failed.pop(key, None)
            else:
                del self._loads[key]
                failed[key] = f"{spec.ref} failed to load: {reason}"
                self._failed[key] = (self._clock(), failed[key])
                log.error("%s", failed[key])
        self._queued = queued
        self._failed = {k: v for k, v in self._failed.items() if k in wanted}
        for key, load in self._loads.items():
            stuck = self._clock() - load.started >= self._wait_s
            if key in wanted and stuck and not load.future.done():
                log.warning(
                    "%s has been loading for %.0f s: its endpoints wait for it, the rest of "
                    "the plan does not",
                    load.spec.ref,
                    self._clock() - load.started,
                )
        return loaded, failed

    def status(self, specs: Iterable[ModelSpec], served: Container[str] = ()) -> str:
        """What an endpoint of these models waits for, as ``/readyz`` shows it: ``loading``
        and each model's ref, with how long it has loaded (``m:2 (12 s)``), ``queued`` behind
        another load, or ``loaded`` (waiting for the others; also a model another endpoint
        serves, in ``served``)."""
        now = self._clock()
        parts = []
        for spec in specs:
            load = self._loads.get(spec.key)
            if spec.key in served:
                parts.append(f"{spec.ref} (loaded)")
            elif load is not None:
                done = load.future.done()
                parts.append(f"{spec.ref} (loaded)" if done else
                             f"{spec.ref} ({now - load.started:.0f} s)")  # fmt: skip
            elif spec.key in self._queued:
                parts.append(f"{spec.ref} (queued)")
            else:
                parts.append(spec.ref)
        return "loading " + ", ".join(dict.fromkeys(parts))

    def served(self, keys: Iterable[str]) -> None:
        """These models are served now: the route table holds them, not this."""
        for key in keys:
            load = self._loads.get(key)
            if load is not None and load.future.done():
                del self._loads[key]

    def forget_unplanned(self, needed: Iterable[str]) -> None:
        """Unload the models of loads the plan no longer needs, now for those that ended, when
        they end for those still running (kept meanwhile, so none is started twice)."""
        needed = set(needed)
        self._queued = {k: s for k, s in self._queued.items() if k in needed}
        for key in [k for k in self._loads if k not in needed]:
            load = self._loads[key]
            if load.future.done():
                del self._loads[key]
                _close_loaded(load.future)

    def due(self) -> bool:
        """Whether the plan should be applied again: a load ended that no apply has taken, or
        one is queued and may start."""
        ended = any(load.future.done() and not load.taken for load in self._loads.values())
        return ended or (bool(self._queued) and self._running() < self._at_once)

    def close(self) -> None:
        """Unload what loaded and was not served; a load still running is unloaded when it
        ends (by its thread, once the future is cancelled or its loop gone)."""
        for load in self._loads.values():
            if load.future.done():
                _close_loaded(load.future)
                continue
            with contextlib.suppress(RuntimeError):  # its loop closed: the thread unloads it
                load.future.cancel()
        self._loads, self._queued = {}, {}

    def _running(self) -> int:
        """Loads running that have not run ``wait_s`` yet (those are presumed stuck)."""
        now = self._clock()
        return sum(
            1
            for load in self._loads.values()
            if not load.future.done() and now - load.started < self._wait_s
        )

    def _start(self, spec: ModelSpec) -> _Load:
        """Load ``spec`` on a thread of its own; its future gets the model, or why not."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Loaded] = loop.create_future()

        def run() -> None:
            outcome: Loaded
            try:
                outcome = (self._load(spec), None)
            except BaseException as exc:  # the thread's top: a model's sys.exit too
                outcome = (None, str(exc) if isinstance(exc, Exception) else repr(exc))
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the loop is gone (the server stopped): nobody takes it
                if outcome[0] is not None:
                    outcome[0].close()

        threading.Thread(target=run, name=f"modelyard-load-{spec.ref}", daemon=True).start()
        return _Load(spec, future, self._clock())


def _settle(future: asyncio.Future[Loaded], outcome: Loaded) -> None:
    """Give a load's outcome to its future; a model nobody waits for any more is unloaded."""
    if future.done():
        if outcome[0] is not None:
            outcome[0].close()
    else:
        future.set_result(outcome)


def _close_loaded(future: asyncio.Future[Loaded]) -> None:
    """Unload the model of an ended load nobody serves (its endpoints left the plan, or the
    server is stopping)."""
    if future.cancelled():
        return
    model = future.result()[0]
    if model is not None:
        model.close()
        log.info("unloaded %s, which no endpoint serves", model.spec.ref)
