"""Ground truth and model quality: labels for past predictions, and how good those were.

:meth:`FeedbackService.record` takes labels named by inference id (and row), ours or the one
the caller sent with its request (SageMaker ``InferenceId``), finds each prediction among the
captured rows, and stores the label with the prediction it labels, under our id of its
request (so a label sent by either id is one label, and quality reads them alike).
Each item gets its own outcome (accepted, unknown, expired, ambiguous); labels that cannot be
labels of the model that answered (a string for a regressor, a class the classifier does not
have) refuse the whole batch with InvalidInput naming them, and nothing is stored.

:meth:`FeedbackService.quality` scores the labelled predictions per window, variant and model
version (``monitoring/model_quality.py``) and compares them with the version's validation
metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from modelyard.domain.durations import length_of, point_in_time
from modelyard.domain.endpoints import EndpointConfig
from modelyard.domain.feedback import (
    MAX_ITEMS,
    FeedbackItem,
    FeedbackOutcome,
    FeedbackResult,
    FeedbackStatus,
    GroundTruth,
    parse_items,
)
from modelyard.domain.quality import MAX_WINDOWS, QualityConfig, QualityPoint
from modelyard.domain.registry import ModelVersion
from modelyard.errors import InvalidInput, NotFound, VariantNotFound
from modelyard.monitoring.model_quality import (
    ModelInfo,
    cut_window,
    quality_points,
    window_starts,
)
from modelyard.monitoring.model_task import (
    ModelTask,
    check_label,
    model_task,
    probability_task,
)
from modelyard.services.capture_port import CaptureReader
from modelyard.services.feedback_lookup import Captured, Lookup, lookup
from modelyard.storage.feedback import FeedbackStore

#: Labels refused in one batch that the error message lists by id.
_SHOWN_REFUSALS = 5
#: The earliest time a datetime holds: a default start is never before it.
_EARLIEST = datetime.min.replace(tzinfo=UTC)


class FeedbackService:
    """Records ground truth and computes model quality (see the module docstring).

    Args:
        store: Where labels are kept.
        capture: The captured rows (``CaptureService``).
        history: An endpoint's configs, oldest first; raises EndpointNotFound.
        version: A model version by ``name:version``; raises NotFound when it is gone.
        max_age: Labels are taken for predictions made at most this long ago.
        capture_delay: How long after a request its captured row may take to be readable.
        config: The default quality thresholds.
        now: The clock (injectable for tests).
        retention: How long labels are kept by :meth:`prune_expired` (None: forever); at
            least a day longer than ``max_age``.
    """

    def __init__(
        self,
        store: FeedbackStore,
        capture: CaptureReader,
        *,
        history: Callable[[str], list[EndpointConfig]],
        version: Callable[[str], ModelVersion],
        max_age: timedelta = timedelta(days=30),
        capture_delay: timedelta = timedelta(minutes=1),
        config: QualityConfig | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        retention: timedelta | None = None,
    ) -> None:
        if retention is not None and retention < max_age + timedelta(days=1):
            raise ValueError(
                "labels must be kept at least a day longer than they are taken (max_age)"
            )
        self._store = store
        self.retention = retention
        self._capture = capture
        self._history = history
        self._version = version
        self.max_age = max_age
        self._capture_delay = capture_delay
        self.config = config or QualityConfig()
        self._now = now

    # -- retention ---------------------------------------------------------------------------

    def prune_expired(self, now: datetime | None = None) -> int | None:
        """Delete the labels of predictions served longer than the retention ago, of every
        endpoint (the scheduler loop's housekeeping); how many; None when kept forever.

        Raises:
            StorageUnavailable.
        """
        if self.retention is None:
            return None
        return self._store.purge(None, served_before=(now or self._now()) - self.retention)

    # -- recording ---------------------------------------------------------------------------

    def record(
        self, endpoint: str, items: Sequence[FeedbackItem | Mapping[str, Any]]
    ) -> FeedbackResult:
        """Store the labels of ``items`` for ``endpoint``'s captured predictions.

        Args:
            items: :class:`FeedbackItem` records, or their JSON form
                (``{"inference_id", "label", "row"?}``; the id ours or the caller's
                ``InferenceId``); at most ``MAX_ITEMS``.

        Returns:
            One outcome per item, in order: accepted (stored; it replaces an earlier label
            of the same request and row, named by either id), unknown (no captured
            prediction has that id and row), expired (made longer than ``max_age`` ago), or
            ambiguous (a caller's id that several captured requests carry: nothing stored).

        Raises:
            EndpointNotFound; PayloadTooLarge: too many items; InvalidInput: a malformed
                item, or a label that does not fit the model that made its prediction
                (nothing is stored); StorageUnavailable.
        """
        return self._record(endpoint, self._parse(items, MAX_ITEMS))

    def record_all(
        self, endpoint: str, items: Sequence[FeedbackItem | Mapping[str, Any]]
    ) -> FeedbackResult:
        """:meth:`record` for any number of items (a labels file): they are looked up
        ``MAX_ITEMS`` at a time but judged as one batch, so a malformed item (named by its
        position among all of them) or a label that does not fit its model refuses them all,
        and nothing is stored.

        Raises:
            As :meth:`record`, but never PayloadTooLarge.
        """
        return self._record(endpoint, self._parse(items, None))

    def _record(self, endpoint: str, parsed: Sequence[FeedbackItem]) -> FeedbackResult:
        configs = self._history(endpoint)
        now = self._now()
        oldest = now - self.max_age
        capturing = any(v.capture.enabled for c in configs for v in c.variants)
        outcomes: list[FeedbackOutcome] = []
        labels: list[GroundTruth] = []
        given: list[str] = []  # each label's id as the item gave it (ours or a caller's)
        for start in range(0, len(parsed), MAX_ITEMS):  # a lookup reads this many ids at most
            chunk = parsed[start : start + MAX_ITEMS]
            found = lookup(
                self._capture,
                endpoint,
                list(dict.fromkeys(i.inference_id for i in chunk)),
                oldest=oldest,
                now=now,
            )
            for item in chunk:
                outcome, captured = self._judge(item, found, now, capturing)
                outcomes.append(outcome)
                if captured is not None:
                    labels.append(_truth(endpoint, item, found.our_id(item.inference_id), captured))
                    given.append(item.inference_id)
        self._check_labels(labels, given)
        self._store.put(labels)
        return FeedbackResult(endpoint, tuple(outcomes))

    @staticmethod
    def _parse(
        items: Sequence[FeedbackItem | Mapping[str, Any]], limit: int | None
    ) -> list[FeedbackItem]:
        # Records are checked like JSON: a FeedbackItem built by hand may hold anything.
        return parse_items(
            [i.to_dict() if isinstance(i, FeedbackItem) else i for i in items], limit=limit
        )

    def _judge(
        self, item: FeedbackItem, found: Lookup, now: datetime, capturing: bool
    ) -> tuple[FeedbackOutcome, Captured | None]:
        iid, row = item.inference_id, item.row
        made = found.expired.get(iid)
        if made is not None:
            days = self.max_age / timedelta(days=1)
            return FeedbackOutcome(
                iid,
                row,
                FeedbackStatus.EXPIRED,
                f"the prediction was made at {made:%Y-%m-%d %H:%M:%S} UTC; labels are taken "
                f"for predictions of the last {days:g} days",
            ), None
        reason = found.foreign.get(iid)
        if reason is not None:
            return FeedbackOutcome(iid, row, FeedbackStatus.UNKNOWN, reason), None
        requests = found.ambiguous.get(iid)
        if requests is not None:
            days = self.max_age / timedelta(days=1)
            return FeedbackOutcome(
                iid,
                row,
                FeedbackStatus.AMBIGUOUS,
                f"{requests} captured requests of the last {days:g} days were sent with this "
                "InferenceId: no label is stored, as it could join the wrong prediction; "
                "label them by their own ids (x-modelyard-inference-id), or send each request "
                "an InferenceId of its own",
            ), None
        rows = found.found.get(iid)
        if not rows:
            return FeedbackOutcome(
                iid, row, FeedbackStatus.UNKNOWN, self._not_found(iid, now, capturing, found)
            ), None
        if row is None:
            if len(rows) > 1:
                message = f"its request had {len(rows)} rows: give the row (0 to {len(rows) - 1})"
                return FeedbackOutcome(iid, row, FeedbackStatus.UNKNOWN, message), None
            return FeedbackOutcome(iid, row, FeedbackStatus.ACCEPTED), next(iter(rows.values()))
        captured = rows.get(row)
        if captured is None:
            message = (
                f"its request had {len(rows)} rows (0 to {len(rows) - 1}); there is no row {row}"
            )
            return FeedbackOutcome(iid, row, FeedbackStatus.UNKNOWN, message), None
        return FeedbackOutcome(iid, row, FeedbackStatus.ACCEPTED), captured

    def _not_found(self, inference_id: str, now: datetime, capturing: bool, found: Lookup) -> str:
        from modelyard.domain.inference_ids import issued_at

        if not capturing:
            return (
                "the endpoint captures no requests (capture is off for every variant), and "
                "labels are joined with captured predictions only"
            )
        made = issued_at(inference_id)
        damaged = found.damaged_near(made)
        ours = made is not None
        if damaged:
            more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
            return (
                f"no readable captured prediction of this endpoint has this id; "
                f"{len(damaged)} damaged captured file(s) of its time could not be read "
                f"and may hold it (send it again once the file is restored or removed): "
                f"{damaged[0]}{more}"
            )
        if made is not None and now - made < 2 * self._capture_delay:
            return (
                f"no captured prediction has this id yet: captured rows become readable up to "
                f"{self._capture_delay.total_seconds():g} s after the request; send it again later"
            )
        if not ours:
            days = self.max_age / timedelta(days=1)
            return (
                f"no captured prediction of this endpoint of the last {days:g} days was sent "
                "with this InferenceId, and it is not an inference id a modelyard server made "
                "(those are 32 hex digits that carry their time): the request was not sampled "
                "for capture, went to another endpoint or over another protocol, is older, was "
                f"made less than {self._capture_delay.total_seconds():g} s ago (its captured "
                "row is not readable yet: send it again later), or the id is mistyped"
            )
        return (
            "no captured prediction of this endpoint has this id (the request was not "
            "sampled for capture, went to another endpoint, its captured row was pruned, or "
            "the id is mistyped)"
        )

    def _check_labels(self, labels: Sequence[GroundTruth], given: Sequence[str]) -> None:
        """Refuse the batch when a label does not fit its model, naming each by the id its
        item gave (``given``, one per label)."""
        tasks = self._tasks(labels)
        refused: list[str] = []
        for truth, named in zip(labels, given, strict=True):
            ref = truth.model_ref
            task = tasks[ref]
            reason = None if task is None else check_label(task, truth.label, ref)
            if reason is not None:
                refused.append(f"inference id {named} row {truth.row}: {reason}")
        if refused:
            more = len(refused) - _SHOWN_REFUSALS
            shown = "; ".join(refused[:_SHOWN_REFUSALS]) + (
                f"; and {more} more" if more > 0 else ""
            )
            raise InvalidInput(f"labels refused, nothing stored: {shown}")

    def _tasks(self, labels: Sequence[GroundTruth]) -> dict[str, ModelTask | None]:
        """The task of each model that made a labelled prediction, read as quality reads it:
        a classifier's one float column whose captured values are probabilities has the
        classes 0 and 1 (so a label ``"cat"`` or ``7`` is refused here, not dropped from the
        scores later)."""
        by_ref: dict[str, list[GroundTruth]] = {}
        for truth in labels:
            by_ref.setdefault(truth.model_ref, []).append(truth)
        tasks: dict[str, ModelTask | None] = {}
        for ref, truths in by_ref.items():
            task = self._task(ref)
            if task is not None:
                task = probability_task(task, [t.prediction for t in truths])
            tasks[ref] = task
        return tasks

    def _task(self, ref: str) -> ModelTask | None:
        try:
            return model_task(self._version(ref))
        except NotFound:  # the version was deleted since: any scalar label is taken
            return None

    def _versions_of(self, configs: Iterable[EndpointConfig]) -> dict[str, ModelVersion]:
        out: dict[str, ModelVersion] = {}
        for config in configs:
            for variant in config.variants:
                ref = variant.model_ref
                if ref not in out:
                    try:
                        out[ref] = self._version(ref)
                    except NotFound:
                        continue
        return out

    # -- quality -----------------------------------------------------------------------------

    def quality(
        self,
        endpoint: str,
        *,
        window: timedelta | str,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        bucket: timedelta | str | None = None,
        variant: str | None = None,
        config: QualityConfig | None = None,
    ) -> list[QualityPoint]:
        """The quality of ``endpoint``'s labelled predictions, per window, variant and model.

        Windows start at ``since`` and every ``bucket`` after it (default: ``window``, so they
        tile), each ``window`` long and cut at ``until`` (default: now); ``since`` defaults
        to one window before ``until``. A prediction belongs to the window it was made in.

        Returns:
            Points ordered by start, variant and model (see
            :func:`~modelyard.monitoring.model_quality.quality_points`): the current config's
            variants get a point in every window, INSUFFICIENT_DATA when unlabelled.

        Raises:
            EndpointNotFound; VariantNotFound; InvalidInput: a window or bucket not above
                zero, ``since`` not before ``until``; StorageUnavailable.
        """
        import pandas as pd

        configs = self._history(endpoint)
        now = self._now()
        end = point_in_time(until, now, "until") if until is not None else now
        window = length_of(window, "the quality window")
        bucket = length_of(bucket, "the quality bucket") if bucket is not None else None
        step = bucket or window
        if window <= timedelta(0) or step <= timedelta(0):
            raise InvalidInput("the quality window and bucket must be longer than zero")
        if since is not None:
            start = point_in_time(since, now, "since")
        else:  # one window before ``until``, or the earliest time there is
            start = end - min(window, end - _EARLIEST)
        if start >= end:
            raise InvalidInput(
                f"since ({start.isoformat()}) must be before until ({end.isoformat()})"
            )
        count = -((start - end) // step)  # windows that begin before ``end``
        if count > MAX_WINDOWS:
            raise InvalidInput(
                f"quality windows every {step.total_seconds():g} s from {start.isoformat()} to "
                f"{end.isoformat()} would be {count:,}; at most {MAX_WINDOWS:,} are scored at "
                f"once: give longer windows or a shorter span"
            )
        current = configs[-1]
        if variant is not None and not any(c.variant(variant) for c in configs):
            names = ", ".join(v.name for v in current.variants)
            raise VariantNotFound(
                f"endpoint {endpoint!r} has no variant {variant!r}; its variants: {names}"
            )
        starts = window_starts(start, end, step)
        last_end = cut_window(starts[-1], window, end)
        truths = self._store.labels(endpoint, since=start, until=last_end, variant=variant)
        frame = pd.DataFrame(
            {
                "served_at": pd.to_datetime([t.served_at for t in truths], utc=True),
                "variant": [t.variant for t in truths],
                "model": [t.model_ref for t in truths],
                "label": pd.Series([t.label for t in truths], dtype="object"),
                "prediction": pd.Series([t.prediction for t in truths], dtype="object"),
            }
        )
        expected = [
            (v.name, v.model_ref) for v in current.variants if variant is None or v.name == variant
        ]
        refs = {*frame["model"].unique().tolist(), *(ref for _, ref in expected)}
        models = {ref: info for ref in refs if (info := self._info(ref)) is not None}
        return quality_points(
            frame,
            endpoint=endpoint,
            windows=[(s, cut_window(s, window, end)) for s in starts],
            models=models,
            expected=expected,
            config=config or self.config,
        )

    def _info(self, ref: str) -> ModelInfo | None:
        try:
            version = self._version(ref)
        except NotFound:
            return None
        return ModelInfo(model_task(version), dict(version.metrics))


def _truth(endpoint: str, item: FeedbackItem, ours: str, captured: Captured) -> GroundTruth:
    """The label of ``item`` for the prediction ``captured``, kept under our id ``ours`` of
    its request (the item may name it by the caller's id)."""
    return GroundTruth(
        endpoint=endpoint,
        inference_id=ours,
        row=captured.row,
        label=item.label,
        variant=captured.variant,
        model=captured.model,
        model_version=captured.model_version,
        served_at=captured.time,
        prediction=captured.prediction,
    )
