"""The monitoring report of one endpoint: everything the other monitoring services know about
it over a window, gathered and rendered as one self-contained HTML page.

:meth:`ReportService.gather` asks each service for its part (the endpoint's variants; each
variant's drift against its version's baseline, with the baseline and current profiles for
the pictures; latency, error and throughput series; model quality from feedback; alarm states
and monitor runs) and turns the answers into :mod:`modelyard.monitoring.report_model`
records. :meth:`ReportService.render` draws the page
(:func:`modelyard.monitoring.report_html.render_report`).

A part that has nothing to show is reported as such, in words, never as an empty chart or a
reassuring "no drift": a version without a baseline, a window without captured rows, a
variant without feedback. A part whose service refuses (no monitor schedule, for instance) is
shown as absent; only an unknown endpoint fails the whole report.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from modelyard.domain.alarms import AlarmStatus
from modelyard.domain.drift import DriftConfig
from modelyard.domain.durations import MAX_WINDOW, length_of
from modelyard.domain.endpoints import Endpoint, EndpointConfig, Variant
from modelyard.domain.metrics import MetricPoint
from modelyard.domain.monitors import MonitorRun, MonitorSchedule, format_duration
from modelyard.domain.quality import QualityPoint
from modelyard.errors import ArtifactError, InvalidInput, NotFound
from modelyard.services.file_output import check_target, write_whole

if TYPE_CHECKING:
    from modelyard.domain.drift import QualityIssue
    from modelyard.monitoring.profile import Profile
    from modelyard.monitoring.report_model import DriftSection, ReportData, VariantSection

#: Told what is being done before each slow step (for a progress display).
Progress = Callable[[str], None]

#: Model-quality windows across the report's window (each scored on its own labels).
QUALITY_WINDOWS = 12
#: Monitor runs listed.
RUNS_SHOWN = 20
#: What a shadow's model-quality section says: labels never reach it, whatever arrived.
SHADOW_QUALITY = (
    "a shadow answers no caller, so feedback labels production's answers, never its copies: "
    "the shadow comparison scores it on the labels of the requests both predicted"
)


class DriftSource(Protocol):
    """The drift service, as the report reads it: a version's baseline, and the profile of a
    variant's captured rows in a window (None when none was captured)."""

    def baseline(self, ref: str) -> Profile | None: ...

    def window_profile(
        self, endpoint: str, variant: str | Variant, since: datetime, until: datetime
    ) -> tuple[Profile | None, tuple[QualityIssue, ...]]: ...


class SeriesSource(Protocol):
    """The metrics service, as the report reads it."""

    def table(
        self,
        endpoint: str,
        names: Sequence[str],
        *,
        variant: str | None = None,
        since: datetime,
        until: datetime | None = None,
    ) -> dict[str, list[MetricPoint]]: ...


class QualitySource(Protocol):
    """The feedback service, as the report reads it."""

    def quality(
        self,
        endpoint: str,
        *,
        window: timedelta,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket: timedelta | None = None,
    ) -> list[QualityPoint]: ...


class AlarmSource(Protocol):
    """The alarm service, as the report reads it."""

    def states(self, endpoint: str) -> list[AlarmStatus]: ...


class RunSource(Protocol):
    """The monitor service, as the report reads it."""

    def runs(self, name: str, limit: int = 50) -> list[MonitorRun]: ...

    def get(self, name: str) -> MonitorSchedule:
        """Raises NotFound."""
        ...


