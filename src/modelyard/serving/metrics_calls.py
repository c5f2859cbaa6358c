"""The drain's fold of answered calls: input, output and repeat metrics, and the hand-over of
the calls sampled for capture.

Per endpoint variant, the calls' rows and predictions are stacked once (``metrics_compute``:
one array of the rows, one of the predictions); rows per request, repeated queries, per-feature
input statistics and per-output statistics all come from those arrays. When capture shares the
metrics' buffer (``calls``), the sampled calls go to the capture writer with the same arrays
(every call sampled: the arrays themselves; some: their rows picked out), so the capture
writer's thread only turns them into Parquet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.domain.metric_stats import CARRY_SCALE
from modelyard.serving import metrics_names as m
from modelyard.serving.capture import CaptureBlock, row_positions, to_micros
from modelyard.serving.columns import grouped, numbers, picked
from modelyard.serving.metrics_compute import (
    as_floats,
    bucket_counts,
    frame_digest,
    input_stats,
    output_stats,
    request_digests,
)
from modelyard.serving.metrics_repeats import RecentDigests
from modelyard.serving.stacking import prediction_matrix, stacked

if TYPE_CHECKING:
    from modelyard.domain.metric_stats import MetricStats
    from modelyard.domain.signature import ColumnSpec
    from modelyard.serving.calls import CallBlock
    from modelyard.serving.capture_writer import CaptureWriter
    from modelyard.serving.metrics_files import PromWriter

log = logging.getLogger("modelyard.serving")

#: Distinct classes labelled per output of a variant; more are counted as ``__other__``.
MAX_CLASSES = 50


class CallsFold:
    """Folds drained calls into a worker's Prometheus values and minute stats.

    Args:
        writer: The worker's Prometheus values.
        stats: The current drain's minute stats of ``(endpoint, variant)``.
        repeat_window_s: Rows answered again within this many seconds count as repeated.
        capture: Where the calls sampled for capture go (read at each fold; None: nowhere).
        clock_offset: Wall-clock seconds minus the timer's, now (the sampled calls' times
            are the timer's: their start).
    """

    def __init__(
        self,
        writer: PromWriter,
        stats: Callable[[str, str], MetricStats],
        repeat_window_s: float,
        capture: Callable[[], CaptureWriter | None],
        clock_offset: Callable[[], float],
    ) -> None:
        self._writer = writer
        self._stats = stats
        self._window = repeat_window_s
        self._capture = capture
        self._clock_offset = clock_offset
        self._recent = RecentDigests()
        self._classes: dict[tuple[str, ...], set[str]] = {}
        self._failing: set[tuple[str, ...]] = set()  # variants whose metrics fail, logged

    def fold(self, block: CallBlock, now: float) -> None:
        """Add ``block``'s calls (one drain's) to the metrics; hand its sampled calls over.

        A variant whose calls the statistics cannot read (rows a handler's ``input_fn`` made
        of values no digest takes, say) loses its own input and output metrics for this drain,
        logged once per streak; its sampled calls still go to capture, and the other variants'
        calls are counted."""
        sampled = _Sampled(block, self._clock_offset()) if len(block.sampled) else None
        # By route: a route belongs to one endpoint (the deployer builds each endpoint its own),
        # so the endpoint's name is its first call's (no pass over every request's name).
        for (variant,), at in grouped(block.variants):
            endpoint = block.endpoints[0 if at is None else int(at[0])]
            rows, predictions = picked(block.rows, at), picked(block.predictions, at)
            lengths = np.fromiter(map(len, rows), np.int64, len(rows))
            labels = (endpoint, variant.name, str(variant.served.spec.version))
            stacks: list[np.ndarray | None] = [None, None]  # the rows, the predictions
            try:
                self._group(labels, variant, rows, predictions, lengths, now, stacks)
            except Exception:  # the metrics' defect must not cost capture, nor other variants
                if labels not in self._failing:
                    log.exception(
                        "could not compute the input and output metrics of %s/%s (skipped "
                        "until they work again; capture goes on)",
                        *labels[:2],
                    )
                self._failing.add(labels)
            else:
                self._failing.discard(labels)
            if sampled is not None:
                raw, y = stacks
                part = sampled.of(variant, at, rows, predictions, lengths, raw, y)
                writer = self._capture()
                if part is not None and writer is not None:
                    writer.put(endpoint, part)

    def _group(
        self,
        labels: tuple[str, str, str],
        variant: Any,
        rows: list[Any],
        predictions: list[Any],
        lengths: np.ndarray,
        now: float,
        stacks: list[np.ndarray | None],
    ) -> None:
        """One variant's calls into the metrics; ``stacks`` gets their rows and predictions
        stacked (each when it could be), for capture."""
        endpoint = labels[0]
        spec = variant.served.spec
        stats = self._stats(endpoint, variant.name)
        self._writer.observe(
            m.REQUEST_ROWS, labels, bucket_counts(lengths, m.ROW_BUCKETS), lengths.sum()
        )
        stats.add("rows", float(lengths.sum()))
        stats.add("io_requests", len(rows))
        raw = stacks[0] = stacked(rows, lengths)
        y = stacks[1] = prediction_matrix(predictions, lengths)
        x = as_floats(raw)
        if x is not None:
            digests = request_digests(x, lengths)
        else:
            digests = np.fromiter(map(frame_digest, rows), np.uint64, len(rows))
        # Salted by the variant: equal rows sent to two variants are not repeats.
        salt = np.uint64(hash(labels[:2]) & 0xFFFFFFFFFFFFFFFF)
        repeated = self._recent.repeats(digests ^ salt, now, self._window)
        self._writer.inc(m.REPEATED, labels, repeated)
        stats.add("repeated", repeated)
        signature = spec.signature
        # A model that does not name its features (None) has them numbered instead.
        inputs = signature.feature_names if signature is not None else None
        hidden = _redacted(variant)
        self._inputs(labels, stats, input_stats(x, rows, inputs, m.TEXT_BUCKETS), hidden)
        outputs = _named(signature.outputs) if signature is not None else None
        self._outputs(labels, stats, predictions, outputs, y)

    def _inputs(
        self, labels: tuple[str, ...], stats: MetricStats, found: Any, hidden: frozenset[str]
    ) -> None:
        """Add one variant's input statistics; of a field in ``hidden`` (its capture redacts
        it) only how many values were present and missing: its sum, least and greatest value
        would show what redaction hides (with one request a minute, that caller's value)."""
        w = self._writer
        numeric = found.numeric
        if numeric is not None:
            for j, name in enumerate(numeric.names):
                feature = (*labels, name)
                present, missing = float(numeric.present[j]), float(numeric.missing[j])
                w.inc(m.INPUT_VALUES, feature, present)
                w.inc(m.INPUT_MISSING, feature, missing)
                stats.add(f"in.n.{name}", present)
                stats.add(f"in.miss.{name}", missing)
                if name in hidden:
                    continue
                total, carried = float(numeric.sums[j]), float(numeric.carried[j])
                # Prometheus' sum holds what a float does: past the largest, +Inf.
                summed = total + carried / CARRY_SCALE if carried else total
                w.summarize(m.INPUT_VALUE, feature, present, summed)
                stats.add(f"in.sum.{name}", total)
                stats.carry(f"in.sum.{name}", carried)
                if present:
                    low, high = float(numeric.lows[j]), float(numeric.highs[j])
                    w.low(m.INPUT_MIN, feature, low)
                    w.high(m.INPUT_MAX, feature, high)
                    stats.low(f"in.{name}", low)
                    stats.high(f"in.{name}", high)
        for name, text in found.text.items():
            feature = (*labels, name)
            w.inc(m.INPUT_VALUES, feature, text.present)
            w.inc(m.INPUT_MISSING, feature, text.missing)
            stats.add(f"in.n.{name}", text.present)
            stats.add(f"in.miss.{name}", text.missing)
            if name in hidden:
                continue
            w.observe(m.TEXT_LENGTH, feature, text.buckets, text.total_length)
            stats.add(f"txt.n.{name}", text.present)
            stats.add(f"txt.len.{name}", text.total_length)

    def _outputs(
        self,
        labels: tuple[str, ...],
        stats: MetricStats,
        predictions: list[Any],
        names: list[str] | None,
        matrix: np.ndarray | None,
    ) -> None:
        w = self._writer
        # The per-minute series follow the first output (a 1-column model's only one).
        found = output_stats(predictions, names, m.PREDICTION_BUCKETS, matrix)
        for index, out in enumerate(found):
            output = (*labels, out.name)
            w.inc(m.OUTPUT_VALUES, output, out.present)
            w.inc(m.OUTPUT_MISSING, output, out.missing)
            if index == 0:
                stats.add("out.n", out.present)
                stats.add("out.miss", out.missing)
            if out.buckets is not None:
                carried = out.carried / CARRY_SCALE if out.carried else 0.0
                w.observe(m.PREDICTION, output, out.buckets, out.total + carried)
                if index == 0 and out.present:
                    stats.add("out.sum", out.total)
                    stats.carry("out.sum", out.carried)
                    stats.low("out", out.low)
                    stats.high("out", out.high)
            # Per output: two outputs' labels are two questions, though both say "yes".
            known = self._classes.setdefault(output, set())
            for name, count in out.classes.items():
                if name not in known and len(known) < MAX_CLASSES:
                    known.add(name)
                label = name if name in known else "__other__"
                w.inc(m.CLASSES, (*output, label), count)
                if index == 0:
                    stats.add(f"class.{label}", count)


class _Sampled:
    """The calls of one block sampled for capture, picked out group by group."""

    def __init__(self, block: CallBlock, clock_offset: float) -> None:
        self._positions = block.sampled  # in the block, ascending
        self._ids = block.inference_ids
        self._callers = block.callers
        self._protocols = block.protocols
        self._micros = to_micros(numbers(block.starts) + clock_offset)
        self._latencies = numbers(block.latencies)

    def of(
        self,
        variant: Any,
        at: np.ndarray | None,
        rows: list[Any],
        predictions: list[Any],
        lengths: np.ndarray,
        matrix: np.ndarray | None,
        outputs: np.ndarray | None,
    ) -> CaptureBlock | None:
        """The sampled calls among a group's (at block positions ``at``; None: all of the
        block's), with the group's rows and predictions (stacked when ``matrix`` and
        ``outputs`` are not None); None when there are none."""
        positions = self._positions
        if at is None:
            calls, entries = positions, None  # every sampled entry, in order
        else:
            found = np.searchsorted(positions, at)
            hit = positions[np.minimum(found, len(positions) - 1)] == at
            calls, entries = np.flatnonzero(hit), found[hit]
            if not len(calls):
                return None
        every = len(calls) == len(lengths)  # the usual case at 100 %: nothing to pick
        rows_at = None if every else row_positions(lengths, calls)
        if entries is None:
            ids, protocols, callers = self._ids, self._protocols, self._callers
            micros, latencies = self._micros, self._latencies
        else:
            ids = [self._ids[j] for j in entries.tolist()]
            protocols = [self._protocols[j] for j in entries.tolist()]
            callers = self._callers
            if callers is not None:
                callers = [callers[j] for j in entries.tolist()]
                if callers.count(None) == len(callers):
                    callers = None
            micros, latencies = self._micros[entries], self._latencies[entries]
        return CaptureBlock(
            variant=variant,
            inference_ids=ids,
            protocols=protocols,
            rows=[] if matrix is not None else (rows if every else picked(rows, calls)),
            predictions=(
                []
                if outputs is not None
                else (predictions if every else picked(predictions, calls))
            ),
            micros=micros,
            latencies=latencies,
            counts=lengths if every else lengths[calls],
            matrix=matrix if matrix is None or rows_at is None else matrix[rows_at],
            outputs=outputs if outputs is None or rows_at is None else outputs[rows_at],
            callers=callers,
        )


def _named(columns: Sequence[ColumnSpec]) -> list[str] | None:
    """The columns' names, or None when one has none (a label value must be a string)."""
    names = [c.name for c in columns]
    return None if any(n is None for n in names) else [str(n) for n in names]


def _redacted(variant: Any) -> frozenset[str]:
    """The input fields ``variant``'s capture redacts (hashes or drops)."""
    redact = variant.capture.redact
    return frozenset(r.name for r in redact) if redact else frozenset()
