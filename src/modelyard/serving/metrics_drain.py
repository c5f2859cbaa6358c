"""The drain: folds one worker's buffered request records into its metrics, off the event loop.

Every ``drain_s`` a thread takes every record buffered since the last drain (``Metrics``'s
columns, the batchers' ``batches``), groups them by endpoint and variant, computes each group's
numbers with a few numpy reductions (``metrics_compute``; the answered calls in
``metrics_calls``, which also hands the calls sampled for capture to the capture writer), adds
them to the worker's Prometheus values and writes the changed ones to its files
(``metrics_files``), and adds the same numbers to the current minute of its series
(``metrics_series``), which another thread writes to the store every ``flush_s``. Process
memory and CPU, in-flight counts and model load times are sampled at each drain, and the
capture writer's and the shadow fan-out's counters read (``metrics_capture``,
``metrics_shadow``).

Per-minute CPU time is shared among the variants by their requests in each drain interval
(idle time is nobody's); memory is the worker's, recorded in each variant it served that minute.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.domain.metric_stats import LATENCY_BOUNDS_S, MetricStats
from modelyard.errors import ModelFailed, ModelLoadFailed, ModelNotReady, ModelyardError
from modelyard.serving import metrics_names as m
from modelyard.serving.columns import grouped, numbers, picked
from modelyard.serving.metrics_calls import CallsFold
from modelyard.serving.metrics_capture import CaptureFold
from modelyard.serving.metrics_compute import bucket_counts
from modelyard.serving.metrics_files import PromWriter
from modelyard.serving.metrics_series import MinuteSeries, minute_of
from modelyard.serving.metrics_shadow import ShadowFold
from modelyard.serving.sagemaker import answered_status

if TYPE_CHECKING:
    from modelyard.serving.calls import CallBlock
    from modelyard.serving.deployer import Deployer
    from modelyard.serving.metrics import Metrics

#: What one drain takes: the outcomes' columns, the calls, the refusals.
Taken = tuple[tuple[Any, ...], "CallBlock", list[Any]]


#: Error codes that are the server's fault whatever status their protocol gave them.
_SERVER_FAULTS = frozenset((ModelFailed.code, ModelNotReady.code, ModelLoadFailed.code))

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _take(buffer: Any) -> list[Any]:
    """Pop what ``buffer`` holds now (records appended meanwhile wait for the next drain)."""
    return [buffer.popleft() for _ in range(len(buffer))]


def server_fault(status: str, code: str) -> bool:
    """Whether an error with these labels is the server's fault, whatever the protocol called
    it: a 5xx, or SageMaker's 424 for a model's failure and 429 for a model not loaded."""
    return status.startswith("5") or code in _SERVER_FAULTS


def status_of(error: BaseException, protocol: str = "") -> tuple[str, str]:
    """``(status, code)`` labels of a failed request: the HTTP status the caller got (a
    SageMaker caller gets 424 for a model's failure, others 500; gRPC callers, the HTTP
    equivalent of their status code)."""
    if isinstance(error, ModelyardError):
        status = answered_status(error) if protocol == "sagemaker" else error.http_status
        return str(status), error.code
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
        self._calls = CallsFold(
            writer,
            self._stats,
            metrics.repeat_window_s,
            lambda: metrics.capture_writer,
            metrics.clock_offset,
        )
        self._loaded: set[tuple[int, str, str]] = set()
        self._inflight: set[tuple[str, ...]] = set()
        self._cpu = cpu_seconds()
        self._dropped = 0
        self._minute: dict[tuple[str, str], MetricStats] = {}
        self._capture = CaptureFold(metrics.capture) if metrics.capture is not None else None
        self._shadows = ShadowFold(metrics.shadows) if metrics.shadows is not None else None

    def _stats(self, endpoint: str, variant: str) -> MetricStats:
        stats = self._minute.get((endpoint, variant))
        if stats is None:
            stats = self._minute[(endpoint, variant)] = MetricStats()
        return stats

    def take(self) -> Taken:
        """Every record buffered now: the outcomes, the calls and the refusals.

        Call it on the event loop (between two of its steps), or accept that a request whose
        rows are recorded but not yet its outcome is split between two drains (and, when the
        minute turns between them, two minutes).
        """
        metrics = self._metrics
        return metrics.outcomes.take(), metrics.calls.take(), _take(metrics.refusals)

    def drain(self, taken: Taken | None = None) -> int:
        """One drain of ``taken`` (default: :meth:`take` now); the number of request records
        it took."""
        began = time.thread_time()
        now = self._clock()
        outcomes, calls, refusals = taken if taken is not None else self.take()
        self._minute = {}
        requests = self._outcomes(outcomes)
        requests.update(self._refusals(refusals))
        self._calls.fold(calls, now)
        self._table()
        self._process(requests)
        if self._capture is not None:
            self._capture.drain(self._writer)
        if self._shadows is not None:
            self._shadows.drain(self._writer, self._deployer.table)
        self._writer.inc(m.DRAIN_CPU, (), time.thread_time() - began)  # the flush goes uncounted
        self._writer.flush()
        if self._series is not None and self._minute:
            self._series.update(minute_of(now), self._minute)
        return len(outcomes[0]) + len(refusals)

    # -- request outcomes --------------------------------------------------------------------

    def _outcomes(self, outcomes: tuple[list[Any], ...]) -> dict[tuple[str, str], int]:
        w = self._writer
        served: dict[tuple[str, str], int] = {}
        endpoints, protocols, variants, durations, errors, sizes_in, sizes_out = outcomes
        if not endpoints:
            return served
        took_all = numbers(durations)
        sizes_all = (
            (numbers(sizes_in).astype(np.float64), m.REQUEST_SIZE, "request"),
            (numbers(sizes_out).astype(np.float64), m.RESPONSE_SIZE, "response"),
        )
        failed = len(errors) != errors.count(None)
        # By route: a route belongs to one endpoint (the deployer builds each endpoint its own),
        # so the endpoint's name is its first record's (no pass over every request's name).
        for (protocol, variant), at in grouped(protocols, variants):
            endpoint = endpoints[0 if at is None else int(at[0])]
            labels = (endpoint, variant.name, str(variant.served.spec.version), protocol)
            took = took_all if at is None else took_all[at]
            n = len(took)
            stats = self._stats(endpoint, variant.name)
            served[(endpoint, variant.name)] = served.get((endpoint, variant.name), 0) + n
            w.inc(m.REQUESTS, labels, n)
            stats.add("requests", n)
            counts = bucket_counts(took, LATENCY_BOUNDS_S)
            w.observe(m.DURATION, labels, counts, float(took.sum()))
            stats.add("latency_s", float(took.sum()))
            for i in np.flatnonzero(counts):
                stats.add(f"lat.{i}", float(counts[i]))
            for sizes_seen, metric, side in sizes_all:
                sizes = sizes_seen if at is None else sizes_seen[at]
                sizes = sizes[sizes >= 0]
                if len(sizes):
                    w.observe(metric, labels[:3], bucket_counts(sizes, metric.buckets), sizes.sum())
                    stats.add(f"{side}_bytes", float(sizes.sum()))
                    stats.add(f"{side}_bytes.n", len(sizes))
            if failed:
                self._errors(labels, stats, [e for e in picked(errors, at) if e is not None])
        return served

    def _errors(self, labels: tuple[str, ...], stats: MetricStats, errors: list[Any]) -> None:
        counted: dict[tuple[str, str], int] = {}
        for error in errors:
            key = status_of(error, labels[3])
            counted[key] = counted.get(key, 0) + 1
        for (status, code), count in counted.items():
            self._writer.inc(m.ERRORS, (*labels, status, code), count)
            stats.add("errors", count)
            if server_fault(status, code):
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
                reqs, rows = variant.batcher.batches.take()
                if len(reqs):
                    for metric, sizes in ((m.BATCH_ROWS, rows), (m.BATCH_REQUESTS, reqs)):
                        counts = bucket_counts(sizes, m.ROW_BUCKETS)
                        w.observe(metric, labels, counts, float(sizes.sum()))
                    stats = self._stats(endpoint.name, variant.name)
                    stats.add("batches", len(reqs))
                    stats.add("batch_rows", float(rows.sum()))
                w.set(m.INFLIGHT, labels, variant.inflight)
                if variant.inflight:
                    self._stats(endpoint.name, variant.name).high("inflight", variant.inflight)
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