class ReportService:
    """Gathers an endpoint's monitoring data and renders the report page.

    Args:
        endpoint: Looks an endpoint up; raises EndpointNotFound.
        drift: Baselines and captured-window profiles (``DriftService``).
        metrics: Metric series (``MetricsService``).
        quality: Model quality from feedback (``FeedbackService``).
        alarms: Alarm states (``AlarmService``).
        runs: Stored monitor runs (``MonitorService``).
        clock: Now, timezone-aware UTC.
        history: An endpoint's configs, oldest first (``EndpointService.history``): variants
            that served during the window but are no longer in the config get a section too.
    """

    def __init__(
        self,
        *,
        endpoint: Callable[[str], Endpoint],
        drift: DriftSource,
        metrics: SeriesSource,
        quality: QualitySource,
        alarms: AlarmSource,
        runs: RunSource,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        refuse_target: Callable[[str, str], None] | None = None,
        history: Callable[[str], list[EndpointConfig]] | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._history = history
        self._drift = drift
        self._metrics = metrics
        self._quality = quality
        self._alarms = alarms
        self._runs = runs
        self._clock = clock
        # ``CaptureService.refuse_inside``: a page under the capture root would go with it.
        self._refuse_target = refuse_target

    def report(
        self,
        endpoint: str,
        *,
        window: timedelta | str = timedelta(hours=24),
        now: datetime | None = None,
        progress: Progress | None = None,
    ) -> str:
        """The report page of ``endpoint`` over the ``window`` before ``now``.

        Args:
            endpoint: The endpoint's name.
            window: How far back the report looks (at most :data:`MAX_WINDOW`).
            now: The window's end (default: the clock's now).
            progress: Told what is being done before each slow step.

        Returns:
            One self-contained HTML document.

        Raises:
            EndpointNotFound: no such endpoint (checked before anything slow).
            InvalidInput: a window not above zero or longer than :data:`MAX_WINDOW`.
            StorageUnavailable: a store cannot be read.
        """
        from modelyard.monitoring.report_html import render_report

        data = self.gather(endpoint, window=window, now=now, progress=progress)
        return render_report(data, progress)

    def write(
        self,
        endpoint: str,
        target: str | Path,
        *,
        window: timedelta | str = timedelta(hours=24),
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> int:
        """Write the :meth:`report` page of ``endpoint`` to ``target`` (a local path or an
        fsspec URL), whole or not at all (see :mod:`.file_output`).

        Args:
            overwrite: Replace a file already at ``target`` (else it is refused, before the
                report is made).

        Returns:
            The bytes written.

        Raises:
            What :meth:`report` raises; InvalidInput: ``target`` is a folder, or under the
            capture root (retention would delete it with an hour's rows); OutputExists:
            a file is at ``target`` and ``overwrite`` is off; StorageNotWritable,
            StorageUnavailable: it cannot be written (a local path, a URL).
        """
        out = str(target)
        if self._refuse_target is not None:
            self._refuse_target(out, "a report")
        check_target(out, overwrite=overwrite)
        page = self.report(endpoint, window=window, progress=progress).encode()

        def write(handle: BinaryIO) -> None:
            handle.write(page)

        write_whole(out, write, overwrite=overwrite)
        return len(page)

    def gather(
        self,
        endpoint: str,
        *,
        window: timedelta | str = timedelta(hours=24),
        now: datetime | None = None,
        progress: Progress | None = None,
    ) -> ReportData:
        """What :meth:`report` shows, as records (same arguments and errors)."""
        from modelyard.monitoring.report_model import ReportData
        from modelyard.monitoring.report_records import alarm_row, run_row

        window = length_of(window, "the report window")
        if not timedelta(0) < window <= MAX_WINDOW:
            raise InvalidInput(
                f"the report window must be longer than zero and at most "
                f"{MAX_WINDOW.days} days, got {format_duration(window)}"
            )
        step = progress or (lambda _what: None)
        found = self._endpoint(endpoint)  # EndpointNotFound before anything slow
        end = (now or self._clock()).astimezone(UTC)
        start = end - window
        name = found.name
        step("scoring feedback")
        # Whole minutes: quality windows line up with the per-minute series beside them.
        size = timedelta(minutes=max(1, int(window / QUALITY_WINDOWS / timedelta(minutes=1))))
        quality = self._quality.quality(name, window=size, since=start, until=end, bucket=size)
        served: list[tuple[Variant, datetime | None]] = [(v, None) for v in found.config.variants]
        if self._history is not None:  # after a canary's promotion, its history is still here
            served += retired_variants(self._history(name), start, end)
        variants = tuple(
            self._variant(name, v, start, end, quality, step, retired) for v, retired in served
        )
        try:
            runs = tuple(run_row(r) for r in self._runs.runs(name, RUNS_SHOWN))
        except NotFound:  # no schedule has ever watched this endpoint
            runs = ()
        return ReportData(
            endpoint=name,
            generated_at=self._clock().astimezone(UTC),
            window_start=start,
            window_end=end,
            variants=variants,
            alarms=tuple(alarm_row(s) for s in self._alarms.states(name)),
            runs=runs,
        )

    def _variant(
        self,
        endpoint: str,
        variant: Variant,
        start: datetime,
        end: datetime,
        quality: list[QualityPoint],
        step: Progress,
        retired: datetime | None = None,
    ) -> VariantSection:
        from modelyard.monitoring.report_model import VariantSection
        from modelyard.monitoring.report_records import (
            CHART_METRICS,
            metric_charts,
            quality_charts,
            quality_rows,
        )

        step(f"comparing {variant.name} with its baseline")
        drift, note = self._drift_section(endpoint, variant, start, end)
        step(f"reading the metrics of {variant.name}")
        table = self._metrics.table(
            endpoint, CHART_METRICS, variant=variant.name, since=start, until=end
        )
        mine = [p for p in quality if p.variant == variant.name]
        charts, quality_note = quality_charts(mine)
        if variant.is_shadow and not charts:
            quality_note = SHADOW_QUALITY
        return VariantSection(
            name=variant.name,
            model=variant.model_ref,
            weight=variant.weight,
            drift=drift,
            drift_note=note,
            charts=metric_charts(table, start, end),
            quality=charts,
            quality_note=quality_note,
            quality_windows=quality_rows(mine),
            shadow=variant.shadow,
            retired_at=retired,
        )

    def _drift_config(self, endpoint: str) -> DriftConfig:
        """The thresholds the endpoint's monitor schedule checks with (its runs are listed on
        the same page), else the defaults."""
        try:
            found = self._runs.get(endpoint).drift_config
        except NotFound:
            return DriftConfig()
        return found or DriftConfig()

    def _drift_section(
        self, endpoint: str, variant: Variant, start: datetime, end: datetime
    ) -> tuple[DriftSection | None, str]:
        # The profiles are compared here rather than through ``DriftService.drift`` so that
        # the captured window is read once, and the pictures show exactly what was tested.
        from modelyard.monitoring.drift import Context, compare
        from modelyard.monitoring.report_records import drift_section
        from modelyard.services.drift import comparable

        ref = variant.model_ref
        try:
            baseline = self._drift.baseline(ref)
        except (ArtifactError, InvalidInput, NotFound) as exc:  # gone, damaged, too new
            return None, f"the baseline of {ref} cannot be read: {exc.message}"
        if baseline is None:
            return None, (
                f"{ref} has no baseline to compare with: register it from a training job or "
                "set one from a dataset"
            )
        current, window = self._drift.window_profile(endpoint, variant, start, end)
        if current is None or current.row_count == 0:
            said = f" ({window[0].message})" if window else ""
            return None, f"no captured data in this window{said}"
        baseline, current, notes = comparable(variant, baseline, current)
        notes += window
        context = Context(endpoint, variant.name, ref, start, end)
        report = compare(baseline, current, self._drift_config(endpoint), context)
        if notes:
            report = dataclasses.replace(report, quality=report.quality + notes)
        return drift_section(report, baseline, current), ""


def retired_variants(
    history: list[EndpointConfig], start: datetime, end: datetime
) -> list[tuple[Variant, datetime]]:
    """The variants of configs current during [start, end] that the last config no longer
    has, each as it last was and when the first config without it replaced that one; the
    most recently retired first."""
    if not history:
        return []
    configs = sorted(history, key=lambda c: c.number)
    current = {v.name for v in configs[-1].variants}
    found: dict[str, tuple[Variant, datetime]] = {}
    for config, after in itertools.pairwise(configs):
        if config.created_at > end or after.created_at < start:
            continue  # not current during the window
        kept = {v.name for v in after.variants}
        for variant in config.variants:
            if variant.name not in current and variant.name not in kept:
                found[variant.name] = (variant, after.created_at)
    return sorted(found.values(), key=lambda pair: pair[1], reverse=True)
