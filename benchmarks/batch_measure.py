"""Wall time and memory of a command and every process it starts, for ``batch.py``.

The command runs in a session of its own. A sampler reads ``/proc`` every ``interval_s`` and
follows the whole tree: the processes whose parent chain leads to the command, and every
process in any session one of them belongs to (a job worker started with ``setsid`` by a
process of the tree, and what that worker starts, stays counted even if its parent exits).
Per sample it sums the resident sets (RSS, the conservative number: pages shared between
forked workers count once per process) and the proportional sets (PSS, shared pages split
between their users). It also keeps each process's own high-water mark (``VmHWM``), whose
sum bounds the tree's true peak from above (the processes' peaks need not coincide); the
sampled sum bounds it from below.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20
DEFAULT_INTERVAL_S = 0.05


@dataclass
class TreeSampler:
    """Samples the memory of a process tree rooted at ``root`` (see the module docstring)."""

    root: int
    members: set[int] = field(default_factory=set)
    sessions: set[int] = field(default_factory=set)
    hwm_kib: dict[int, int] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    peak_rss: int = 0
    peak_pss: int = 0
    peak_processes: int = 0
    samples: int = 0
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (s, RSS MiB)

    def _scan(self) -> dict[int, tuple[int, int, int, str]]:
        """pid -> (ppid, session, rss pages, name) of every process on the machine."""
        found: dict[int, tuple[int, int, int, str]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(f"/proc/{entry.name}/stat").read_text()
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            name = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2 :].split()
            if fields[0] == "Z":
                continue
            found[int(entry.name)] = (int(fields[1]), int(fields[3]), int(fields[21]), name)
        return found

    def sample(self, elapsed_s: float) -> None:
        """Take one sample."""
        procs = self._scan()
        tree = {self.root} if self.root in procs else set()
        changed = True
        while changed:
            changed = False
            for pid, (ppid, session, _, _) in procs.items():
                if pid not in tree and (ppid in tree or session in self.sessions):
                    tree.add(pid)
                    changed = True
        self.sessions |= {procs[pid][1] for pid in tree}
        self.members |= tree
        rss = sum(procs[pid][2] for pid in tree) * PAGE_SIZE
        pss = 0
        for pid in tree:
            self.names.setdefault(pid, procs[pid][3])
            status = _status_fields(pid)
            if "VmHWM" in status:
                self.hwm_kib[pid] = max(self.hwm_kib.get(pid, 0), status["VmHWM"])
            pss += _pss_kib(pid) * 1024
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, len(tree))
        self.samples += 1
        self.timeline.append((round(elapsed_s, 3), round(rss / MIB, 1)))

    def report(self) -> dict[str, Any]:
        """The peaks, MiB, and the processes seen (name and own peak)."""
        return {
            "peak_rss_mib": round(self.peak_rss / MIB, 1),
            "peak_pss_mib": round(self.peak_pss / MIB, 1),
            "sum_of_process_peaks_mib": round(sum(self.hwm_kib.values()) / 1024, 1),
            "processes_seen": len(self.members),
            "peak_processes": self.peak_processes,
            "samples": self.samples,
            "process_peaks_mib": {
                f"{pid}:{self.names.get(pid, '?')}": round(kib / 1024, 1)
                for pid, kib in sorted(self.hwm_kib.items())
            },
        }


def _status_fields(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith(("VmHWM:", "VmRSS:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0])
    return out


def _pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


@dataclass
class Measured:
    """A finished command: exit code, wall time, memory, the end of its output."""

    returncode: int | None
    wall_s: float
    memory: dict[str, Any]
    stdout_tail: str
    stderr_tail: str
    timeline: list[tuple[float, float]]
    timed_out: bool = False
    stopped_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "returncode": self.returncode,
            "wall_s": round(self.wall_s, 3),
            "memory": self.memory,
            "timed_out": self.timed_out,
            "stopped_by": self.stopped_by,
            "stderr_tail": self.stderr_tail if self.returncode else "",
        }


def kill_session(session: int) -> None:
    """SIGKILL every process of a session (and the process group of the same id)."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(session, signal.SIGKILL)


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float = 3600.0,
    interval_s: float = DEFAULT_INTERVAL_S,
    watch: Callable[[TreeSampler, float], str | None] | None = None,
    log_path: Path | None = None,
) -> Measured:
    """Run ``argv`` in a new session, sampling its tree until it exits.

    ``watch(sampler, elapsed_s)`` is called after each sample; a non-None answer is a reason
    to stop the run: the command's session and every session its tree opened are SIGKILLed,
    and the reason is kept as ``stopped_by``. A timeout does the same.
    """
    out_path = log_path or Path(os.devnull)
    err_path = log_path.with_suffix(".err") if log_path else Path(os.devnull)
    start = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    sampler = TreeSampler(root=proc.pid)
    stopped_by, timed_out = None, False
    try:
        while proc.poll() is None:
            elapsed = time.perf_counter() - start
            sampler.sample(elapsed)
            if stopped_by is None and watch is not None:
                stopped_by = watch(sampler, elapsed)
            if elapsed > timeout_s:
                timed_out, stopped_by = True, stopped_by or f"timeout {timeout_s:.0f} s"
            if stopped_by is not None:
                for session in sampler.sessions | {proc.pid}:
                    kill_session(session)
                proc.wait()
                break
            time.sleep(interval_s)
    finally:
        if proc.poll() is None:
            kill_session(proc.pid)
            proc.wait()
    wall = time.perf_counter() - start
    return Measured(
        returncode=proc.returncode,
        wall_s=wall,
        memory=sampler.report(),
        stdout_tail=_tail(log_path),
        stderr_tail=_tail(err_path if log_path else None),
        timeline=sampler.timeline,
        timed_out=timed_out,
        stopped_by=stopped_by,
    )


def _tail(path: Path | None, chars: int = 3000) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return ""
