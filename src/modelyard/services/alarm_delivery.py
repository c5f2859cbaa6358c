"""Delivering an alarm's state changes to its sinks, and trying a failed delivery again.

A receiver that is down for a minute (a deploy, a 503 from its load balancer) must not lose
the change that said the endpoint is in ALARM: every alerting system people come from
(Alertmanager, CloudWatch through SNS) tries again. So a sink that failed is tried again on
later scheduler passes, 30 s after the attempt that failed, then 1, 2, 4 and 8 minutes after
the one before (:data:`RETRY_AFTER`, doubling; six attempts in all, over about 16 minutes;
none an hour after the change), until it takes the change. The waits count from each
attempt, not from the end of the window that changed the state: a window is judged some time
after it ends (30 s on the servers), which would leave the first retry no wait at all. Each
attempt runs under a lease of its own, so processes sharing the store send it once. How it
went is kept in the history entry, per sink, with its number of attempts.

Only an alarm's newest change is tried again: once the alarm has changed state again, an
older change delivered late would tell the receiver a state the alarm has left, so it stays
failed. A retry carries the same body, whose ``id`` lets a receiver drop a change it got
twice (one whose answer came too late to count is sent again).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TypeVar

from modelyard.domain.alarms import AlarmEvent, AlarmRule, AlarmStatus, Notification, SinkSpec
from modelyard.errors import ModelyardError
from modelyard.services.leased import run_leased
from modelyard.services.sinks import open_sink
from modelyard.storage.leases import LeaseStore
from modelyard.storage.monitoring import AlarmStore

log = logging.getLogger("modelyard.alarms")
T = TypeVar("T")

#: The wait before the first retry; each further one waits twice as long as the one before.
RETRY_AFTER = timedelta(seconds=30)
#: Deliveries made at once, at most.
MAX_PARALLEL = 8
#: A change recorded but not yet sent is sent by another pass after this long: the process
#: that recorded it tells its sinks once its deployments have acted, seconds later, unless
#: it died meanwhile. (Should that take longer, a receiver may get the change twice.)
PENDING_GRACE = timedelta(minutes=2)
#: The error of a sink's entry before its first attempt.
NOT_SENT = "not sent yet"
#: Attempts at most, the first one included.
MAX_ATTEMPTS = 6
#: A change older than this is not tried again, whatever its attempts (the scheduler was
#: down meanwhile, or the change was recorded before retries existed).
GIVE_UP_AFTER = timedelta(hours=1)


def deliver(
    spec: SinkSpec,
    event: AlarmEvent,
    rule: AlarmRule,
    attempts: int = 1,
    *,
    at: datetime | None = None,
) -> Notification:
    """Send ``event`` to the sink ``spec``, as attempt number ``attempts``, made at ``at``
    (the pass's time: the next retry's wait counts from it); how it went (never raises: a
    sink's failure, or its defect, is logged and kept in the result)."""
    label = spec.label
    try:
        open_sink(spec).notify(event, rule)
    except ModelyardError as exc:
        log.warning("alarm %s: sink %s failed: %s", rule.name, spec.kind, exc.message)
        return Notification(label, False, exc.message, attempts, at)
    except Exception as exc:  # a sink's bug must not stop the loop
        log.exception("alarm %s: sink %s failed", rule.name, spec.kind)
        return Notification(label, False, f"{type(exc).__name__}: {exc}", attempts, at)
    return Notification(label, True, None, attempts, at)


def at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run every call at once, up to :data:`MAX_PARALLEL` threads, and return their results
    in their order: a receiver that hangs until its timeout holds up only its own deliveries
    (one after another, three hung webhooks took three timeouts)."""
    if len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(min(len(calls), MAX_PARALLEL), "modelyard-alarm-sink") as pool:
        return list(pool.map(lambda call: call(), calls))


def deliver_many(
    jobs: Sequence[tuple[SinkSpec, AlarmEvent, AlarmRule]], at: datetime
) -> list[Notification]:
    """Make every delivery in ``jobs`` at once (:func:`at_once`), as first attempts made at
    ``at``; how each went, in order."""
    return at_once([functools.partial(deliver, *job, at=at) for job in jobs])


def pending(specs: Sequence[SinkSpec]) -> tuple[Notification, ...]:
    """What a change's entry holds from when it is recorded until its sinks are told: one
    failed entry of no attempt per sink, which :class:`Redelivery` sends should the process
    that recorded it die first (after :data:`PENDING_GRACE`)."""
    return tuple(Notification(spec.label, False, NOT_SENT, 0) for spec in specs)


def due_at(event: AlarmEvent, failed: Notification) -> datetime:
    """When a sink whose delivery of ``event`` went as ``failed`` is tried again: the wait
    after its last attempt (never tried: once the process that recorded the change had its
    time to tell it)."""
    if failed.attempts == 0:
        return event.at + PENDING_GRACE
    if failed.at is not None:
        return failed.at + RETRY_AFTER * 2 ** (failed.attempts - 1)
    # Kept before attempts had times: as if each came when it was due, from the change.
    return event.at + RETRY_AFTER * (2**failed.attempts - 1)


class Redelivery:
    """Tries the failed deliveries of the alarms' newest changes again (see the module).

    Args:
        store: The alarms' store.
        leases: Each attempt is made once across processes.
        holder, ttl: This process's name on the leases, and their time to live.
    """

    def __init__(self, store: AlarmStore, leases: LeaseStore, holder: str, ttl: timedelta):
        self._store = store
        self._leases = leases
        self._holder = holder
        self._ttl = ttl

    def due(
        self, statuses: Sequence[AlarmStatus], now: datetime, skip: Collection[int] = ()
    ) -> list[Callable[[], Notification | None]]:
        """The retries due at ``now``, each a call that makes it under its lease (None: made
        by another process, or the store could not be asked). ``skip``: entries whose first
        deliveries are being made now (their sinks are "not sent yet" until those end)."""
        rules = {s.rule.name: s.rule for s in statuses}
        due: list[Callable[[], Notification | None]] = []
        for event in self._store.latest_events(list(rules)):
            if event.at < now - GIVE_UP_AFTER or event.id in skip:
                continue
            rule = rules[event.alarm]
            # The entries follow the rule's sinks, one each: by position, since two sinks may
            # show the same label (two Slack webhooks both read ``…/services/***``).
            for index, failed in enumerate(event.notifications):
                if failed.ok or failed.attempts >= MAX_ATTEMPTS or index >= len(rule.sinks):
                    continue
                at = due_at(event, failed)
                spec = rule.sinks[index]
                if now >= at and spec.label == failed.sink:  # due, and still this sink
                    attempt = failed.attempts + 1
                    job = (spec, event, rule, index, attempt, at, now)
                    due.append(functools.partial(self._leased, *job))
        return due

    def _leased(
        self,
        spec: SinkSpec,
        event: AlarmEvent,
        rule: AlarmRule,
        index: int,
        attempt: int,
        due: datetime,
        now: datetime,
    ) -> Notification | None:
        """One retry, made under its lease at the pass's time ``now``: None when another
        process makes it, or the store could not be asked (the next pass tries again)."""
        try:
            ran = run_leased(
                self._leases,
                f"alarm-delivery:{event.id}:{index}",
                due,
                functools.partial(self._retry, spec, event, rule, index, attempt, now),
                holder=self._holder,
                ttl=self._ttl,
            )
        except ModelyardError as exc:
            log.warning("alarm %s: no retry of sink %s: %s", rule.name, spec.kind, exc)
            return None
        return None if ran is None else ran.result

    def _retry(
        self,
        spec: SinkSpec,
        event: AlarmEvent,
        rule: AlarmRule,
        index: int,
        attempt: int,
        now: datetime,
    ) -> Notification:
        result = deliver(spec, event, rule, attempt, at=now)
        self._store.set_notification(event.id, index, result)
        if result.ok:
            log.info(
                "alarm %s: sink %s took change %s at attempt %s",
                rule.name,
                spec.kind,
                event.id,
                attempt,
            )
        return result
