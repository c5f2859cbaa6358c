"""The scheduler loop: batch schedules, monitor schedules and alarm evaluation, pass after pass,
until stopped.

It runs in a process of its own, started by ``modelyard serve`` beside its server workers (never
in their request path) or by ``modelyard scheduler`` (``modelyard monitor run`` is the same
loop). Any number of such loops may share a store: each tick of a schedule and each window of
an alarm runs in one of them (leases).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from modelyard.domain.alarms import AlarmEvent
from modelyard.domain.deployment_decisions import Decision
from modelyard.domain.monitors import MonitorRun
from modelyard.domain.schedules import ScheduleRun
from modelyard.errors import ModelyardError
from modelyard.services.alarms import AlarmService
from modelyard.services.deployment_controller import DeploymentController
from modelyard.services.monitors import MonitorService
from modelyard.services.schedules import ScheduleService

log = logging.getLogger("modelyard.scheduler")

#: How often the housekeeping chores run (old runs and lease rows pruned …).
_PRUNE_EVERY = timedelta(hours=1)
#: A gap between two passes longer than the loop's wait and this: the loop was not running.
_BREAK = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass did: the monitor runs it made, the alarm state changes it recorded, the
    runs of batch schedules it made (``scheduled``) and the deployment steps it decided."""

    runs: list[MonitorRun] = field(default_factory=list)
    events: list[AlarmEvent] = field(default_factory=list)
    scheduled: list[ScheduleRun] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


class Scheduler:
    """Runs :meth:`ScheduleService.run_due`, :meth:`MonitorService.run_due`,
    :meth:`AlarmService.record`, the deployment controller and :meth:`AlarmService.notify`
    in passes.

    Args:
        monitors: The monitor service.
        alarms: The alarm service.
        schedules: The batch schedules' service (none: the loop runs monitors and alarms only).
        deployments: The deployment controller (none: deployments are driven elsewhere).
        clock: Now, timezone-aware UTC (default: the system clock).
        poll_s: The longest wait between passes: schedules and rules set by other processes
            are seen within it.
        housekeeping: Chores run once an hour with the time (``MetricsService.prune``
            applies the metric series' retention), besides pruning old runs and leases.
    """

    def __init__(
        self,
        monitors: MonitorService,
        alarms: AlarmService,
        *,
        schedules: ScheduleService | None = None,
        deployments: DeploymentController | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_s: float = 2.0,
        housekeeping: Sequence[Callable[[datetime], object]] = (),
    ) -> None:
        self._monitors = monitors
        self._alarms = alarms
        self._schedules = schedules
        self._deployments = deployments
        self._clock = clock
        self._poll_s = poll_s
        own = (monitors.prune,) if schedules is None else (monitors.prune, schedules.prune)
        self._chores: tuple[Callable[[datetime], object], ...] = (*own, *housekeeping)
        self._pruned: datetime | None = None
        # When the previous pass began and ended: a batch tick that came due during a long
        # pass was held up, not missed (see ``ScheduleService.run_due``).
        self._began: datetime | None = None
        self._ended: datetime | None = None
        self._slept = slept_s()  # at the previous pass's start
        self._slept_since = 0.0  # between the previous pass's start and this one's

    def run_once(self, now: datetime | None = None) -> Pass:
        """One pass: every due batch schedule tick (first: a submission is quick and its
        lateness counts), every due monitor tick, every due alarm window, one evaluation of
        every running deployment, then the alarms' notifications (and their due retries)."""
        now = now or self._clock()
        slept, self._slept = self._slept, slept_s()
        self._slept_since = self._slept - slept
        looking_since = self._looking_since(now)
        self._began = now
        try:
            return self._pass(now, looking_since)
        finally:
            self._ended = max(now, self._clock())

    def _looking_since(self, now: datetime) -> datetime | None:
        """When the previous pass began, if this one follows it without a break (no longer
        than the loop's wait, and a minute, after it ended); else None."""
        if self._began is None or self._ended is None:
            return None
        if now - self._ended > timedelta(seconds=self._poll_s) + _BREAK:
            return None  # the loop was not running (the process stopped, say)
        if self._slept_since > _BREAK.total_seconds():
            return None  # the machine slept, during the previous pass or after it
        return self._began

    def _pass(self, now: datetime, looking_since: datetime | None) -> Pass:
        scheduled = (
            self._schedules.run_due(now, looking_since) if self._schedules is not None else []
        )
        done = Pass(self._monitors.run_due(now), self._alarms.record(now), scheduled)
        try:
            if self._deployments is not None:  # after the alarms: a fresh ALARM counts at once
                done.decisions.extend(self._deployments.run_once(now))
        finally:
            # Then the sinks, whatever the deployments did: a receiver that hangs must not
            # hold a rollback back by its timeout.
            done.events[:] = self._alarms.notify(done.events, now)
        if self._pruned is None or now - self._pruned >= _PRUNE_EVERY:
            self._pruned = now
            for chore in self._chores:
                try:
                    chore(now)
                except ModelyardError as exc:  # retried next hour; the pass itself is done
                    log.warning("housekeeping %s failed: %s", _name(chore), exc.message)
                except Exception:  # a chore's defect must not cost the pass its result
                    log.exception("housekeeping %s failed; retried in an hour", _name(chore))
        return done

    def run_forever(
        self, stop: threading.Event, on_pass: Callable[[Pass], None] | None = None
    ) -> None:
        """Pass after pass until ``stop`` is set. A pass that fails (the store unreachable, a
        bug) is logged and the loop goes on: the next pass retries what was not done."""
        failing = False
        while not stop.is_set():
            try:
                done = self.run_once()
            except ModelyardError as exc:
                # An outage (the store unreachable) is one line when it starts and one when it
                # ends, not a traceback every pass.
                if not failing:
                    log.error(
                        "scheduler pass failed: %s; retrying every %.1f s",
                        exc.message,
                        self._poll_s,
                    )
                failing = True
            except Exception:
                log.exception("scheduler pass failed; retrying in %.1f s", self._poll_s)
                failing = True
            else:
                if failing:
                    log.warning("scheduler passes get through again")
                failing = False
                if on_pass is not None:
                    on_pass(done)
            stop.wait(self._wait_s())

    def _wait_s(self) -> float:
        try:
            found = [self._monitors.next_due()]
            if self._schedules is not None:
                found.append(self._schedules.next_due())
        except Exception:  # the store is down: wait the usual time
            return self._poll_s
        due = [d for d in found if d is not None]
        if not due:
            return self._poll_s
        return max(0.0, min(self._poll_s, (min(due) - self._clock()).total_seconds()))


def slept_s() -> float:
    """Seconds this machine has been suspended since it booted (Linux: its boot-time clock
    counts them, its monotonic clock does not); 0.0 where that cannot be told."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return 0.0
    return time.clock_gettime(boottime) - time.monotonic()


def _name(chore: Callable[..., object]) -> str:
    return getattr(chore, "__qualname__", None) or repr(chore)
