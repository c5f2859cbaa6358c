"""Real parts for the deployment tests: a migrated store (SQLite or PostgreSQL) with model
versions ``churn:1`` … ``churn:3`` and an endpoint ``churn-api`` serving ``churn:1`` as variant
``main``; the deployment service and controller built from the real stores (the wiring
``bootstrap`` does, with a model check that loads nothing); per-minute metric rows written
through the real metric store as server workers write them; server reports through the real
server registry; and a clock the test sets.
"""

from __future__ import annotations

import bisect
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modelyard.domain import ModelRef, ServerStatus, Source, Trust, Variant
from modelyard.domain.deployment_decisions import Action
from modelyard.domain.metric_stats import LATENCY_BOUNDS_S, MetricStats
from modelyard.domain.metrics import SeriesRow
from modelyard.services.alarm_endpoints import EndpointCatalog
from modelyard.services.alarms import AlarmService
from modelyard.services.deployment_controller import DeploymentController
from modelyard.services.deployment_guards import watching
from modelyard.services.deployments import DeploymentService
from modelyard.services.endpoints import EndpointService, PredictorCheck
from modelyard.services.metrics import MetricsService
from modelyard.services.servers import ServerService
from modelyard.storage.base import NewVersion
from modelyard.storage.sql.alarm_store import SqlAlarmStore
from modelyard.storage.sql.deployment_store import SqlDeploymentStore
from modelyard.storage.sql.endpoint_store import SqlEndpointStore
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.lease_store import SqlLeaseStore
from modelyard.storage.sql.metric_store import SqlMetricStore
from modelyard.storage.sql.monitor_store import SqlMonitorStore
from modelyard.storage.sql.server_store import SqlServerStore
from modelyard.storage.sql.store import SqlMetadataStore

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
ENDPOINT = "churn-api"
STEP = timedelta(seconds=5)  # the controller's period in these tests


