"""Keeps the route table in step with the store: poll, load and warm, swap, drain, unload.

Order of an update: the new plan's models are loaded and warmed off the event loop while the
old table keeps serving; the new table replaces the old one in a single assignment (requests
already running hold their route and finish on it); models no longer referenced are unloaded
once their in-flight count drops to zero. An endpoint whose new models fail to load stays on
the route it had, and the failure is reported on ``/readyz``.

Loads run on threads of their own, and a plan change waits for its new models' loads for a
bounded time (``model_loads``): one whose models are still loading then goes through without
them, that endpoint keeping the route it had or, new, reported as loading.

Shadow variants predict on threads of their own (``shadow_executor``), never on the event
loop nor on the predict thread the answering variants share: a slow shadow delays no answer,
and (up to ``SHADOW_THREADS`` stuck at once) no other shadow.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from modelyard.domain import DeploymentPlan, EndpointPlan, ModelSpec, PlanSource
from modelyard.errors import ModelyardError
from modelyard.serving.batching import MicroBatcher
from modelyard.serving.loader import ServedModel
from modelyard.serving.model_loads import LOAD_WAIT_S, LoadModel, ModelLoads
from modelyard.serving.routing import StickyByKey, WeightedRandom
from modelyard.serving.table import EMPTY, EndpointRoute, RouteTable, VariantRoute

log = logging.getLogger("modelyard.serving")

#: Threads shadow variants predict on at most (see ``Deployer._shadow_pool``).
SHADOW_THREADS = 4

PolicyFor = Callable[[EndpointPlan], Any]  # the TrafficPolicy an endpoint routes with
_RETRY_FAILED_S = 5.0
#: A plan poll that has not returned after this many seconds is logged (see Deployer._revision).
_SLOW_READ_S = 30.0
_DRAIN_CHECK_S = 0.05

#: Packages whose types a skops model may trust and still predict with the runtime's own code.
_LIBRARIES = frozenset(("sklearn", "numpy", "scipy"))


def returns_for_sure(spec: ModelSpec) -> bool:
    """Whether ``spec``'s predict is the runtime's own code (a booster's, an estimator's),
    which computes and returns: only such a model may predict on the event loop when fast
    (see ``batching``). A pyfunc model's predict is the user's code, and a pickle may hold
    some: fast on most rows, it may block on one (a call out with no timeout, a lock, a loop
    on an input it never met), and on the event loop that stopped the whole worker, the
    predict timeout included. On the predict thread such a call is left to itself once stuck
    (``predict_thread``), for 50-200 µs a request of hand-off. So may a skops model with a
    type the user trusted outside scikit-learn, NumPy and SciPy (a transformer of their own,
    a ``FunctionTransformer``'s function). (A handler's ``input_fn`` and ``output_fn`` run
    around predict, not in it.)"""
    trust = spec.trust
    own = all(t.split(".", 1)[0] in _LIBRARIES for t in trust.types)
    return spec.flavor != "pyfunc" and not trust.pickle and own


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
        self._loads = ModelLoads(load, load_wait_s)
        self._slow_read_s = slow_read_s
        self.failures: dict[str, str] = {}
        # Endpoints of the plan with no route yet whose models are loading (see ``loading``).
        self._unserved: dict[str, EndpointPlan] = {}
        self._source = source
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
        return self._loaded and not self.failures and not self._unserved

    @property
    def loading(self) -> dict[str, str]:
        """Endpoints of the plan that have no route yet and wait for their models to load,
        each with ``loading <ref> (<seconds> s)``: deployed, and not ready, until they load."""
        served = {m.spec.key for m in self.table.served_models()}
        return {
            name: self._loads.status((v.model for v in endpoint.variants), served)
            for name, endpoint in self._unserved.items()
        }

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
        if revision != self._seen_revision or retry or self._loads.due():
            plan = await asyncio.to_thread(self._source.load_plan)
            await self.apply(plan)
        self._release_drained()

    async def apply(self, plan: DeploymentPlan) -> None:
        """Load what ``plan`` needs (for a bounded time: see ``model_loads``), then swap the
        route table in one step."""
        self._last_attempt = time.monotonic()
        current = {m.spec.key: m for m in self.table.served_models()}
        wanted = {k: spec for k, spec in plan.models().items() if k not in current}
        self._unserved = {
            name: endpoint
            for name, endpoint in plan.endpoints.items()
            if name not in self.table.endpoints
            and any(v.model.key in wanted for v in endpoint.variants)
        }
        fresh, broken = await self._loads.gather(wanted)
        loaded = {**current, **fresh}
        endpoints: dict[str, EndpointRoute] = {}
        failures: dict[str, str] = {}
        unserved: dict[str, EndpointPlan] = {}
        for name, endpoint in plan.endpoints.items():
            keys = [v.model.key for v in endpoint.variants]
            problems = [broken[k] for k in keys if k in broken]
            if problems:
                failures[name] = "; ".join(problems)
            if problems or any(k not in loaded for k in keys):
                if name in self.table.endpoints:  # keep serving what worked before
                    endpoints[name] = self.table.endpoints[name]
                elif not problems:
                    unserved[name] = endpoint
                continue
            endpoints[name] = self._route(endpoint, loaded)
        old = self.table
        self.table = RouteTable(revision=plan.revision, endpoints=endpoints)
        self._unserved = unserved
        self.failures = failures
        self._seen_revision = plan.revision
        self._loaded = True
        kept = self.table.served_models()
        self._loads.served(m.spec.key for m in kept)
        self._loads.forget_unplanned(plan.models())
        self._retired.extend(m for m in old.served_models() if m not in kept)
        self._last_attempt = time.monotonic()  # a retry comes _RETRY_FAILED_S after this one
        log.info("serving plan revision %s: %s endpoint(s)", plan.revision, len(endpoints))

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
        self._loads.close()
        self.table = EMPTY
        self._retired = []
        if self._own_shadow_executor and self._shadow_executor is not None:
            # Not waited for: a shadow stuck in its model must not hold up the shutdown.
            self._shadow_executor.shutdown(wait=False, cancel_futures=True)
            self._shadow_executor = None
            self._own_shadow_executor = False
