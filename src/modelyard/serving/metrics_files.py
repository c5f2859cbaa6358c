"""Per-worker metric files, and the exposition that sums them over a server's workers.

A server's workers share one fresh directory per server run (``modelyard serve`` makes it).
Each worker writes its own values into files named and laid out as prometheus_client's
multiprocess mode does (``counter_<pid>.db``, ``histogram_<pid>.db``, ``gauge_<mode>_<pid>.db``,
mmapped), and ``GET /metrics`` in any worker reads every file with prometheus_client's
``MultiProcessCollector``: counters and histograms are summed over all workers (a dead
worker's counts stay in the sum, so totals never go back), gauges combine by their mode.

Why not prometheus_client's metric objects: they pick multiprocess mode from an environment
variable when first imported, and update one mmapped value per call under a lock. Here one
drain thread per worker folds thousands of requests into a few hundred values and writes only
those (:meth:`PromWriter.flush`), so the request path never touches a file or a lock.

Each flush is seen whole: a worker writes its values (and dead workers' files are removed)
under an exclusive ``flock`` on the directory's ``.lock`` file, and a scrape reads every file
under a shared one. Without it a
scrape taken mid-flush saw some of one drain's values and not the rest (requests counted,
their errors not yet). Only the drain thread and the scrape take the lock, never a request.

Dead workers: before each exposition, the ``live*`` gauge files of processes that no longer
exist are removed (``mark_process_dead``), so a crashed worker's memory and in-flight count
leave the sums; a worker that stops cleanly removes its own.
"""

from __future__ import annotations

import fcntl
import glob
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.utils import floatToGoString

from modelyard.serving.metrics_names import MetricDef

if TYPE_CHECKING:
    from numpy.typing import NDArray

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[str, ...]
_Slot = tuple[str, str]  # (file prefix, key)


class PromWriter:
    """One worker's metric values, kept in memory and written to its files on :meth:`flush`.

    Not thread-safe: one thread (the worker's drain thread) uses it.
    """

    def __init__(self, directory: Path, pid: int | None = None) -> None:
        self._dir = Path(directory)
        self._pid = os.getpid() if pid is None else pid
        self._files: dict[str, MmapedDict] = {}
        self._values: dict[_Slot, float] = {}
        self._dirty: set[_Slot] = set()
        self._slots: dict[tuple[str, Labels, str], _Slot] = {}
        self._lock: int | None = None

    def _slot(self, metric: MetricDef, labels: Labels, suffix: str = "", le: str = "") -> _Slot:
        cache = (metric.name, labels, suffix + le)
        slot = self._slots.get(cache)
        if slot is None:
            names: Sequence[str] = metric.labels
            values: Sequence[str] = [_utf8(v) for v in labels]
            if le:
                names, values = (*names, "le"), (*values, le)
            sample = metric.sample + suffix
            key = mmap_key(metric.family, sample, list(names), list(values), metric.help)
            prefix = f"gauge_{metric.mode}" if metric.kind == "gauge" else metric.kind
            slot = self._slots[cache] = (prefix, key)
        return slot

    def inc(self, metric: MetricDef, labels: Labels, amount: float = 1.0) -> None:
        """Add ``amount`` to a counter (or a ``sum``-mode gauge)."""
        slot = self._slot(metric, labels)
        values = self._values
        if not amount and slot in values:
            return  # unchanged: nothing to write (a new series is written, at zero)
        values[slot] = values.get(slot, 0.0) + amount
        self._dirty.add(slot)

    def summarize(self, metric: MetricDef, labels: Labels, count: float, total: float) -> None:
        """Add ``count`` observations summing to ``total`` to a summary (``_count``, ``_sum``)."""
        values = self._values
        counted, summed = self._slot(metric, labels, "_count"), self._slot(metric, labels, "_sum")
        if not count and not total and counted in values:
            return  # unchanged (a new series is written, at zero)
        values[counted] = values.get(counted, 0.0) + count
        values[summed] = values.get(summed, 0.0) + total
        self._dirty.update((counted, summed))

    def set(self, metric: MetricDef, labels: Labels, value: float) -> None:
        """Set a gauge."""
        slot = self._slot(metric, labels)
        self._values[slot] = value
        self._dirty.add(slot)

    def low(self, metric: MetricDef, labels: Labels, value: float) -> None:
        """Lower a ``min`` gauge to ``value`` if it is smaller."""
        slot = self._slot(metric, labels)
        current = self._values.get(slot)
        if current is None or value < current:
            self._values[slot] = value
            self._dirty.add(slot)

    def high(self, metric: MetricDef, labels: Labels, value: float) -> None:
        """Raise a ``max`` gauge to ``value`` if it is larger."""
        slot = self._slot(metric, labels)
        current = self._values.get(slot)
        if current is None or value > current:
            self._values[slot] = value
            self._dirty.add(slot)

    def observe(
        self,
        metric: MetricDef,
        labels: Labels,
        counts: Sequence[float] | NDArray[Any],
        total: float,
    ) -> None:
        """Add observations to a histogram in bulk: ``counts[i]`` fell in bucket ``i`` (one
        per bound, then ``+Inf``), summing to ``total``."""
        bounds = metric.buckets
        for i, count in enumerate(counts):
            if count:
                le = floatToGoString(bounds[i]) if i < len(bounds) else "+Inf"
                slot = self._slot(metric, labels, "_bucket", le)
                self._values[slot] = self._values.get(slot, 0.0) + float(count)
                self._dirty.add(slot)
        # Every bucket must exist for the exposition to list them all, counts or not.
        if not self._slots.get((metric.name, labels, "_sum")):
            for i in range(len(bounds) + 1):
                le = floatToGoString(bounds[i]) if i < len(bounds) else "+Inf"
                slot = self._slot(metric, labels, "_bucket", le)
                self._values.setdefault(slot, 0.0)
                self._dirty.add(slot)
        slot = self._slot(metric, labels, "_sum")
        self._values[slot] = self._values.get(slot, 0.0) + total
        self._dirty.add(slot)

    def flush(self) -> None:
        """Write every value changed since the last flush to this worker's files, at once
        as a scrape sees them."""
        if not self._dirty:
            return
        if self._lock is None:
            self._lock = _open_lock(self._dir)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            for slot in self._dirty:
                prefix, key = slot
                file = self._files.get(prefix)
                if file is None:
                    path = self._dir / f"{prefix}_{self._pid}.db"
                    file = self._files[prefix] = _open_whole(path)
                file.write_value(key, self._values[slot], 0.0)
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._dirty.clear()

    def close(self, *, live: bool = False) -> None:
        """Close the files; unless ``live``, also remove this worker's ``live*`` gauges (it
        is stopping: its memory and in-flight count must leave the sums)."""
        for file in self._files.values():
            file.close()
        self._files.clear()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        if not live:
            with _holding(self._dir, fcntl.LOCK_EX):  # no scrape lists a file going away
                mark_process_dead(self._pid, str(self._dir))


