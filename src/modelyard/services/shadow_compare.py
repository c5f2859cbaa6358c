"""Shadow against production: :meth:`ShadowCompareService.compare`, the comparison behind
``modelyard deployments compare`` (its records and their meaning: ``domain.shadow_comparison``).

A shadow variant predicts on a copy of the requests production answers; both sides' captured
rows carry the request's inference id, so the rows of one window pair up by inference id and
row. Everything here is read from what already exists, with the computations that already do
it:

- captured rows through the capture service, read once for the window; production's side is
  the rows of the variants that were no shadow in any config served in the window (a shadow
  retired or renamed during it, such as a guarded update's ``dark.next``, is on neither side:
  its copies carry production's inference ids and its errors are no caller's);
- the pairs, their agreement or differences and the prediction distribution difference in
  ``monitoring.shadow_pairs`` (classes read as model quality reads them; the distributions
  compared as a drift test compares one feature, production in the baseline's place);
- requests, errors and latency from the per-minute series rows, merged per side; the error
  rates by the deployment analysis' two-proportion test;
- labels from the feedback store, joined with *both* sides' predictions by inference id and
  row, and scored by ``monitoring.model_quality.quality_points`` on the same pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from modelyard.domain.capture import EVERY_OUTPUT, OUTPUT_PREFIX, SINGLE_OUTPUT
from modelyard.domain.drift import FeatureDrift
from modelyard.domain.durations import MAX_WINDOW, length_of, point_in_time
from modelyard.domain.endpoints import Endpoint, EndpointConfig, Variant
from modelyard.domain.feedback import GroundTruth
from modelyard.domain.metric_stats import MetricStats
from modelyard.domain.quality import QualityConfig, QualityPoint, Task
from modelyard.domain.registry import ModelVersion
from modelyard.domain.shadow_comparison import (
    Agreement,
    ComparisonStatus,
    Differences,
    ServingComparison,
    ServingSide,
    ShadowCompareConfig,
    ShadowComparison,
)
from modelyard.errors import Conflict, InvalidInput, NotFound, VariantNotFound
from modelyard.monitoring import shadow_pairs
from modelyard.monitoring.model_task import ModelTask, model_task
from modelyard.services.capture_port import CaptureReader
from modelyard.services.deployment_analysis import RowReader, floor_minute, one_sided_p

if TYPE_CHECKING:
    import pandas as pd

#: The window compared when none is given: the last hour.
DEFAULT_WINDOW = timedelta(hours=1)
#: How long servers may go on serving a config after the next one is written (they poll for
#: plans): a config replaced this long before the window began may still have served in it.
SWAP_LAG = timedelta(minutes=1)
#: The shortest window compared: each side's requests, errors and latency come from per-minute
#: series, so a shorter window would pair the predictions of a few seconds with the serving
#: counts of a whole minute.
MIN_WINDOW = timedelta(minutes=1)
_META = ["inference_id", "row", "time", "variant", "model", "model_version"]


class LabelReader(Protocol):
    """Labels of an endpoint's predictions served in a window (``FeedbackStore.labels``)."""

    def labels(
        self,
        endpoint: str,
        *,
        since: datetime,
        until: datetime | None = None,
        variant: str | None = None,
    ) -> list[GroundTruth]: ...


