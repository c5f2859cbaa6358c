"""Real parts for the monitor and alarm service tests: a migrated store (SQLite or PostgreSQL)
with a registered model (signature features ``age`` and ``tenure``) and an endpoint
``churn-api`` serving it as variants ``blue`` and ``green``; a clock the test sets; and a small
drift runner whose reports carry the scores a test chooses.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modelyard.domain import ColumnSpec, ModelRef, Signature, Source, Trust, Variant
from modelyard.services.alarm_endpoints import EndpointCatalog
from modelyard.services.alarms import AlarmService, SeriesReader, drift_alarms
from modelyard.services.monitors import MonitorService
from modelyard.storage.base import NewVersion
from modelyard.storage.sql.alarm_store import SqlAlarmStore
from modelyard.storage.sql.endpoint_store import SqlEndpointStore
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.lease_store import SqlLeaseStore
from modelyard.storage.sql.monitor_store import SqlMonitorStore
from modelyard.storage.sql.store import SqlMetadataStore

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
ENDPOINT = "churn-api"


class Clock:
    """Now, as the test sets it."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Report:
    """A drift report as a runner returns it (the shape of ``DriftReport``)."""

    variant: str | None
    values: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "scores": dict(self.values)}

    def scores(self) -> dict[str, float]:
        return dict(self.values)


@dataclass
class Runner:
    """Runs a "drift check" by recording the call and returning ``reports(now)``; raises what
    ``fail`` returns for a tick, if anything."""

    reports: Callable[[datetime], list[Report]] = lambda now: [Report("blue", {"drift.share": 0.0})]
    fail: Callable[[datetime], Exception | None] = lambda now: None
    calls: list[tuple[str, timedelta, datetime]] = field(default_factory=list)
    configs: list[Any] = field(default_factory=list)  # the drift config of each call
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self, endpoint: str, *, window: timedelta, now: datetime, config: Any = None
    ) -> list[Report]:
        with self.lock:
            self.calls.append((endpoint, window, now))
            self.configs.append(config)
        error = self.fail(now)
        if error is not None:
            raise error
        return self.reports(now)


def no_series(endpoint: str, name: str, **_: Any) -> list[Any]:
    return []


@dataclass
class Parts:
    """One store's stores, and services built on them."""

    engine: Any
    clock: Clock

    def __post_init__(self) -> None:
        self.metadata = SqlMetadataStore(self.engine)
        self.endpoint_store = SqlEndpointStore(self.engine)
        self.leases = SqlLeaseStore(self.engine)
        self.monitor_store = SqlMonitorStore(self.engine)
        self.alarm_store = SqlAlarmStore(self.engine)

    def monitors(self, runner: Runner, holder: str = "one") -> MonitorService:
        return MonitorService(
            self.monitor_store,
            self.leases,
            runner,
            check_endpoint=self.endpoint_store.get_endpoint,
            clock=self.clock,
            holder=holder,
            drift_alarms=functools.partial(drift_alarms, self.alarm_store),
        )

    def alarms(
        self,
        series: SeriesReader = no_series,
        holder: str = "one",
        settle: timedelta = timedelta(0),
    ) -> AlarmService:
        """The alarm service over these stores (``settle``: how long after a window ends it
        is judged; the servers' default is 30 s)."""
        catalog = EndpointCatalog(
            self.endpoint_store.get_endpoint,
            lambda ref: self.metadata.get_version(ModelRef.parse(ref)),
        )
        return AlarmService(
            self.alarm_store,
            self.leases,
            series=series,
            runs=self.monitor_store.runs_between,
            endpoints=catalog,
            clock=self.clock,
            settle=settle,
            holder=holder,
            scheduled=self.monitors(Runner()).scheduled,
        )

    def close(self) -> None:
        self.engine.dispose()


def open_parts(url: str, clock: Clock | None = None, *, seed: bool = True) -> Parts:
    """The stores at ``url`` (schema created); with ``seed``, model ``churn:1`` and endpoint
    ``churn-api`` (variants blue and green) are created first."""
    parts = Parts(make_engine(url), clock or Clock())
    if seed:
        signature = Signature((ColumnSpec("float64", "age"), ColumnSpec("float64", "tenure")))
        parts.metadata.create_version(
            NewVersion(
                name="churn",
                flavor="xgboost",
                model_format="ubj",
                artifact_digest="ab" * 32,
                size_bytes=1,
                source=Source("upload"),
                trust=Trust(),
                signature=signature,
            )
        )
        parts.endpoint_store.create_endpoint(
            ENDPOINT,
            (Variant("blue", "churn", 1, 0.5), Variant("green", "churn", 1, 0.5)),
        )
    return parts
