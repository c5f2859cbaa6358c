"""Keeps the route table in step with the store: poll, load and warm, swap, drain, unload.

Order of an update: the new plan's models are loaded and warmed off the event loop while the
old table keeps serving; the new table replaces the old one in a single assignment (requests
already running hold their route and finish on it); models no longer referenced are unloaded
once their in-flight count drops to zero. An endpoint whose new models fail to load stays on
the route it had, and the failure is reported on ``/readyz``.

A load runs on a thread of its own, and a plan change waits for its new models' loads at most
``load_wait_s`` in all: a load that hangs (a handler's ``model_fn`` waiting on a network call,
a lock) held up that plan and every plan after it, other endpoints' updates and rollbacks
included, and at startup kept the server from listening at all. A load still running then
goes on in the background; the plan is applied without it (that endpoint keeps the route it
had, or, new, is reported as loading), and the first poll after it ends takes its model, or
its failure. A load is never started twice at once; a model that loads after its endpoint left
the plan is unloaded.

Shadow variants predict on threads of their own (``shadow_executor``), never on the event
loop nor on the predict thread the answering variants share: a slow shadow delays no answer,
and (up to ``SHADOW_THREADS`` stuck at once) no other shadow.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from modelyard.domain import DeploymentPlan, EndpointPlan, ModelSpec, PlanSource
from modelyard.errors import ModelyardError
from modelyard.serving.batching import MODEL_RAISES, MicroBatcher
from modelyard.serving.loader import ServedModel
from modelyard.serving.routing import StickyByKey, WeightedRandom
from modelyard.serving.table import EMPTY, EndpointRoute, RouteTable, VariantRoute

log = logging.getLogger("modelyard.serving")

#: Threads shadow variants predict on at most (see ``Deployer._shadow_pool``).
SHADOW_THREADS = 4

LoadModel = Callable[[ModelSpec], ServedModel]
PolicyFor = Callable[[EndpointPlan], Any]  # the TrafficPolicy an endpoint routes with
_RETRY_FAILED_S = 5.0
#: A plan poll that has not returned after this many seconds is logged (see Deployer._revision).
_SLOW_READ_S = 30.0
_DRAIN_CHECK_S = 0.05
#: How long one plan change waits for its new models' loads, in all, before it is applied
#: without those still loading (they go on, and are taken when they end).
LOAD_WAIT_S = 30.0
#: What a load ends with: the model, or why it could not load.
Loaded = tuple[ServedModel | None, str | None]


@dataclass(eq=False)
class _Load:
    """A model load running on its own thread (see the module docstring)."""

    spec: ModelSpec
    future: asyncio.Future[Loaded]
    started: float  # time.monotonic()


def returns_for_sure(spec: ModelSpec) -> bool:
    """Whether ``spec``'s predict is the runtime's own code (a booster's, an estimator's),
    which computes and returns: only such a model may predict on the event loop when fast
    (see ``batching``). A pyfunc model's predict is the user's code, and a pickle may hold
    some: fast on most rows, it may block on one (a call out with no timeout, a lock, a loop
    on an input it never met), and on the event loop that stopped the whole worker, the
    predict timeout included. On the predict thread such a call is left to itself once stuck
    (``predict_thread``), for 50-200 µs a request of hand-off."""
    return spec.flavor != "pyfunc" and not spec.trust.pickle


def default_policy(endpoint: EndpointPlan) -> Any:
    """Weighted random, sticky for requests that carry a routing key."""
    return StickyByKey(WeightedRandom())


class Deployer:
    """Owns the current :class:`RouteTable` of one server process.

    Args:
        source: Where the deployment plan is read.
        load: Loads and warms one model version (off the event loop).
        predict_executor: Where the answering variants' models predict.
        poll_interval_s: How often ``source``'s revision is checked.
        policy_for: The traffic policy of an endpoint (default: :func:`default_policy`).
        shadow_executor: Where shadow variants' models predict (default: up to
            ``SHADOW_THREADS`` threads of the deployer's own, started with the first shadow
            and stopped by :meth:`close`).
        draw: Numbers in [0, 1) for sampling shadows (see ``EndpointRoute``).
        slow_read_s: A plan poll running this long is logged (see :meth:`_revision`).
        load_wait_s: How long a plan change waits for its new models' loads in all before it
            is applied without those still loading (see the module docstring).
    """

    def __init__(
        self,
        source: PlanSource,
        load: LoadModel,
        predict_executor: Executor,
        poll_interval_s: float = 0.5,
        policy_for: PolicyFor | None = None,
        shadow_executor: Executor | None = None,
        draw: Callable[[], float] = random.random,
        slow_read_s: float = _SLOW_READ_S,
        load_wait_s: float = LOAD_WAIT_S,
    ) -> None:
        self.table: RouteTable = EMPTY
        self._load_wait_s = load_wait_s
        self._loads: dict[str, _Load] = {}  # by model key: loads still running, or not taken
        self._slow_read_s = slow_read_s
        self.failures: dict[str, str] = {}
        #: Endpoints of the plan that have no route yet and wait for their models to load,
        #: with what is loading: they are deployed, and not ready, until their models load.
        self.loading: dict[str, str] = {}
        self._source = source
        self._load = load
        self._executor = predict_executor
        self._poll = poll_interval_s
        self._loaded = False
        self._retired: list[ServedModel] = []
        self._last_attempt = 0.0
        self._seen_revision = -1
        self._policy_for = policy_for or default_policy
        self._shadow_executor = shadow_executor
        self._own_shadow_executor = False
        self._draw = draw

    @property
    def retired(self) -> tuple[ServedModel, ...]:
        """Models replaced by a newer plan that still have requests in flight."""
        return tuple(self._retired)

    @property
    def loaded(self) -> bool:
        """True once the first plan has been applied (whatever failed to load in it)."""
        return self._loaded

    @property
    def ready(self) -> bool:
        """True once the first plan is applied and every deployed model loaded and warmed
        (none failed, and no endpoint deployed since waits for its models to load)."""
        return self._loaded and not self.failures and not self.loading

    async def run(self) -> None:
        """Poll the plan source forever (cancel to stop).

        While the store is unreachable the current table keeps serving and every tick tries
        again; the outage is logged once when it starts and once when it ends.
        """
        failed_polls = 0
        while True:
            try:
                await self.sync()
            except ModelyardError as exc:  # the store is down or locked: try again next tick
                if not failed_polls:  # one line per outage, not a traceback per tick
                    log.warning(
                        "could not refresh the deployment plan (still serving revision %s, "
                        "retrying every %ss): %s",
                        self.table.revision,
                        self._poll,
                        exc.message,
                    )
                failed_polls += 1
            except Exception:  # a bug must not kill the poller either
                log.exception("could not refresh the deployment plan")
            else:
                if failed_polls:
                    log.warning(
                        "deployment plan refreshed again after %s failed polls", failed_polls
                    )
                    failed_polls = 0
            await asyncio.sleep(self._poll)

    async def _revision(self) -> int:
        """The store's plan revision. A read that has not returned after ``slow_read_s`` is
        logged, once, and again when it does: a database that accepts a connection and never
        answers (a proxy, a firewall keeping the connection) left the server on its old plan
        with no line saying so. The read is waited for, not abandoned (its thread cannot be
        stopped, and a second one would only wait behind it)."""
        read = asyncio.ensure_future(asyncio.to_thread(self._source.revision))
        done, _ = await asyncio.wait({read}, timeout=self._slow_read_s)
        if done:
            return read.result()
        started = time.monotonic() - self._slow_read_s
        log.warning(
            "the store has not answered the deployment plan poll in %ss (still serving "
            "revision %s); waiting for it",
            self._slow_read_s,
            self.table.revision,
        )
        revision = await read  # a cancel (the server stopping) says nothing more
        log.warning("the deployment plan poll returned after %.0fs", time.monotonic() - started)
        return revision

    async def sync(self) -> None:
        """Apply the store's plan if its revision moved (or a failed load is due a retry)."""
        revision = await self._revision()
        retry = self.failures and time.monotonic() - self._last_attempt > _RETRY_FAILED_S
        landed = any(load.future.done() for load in self._loads.values())
        if revision != self._seen_revision or retry or landed:
            plan = await asyncio.to_thread(self._source.load_plan)
            await self.apply(plan)
        self._release_drained()

    async def apply(self, plan: DeploymentPlan) -> None:
        """Load what ``plan`` needs, then swap the route table in one step."""
        self._last_attempt = time.monotonic()
        current = {m.spec.key: m for m in self.table.served_models()}
        loaded: dict[str, ServedModel] = {}
        broken: dict[str, str] = {}
        self.loading = {**self.loading, **self._waiting(plan, current)}
        await self._load_new(plan, current, loaded, broken)
        self._forget_unplanned(plan)
        endpoints: dict[str, EndpointRoute] = {}
        failures: dict[str, str] = {}
        loading: dict[str, str] = {}
        for name, endpoint in plan.endpoints.items():
            problems = [broken[v.model.key] for v in endpoint.variants if v.model.key in broken]
            running = [self._loads[v.model.key] for v in endpoint.variants
                       if v.model.key in self._loads]  # fmt: skip
            if problems or running:
                if problems:
                    failures[name] = "; ".join(problems)
                if name in self.table.endpoints:  # keep serving what worked before
                    endpoints[name] = self.table.endpoints[name]
                elif running and not problems:
                    loading[name] = _still_loading(running)
                continue
            endpoints[name] = self._route(endpoint, loaded)
        self.loading = loading
        old = self.table
        self.table = RouteTable(revision=plan.revision, endpoints=endpoints)
        self.failures = failures
        self._seen_revision = plan.revision
        self._loaded = True
        kept = self.table.served_models()
        self._retired.extend(m for m in old.served_models() if m not in kept)
        self._retired.extend(m for k, m in loaded.items() if m not in kept and k not in current)
        log.info("serving plan revision %s: %s endpoint(s)", plan.revision, len(endpoints))

    def _waiting(self, plan: DeploymentPlan, current: dict[str, ServedModel]) -> dict[str, str]:
        """The endpoints of ``plan`` that have no route yet and a model to load, each with
        ``"loading <refs>"``."""
        waiting = {}
        for name, endpoint in plan.endpoints.items():
            refs = [v.model.ref for v in endpoint.variants if v.model.key not in current]
            if refs and name not in self.table.endpoints:
                waiting[name] = "loading " + ", ".join(dict.fromkeys(refs))
        return waiting

    async def _load_new(
        self,
        plan: DeploymentPlan,
        current: dict[str, ServedModel],
        loaded: dict[str, ServedModel],
        broken: dict[str, str],
    ) -> None:
        """Into ``loaded``, every model of ``plan`` that is loaded (those ``current`` serves as
        they are); into ``broken``, why each that could not load did not. Loads are started one
        after another, each waited for until ``load_wait_s`` from the start has passed; those
        not ended by then stay in ``_loads``, running."""
        deadline = time.monotonic() + self._load_wait_s
        for key, spec in plan.models().items():
            if key in current:
                loaded[key] = current[key]
                continue
            load = self._loads.get(key)
            if load is None:
                load = self._loads[key] = _Load(spec, self._start(spec), time.monotonic())
                wait = deadline - time.monotonic()
                if wait > 0:
                    await asyncio.wait({load.future}, timeout=wait)
            if not load.future.done():
                log.warning("%s has been loading for %.0f s; %s",
                            spec.ref, time.monotonic() - load.started,
                            "its endpoints wait for it, the rest of the plan does not")  # fmt: skip
                continue
            del self._loads[key]
            model, reason = load.future.result()
            if model is not None:
                loaded[key] = model
            else:
                broken[key] = f"{spec.ref} failed to load: {reason}"
                log.error("%s", broken[key])

    def _start(self, spec: ModelSpec) -> asyncio.Future[Loaded]:
        """Load ``spec`` on a thread of its own (a load that hangs keeps only that thread);
        the future gets the model, or why it failed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Loaded] = loop.create_future()

        def run() -> None:
            outcome: Loaded
            try:
                outcome = (self._load(spec), None)
            except MODEL_RAISES as exc:  # a model's code calling sys.exit too
                outcome = (None, str(exc) if isinstance(exc, Exception) else repr(exc))
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the loop is gone (the server stopped): nobody takes it
                if outcome[0] is not None:
                    outcome[0].close()

        threading.Thread(target=run, name=f"modelyard-load-{spec.ref}", daemon=True).start()
        return future

    def _forget_unplanned(self, plan: DeploymentPlan) -> None:
        """Loads of models ``plan`` no longer has: each model is unloaded when it ends."""
        needed = plan.models()
        for key in [k for k in self._loads if k not in needed]:
            self._loads.pop(key).future.add_done_callback(_close_loaded)

    def _route(self, endpoint: EndpointPlan, loaded: dict[str, ServedModel]) -> EndpointRoute:
        previous = self.table.endpoints.get(endpoint.name)
        variants = {}
        for v in endpoint.variants:
            served = loaded[v.model.key]
            shadow = v.shadow is not None
            old = previous.variants.get(v.name) if previous else None
            if (
                old is not None
                and old.served is served
                and old.batcher.options == v.batching
                and (old.shadow is not None) == shadow  # promoted: the other thread now
            ):
                batcher = old.batcher  # weights-only change: keep the warm batcher
            elif shadow:
                batcher = MicroBatcher(
                    served.model.predict, v.batching, self._shadow_pool(), inline=False
                )
            else:
                batcher = MicroBatcher(
                    served.model.predict,
                    v.batching,
                    self._executor,
                    served.choice.row_s,
                    inline=returns_for_sure(served.spec),
                )
            variants[v.name] = VariantRoute(
                v.name, served, batcher, v.weight, v.capture, endpoint.capture_salt, shadow=v.shadow
            )
        return EndpointRoute(
            endpoint.name,
            endpoint.config_number,
            variants,
            self._policy_for(endpoint),
            draw=self._draw,
        )

    def _shadow_pool(self) -> Executor:
        if self._shadow_executor is None:
            # A thread per busy shadow, up to SHADOW_THREADS: each shadow has at most one batch
            # running (its lane in ``shadow``), so one stuck in its model does not hold the
            # others' batches up; with one shadow, one thread.
            self._shadow_executor = ThreadPoolExecutor(
                SHADOW_THREADS, thread_name_prefix="modelyard-shadow"
            )
            self._own_shadow_executor = True
        return self._shadow_executor

    def _release_drained(self) -> None:
        still = []
        for model in self._retired:
            if model.inflight == 0:
                model.close()
                log.info("unloaded %s", model.spec.ref)
            else:
                still.append(model)
        self._retired = still

    async def drain_loop(self) -> None:
        """Unload retired models as soon as their last request finishes (cancel to stop)."""
        while True:
            await asyncio.sleep(_DRAIN_CHECK_S)
            if self._retired:
                self._release_drained()

    def close(self) -> None:
        """Unload everything (server shutdown); a load still running is unloaded when it ends."""
        for model in [*self.table.served_models(), *self._retired]:
            model.close()
        for load in self._loads.values():
            load.future.add_done_callback(_close_loaded)
            load.future.cancel()
        self._loads = {}
        self.table = EMPTY
        self._retired = []
        if self._own_shadow_executor and self._shadow_executor is not None:
            # Not waited for: a shadow stuck in its model must not hold up the shutdown.
            self._shadow_executor.shutdown(wait=False, cancel_futures=True)
            self._shadow_executor = None
            self._own_shadow_executor = False


def _settle(future: asyncio.Future[Loaded], outcome: Loaded) -> None:
    """Give a load's outcome to its future; a model nobody waits for any more is unloaded."""
    if future.done():
        if outcome[0] is not None:
            outcome[0].close()
    else:
        future.set_result(outcome)


def _close_loaded(future: asyncio.Future[Loaded]) -> None:
    """Unload the model of a load whose endpoint left the plan (or the server stopped)."""
    if not future.cancelled() and future.result()[0] is not None:
        model = future.result()[0]
        assert model is not None
        model.close()
        log.info("unloaded %s, loaded after its endpoints left the plan", model.spec.ref)


def _still_loading(loads: list[_Load]) -> str:
    """``loading <refs>`` of an endpoint waiting for these loads, with how long they took."""
    now = time.monotonic()
    refs = dict.fromkeys(f"{load.spec.ref} ({now - load.started:.0f} s)" for load in loads)
    return "loading " + ", ".join(refs)