class ShadowCompareService:
    """Compares a shadow variant with production (see the module docstring).

    Args:
        endpoint: An endpoint by name (raises InvalidName, EndpointNotFound).
        history: Every config of an endpoint by name, oldest first.
        capture: The captured rows.
        rows: The per-minute metric series rows (``MetricSeriesStore.read``).
        labels: The labels received (``FeedbackStore``).
        version: A model version by ``name:version`` (raises NotFound once it is gone).
        config: The default settings.
        now: The clock (injectable for tests).
    """

    def __init__(
        self,
        endpoint: Callable[[str], Endpoint],
        history: Callable[[str], Sequence[EndpointConfig]],
        capture: CaptureReader,
        rows: RowReader,
        labels: LabelReader,
        version: Callable[[str], ModelVersion],
        *,
        config: ShadowCompareConfig | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._endpoint = endpoint
        self._history = history
        self._capture = capture
        self._rows = rows
        self._labels = labels
        self._version = version
        self.config = config or ShadowCompareConfig()
        self._now = now

    def compare(
        self,
        endpoint: str,
        shadow: str | None = None,
        *,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        window: timedelta | str | None = None,
        config: ShadowCompareConfig | None = None,
    ) -> ShadowComparison:
        """Compare ``endpoint``'s shadow variant with its production variants over
        ``[since, until)``.

        Args:
            shadow: The shadow variant; needed only when the endpoint has several.
            since, until: The window (without a zone: UTC); ``until`` defaults to now and
                ``since`` to ``window`` (default one hour) before ``until``.
            config: Thresholds (default: the service's).

        Raises:
            InvalidName, EndpointNotFound; VariantNotFound: no variant named ``shadow``;
                InvalidInput: the endpoint has no shadow variant, ``shadow`` names a production
                variant, several shadows and none named, both ``since`` and ``window``, an
                empty window or one shorter than :data:`MIN_WINDOW`;
                Conflict: a side captures nothing (capture is off and no rows are in the
                window); StorageUnavailable.
        """
        config = config or self.config
        current = self._endpoint(endpoint).config
        mirror = _shadow_of(current, shadow)
        start, end = self._window(since, until, window)
        shadows = {v.name for v in current.variants if v.is_shadow}
        shadows |= _shadows_served(self._history(endpoint), start, end)
        production = tuple(v for v in current.variants if not v.is_shadow)
        versions = _Versions(self._version)
        frame = self._capture.read(endpoint, since=start, until=end, columns=[*_META, EVERY_OUTPUT])
        outputs = _outputs(frame)
        theirs = frame[frame["variant"] == mirror.name]
        ours = frame[~frame["variant"].isin(shadows)]
        notes = _capture_notes(endpoint, mirror, production, len(ours), len(theirs))
        others = sorted(set(frame["variant"].unique()) & shadows - {mirror.name})
        if others:
            notes.append(
                f"rows of {', '.join(map(repr, others))}, another shadow of the window, are "
                "on neither side"
            )
        pairs = shadow_pairs.pair(ours, theirs, outputs)
        task = versions.task_of(pairs, notes)
        agreement: Agreement | None = None
        differences: Differences | None = None
        distribution: FeatureDrift | None = None
        samples: tuple[list[Any], list[Any]]
        compared = 0
        if task is not None:
            if task is Task.CLASSIFICATION:
                agreement, samples = shadow_pairs.agreement(pairs, versions.reader, config)
                compared = agreement.compared
            else:
                differences, samples = shadow_pairs.differences(pairs, config)
                compared = differences.compared
            if compared:
                mine, its = samples
                distribution = shadow_pairs.distribution(mine, its, config.min_pairs)
        status = ComparisonStatus.OK
        if compared < config.min_pairs:
            status = ComparisonStatus.INSUFFICIENT_DATA
            what = "difference statistics" if task is Task.REGRESSION else "agreement rate"
            notes.append(
                f"{compared} paired predictions compared, fewer than the {config.min_pairs} "
                f"needed: no {what} is given"
            )
        serving = self._serving(endpoint, mirror.name, shadows, production, start, end, notes)
        expected = [(v.name, v.model_ref) for v in (*production, mirror)]
        labelled, quality = self._quality(endpoint, pairs, (start, end), expected, versions, config)
        return ShadowComparison(
            endpoint=endpoint,
            shadow=mirror.name,
            shadow_model=mirror.model_ref,
            production=tuple(v.name for v in production),
            since=start,
            until=end,
            task=task,
            production_rows=len(ours),
            shadow_rows=len(theirs),
            pairs=len(pairs),
            status=status,
            config=config,
            agreement=agreement,
            differences=differences,
            distribution=distribution,
            serving=serving,
            labelled=labelled,
            quality=tuple(quality),
            notes=tuple(notes),
        )

    # -- the parts ---------------------------------------------------------------------------

    def _window(
        self,
        since: datetime | str | None,
        until: datetime | str | None,
        window: timedelta | str | None,
    ) -> tuple[datetime, datetime]:
        if since is not None and window is not None:
            raise InvalidInput("give the window's start or its length, not both")
        window = length_of(window, "the window") if window is not None else None
        if window is not None and window <= timedelta(0):
            raise InvalidInput("the window must be longer than zero")
        now = self._now()
        end = point_in_time(until, now, "until") if until is not None else now
        start = (
            point_in_time(since, now, "since")
            if since is not None
            else end - (window or DEFAULT_WINDOW)
        )
        if start >= end:
            raise InvalidInput(
                f"the window is empty: since {start.isoformat()} is not before until "
                f"{end.isoformat()}"
            )
        if end - start < MIN_WINDOW:
            raise InvalidInput(
                "the window must be at least a minute (requests, errors and latency are "
                f"counted per minute), got {(end - start).total_seconds():g}s"
            )
        if end - start > MAX_WINDOW:
            raise InvalidInput(
                f"the window from {start.isoformat()} to {end.isoformat()} is longer than "
                f"{MAX_WINDOW.days} days; compare a month at most at a time"
            )
        return start, end

    def _serving(
        self,
        endpoint: str,
        shadow: str,
        shadows: set[str],
        production: Sequence[Variant],
        start: datetime,
        end: datetime,
        notes: list[str],
    ) -> ServingComparison:
        ours, theirs = MetricStats(), MetricStats()
        names = dict.fromkeys(v.name for v in production)
        hourly = False
        for row in self._rows(endpoint, variant=None, since=floor_minute(start), until=end):
            hourly = hourly or row.resolution_s != 60
            if row.variant == shadow:
                theirs.merge(row.stats)
            elif row.variant not in shadows:
                ours.merge(row.stats)
                names.setdefault(row.variant)
        if hourly:
            notes.append(
                "part of the window is older than the store keeps per minute: its requests, "
                "errors and latencies are of whole hours"
            )
        side, mirrored = _serving_side(tuple(names), ours), _serving_side((shadow,), theirs)
        z = p = ratio = None
        if side.requests and mirrored.requests:
            z, p = one_sided_p(mirrored.errors, mirrored.requests, side.errors, side.requests)
        if side.latency_p99_ms and mirrored.latency_p99_ms is not None:
            ratio = mirrored.latency_p99_ms / side.latency_p99_ms
        return ServingComparison(side, mirrored, z, p, ratio)

    def _quality(
        self,
        endpoint: str,
        pairs: pd.DataFrame,
        window: tuple[datetime, datetime],
        expected: list[tuple[str, str]],
        versions: _Versions,
        config: ShadowCompareConfig,
    ) -> tuple[int, list[QualityPoint]]:
        """How many pairs have a label, and the quality of both sides' predictions on those
        pairs: a point per variant and model (one for each ``expected``, even unlabelled)."""
        import pandas as pd

        from modelyard.monitoring.model_quality import ModelInfo, quality_points

        start, end = window
        truth = {
            (t.inference_id, t.row): t.label
            for t in self._labels.labels(endpoint, since=start, until=end)
        }
        keys = zip(pairs["inference_id"].tolist(), pairs["row"].tolist(), strict=True)
        at = [i for i, key in enumerate(keys) if key in truth]
        picked = pairs.iloc[at]
        labels = [truth[k] for k in zip(picked["inference_id"], picked["row"], strict=True)]

        def both(column: str) -> list[Any]:
            return [*picked[f"{column}_p"].tolist(), *picked[f"{column}_s"].tolist()]

        frame = pd.DataFrame(
            {
                "served_at": pd.to_datetime(both("time"), utc=True),
                "variant": both("variant"),
                "model": both("model"),
                "label": pd.Series(labels * 2, dtype="object"),
                "prediction": pd.Series(both("prediction"), dtype="object"),
            }
        )
        refs = {*frame["model"].tolist(), *(ref for _, ref in expected)}
        models = {
            ref: ModelInfo(model_task(found), dict(found.metrics))
            for ref in refs
            if (found := versions.get(ref)) is not None
        }
        points = quality_points(
            frame,
            endpoint=endpoint,
            windows=[window],
            models=models,
            expected=expected,
            config=QualityConfig(min_rows=config.min_pairs),
        )
        return len(at), points


class _Versions:
    """Model versions by ``name:version`` (None once deleted), each looked up once, and the
    task each one's outputs are read by."""

    def __init__(self, lookup: Callable[[str], ModelVersion]) -> None:
        self._lookup = lookup
        self._found: dict[str, ModelVersion | None] = {}
        self._tasks: dict[str, ModelTask] = {}

    def get(self, ref: str) -> ModelVersion | None:
        if ref not in self._found:
            try:
                self._found[ref] = self._lookup(ref)
            except NotFound:
                self._found[ref] = None
        return self._found[ref]

    def reader(self, ref: str, outputs: list[Any]) -> ModelTask:
        """How ``ref``'s ``outputs`` name classes (``shadow_pairs.output_task``), decided on
        the first outputs seen of it."""
        if ref not in self._tasks:
            self._tasks[ref] = shadow_pairs.output_task(self.get(ref), outputs)
        return self._tasks[ref]

    def task_of(self, pairs: pd.DataFrame, notes: list[str]) -> Task | None:
        """The task predictions are compared by: that of the production model with the most
        pairs (a shadow of another task is noted)."""
        if pairs.empty:
            return None
        tasks = {}
        for side in ("p", "s"):
            refs = pairs[f"model_{side}"]
            ref = str(refs.value_counts().index[0])
            outputs = pairs.loc[refs == ref, f"prediction_{side}"].tolist()
            tasks[side] = self.reader(ref, outputs).task
        if tasks["s"] is not None and tasks["s"] != tasks["p"]:
            notes.append(
                f"the shadow's model is a {tasks['s'].value} model, production's a "
                f"{tasks['p'].value if tasks['p'] else 'model of unknown kind'}: compared as "
                "production's"
            )
        return tasks["p"] or tasks["s"]


def _outputs(frame: pd.DataFrame) -> list[str]:
    """The output columns of captured rows (read with ``output.*``): ``output.prediction``
    (added, all null, when no row has it), then the numbered ones. What the rows hold, not what
    signatures say: one may name no outputs (a booster registered without an input example)
    while its model answers several columns."""
    if SINGLE_OUTPUT not in frame.columns:
        frame[SINGLE_OUTPUT] = None
    return [
        SINGLE_OUTPUT,
        *(c for c in frame.columns if c.startswith(OUTPUT_PREFIX) and c != SINGLE_OUTPUT),
    ]


def _shadows_served(history: Sequence[EndpointConfig], start: datetime, end: datetime) -> set[str]:
    """The variants that were shadows in a config served in ``[start, end)``: each config from
    its writing until :data:`SWAP_LAG` after the next one's."""
    found: set[str] = set()
    for config, after in zip(history, [*history[1:], None], strict=True):
        if config.created_at >= end:
            break
        if after is not None and after.created_at + SWAP_LAG <= start:
            continue
        found.update(v.name for v in config.variants if v.is_shadow)
    return found


def _shadow_of(config: EndpointConfig, name: str | None) -> Variant:
    shadows = [v for v in config.variants if v.is_shadow]
    listed = ", ".join(v.name for v in shadows)
    if name is not None:
        found = config.variant(name)
        if found is None:
            have = f"its shadow variants: {listed}" if shadows else "it has no shadow variant"
            raise VariantNotFound(f"endpoint {config.endpoint!r} has no variant {name!r}; {have}")
        if not found.is_shadow:
            raise InvalidInput(
                f"variant {name!r} of endpoint {config.endpoint!r} answers requests: it is a "
                f"production variant, not a shadow"
                + (f"; its shadow variants: {listed}" if shadows else "")
            )
        return found
    if not shadows:
        raise InvalidInput(
            f"endpoint {config.endpoint!r} has no shadow variant to compare with production: "
            "update the endpoint to give it one (a variant sent a copy of a percentage of the "
            "requests production answers)"
        )
    if len(shadows) > 1:
        raise InvalidInput(
            f"endpoint {config.endpoint!r} has {len(shadows)} shadow variants ({listed}): "
            "name the one to compare"
        )
    return shadows[0]


def _capture_notes(
    endpoint: str, shadow: Variant, production: Sequence[Variant], ours: int, theirs: int
) -> list[str]:
    """Refuse a side that captures nothing; notes about capture sampling."""
    off = []
    if not ours and not any(v.capture.enabled for v in production):
        off.append("production (" + ", ".join(v.name for v in production) + ")")
    if not theirs and not shadow.capture.enabled:
        off.append(f"the shadow {shadow.name!r}")
    if off:
        raise Conflict(
            f"agreement needs both variants' captured predictions, but endpoint {endpoint!r} "
            f"captures none for {' and '.join(off)}: update the endpoint to turn capture on "
            "for those variants (a percentage of their requests), then compare the window "
            "after"
        )
    notes = []
    if ours and not any(v.capture.enabled for v in production):
        notes.append("production captures nothing now: its rows were captured before")
    if theirs and not shadow.capture.enabled:
        notes.append("the shadow captures nothing now: its rows were captured before")
    if any(v.capture.enabled and v.capture.percent < 100 for v in (*production, shadow)):
        shown = ", ".join(f"{v.name} {v.capture.percent:g}%" for v in (*production, shadow))
        notes.append(
            f"each variant samples the requests it captures on its own ({shown}): only "
            "requests captured on both sides pair up"
        )
    return notes


def _serving_side(variants: tuple[str, ...], stats: MetricStats) -> ServingSide:
    def ms(q: float) -> float | None:
        seconds = stats.latency_quantile(q)
        return None if seconds is None else seconds * 1000

    return ServingSide(
        variants,
        int(stats.sums.get("requests", 0)),
        int(stats.sums.get("errors", 0)),
        ms(0.5),
        ms(0.99),
    )
