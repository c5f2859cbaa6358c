"""Monitor schedules and their runs: the control plane of scheduled drift checks.

A schedule says "check endpoint E every 10 minutes (or on a cron expression) over the last
hour of captured traffic". :meth:`MonitorService.run_due`, called by the scheduler loop (in
``modelyard serve`` or ``modelyard monitor run``), runs every schedule's latest due tick under a
lease, so each tick runs once however many processes share the store. A tick missed while no
loop was running is not caught up: only the latest due tick runs. Each run is stored with its
reports and the drift scores alarms read.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from modelyard.domain.counts import limit_of
from modelyard.domain.drift import DriftConfig
from modelyard.domain.durations import MAX_WINDOW, length_of
from modelyard.domain.monitors import MonitorRun, MonitorSchedule, RunStatus
from modelyard.domain.references import validate_name
from modelyard.errors import InvalidInput, ModelyardError, NotFound
from modelyard.services.leased import default_holder, finished_elsewhere, run_leased
from modelyard.services.ticks import latest_tick, next_tick, validate_cron
from modelyard.storage.leases import LeaseStore
from modelyard.storage.monitoring import MonitorStore

log = logging.getLogger("modelyard.monitors")

#: The shortest interval between ticks (each tick is a drift run and a few writes).
MIN_EVERY = timedelta(seconds=10)
#: How long lease rows of past ticks are kept.
LEASE_RETENTION = timedelta(days=7)


class ScoredReport(Protocol):
    """What a drift run returns per variant (``modelyard.domain.drift.DriftReport``)."""

    @property
    def variant(self) -> str | None:
        """The variant the report is about."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The report's JSON form."""
        ...

    def scores(self) -> dict[str, float]:
        """Alarm-readable scores: ``drift.share``, ``drift.feature.<feature>`` …"""
        ...


class DriftRunner(Protocol):
    """Runs one drift check of ``endpoint`` over the ``window`` that ends at ``now``
    (``DriftService.drift``), one report per variant."""

    def __call__(
        self, endpoint: str, *, window: timedelta, now: datetime, config: DriftConfig | None
    ) -> Sequence[ScoredReport]: ...


