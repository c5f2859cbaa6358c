"""The drain: folds one worker's buffered request records into its metrics, off the event loop.

Every ``drain_s`` a thread takes every record buffered since the last drain (``Metrics``'s
deques, the batchers' ``batches``), groups them by endpoint and variant, computes each group's
numbers with a few numpy reductions (``metrics_compute``), adds them to the worker's Prometheus
values and writes the changed ones to its files (``metrics_files``), and adds the same numbers
to the current minute of its series (``metrics_series``), which another thread writes to the
store every ``flush_s``. Process memory and CPU, in-flight counts and model load times are
sampled at each drain, and the capture writer's counters read (``metrics_capture``).

Per-minute CPU time is shared among the variants by their requests in each drain interval
(idle time is nobody's); memory is the worker's, recorded in each variant it served that minute.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.domain.metric_stats import LATENCY_BOUNDS_S, MetricStats
from modelyard.errors import ModelyardError
from modelyard.serving import metrics_names as m
from modelyard.serving.metrics_capture import CaptureFold
from modelyard.serving.metrics_compute import (
    bucket_counts,
    frame_digest,
    input_stats,
    output_stats,
    request_digests,
    stack,
)
from modelyard.serving.metrics_files import PromWriter
from modelyard.serving.metrics_series import MinuteSeries, minute_of

if TYPE_CHECKING:
    from modelyard.serving.deployer import Deployer
    from modelyard.serving.metrics import Metrics


#: Distinct classes labelled per variant; more are counted as ``__other__``.
MAX_CLASSES = 50
#: Recent request digests remembered per worker (for repeated-query detection).
MAX_RECENT = 20_000
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _take(buffer: Any) -> list[Any]:
    """Pop what ``buffer`` holds now (records appended meanwhile wait for the next drain)."""
    return [buffer.popleft() for _ in range(len(buffer))]


def _grouped(records: list[tuple[Any, ...]], width: int) -> dict[tuple[Any, ...], list[Any]]:
    """``records`` by their first ``width`` fields (endpoint, protocol, variant route …)."""
    if not records:
        return {}
    keys = set(map(itemgetter(*range(width)), records))  # C loops: the usual case is one key
    if len(keys) == 1:
        return {records[0][:width]: records}
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for record in records:
        key = record[:width]
        group = groups.get(key)
        if group is None:
            groups[key] = [record]
        else:
            group.append(record)
    return groups


def status_of(error: BaseException) -> tuple[str, str]:
    """``(status, code)`` labels of a failed request."""
    if isinstance(error, ModelyardError):
        return str(error.http_status), error.code
    if isinstance(error, asyncio.CancelledError):
        return "499", "cancelled"  # the client went away
    return "500", "internal"


def rss_bytes() -> float:
    """This process's resident memory."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return float(int(statm.read().split()[1]) * _PAGE)
    except OSError:  # not Linux: the peak instead
        import resource

        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class Drainer:
    """Folds buffered records into a :class:`PromWriter` and a :class:`MinuteSeries`."""

    def __init__(
        self,
        metrics: Metrics,
        deployer: Deployer,
        writer: PromWriter,
        series: MinuteSeries | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics
        self._deployer = deployer
        self._writer = writer
        self._series = series
        self._clock = clock
        self._recent: OrderedDict[int, float] = OrderedDict()
        self._classes: dict[tuple[str, ...], set[str]] = {}
        self._loaded: set[tuple[int, str, str]] = set()
        self._inflight: set[tuple[str, ...]] = set()
        self._cpu = cpu_seconds()
        self._dropped = 0
        self._minute: dict[tuple[str, str], MetricStats] = {}
        self._capture = CaptureFold(metrics.capture) if metrics.capture is not None else None

    def _stats(self, endpoint: str, variant: str) -> MetricStats:
        stats = self._minute.get((endpoint, variant))
        if stats is None:
            stats = self._minute[(endpoint, variant)] = MetricStats()
        return stats

    def drain(self) -> int:
        """One drain; the number of request records it took."""
        began = time.thread_time()
        now = self._clock()
        metrics = self._metrics
        outcomes, io, refusals = _take(metrics.outcomes), _take(metrics.io), _take(metrics.refusals)
        self._minute = {}
        requests = self._outcomes(outcomes)
        requests.update(self._refusals(refusals))
        self._io(io, now)
        self._table()
        self._process(requests)
        if self._capture is not None:
            self._capture.drain(self._writer)
        self._writer.inc(m.DRAIN_CPU, (), time.thread_time() - began)  # the flush goes uncounted
        self._writer.flush()
        if self._series is not None and self._minute:
            self._series.update(minute_of(now), self._minute)
        return len(outcomes) + len(refusals)

    # -- request outcomes --------------------------------------------------------------------

    def _outcomes(self, outcomes: list[tuple[Any, ...]]) -> dict[tuple[str, str], int]:
        w = self._writer
        served: dict[tuple[str, str], int] = {}
        for (endpoint, protocol, variant), records in _grouped(outcomes, 3).items():
            labels = (endpoint, variant.name, str(variant.served.spec.version), protocol)
            n = len(records)
            stats = self._stats(endpoint, variant.name)
            served[(endpoint, variant.name)] = served.get((endpoint, variant.name), 0) + n
            w.inc(m.REQUESTS, labels, n)
            stats.add("requests", n)
            _, _, _, started, ended, errors, request_bytes, response_bytes = zip(
                *records, strict=True
            )
            took = np.subtract(ended, started)
            counts = bucket_counts(took, LATENCY_BOUNDS_S)
            w.observe(m.DURATION, labels, counts, float(took.sum()))
            stats.add("latency_s", float(took.sum()))
            for i in np.flatnonzero(counts):
                stats.add(f"lat.{i}", float(counts[i]))
            for sizes_seen, metric, side in (
                (request_bytes, m.REQUEST_SIZE, "request"),
                (response_bytes, m.RESPONSE_SIZE, "response"),
            ):
                sizes = np.asarray(sizes_seen, dtype=np.float64)
                sizes = sizes[sizes >= 0]
                if len(sizes):
                    w.observe(metric, labels[:3], bucket_counts(sizes, metric.buckets), sizes.sum())
                    stats.add(f"{side}_bytes", float(sizes.sum()))
                    stats.add(f"{side}_bytes.n", len(sizes))
            self._errors(labels, stats, [e for e in errors if e is not None])
        return served

    def _errors(self, labels: tuple[str, ...], stats: MetricStats, errors: list[Any]) -> None:
        counted: dict[tuple[str, str], int] = {}
        for error in errors:
            key = status_of(error)
            counted[key] = counted.get(key, 0) + 1
        for (status, code), count in counted.items():
            self._writer.inc(m.ERRORS, (*labels, status, code), count)
            stats.add("errors", count)
            if status.startswith("5"):
                stats.add("server_errors", count)

    def _refusals(
        self, refusals: list[tuple[str, str, BaseException]]
    ) -> dict[tuple[str, str], int]:
        # An endpoint this server does not know is counted without its name: the name is the
        # caller's, and every distinct one would be a new time series.
        known = self._deployer.table.endpoints.keys() | self._deployer.failures.keys()
        served: dict[tuple[str, str], int] = {}
        for endpoint, protocol, error in refusals:
            name = endpoint if endpoint in known else ""
            labels = (name, "", "", protocol)
            self._writer.inc(m.REQUESTS, labels, 1)
            if name:
                stats = self._stats(name, "")
                stats.add("requests", 1)
                served[(name, "")] = served.get((name, ""), 0) + 1
            else:
                stats = MetricStats()  # not kept
            self._errors(labels, stats, [error])
        return served

    # -- rows and predictions ----------------------------------------------------------------

    def _io(self, io: list[tuple[Any, ...]], now: float) -> None:
        for (endpoint, variant), records in _grouped(io, 2).items():
            spec = variant.served.spec
            labels = (endpoint, variant.name, str(spec.version))
            stats = self._stats(endpoint, variant.name)
            _, _, rows, predictions = zip(*records, strict=True)
            lengths = np.fromiter(map(len, rows), np.int64, len(rows))
            self._writer.observe(
                m.REQUEST_ROWS, labels, bucket_counts(lengths, m.ROW_BUCKETS), lengths.sum()
            )
            stats.add("rows", float(lengths.sum()))
            stats.add("io_requests", len(rows))
            x = stack(rows)
            if x is not None:
                digests = request_digests(x, lengths)
            else:
                digests = np.fromiter(map(frame_digest, rows), np.uint64, len(rows))
            self._repeats(labels, stats, digests, now)
            signature = spec.signature
            inputs = [c.name for c in signature.inputs] if signature is not None else None
            self._inputs(labels, stats, input_stats(x, rows, inputs, m.TEXT_BUCKETS))
            outputs = [c.name for c in signature.outputs] if signature is not None else None
            self._outputs(labels, stats, list(predictions), outputs)

    def _repeats(
        self, labels: tuple[str, ...], stats: MetricStats, digests: np.ndarray, now: float
    ) -> None:
        # Within one drain, a digest seen again is a repeat; each distinct digest is then
        # looked up among the worker's recent ones (a bounded LRU of last-seen times).
        salt = np.uint64(hash(labels[:2]) & 0xFFFFFFFFFFFFFFFF)
        distinct = np.unique(digests ^ salt)
        repeated = len(digests) - len(distinct)
        recent = self._recent
        window = self._metrics.repeat_window_s
        for key in distinct.tolist():
            seen = recent.pop(key, None)
            if seen is not None and now - seen <= window:
                repeated += 1
            recent[key] = now
        while len(recent) > MAX_RECENT:
            recent.popitem(last=False)
        self._writer.inc(m.REPEATED, labels, repeated)
        stats.add("repeated", repeated)

    def _inputs(self, labels: tuple[str, ...], stats: MetricStats, found: Any) -> None:
        w = self._writer
        numeric = found.numeric
        if numeric is not None:
            for j, name in enumerate(numeric.names):
                feature = (*labels, name)
                present, missing = float(numeric.present[j]), float(numeric.missing[j])
                w.inc(m.INPUT_VALUES, feature, present)
                w.inc(m.INPUT_MISSING, feature, missing)
                w.inc(m.INPUT_SUM, feature, float(numeric.sums[j]))
                stats.add(f"in.n.{name}", present)
                stats.add(f"in.miss.{name}", missing)
                stats.add(f"in.sum.{name}", float(numeric.sums[j]))
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
            w.observe(m.TEXT_LENGTH, feature, text.buckets, text.total_length)
            stats.add(f"in.n.{name}", text.present)
            stats.add(f"in.miss.{name}", text.missing)
            stats.add(f"txt.n.{name}", text.present)
            stats.add(f"txt.len.{name}", text.total_length)

    def _outputs(
        self,
        labels: tuple[str, ...],
        stats: MetricStats,
        predictions: list[Any],
        names: list[str] | None,
    ) -> None:
        w = self._writer
        # The per-minute series follow the first output (a 1-column model's only one).
        for index, out in enumerate(output_stats(predictions, names, m.PREDICTION_BUCKETS)):
            output = (*labels, out.name)
            w.inc(m.OUTPUT_VALUES, output, out.present)
            w.inc(m.OUTPUT_MISSING, output, out.missing)
            if index == 0:
                stats.add("out.n", out.present)
                stats.add("out.miss", out.missing)
            if out.buckets is not None:
                w.observe(m.PREDICTION, output, out.buckets, out.total)
                if index == 0 and out.present:
                    stats.add("out.sum", out.total)
                    stats.low("out", out.low)
                    stats.high("out", out.high)
            known = self._classes.setdefault(labels, set())
            for name, count in out.classes.items():
                if name not in known and len(known) < MAX_CLASSES:
                    known.add(name)
                label = name if name in known else "__other__"
                w.inc(m.CLASSES, (*labels, label), count)
                if index == 0:
                    stats.add(f"class.{label}", count)

    # -- the route table and the process -----------------------------------------------------

    def _table(self) -> None:
        w = self._writer
        live: set[tuple[str, ...]] = set()
        loaded: set[tuple[int, str, str]] = set()
        for endpoint in self._deployer.table.endpoints.values():
            for variant in endpoint.variants.values():
                served = variant.served
                labels = (endpoint.name, variant.name, str(served.spec.version))
                live.add(labels)
                batches = _take(variant.batcher.batches)
                if batches:
                    per_call = zip(*batches, strict=True)
                    reqs, rows = (np.asarray(c, dtype=np.float64) for c in per_call)
                    w.observe(m.BATCH_ROWS, labels, bucket_counts(rows, m.ROW_BUCKETS), rows.sum())
                    w.observe(
                        m.BATCH_REQUESTS, labels, bucket_counts(reqs, m.ROW_BUCKETS), reqs.sum()
                    )
                    stats = self._stats(endpoint.name, variant.name)
                    stats.add("batches", len(batches))
                    stats.add("batch_rows", float(rows.sum()))
                w.set(m.INFLIGHT, labels, served.inflight)
                if served.inflight:
                    self._stats(endpoint.name, variant.name).high("inflight", served.inflight)
                key = (id(served), endpoint.name, variant.name)
                loaded.add(key)
                if key not in self._loaded:
                    w.high(m.LOAD, labels, served.load_s)
                    self._stats(endpoint.name, variant.name).high("load_s", served.load_s)
        for gone in self._inflight - live:  # a variant no longer served has nothing in flight
            w.set(m.INFLIGHT, gone, 0)
        self._inflight = live
        self._loaded = loaded

    def _process(self, requests: dict[tuple[str, str], int]) -> None:
        w = self._writer
        rss = rss_bytes()
        w.set(m.MEMORY, (), rss)
        w.set(m.WORKER_MEMORY, (), rss)
        w.set(m.WORKERS, (), 1)
        cpu = cpu_seconds()
        spent, self._cpu = max(0.0, cpu - self._cpu), cpu
        w.inc(m.CPU, (), spent)
        dropped = self._metrics.dropped
        w.inc(m.DROPPED, (), dropped - self._dropped)
        self._dropped = dropped
        total = sum(requests.values())
        for key, stats in self._minute.items():
            stats.high("memory_bytes", rss)
            if total and key in requests:
                stats.add("cpu_s", spent * requests[key] / total)
