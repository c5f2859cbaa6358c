"""CPU time of a server's threads, chosen by their OS name, from ``/proc``.

A server runs in its own session (``serverproc.py``), so its processes are those whose session
id is the server's pid; each process's threads are ``/proc/<pid>/task/<tid>``, named in
``comm`` (15 bytes at most) with their user and system time in ``stat``. Python names no OS
thread by itself: the servers need ``thread_names/sitecustomize.py`` for the names to mean
anything. A thread that ends between two reads takes its time with it (the process keeps it):
the thread pools measured here live as long as their worker.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from serverproc import CLOCK_TICKS, read_stat

#: The folder to put on a server's ``PYTHONPATH`` so that its threads carry their names.
THREAD_NAMES_SITE = Path(__file__).resolve().parent / "thread_names"


@dataclass(frozen=True)
class NamedThreads:
    """The threads of a session whose OS name starts with a prefix, at one moment.

    Attributes:
        cpu_s: Their user plus system CPU time so far, summed.
        threads: How many there are.
        processes: The pids of the processes they belong to.
    """

    cpu_s: float
    threads: int
    processes: tuple[int, ...]


def session_pids(session: int) -> list[int]:
    """The pids of a session's live processes."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None and stat.session == session and stat.state != "Z":
                pids.append(int(entry.name))
    return pids


def _thread_ticks(task: Path) -> int | None:
    """utime + stime of one thread, in clock ticks; None when it is gone."""
    try:
        raw = (task / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # as serverproc.read_stat: after the name
    return int(fields[11]) + int(fields[12])


def named_threads(session: int, prefixes: Sequence[str]) -> dict[str, NamedThreads]:
    """For each prefix, the session's threads whose OS name (``comm``) starts with it."""
    ticks = dict.fromkeys(prefixes, 0)
    counts = dict.fromkeys(prefixes, 0)
    owners: dict[str, set[int]] = {prefix: set() for prefix in prefixes}
    for pid in session_pids(session):
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except (FileNotFoundError, ProcessLookupError):
            continue
        for task in tasks:
            try:
                comm = (task / "comm").read_text().rstrip("\n")
            except (FileNotFoundError, ProcessLookupError):
                continue
            prefix = next((p for p in prefixes if comm.startswith(p)), None)
            used = _thread_ticks(task) if prefix is not None else None
            if prefix is not None and used is not None:
                ticks[prefix] += used
                counts[prefix] += 1
                owners[prefix].add(pid)
    return {
        p: NamedThreads(ticks[p] / CLOCK_TICKS, counts[p], tuple(sorted(owners[p])))
        for p in prefixes
    }


def cpu_by_process(session: int, roles: Mapping[str, str]) -> dict[str, float]:
    """CPU seconds so far of a session's live processes, by role: a process takes the first
    role whose marker is in its command line, else ``rest``."""
    found = dict.fromkeys([*roles, "rest"], 0.0)
    for pid in session_pids(session):
        stat = read_stat(pid)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if stat is not None:
            role = next((r for r, marker in roles.items() if marker in cmdline), "rest")
            found[role] += stat.cpu_ticks / CLOCK_TICKS
    return found


def own_threads() -> dict[str, list[int]]:
    """This process's live threads, summed by Python name (``native`` for threads Python did
    not start: BLAS, OpenMP, Arrow pools; ``asyncio_N`` and ``modelyard-x_N`` by pool):
    ``[CPU clock ticks, voluntary, involuntary context switches]`` each."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
            status = Path(f"/proc/self/task/{tid}/status").read_text()
        except FileNotFoundError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        switches = {
            key: value for key, _, value in (line.partition(":") for line in status.splitlines())
        }
        name = names.get(int(tid), "native")
        name = name.split("_")[0] if name.startswith(("asyncio", "modelyard-")) else name
        row = found[name]
        row[0] += int(fields[11]) + int(fields[12])
        row[1] += int(switches.get("voluntary_ctxt_switches", 0))
        row[2] += int(switches.get("nonvoluntary_ctxt_switches", 0))
    return found
