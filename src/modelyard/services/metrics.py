"""The metrics service: per-minute series of endpoints, read back from what servers wrote.

Each server worker writes, per endpoint variant and minute, the accumulators of what it served
(``domain.metric_stats``). A series point merges every worker's row of that minute (and,
without a variant, every variant's) and computes the series value from the merged
accumulators: sums stay sums, means and fractions are ratios of sums, latency percentiles
come from summed bucket counts. Minutes older than the store's minute retention survive as
hourly rows: such a stretch of a series has one point per hour (at the hour's start).

Retention is applied by :meth:`MetricsService.prune` (the monitor scheduler runs it; the store
also prunes on its own from its write path, at most hourly per process).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from modelyard.domain.durations import MAX_WINDOW, point_in_time
from modelyard.domain.endpoints import check_ever_had
from modelyard.domain.metric_stats import MetricStats
from modelyard.domain.metrics import (
    METRICS,
    MetricPoint,
    SeriesRow,
    check_feature,
    series_value,
    split_name,
)
from modelyard.domain.registry import ModelVersion
from modelyard.errors import EndpointNotFound, InvalidInput, NotFound
from modelyard.services.alarm_endpoints import features_of
from modelyard.storage.base import EndpointStore
from modelyard.storage.metric_series import MetricSeriesStore, Pruned

_MINUTE = timedelta(minutes=1)
_HOUR = timedelta(hours=1)
_LAST = datetime.max.replace(tzinfo=UTC)


def _floor(when: datetime, step: timedelta) -> datetime:
    when = when.astimezone(UTC)
    if step == _HOUR:
        return when.replace(minute=0, second=0, microsecond=0)
    return when.replace(second=0, microsecond=0)


class MetricsService:
    """Reads the per-minute metric series; the CLI, alarms and the Python API call this.

    Args:
        store: The series servers wrote.
        endpoints: The endpoints and their config history.
        version: A model version by ``model:N`` (raises NotFound), to refuse a series about a
            feature no model of the endpoint ever took; None: feature names are not checked.
        clock: Now, timezone-aware UTC.
    """

    def __init__(
        self,
        store: MetricSeriesStore,
        endpoints: EndpointStore,
        *,
        version: Callable[[str], ModelVersion] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._endpoints = endpoints
        self._version = version
        self._clock = clock

    def names(self) -> list[str]:
        """The catalog's series names (those taking a feature or class take it after a dot:
        ``input_mean.<feature>``)."""
        return list(METRICS)

    def series(
        self,
        endpoint: str,
        name: str,
        *,
        variant: str | None = None,
        since: datetime | str,
        until: datetime | str | None = None,
    ) -> list[MetricPoint]:
        """Series ``name`` of ``endpoint`` (one ``variant``, or all merged), one point per
        minute from the minute holding ``since`` up to ``until`` (default now, exclusive);
        per hour where only hourly rows are left.

        Raises:
            InvalidInput: an unknown series name, one about a feature no model the endpoint
                ever served takes (when their signatures name their features), ``since`` not
                before ``until``, or more than
                :data:`~modelyard.domain.durations.MAX_WINDOW` (31 days) between them.
            EndpointNotFound: no such endpoint, and no series of that name either.
            VariantNotFound: no rows, and no config of the endpoint ever had ``variant``.
        """
        return self.table(endpoint, [name], variant=variant, since=since, until=until)[name]

    def table(
        self,
        endpoint: str,
        names: Sequence[str],
        *,
        variant: str | None = None,
        since: datetime | str,
        until: datetime | str | None = None,
    ) -> dict[str, list[MetricPoint]]:
        """Several series of one endpoint over the same minutes (one read of the store).

        Raises:
            InvalidInput, EndpointNotFound: as :meth:`series`.
        """
        for name in names:
            split_name(name)
        now = self._clock()
        since = point_in_time(since, now, "since")
        until = point_in_time(until, now, "until") if until is not None else now
        if since >= until:
            raise InvalidInput(
                f"since ({since.isoformat()}) must be before until ({until.isoformat()})"
            )
        if until - since > MAX_WINDOW:  # a point per minute: a year would be 525,600 of them
            raise InvalidInput(
                f"the window from {since.isoformat()} to {until.isoformat()} is longer than "
                f"{MAX_WINDOW.days} days; read a month at most at a time"
            )
        features = self._features(endpoint, names)
        for name in names:
            check_feature(endpoint, name, features)
        since = _floor(since, _MINUTE)  # the minute holding ``since`` is the first point
        rows = self._store.read(endpoint, variant=variant, since=since, until=until)
        if not rows:
            _check_known(endpoint, variant, self._endpoints)
        periods = _periods(rows, since, until)
        return {
            name: [
                MetricPoint(start, None if stats is None else series_value(stats, name))
                for start, stats in periods
            ]
            for name in names
        }

    def _features(self, endpoint: str, names: Sequence[str]) -> list[str] | None:
        """The input features of every model ``endpoint`` ever served (a retired model's
        series stay readable); None when they cannot be known (no registry, a deleted
        endpoint or version, a signature that does not name its inputs) or need not be."""
        if self._version is None or not any(
            METRICS[split_name(n)[0]].qualifier == "feature" for n in names
        ):
            return None
        try:
            configs = self._endpoints.history(endpoint)
            return features_of(
                (v.model_ref for config in configs for v in config.variants), self._version
            )
        except NotFound:  # EndpointNotFound too: a deleted endpoint's series stay readable
            return None

    def prune(self, now: datetime | None = None) -> Pruned:
        """Apply retention: merge old minutes into hourly rows, delete old hours."""
        return self._store.prune(now or self._clock())


def _periods(
    rows: Sequence[SeriesRow], since: datetime, until: datetime
) -> list[tuple[datetime, MetricStats | None]]:
    """The merged stats of each minute in ``[since, until)`` (None: no row), except that an
    hour with an hourly row is one period (its late minutes merged in)."""
    minutes: dict[datetime, MetricStats] = {}
    hours: dict[datetime, MetricStats] = {}
    for row in rows:
        start = row.start.astimezone(UTC)
        if row.resolution_s == 3600:
            hours.setdefault(start, MetricStats()).merge(row.stats)
        else:
            minutes.setdefault(start, MetricStats()).merge(row.stats)
    for start in list(minutes):
        hour = _floor(start, _HOUR)
        if hour in hours:
            hours[hour].merge(minutes.pop(start))
    out: list[tuple[datetime, MetricStats | None]] = []
    minute = _floor(since, _MINUTE)
    while minute < until:
        hour = _floor(minute, _HOUR)
        if hour in hours:
            out.append((hour, hours.pop(hour)))
            start, step = hour, _HOUR
        else:
            out.append((minute, minutes.get(minute)))
            start, step = minute, _MINUTE
        if _LAST - start < step:
            break  # the calendar's last period: no minute comes after it
        minute = start + step
    return out


def _check_known(endpoint: str, variant: str | None, endpoints: EndpointStore) -> None:
    """When a read found no rows: refuse an endpoint not in the store, and a variant no config
    of it ever had (a retired variant's series stay readable)."""
    try:
        configs = endpoints.history(endpoint)
    except EndpointNotFound:
        raise EndpointNotFound(f"endpoint {endpoint!r} does not exist and has no metrics") from None
    if variant is not None:
        check_ever_had(endpoint, variant, configs)