class Clock:
    """Now, as the test sets it."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> datetime:
        self.now += by
        return self.now


def not_loaded(version: Any, predictor: Any) -> PredictorCheck:
    """The model check of these tests: the versions have no artifact to load."""
    return PredictorCheck("native", "native: not loaded in these tests")


def served_stats(requests: int, errors: int = 0, latency_s: float = 0.01) -> MetricStats:
    """What a server worker sums for ``requests`` answered in ``latency_s`` each, ``errors``
    of them with a server error (as ``serving/metrics_drain.py`` adds them up)."""
    stats = MetricStats()
    stats.add("requests", requests)
    stats.add("latency_s", requests * latency_s)
    bucket = bisect.bisect_left(LATENCY_BOUNDS_S, latency_s)
    stats.add(f"lat.{bucket}", requests)
    if errors:
        stats.add("errors", errors)
        stats.add("server_errors", errors)
    return stats


@dataclass
class Parts:
    """One store's stores, and the services built on them."""

    url: str
    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.url)
        self.metadata = SqlMetadataStore(self.engine)  # creates the schema
        self.endpoint_store = SqlEndpointStore(self.engine)
        self.deployment_store = SqlDeploymentStore(self.engine)
        self.leases = SqlLeaseStore(self.engine)
        self.alarm_store = SqlAlarmStore(self.engine)
        self.metric_store = SqlMetricStore(self.engine, prune_every_s=0)
        self.server_store = SqlServerStore(self.engine)
        self.monitor_store = SqlMonitorStore(self.engine)
        self.endpoints = EndpointService(
            self.endpoint_store, resolve=self.metadata.get_version, check_model=not_loaded
        )
        self.metrics = MetricsService(self.metric_store, self.endpoint_store, clock=self.clock)
        self.alarms = AlarmService(
            self.alarm_store,
            self.leases,
            series=self.metrics.series,
            runs=self.monitor_store.runs_between,
            endpoints=EndpointCatalog(
                self.endpoints.get, lambda ref: self.metadata.get_version(ModelRef.parse(ref))
            ),
            clock=self.clock,
            settle=timedelta(0),
            watched_by=functools.partial(watching, self.deployment_store),
            scheduled=lambda endpoint: True,
        )
        self.servers = ServerService(self.server_store, self.endpoint_store, stale_after=3)
        self.service = DeploymentService(
            self.deployment_store,
            self.endpoint_store,
            build=self.endpoints._build,  # EndpointService's build step (see the report)
            alarms=self.alarms,
            update=self.endpoints.update_if_changed,
            rollback=self.endpoints.rollback,
            promote=self.endpoints.promote,
            clock=self.clock,
        )

    def controller(self, holder: str = "one", store: Any = None) -> DeploymentController:
        return DeploymentController(
            store or self.deployment_store,
            self.endpoint_store,
            self.leases,
            rows=self.metric_store.read,
            alarms=self.alarms,
            servers=self.servers.for_endpoint,
            clock=self.clock,
            period=STEP,
            holder=holder,
        )

    # -- the world the controller watches ------------------------------------------------------

    def serve(
        self,
        variant: str,
        minute: datetime,
        requests: int,
        errors: int = 0,
        latency_s: float = 0.01,
        worker: str = "vm:1:0",
    ) -> None:
        """Write what one worker served of ``variant`` in ``minute`` (replacing its row)."""
        start = minute.astimezone(UTC).replace(second=0, microsecond=0)
        stats = served_stats(requests, errors, latency_s)
        self.metric_store.write([SeriesRow(ENDPOINT, variant, start, 60, worker, stats)])

    def report(self, config: int, pid: int = 1, failure: str | None = None) -> None:
        """A live server serving ``config`` of the endpoint (or failing to load the next)."""
        self.server_store.report(
            ServerStatus(
                host="vm",
                pid=pid,
                url=None,
                revision=self.endpoint_store.revision(),
                heartbeat_s=3600.0,
                started_at=T0,
                endpoints={ENDPOINT: config},
                failures={ENDPOINT: failure} if failure else {},
            )
        )

    def weights(self) -> dict[str, float]:
        """The endpoint's current variants and weights."""
        return {v.name: round(v.weight, 6) for v in self.current_variants()}

    def current_variants(self) -> Sequence[Variant]:
        return self.endpoint_store.get_endpoint(ENDPOINT).config.variants

    def close(self) -> None:
        self.engine.dispose()


def open_parts(url: str, clock: Clock | None = None, *, seed: bool = True) -> Parts:
    """The stores at ``url``; with ``seed``, versions churn:1..3 and endpoint churn-api
    (``main`` = churn:1) are created first."""
    parts = Parts(url, clock or Clock())
    if seed:
        for _ in range(3):
            parts.metadata.create_version(
                NewVersion(
                    name="churn",
                    flavor="xgboost",
                    model_format="ubj",
                    artifact_digest=os.urandom(32).hex(),
                    size_bytes=1,
                    source=Source("upload"),
                    trust=Trust(),
                )
            )
        parts.endpoint_store.create_endpoint(ENDPOINT, (Variant("main", "churn", 1, 1.0),))
    return parts


def traffic(parts: Parts, minutes: int, new_share: float, *, errors_new: int = 0,
            errors_old: int = 0, latency_new: float = 0.01) -> None:  # fmt: skip
    """``minutes`` minutes of 400 requests a minute from now on, split by ``new_share``
    between ``main`` and the running deployment's new side."""
    d = parts.service.get(ENDPOINT)
    new = d.served_names["main"]
    for i in range(minutes):
        minute = parts.clock.now + i * timedelta(minutes=1)
        n_new = round(400 * new_share)
        parts.serve(new, minute, n_new, errors_new, latency_new)
        if n_new < 400:
            parts.serve("main", minute, 400 - n_new, errors_old)


def tick(parts: Parts, by: timedelta = STEP) -> list[Action]:
    """One controller pass ``by`` later; the actions it took."""
    return [d.action for d in parts.controller().run_once(parts.clock.advance(by))]