def _clean(value: Any) -> Any:
    """``value`` with non-finite floats as None: JSON (and PostgreSQL's json) has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _scores(reports: Sequence[ScoredReport]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for report in reports:
        finite = {k: float(v) for k, v in report.scores().items() if math.isfinite(v)}
        out[report.variant or "*"] = finite
    return out


class MonitorService:
    """Schedules, the scheduler's pass, and the runs it stored.

    Args:
        store: Where schedules and runs live.
        leases: The lease store that makes each tick run once.
        runner: The drift check a run makes.
        check_endpoint: Raises EndpointNotFound for an endpoint that does not exist.
        clock: Now, timezone-aware UTC.
        holder: This process's name on the leases it takes (default ``host:pid``).
        lease_ttl: How long a lease lasts unless renewed (a dead holder's tick is taken over
            after that).
        run_retention: How long runs are kept (:meth:`prune`).
        drift_alarms: The names of the alarm rules on drift scores of an endpoint (none by
            default): those its unscheduling leaves without data.
    """

    def __init__(
        self,
        store: MonitorStore,
        leases: LeaseStore,
        runner: DriftRunner,
        *,
        check_endpoint: Callable[[str], object],
        clock: Callable[[], datetime],
        holder: str | None = None,
        lease_ttl: timedelta = timedelta(minutes=5),
        run_retention: timedelta = timedelta(days=30),
        drift_alarms: Callable[[str], Sequence[str]] = lambda _endpoint: (),
    ) -> None:
        self._store = store
        self._drift_alarms = drift_alarms
        self._leases = leases
        self._runner = runner
        self._check_endpoint = check_endpoint
        self._clock = clock
        self._holder = holder or default_holder()
        self._ttl = lease_ttl
        self._run_retention = run_retention
        # schedule name -> the last tick this process saw settled (ran here, or done elsewhere),
        # so a pass asks for each tick's lease only until it is settled.
        self._settled: dict[str, datetime] = {}

    # -- schedules -------------------------------------------------------------------------

    def schedule(
        self,
        endpoint: str,
        *,
        every: timedelta | str | None = None,
        cron: str | None = None,
        window: timedelta | str = timedelta(hours=1),
        drift_config: DriftConfig | None = None,
    ) -> tuple[MonitorSchedule, bool]:
        """Set (create or replace) the drift schedule of ``endpoint``; its runs compare with
        ``drift_config``'s thresholds (None: the defaults).

        Returns:
            The schedule, and whether it is new.

        Raises:
            EndpointNotFound; InvalidInput when not exactly one of ``every`` and ``cron`` is
            given, ``every`` is shorter than 10 s, the cron expression is malformed, or the
            window is not between 1 s and 31 days.
        """
        validate_name(endpoint, "endpoint name")
        # From Python any value may come: a wrong type is refused by name, not a TypeError.
        every = length_of(every, "the interval") if every is not None else None
        window = length_of(window, "the window")
        for what, value, kind in (
            ("cron expression", cron, str),
            ("drift config", drift_config, DriftConfig),
        ):
            if value is not None and not isinstance(value, kind):
                raise InvalidInput(f"the {what} must be a {kind.__name__}, got {value!r}")
        if (every is None) == (cron is None):
            raise InvalidInput("give the schedule either an interval or a cron expression")
        if every is not None and (every < MIN_EVERY or every.microseconds):
            raise InvalidInput(
                f"the interval must be a whole number of seconds, at least {MIN_EVERY.seconds}"
            )
        if cron is not None:
            cron = validate_cron(cron)
        if not timedelta(seconds=1) <= window <= MAX_WINDOW or window.microseconds:
            raise InvalidInput("the window must be a whole number of seconds, 1 s to 31 days")
        self._check_endpoint(endpoint)
        now = self._clock()
        new = MonitorSchedule(endpoint, endpoint, every, cron, window, now, now, drift_config)
        return self._store.put_schedule(new)

    def get(self, name: str) -> MonitorSchedule:
        """Raises NotFound."""
        return self._store.get_schedule(name)

    def schedules(self) -> list[MonitorSchedule]:
        """Every schedule, by name."""
        return self._store.list_schedules()

    def scheduled(self, endpoint: str) -> bool:
        """Whether ``endpoint``'s drift checks are scheduled."""
        try:
            self._store.get_schedule(endpoint)
        except NotFound:
            return False
        return True

    def unschedule(self, name: str) -> list[str]:
        """Stop scheduling ``name`` (its runs stay listed).

        Returns:
            The alarm rules on its drift scores, which get no data from now on (they are kept,
            as a CloudWatch alarm outlives the metric it watches, and say so when read).

        Raises:
            NotFound.
        """
        self._store.delete_schedule(name)
        return list(self._drift_alarms(name))

    def runs(self, name: str, limit: int = 50) -> list[MonitorRun]:
        """The runs of schedule ``name``, newest first, at most ``limit``.

        Raises:
            InvalidInput: ``limit`` is not from 1 to ``MAX_LIMIT``; NotFound: no schedule of
                that name, and no runs left by one.
        """
        runs = self._store.list_runs(name, limit_of(limit))
        if not runs:
            self._store.get_schedule(name)  # raises NotFound for an unknown name
        return runs

    def runs_between(self, endpoint: str, since: datetime, until: datetime) -> list[MonitorRun]:
        """The succeeded runs of ``endpoint`` whose tick is in ``[since, until)``, with their
        scores but not their reports (what alarms read)."""
        return self._store.runs_between(endpoint, since, until)

    # -- the scheduler's pass ----------------------------------------------------------------

    def run_due(self, now: datetime | None = None) -> list[MonitorRun]:
        """Run each schedule's latest due tick that no process has run yet (one pass of the
        scheduler loop). Each tick runs under its lease, in exactly one process.

        Returns:
            The runs this call made (a failed drift check is a run with status failed).
        """
        now = now or self._clock()
        done = []
        for schedule in self._store.list_schedules():
            tick = latest_tick(schedule, now)
            if tick is None or self._settled.get(schedule.name) == tick:
                continue
            lease = f"monitor:{schedule.name}"
            try:
                ran = run_leased(
                    self._leases,
                    lease,
                    tick,
                    functools.partial(self._run, schedule, tick),
                    holder=self._holder,
                    ttl=self._ttl,
                )
            except ModelyardError as exc:  # the store failed: this schedule waits for next pass
                log.warning("monitor %s not run at %s: %s", schedule.name, tick, exc.message)
                continue
            if ran is not None:
                done.append(ran.result)
                self._settled[schedule.name] = tick
            elif finished_elsewhere(self._leases, lease, tick):
                self._settled[schedule.name] = tick
        return done

    def _run(self, schedule: MonitorSchedule, tick: datetime) -> MonitorRun:
        self._store.start_run(
            MonitorRun(
                schedule=schedule.name,
                endpoint=schedule.endpoint,
                tick=tick,
                window=schedule.window,
                holder=self._holder,
                started_at=self._clock(),
            )
        )
        try:
            reports = list(
                self._runner(
                    schedule.endpoint,
                    window=schedule.window,
                    now=tick,
                    config=schedule.drift_config,
                )
            )
        except ModelyardError as exc:
            return self._finish(schedule, tick, error=exc.message)
        except Exception as exc:  # a bug in a drift test must not stop the scheduler
            log.exception("monitor %s failed at %s", schedule.name, tick.isoformat())
            return self._finish(schedule, tick, error=f"{type(exc).__name__}: {exc}")
        return self._store.finish_run(
            schedule.name,
            tick,
            status=RunStatus.SUCCEEDED,
            finished_at=self._clock(),
            reports=[_clean(r.to_dict()) for r in reports],
            scores=_scores(reports),
        )

    def _finish(self, schedule: MonitorSchedule, tick: datetime, *, error: str) -> MonitorRun:
        log.warning("monitor %s failed at %s: %s", schedule.name, tick.isoformat(), error)
        return self._store.finish_run(
            schedule.name, tick, status=RunStatus.FAILED, finished_at=self._clock(), error=error
        )

    def next_due(self, now: datetime | None = None) -> datetime | None:
        """When the next tick of any schedule falls (the loop sleeps until then at most)."""
        now = now or self._clock()
        ticks = [next_tick(s, now) for s in self._store.list_schedules()]
        return min(ticks) if ticks else None

    def prune(self, now: datetime | None = None) -> tuple[int, int]:
        """Forget runs older than the run retention, and the leases of ticks older than a week
        (the newest of each loop is kept). Returns how many runs and leases went."""
        now = now or self._clock()
        runs = self._store.prune_runs(now - self._run_retention)
        return runs, self._leases.prune(now - LEASE_RETENTION)
