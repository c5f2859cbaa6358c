"""This process's memory, as Linux counts it: resident set now, its peak since the last reset,
and the peak over the whole process (``getrusage``). Standard library only, so that a worker in
another virtualenv (benchmarks/drift_evidently_worker.py) measures exactly the same way.

The peak of one step is measured by resetting the kernel's high-water mark just before it
(``/proc/self/clear_refs`` with ``5``, Linux 4.0+) and reading ``VmHWM`` after it: the peak
resident set during the step, minus the resident set at its start, is the memory the step
itself needed, native allocations (NumPy, Arrow) included. Resetting the mark also resets
``getrusage``'s ``ru_maxrss``, so the process peak is read before any reset. In a process that
ran the step before, free memory kept by the C allocator would hide the step's need: ``trim``
returns it to the kernel first.

A caveat of ``getrusage`` in a child process: Linux carries the address space's high-water
mark across ``exec`` into ``ru_maxrss``, and a child made by fork or vfork starts with its
parent's. A benchmark that spawns a measured worker therefore first lowers its own mark to
its resident set (``before_spawn``), and workers report ``VmHWM`` too (the peak of the new
address space alone): the two agree when the parent was smaller than the worker's peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import resource
from pathlib import Path
from types import TracebackType
from typing import Any

MIB = 2**20


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def rss_mib() -> float:
    """Resident set size now, MiB."""
    return _status_kib("VmRSS") * 1024 / MIB


def peak_mib() -> float:
    """Peak resident set since the process started or the last ``reset_peak``, MiB."""
    return _status_kib("VmHWM") * 1024 / MIB


def reset_peak() -> bool:
    """Reset the peak to the current resident set; False when the kernel refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def trim() -> bool:
    """Hand the C heap's free memory back to the kernel (glibc ``malloc_trim``), so that a
    step measured after earlier ones in the same process must raise the resident set to use
    memory again; False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        return bool(ctypes.CDLL(name).malloc_trim(0) or True)
    except (OSError, AttributeError):
        return False


def process_peak_mib() -> float:
    """``getrusage(RUSAGE_SELF).ru_maxrss``: the process's peak resident set, MiB (reset by
    ``reset_peak`` too, so read it first)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB


def before_spawn() -> float:
    """Collect, trim (and release Arrow's pool, when Arrow is loaded) and reset this
    process's peak before it spawns a measured worker (see the module docstring); its resident
    set then, MiB, which floors the worker's ``ru_maxrss``."""
    import gc
    import sys

    gc.collect()
    trim()
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:  # its allocator keeps freed buffers (a read Parquet file's worth)
        arrow.default_memory_pool().release_unused()
    reset_peak()
    return rss_mib()


class StepMemory:
    """Measures one step of a worker: ``with StepMemory() as memory: step()``, then
    ``memory.report()``."""

    def __enter__(self) -> StepMemory:
        self.rusage_before = process_peak_mib()
        self.hwm_before = peak_mib()
        self.rss_before = rss_mib()
        self.reset = reset_peak()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.step_peak = peak_mib()
        self.rusage_after = process_peak_mib()

    def report(self) -> dict[str, Any]:
        """The step's peak over its starting resident set, and the whole process's peak by
        ``getrusage`` and by ``VmHWM``."""
        return {
            "rss_before_step_mib": self.rss_before,
            "step_peak_rss_mib": self.step_peak if self.reset else None,
            "step_delta_mib": self.step_peak - self.rss_before if self.reset else None,
            "process_peak_mib": max(self.rusage_before, self.rusage_after),
            "process_peak_vmhwm_mib": max(self.hwm_before, self.step_peak),
        }