def _utf8(value: str) -> str:
    """``value`` as UTF-8 can spell it: a lone surrogate (a model's class label may hold one)
    written as its escape. Kept as it is, it would make every later scrape fail to encode."""
    if value.isascii():
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _open_lock(directory: Path) -> int:
    """The descriptor of ``directory``'s lock file (made if missing; its name is no ``*.db``)."""
    return os.open(directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


@contextmanager
def _holding(directory: Path, mode: int) -> Iterator[None]:
    """Hold ``directory``'s lock: shared (``LOCK_SH``) to read the files while no worker is
    midway through a flush, exclusive to change or remove them (a folder removed at the
    server's stop has no files, nor a lock)."""
    try:
        lock = _open_lock(directory)
    except FileNotFoundError:
        yield
        return
    try:
        fcntl.flock(lock, mode)
        yield
    finally:
        os.close(lock)  # closing the last descriptor releases the lock


def _open_whole(path: Path) -> MmapedDict:
    """Open a worker's value file, creating it whole first.

    MmapedDict creates a file empty and then sizes it; a scrape globbing ``*.db`` in between
    would read zero bytes and fail. The file is made under a name the scrape does not match,
    then renamed into place.
    """
    if not path.exists():
        staging = path.with_name(f".{path.name}.{os.getpid()}.new")
        MmapedDict(str(staging)).close()
        os.replace(staging, path)
    return MmapedDict(str(path))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_dead_workers(directory: Path) -> list[int]:
    """Remove the ``live*`` gauge files of workers that no longer run; their pids."""
    dead = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        stem = os.path.basename(path)[: -len(".db")]
        pid_text = stem.rsplit("_", 1)[-1]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            dead.add(int(pid_text))
    if dead:
        with _holding(directory, fcntl.LOCK_EX):  # no scrape lists a file going away
            for pid in dead:
                mark_process_dead(pid, str(directory))
    return sorted(dead)


def exposition(directory: Path) -> bytes:
    """The Prometheus text exposition of every worker's files in ``directory``, merged
    (nothing once the folder is removed, as a server does at its stop)."""
    if not os.path.isdir(directory):
        return b""
    forget_dead_workers(directory)
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=str(directory))
    with _holding(directory, fcntl.LOCK_SH):
        return generate_latest(registry)
