"""Alarms: rules on an endpoint's metric series or drift scores, their state, their history, and
the evaluation the scheduler loop runs.

:meth:`AlarmService.evaluate` (called by the scheduler loop next to the monitor schedules)
evaluates each rule once per window length, at the end of each window, under a lease of its
own: however many processes share the store, each rule's window is judged once and each state
change is recorded and sent to the sinks once (a sink that failed is tried again on later
passes: ``alarm_delivery``). Metric series are read through the metrics
service (per-minute points), drift scores from the stored monitor runs (one point per run,
at its tick). :meth:`state` and :meth:`states` are what the control plane reads (the later
guardrails roll deployments back on them).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import numbers
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar, cast

from modelyard.domain.alarms import (
    MAX_WINDOWS,
    AlarmEvent,
    AlarmRule,
    AlarmStatus,
    Comparison,
    Evaluation,
    MissingData,
    Notification,
    SinkSpec,
    Statistic,
)
from modelyard.domain.counts import limit_of
from modelyard.domain.durations import MAX_DURATION, MAX_WINDOW, length_of
from modelyard.domain.metrics import METRICS, MetricPoint, split_name
from modelyard.domain.monitors import MonitorRun, format_duration
from modelyard.domain.references import validate_name
from modelyard.errors import (
    Conflict,
    EndpointNotFound,
    InvalidInput,
    ModelyardError,
    NotFound,
    VariantNotFound,
)
from modelyard.services.alarm_delivery import Redelivery, at_once, deliver, deliver_many, pending
from modelyard.services.alarm_metrics import DRIFT_PREFIX, AlarmMetrics, EndpointInfo
from modelyard.services.alarm_windows import judge, window_bounds
from modelyard.services.leased import default_holder, finished_elsewhere, run_leased
from modelyard.services.sinks import open_sink
from modelyard.services.ticks import floor_tick
from modelyard.storage.leases import LeaseStore
from modelyard.storage.monitoring import AlarmStore

log = logging.getLogger("modelyard.alarms")
E = TypeVar("E", bound=StrEnum)


class SeriesReader(Protocol):
    """Reads one per-minute series of an endpoint (``MetricsService.series``)."""

    def __call__(
        self,
        endpoint: str,
        name: str,
        *,
        variant: str | None = None,
        since: datetime,
        until: datetime | None = None,
    ) -> Sequence[MetricPoint]: ...


class AlarmService:
    """Alarm rules: create, read, delete; evaluate; and the state the control plane reads.

    Args:
        store: Where rules, states and history live.
        leases: The lease store that makes each rule's window evaluated once.
        series: Reads metric series (``MetricsService.series``).
        runs: Reads the succeeded monitor runs of an endpoint with a tick in ``[since, until)``
            (``MonitorService.runs_between``).
        endpoints: The endpoints' variants and features.
        clock: Now, timezone-aware UTC.
        settle: How long after a window ends it is evaluated, so that the servers' writes of
            its last minute have landed.
        holder: This process's name on the leases it takes (default ``host:pid``).
        watched_by: The active deployments watching an alarm, described (``deployment 3 of
            endpoint 'churn-api'``): such an alarm is not deleted.
        history_retention: How long state changes are kept (:meth:`prune_history`); None:
            forever.
        scheduled: Whether an endpoint's drift checks are scheduled (``MonitorService.
            scheduled``): a rule on a drift score of one that is not gets no data, and says so.
    """

    def __init__(
        self,
        store: AlarmStore,
        leases: LeaseStore,
        *,
        series: SeriesReader,
        runs: Callable[[str, datetime, datetime], Sequence[MonitorRun]],
        endpoints: EndpointInfo,
        clock: Callable[[], datetime],
        settle: timedelta = timedelta(seconds=30),
        holder: str | None = None,
        lease_ttl: timedelta = timedelta(minutes=2),
        watched_by: Callable[[str], Sequence[str]] | None = None,
        history_retention: timedelta | None = None,
        scheduled: Callable[[str], bool],
    ) -> None:
        self._store = store
        self._scheduled = scheduled
        self.history_retention = history_retention
        self._watched_by = watched_by or (lambda _name: ())
        self._leases = leases
        self._series = series
        self._runs = runs
        self._endpoints = endpoints
        self._metrics = AlarmMetrics(endpoints)
        self._clock = clock
        self._settle = settle
        self._holder = holder or default_holder()
        self._ttl = lease_ttl
        self._settled: dict[str, datetime] = {}
        self._redelivery = Redelivery(store, leases, self._holder, lease_ttl)

    # -- rules -----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        endpoint: str,
        metric: str,
        comparison: Comparison | str,
        threshold: float,
        datapoints: int = 1,
        windows: int = 1,
        window: timedelta | str = timedelta(minutes=5),
        variant: str | None = None,
        statistic: Statistic | str | None = None,
        sinks: Sequence[SinkSpec] = (),
        missing: MissingData | str = MissingData.INSUFFICIENT,
    ) -> AlarmStatus:
        """Create an alarm rule; it starts in INSUFFICIENT_DATA until its first evaluation.

        Every rule notifies the log sink; ``sinks`` adds others (webhooks). A rule on a drift
        score of an endpoint whose drift checks are not scheduled is taken (they may be
        scheduled next, as a CloudWatch alarm may precede its metric), with a ``note`` saying
        it gets no data until they are.

        Args:
            statistic: How a window's points become one value; default: the metric's own
                aggregation (``sum`` for counts …), ``max`` for drift scores.
            missing: How a window without data counts (:class:`MissingData`); ``zero`` only
                for a metric series that counts (whose own aggregation is ``sum``).

        Raises:
            InvalidName; EndpointNotFound; VariantNotFound; AlreadyExists; InvalidInput for a
            metric that does not exist (the message lists the metrics), a bad comparison,
            statistic, window, N, M or missing-data policy, or a sink that cannot be used.
        """
        validate_name(name, "alarm name")
        if not isinstance(metric, str):
            raise InvalidInput(
                f"the metric must be a name (such as error_rate), got {type(metric).__name__}"
            )
        if isinstance(sinks, str | bytes) or not all(isinstance(s, SinkSpec) for s in sinks):
            raise InvalidInput(
                "sinks must be a list of SinkSpec, such as [SinkSpec('webhook', URL)], got "
                f"{type(sinks).__name__}"
            )
        known = self._endpoints.variants(endpoint)
        if variant is not None and variant not in known:
            raise VariantNotFound(
                f"endpoint {endpoint!r} has no variant {variant!r}; it has {', '.join(known)}"
            )
        default_statistic = self._metrics.check(endpoint, metric, variant)
        treat = _enum(MissingData, missing, "missing-data policy")
        if treat is MissingData.ZERO and (
            metric.startswith(DRIFT_PREFIX) or METRICS[split_name(metric)[0]].aggregation != "sum"
        ):
            raise InvalidInput(
                f"missing data can count as zero only for a count (a metric summed over time), "
                f"not {metric!r}; use {MissingData.BREACHING.value} or "
                f"{MissingData.NOT_BREACHING.value}"
            )
        window = length_of(window, "the window")
        # Only for an M the rule takes (1 to MAX_WINDOWS), or the product may overflow.
        counted = isinstance(windows, numbers.Integral) and not isinstance(windows, bool)
        span = window * int(windows) if counted and 0 < windows <= MAX_WINDOWS else None
        if span is not None and span > MAX_WINDOW and not metric.startswith(DRIFT_PREFIX):
            raise InvalidInput(
                f"the rule looks back {windows} windows of {format_duration(window)} "
                f"({format_duration(span)}); at most {MAX_WINDOW.days} days, the longest "
                "window a metric series is read over"
            )
        if span is not None and span > MAX_DURATION:
            # Drift scores are runs read by tick, so they may span more than a month, but not
            # past the calendar: windows reaching before year 1 cannot even be computed.
            raise InvalidInput(
                f"the rule looks back {windows} windows of {format_duration(window)} "
                f"({format_duration(span)}); at most {MAX_DURATION.days} days (ten years)"
            )
        # Each sink once: a webhook given twice was POSTed twice per change.
        specs = tuple(dict.fromkeys((SinkSpec("log"), *sinks)))
        for spec in specs:
            open_sink(spec)  # refuses an unknown kind or an unusable target
        rule = AlarmRule(
            name=name,
            endpoint=endpoint,
            variant=variant,
            metric=metric,
            comparison=_enum(Comparison, comparison, "comparison"),
            threshold=threshold,
            datapoints=datapoints,
            windows=windows,
            window=window,
            statistic=_enum(Statistic, statistic or default_statistic, "statistic"),
            sinks=specs,
            created_at=self._clock(),
            missing=treat,
        )
        return self._noted(self._store.create_rule(rule, "not evaluated yet"))

    def metric_names(self, endpoint: str | None = None) -> list[str]:
        """Every name a rule may watch: the metric series, then the drift scores (with the
        features of ``endpoint``'s models when given)."""
        return self._metrics.names(endpoint)

    def state(self, name: str) -> AlarmStatus:
        """The rule ``name`` and its current state (with a ``note`` when it cannot get data
        now). Raises NotFound."""
        return self._noted(self._store.get(name))

    def states(self, endpoint: str) -> list[AlarmStatus]:
        """The rules of ``endpoint`` with their states (empty when it has none)."""
        return [self._noted(s) for s in self._store.list_rules(endpoint)]

    def list_alarms(self, endpoint: str | None = None) -> list[AlarmStatus]:
        """Every rule with its state (only ``endpoint``'s when given), by name. An endpoint
        that no longer exists may still have rules, so none is refused for not existing.

        Raises:
            InvalidName: ``endpoint`` is not a name (no rule can watch it).
        """
        if endpoint is not None:
            validate_name(endpoint, "endpoint name")
        return [self._noted(s) for s in self._store.list_rules(endpoint)]

    def history(self, name: str, limit: int = 100) -> list[AlarmEvent]:
        """The state changes of ``name`` and the messages sent about it (:meth:`announce`),
        newest first, at most ``limit``.

        Raises:
            InvalidInput: ``limit`` is not from 1 to ``MAX_LIMIT``; NotFound.
        """
        return self._store.history(name, limit_of(limit))

    def prune_history(self, now: datetime | None = None) -> int | None:
        """Delete the state changes older than the retention, each rule's latest kept (the
        scheduler loop's housekeeping: a flapping rule records a change every window, for
        ever); how many; None when kept forever.

        Raises:
            StorageUnavailable.
        """
        if self.history_retention is None:
            return None
        return self._store.prune_history((now or self._clock()) - self.history_retention)

    def delete(self, name: str) -> None:
        """Remove a rule and its history.

        Raises:
            NotFound. Conflict: an active deployment watches it (named): deleting it would
                leave the deployment unwatched (a deployment that finds one of its alarms gone
                pauses); stop the deployment, or let it end, first.
        """
        watching = list(self._watched_by(name))
        if watching:
            raise Conflict(
                f"alarm {name!r} is watched by {', '.join(watching)}; let it end or stop it "
                "before deleting the alarm"
            )
        self._store.delete(name)

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(self, now: datetime | None = None) -> list[AlarmEvent]:
        """Evaluate each rule whose latest window ended (and settled) since its last
        evaluation, once across processes; record state changes and notify their sinks
        (:meth:`record`, then :meth:`notify`).

        Returns:
            The state changes this call made, with how each sink took them.
        """
        now = now or self._clock()
        return self.notify(self.record(now), now)

    def record(self, now: datetime) -> list[AlarmEvent]:
        """Evaluate each rule whose latest window ended (and settled) since its last
        evaluation, once across processes, and record its state changes, telling no sink yet:
        the scheduler lets the deployments act on a fresh ALARM before a slow receiver is
        waited for (a webhook may take its whole timeout to fail).

        Returns:
            The state changes this call recorded (no notifications yet): give them to
            :meth:`notify`.
        """
        events = []
        statuses = self._store.list_rules()
        for status in statuses:
            rule = status.rule
            end = floor_tick(now - self._settle, rule.window)
            if end <= rule.created_at or self._settled.get(rule.name) == end:
                continue
            lease = f"alarm:{rule.name}"
            try:
                ran = run_leased(
                    self._leases,
                    lease,
                    end,
                    functools.partial(self._evaluate_and_record, rule, end),
                    holder=self._holder,
                    ttl=self._ttl,
                )
            except ModelyardError as exc:  # one rule's trouble must not stop the others
                log.warning("alarm %s not evaluated at %s: %s", rule.name, end, exc.message)
                continue
            except Exception:  # nor its defect: the other rules, monitors and deployments wait
                log.exception("alarm %s not evaluated at %s", rule.name, end)
                continue
            if ran is not None:
                self._settled[rule.name] = end
                if ran.result is not None:
                    events.append(ran.result)
            elif finished_elsewhere(self._leases, lease, end):
                self._settled[rule.name] = end
        return events

    def notify(self, events: Sequence[AlarmEvent], now: datetime) -> list[AlarmEvent]:
        """Send each change :meth:`record` recorded to its rule's sinks and make the retries
        of failed deliveries that are due (:class:`Redelivery`), every one at once
        (:func:`at_once`: a hung receiver costs the pass one timeout), and keep how each sink
        took each change. A change whose rule is gone meanwhile (or was made again under its name)
        is sent to nobody.

        Returns:
            ``events``, with their notifications.
        """
        statuses = self._store.list_rules()
        rules = {s.rule.name: s.rule for s in statuses}
        # A rule made again under the name since (after the change's window) never had it.
        told = [
            (e, rules[e.alarm])
            for e in events
            if e.alarm in rules and e.at > rules[e.alarm].created_at
        ]
        calls: list[Callable[[], Notification | None]] = [
            functools.partial(deliver, spec, e, rule, at=now)
            for e, rule in told
            for spec in rule.sinks
        ]
        first = len(calls)
        try:
            calls += self._redelivery.due(statuses, now, skip={e.id for e in events})
        except ModelyardError as exc:  # the store: the next pass tries again
            log.warning("failed alarm notifications not retried: %s", exc.message)
        # The first deliveries' results come first, each a Notification (``deliver`` never
        # gives None; a retry may).
        results = iter(cast(list[Notification], at_once(calls)[:first]))
        return [
            self._kept(event, rule, [next(results) for _ in rule.sinks]) for event, rule in told
        ]

    def announce(self, events: Sequence[AlarmEvent]) -> list[AlarmEvent]:
        """Send ``events``, messages about alarms rather than changes of their state (a
        deployment watching them rolled back: ``kind`` :data:`DEPLOYMENT_ROLLBACK`), to their
        alarms' sinks. Each is kept in its alarm's history first, every sink "not sent yet",
        then all are delivered at once, so that a delivery that fails (or never happens, the
        process dying) is tried again as a state change's is (:class:`Redelivery`). A message
        whose alarm is gone is sent to nobody; one the store could not keep is not sent
        either (its id would be no history entry's), and the error is logged.

        Returns:
            The messages as kept (each ``id`` the history's), with how each sink took them.
        """
        kept: list[tuple[AlarmEvent, AlarmRule]] = []
        for event in events:
            try:
                rule = self._store.get(event.alarm).rule
                waiting = dataclasses.replace(event, notifications=pending(rule.sinks))
                kept.append((self._store.record_message(waiting), rule))
            except NotFound:  # deleted meanwhile
                continue
            except ModelyardError as exc:
                log.error(
                    "alarm %s: %s message not sent, the store could not keep it: %s (%s)",
                    event.alarm, event.kind, exc.message, event.reason,
                )  # fmt: skip
        jobs = [(spec, e, rule) for e, rule in kept for spec in rule.sinks]
        results = iter(deliver_many(jobs, self._clock()))
        return [
            self._kept(event, rule, [next(results) for _ in rule.sinks]) for event, rule in kept
        ]

    def _kept(
        self, event: AlarmEvent, rule: AlarmRule, notified: Sequence[Notification]
    ) -> AlarmEvent:
        """``event`` with how its sinks took it, kept in the history."""
        try:
            self._store.set_notifications(event.id, notified)
        except ModelyardError as exc:  # the store: the receivers got it, the history not
            log.warning("alarm %s: notifications not kept: %s", rule.name, exc.message)
        return dataclasses.replace(event, notifications=tuple(notified))

    def judge_as(
        self, rule: AlarmRule, variant: str, now: datetime, since: datetime | None = None
    ) -> Evaluation:
        """``rule`` judged on ``variant`` instead of its own, over its windows settled by
        ``now`` (nothing recorded), its windows without data counting as insufficient: a
        guarded deployment watches a rule on variant ``main`` on the new ``main``, which
        serves as ``main.next`` until the deployment ends. Nothing before ``since`` is read
        (the name held other models then): those minutes are no data.

        Raises:
            What reading the series raises.
        """
        end = floor_tick(now - self._settle, rule.window)
        # A window without data is no news of the new variant (it serves nothing yet, or
        # little): never breaching, whatever the rule says of the endpoint's silence.
        judged = dataclasses.replace(rule, variant=variant, missing=MissingData.INSUFFICIENT)
        return self.judge(judged, end, since)

    def judge(self, rule: AlarmRule, end: datetime, after: datetime | None = None) -> Evaluation:
        """The state of ``rule`` from the windows that end at ``end`` (nothing recorded),
        reading nothing before ``after`` when given (a drift score counts from its run's tick,
        where its points are)."""
        since = window_bounds(rule, end)[-1][0]
        if after is not None:
            since = min(max(since, after), end)
        if rule.metric.startswith(DRIFT_PREFIX):
            points = [
                (run.tick, value)
                for run in self._runs(rule.endpoint, since, end)
                for variant, scores in run.scores.items()
                if rule.variant is None or variant == rule.variant
                if (value := scores.get(rule.metric)) is not None
            ]
        else:
            points = self._points(rule, since, end)
        found = judge(rule, end, points, missing=self._missing(rule))
        note = self._note(rule)
        if note is None:
            return found
        # Said in the reason too, so the history and the sinks carry the cause.
        return dataclasses.replace(found, reason=f"{found.reason}; {note}")

    def _note(self, rule: AlarmRule) -> str | None:
        """Why ``rule`` gets no data now, when it cannot: a drift score of an endpoint whose
        drift checks are not scheduled (drift scores come only from their runs)."""
        if not rule.metric.startswith(DRIFT_PREFIX) or self._scheduled(rule.endpoint):
            return None
        return (
            f"endpoint {rule.endpoint!r} has no scheduled drift checks, and drift scores come "
            "only from their runs: this rule gets no data until they are scheduled"
        )

    def _noted(self, status: AlarmStatus) -> AlarmStatus:
        note = self._note(status.rule)
        return status if note is None else dataclasses.replace(status, note=note)

    def _points(
        self, rule: AlarmRule, since: datetime, end: datetime
    ) -> list[tuple[datetime, float]]:
        """The rule's metric series over ``[since, end)``, read a month at a time (a rule made
        before spans were capped at 31 days may look back further). A read of an endpoint
        deleted since (or made again without the variant watched) that holds no rows has no
        data: the rule goes to INSUFFICIENT_DATA rather than stay in its last state."""
        points: dict[datetime, float] = {}  # by minute: a minute two reads hold counts once
        start = since
        while start < end:
            stop = min(start + MAX_WINDOW, end)
            try:
                series = self._series(
                    rule.endpoint, rule.metric, variant=rule.variant, since=start, until=stop
                )
            except (EndpointNotFound, VariantNotFound):
                series = []
            points.update((p.minute, p.value) for p in series if p.value is not None)
            start = stop
        return list(points.items())

    def _missing(self, rule: AlarmRule) -> MissingData:
        """How the rule counts missing data: as it says, unless its endpoint (or variant) is
        gone, whose silence is no news about traffic."""
        if rule.missing is MissingData.INSUFFICIENT:
            return rule.missing
        try:
            variants = self._endpoints.variants(rule.endpoint)
        except EndpointNotFound:
            return MissingData.INSUFFICIENT
        if rule.variant is not None and rule.variant not in variants:
            return MissingData.INSUFFICIENT
        return rule.missing

    def _evaluate_and_record(self, rule: AlarmRule, end: datetime) -> AlarmEvent | None:
        event = self._store.record(rule.name, end, self.judge(rule, end))
        if event is None:
            return None
        # Kept with the change, under the rule's lease: should this process die before
        # :meth:`notify`, another pass's Redelivery tells the sinks.
        waiting = pending(rule.sinks)
        self._store.set_notifications(event.id, waiting)
        return dataclasses.replace(event, notifications=waiting)


def drift_alarms(store: AlarmStore, endpoint: str) -> list[str]:
    """The names of the rules on drift scores of ``endpoint``: what
    ``MonitorService.unschedule`` leaves without data."""
    return [
        s.rule.name for s in store.list_rules(endpoint) if s.rule.metric.startswith(DRIFT_PREFIX)
    ]


def _enum(cls: type[E], value: str, what: str) -> E:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise InvalidInput(f"invalid {what} {value!r}; use one of {allowed}") from None
