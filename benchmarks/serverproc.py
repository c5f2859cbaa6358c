"""Server processes for the benchmarks: start, wait until ready, account CPU, always stop.

Each server runs in its own session (``start_new_session``), so the server, its worker
processes and anything they start share one session id, equal to the server's pid. That id
finds the whole process tree in ``/proc`` (for CPU time and memory) and is the process group
that ``stop`` signals: nothing outside it is ever touched.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
STOP_GRACE_S = 10.0
PROBE_TIMEOUT_S = 2.0


class BenchmarkError(RuntimeError):
    """A server or tool failed in a way that ends the measurements of one server."""


class ServerFailed(BenchmarkError):
    """A server exited, never became ready, or answered wrongly."""


@dataclass(frozen=True)
class Server:
    """A running server: its pid (also its session and process-group id) and its log."""

    pid: int
    log_path: Path


class ProcStat(NamedTuple):
    """The fields of ``/proc/<pid>/stat`` the benchmark uses."""

    state: str
    session: int
    cpu_ticks: int
    rss_pages: int


def read_stat(pid: int) -> ProcStat | None:
    """Parse ``/proc/<pid>/stat``; None when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 of proc(5): state; session is 6, utime 14, stime 15, rss 24.
    return ProcStat(
        state=fields[0],
        session=int(fields[3]),
        cpu_ticks=int(fields[11]) + int(fields[12]),
        rss_pages=int(fields[21]),
    )


def session_stats(session: int) -> list[ProcStat]:
    """Stats of every process in a session (the server and its workers)."""
    stats = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None and stat.session == session:
                stats.append(stat)
    return stats


def session_cpu_seconds(session: int) -> float:
    """User plus system CPU time, in seconds, used so far by the live processes of a session."""
    return sum(s.cpu_ticks for s in session_stats(session)) / CLOCK_TICKS


def session_rss_bytes(session: int) -> int:
    """Resident memory of a session's processes, summed (shared pages count once per process)."""
    return sum(s.rss_pages for s in session_stats(session)) * PAGE_SIZE


def machine_cpu_seconds() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine since boot, all cores (``/proc/stat``)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    total = sum(ticks[:8])  # guest time is already counted in user and nice
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def _live_members(session: int) -> list[ProcStat]:
    """A session's processes that have not exited (zombies excluded)."""
    return [s for s in session_stats(session) if s.state != "Z"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_request(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    """GET ``url`` (or POST ``body`` as JSON); return the status and body, errors included."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def log_tail(path: Path, chars: int = 2000) -> str:
    """The end of a log file, for error messages."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return ""


def _wait_ready(
    proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout_s: float, log_path: Path
) -> None:
    """Poll ``ready`` until it says yes; fail early if the server exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerFailed(
                f"server exited with code {proc.returncode} before it was ready; "
                f"log tail:\n{log_tail(log_path)}"
            )
        try:
            if ready():
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.2)
    raise ServerFailed(f"not ready within {timeout_s:.0f} s; log tail:\n{log_tail(log_path)}")


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send a signal to a process group that may already be gone."""
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _wait_session_empty(session: int, timeout_s: float) -> bool:
    """Wait until no live process remains in a session; True when that happened in time."""
    deadline = time.monotonic() + timeout_s
    while _live_members(session):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server and every process of its group: SIGTERM, then SIGKILL after a grace.

    The server is reaped only at the end, so its pid (the group id) cannot be reused by an
    unrelated process while the group is being signalled.
    """
    if proc.returncode is None or _live_members(proc.pid):
        _signal_group(proc.pid, signal.SIGTERM)
        if not _wait_session_empty(proc.pid, STOP_GRACE_S):
            _signal_group(proc.pid, signal.SIGKILL)
            _wait_session_empty(proc.pid, STOP_GRACE_S)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_GRACE_S)


@contextmanager
def running_server(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    ready: Callable[[], bool],
    ready_timeout_s: float,
) -> Iterator[Server]:
    """Start a server in a new session, wait until it is ready, and stop it on leaving.

    The server is stopped however the block ends: normally, on an exception, or on
    KeyboardInterrupt (``serving.py`` turns SIGTERM and SIGHUP into one).
    """
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(proc, ready, ready_timeout_s, log_path)
        yield Server(pid=proc.pid, log_path=log_path)
    finally:
        stop(proc)
