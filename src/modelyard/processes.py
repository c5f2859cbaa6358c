"""The operating-system processes of jobs: starting, forking, watching and stopping them.

Every job (training, tuning, batch) runs in a worker process started here, in a session of its
own so that it outlives the caller and a stop signal reaches only the job. Its helpers (a
tuning job's trial runners, a batch job's workers) are forked or spawned from it and die with
it. Liveness comes from the kernel (``kill(pid, 0)`` and ``/proc/PID/stat``: a zombie is dead),
never from a pid file. Standard library only: engines, services (through the launcher port
that :class:`LocalProcesses` satisfies) and bootstrap all use it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a child of ours that ended is reaped; a zombie is dead)."""
    try:  # our own child (this process started it): reap it if it has ended
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child: look it up instead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def exit_code(pid: int) -> int | None:
    """The exit code of child ``pid`` once it has ended (reaping it), else None. A process
    that is not our child (or was reaped already) reports 0 once gone."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None if alive(pid) else 0
    return os.waitstatus_to_exitcode(status) if done == pid else None


def reap_later(pid: int) -> None:
    """Collect the exit status of child ``pid`` without blocking the caller: at once if it has
    ended, else from a daemon thread (a long-lived caller must not collect zombies)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return
    except ChildProcessError:
        return  # not our child, or already collected
    threading.Thread(target=_wait_quietly, args=(pid,), daemon=True).start()


def _wait_quietly(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # somebody else collected it
        os.waitpid(pid, 0)


def request_stop(pid: int) -> None:
    """SIGTERM ``pid`` (a job worker: it stops its job and records the end); gone is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def kill_group(leader: int, sig: signal.Signals) -> None:
    """Signal the process group led by ``leader`` (a session leader's pid is its group id)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(leader, sig)


def terminate_all(
    pids: Iterable[int], grace_s: float, while_waiting: Callable[[], None] | None = None
) -> None:
    """SIGTERM each of ``pids``, wait up to ``grace_s`` for them to end, SIGKILL the rest, and
    reap those that are our children. ``while_waiting`` is called about once a second while
    they end (a coordinator's heartbeat: a minute of silence reads as a death elsewhere)."""
    pids = set(pids)
    for pid in pids:
        request_stop(pid)
    deadline = time.monotonic() + grace_s
    tick = 0.0
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        if while_waiting is not None and time.monotonic() >= tick:
            while_waiting()
            tick = time.monotonic() + 1.0
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (in a child, before
    exec, or first thing in a forked helper)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, sig)


def set_on_signals(stop: threading.Event, *signals: signal.Signals) -> None:
    """Set ``stop`` when one of ``signals`` arrives (call from the main thread).

    Not ``signal.signal(sig, lambda *_: stop.set())``: a Python signal handler runs in the
    main thread between two of its bytecodes, and ``Event.set`` takes the lock that
    ``Event.wait`` holds around its check. A signal landing there had the handler wait for a
    lock its own thread held: the process hung for ever, deaf to more SIGTERMs (CPython
    gh-126434 describes it). So the handler only writes a byte to a pipe (no lock), and a
    daemon thread reading the pipe sets the event.
    """
    read_end, write_end = os.pipe()

    def relay() -> None:
        while os.read(read_end, 1):
            stop.set()

    def handler(_signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):  # the pipe full: a byte already waits
            os.write(write_end, b"\0")

    os.set_blocking(write_end, False)
    threading.Thread(target=relay, name="signal relay", daemon=True).start()
    for sig in signals:
        signal.signal(sig, handler)


def stop_with_parent(parent: int) -> None:
    """SIGTERM this process when its parent (pid ``parent``) dies: a helper whose job worker
    was killed stops its work instead of running on unsupervised."""
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # it died before we asked (we were re-parented)
        os.kill(os.getpid(), signal.SIGTERM)


def spawn_worker(args: Sequence[str], log_file: Path, env: Mapping[str, str]) -> int:
    """Start ``python -m modelyard.worker ARGS…`` in a session of its own, its output appended
    to ``log_file``, with exactly the environment ``env``; returns its pid.

    posix_spawn rather than Popen: no Popen object to outlive (and warn about) a worker that
    is meant to keep running; the job service reaps it when it checks on it.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        return os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", "modelyard.worker", *args],
            dict(env),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, log, 1),
                (os.POSIX_SPAWN_DUP2, log, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(log)
        os.close(devnull)


def fork_helper(before_fork: Callable[[], None], body: Callable[[threading.Event], None]) -> int:
    """Fork a helper of this job worker; the child's pid.

    A fork, not a new interpreter: the worker has imported what the helper needs, so it starts
    in milliseconds. ``before_fork`` runs first in the parent: it must close every database
    connection (none may cross a fork) and leave no thread that holds a lock the child needs.
    The child gets a session of its own, sets a stop event on SIGTERM, ignores SIGINT, stops
    with its parent, runs ``body(stop)`` and leaves with ``os._exit`` (0, or 1 after printing
    the traceback).
    """
    before_fork()
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    # A SIGTERM arriving before the child has its own handler waits until it has one.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    pid = os.fork()
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return pid
    code = 1
    try:
        os.setsid()  # its own group: a signal meant for the parent's group skips it
        stop = threading.Event()
        set_on_signals(stop, signal.SIGTERM)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        stop_with_parent(parent)
        body(stop)
        code = 0
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class LocalProcesses:
    """The job service's launcher on this machine: worker processes under ``log_dir``, with the
    environment ``environ`` (the caller's, minus its ``MODELYARD_*`` variables, plus the
    settings the worker must see)."""

    def __init__(self, log_dir: Path, environ: Mapping[str, str]) -> None:
        self._log_dir = log_dir
        self._environ = dict(environ)

    def launch(self, args: Sequence[str], log_name: str) -> int:
        return spawn_worker(args, self._log_dir / f"{log_name}.log", self._environ)

    def alive(self, pid: int) -> bool:
        return alive(pid)

    def stop(self, pid: int) -> None:
        request_stop(pid)

    def reap(self, pid: int) -> None:
        reap_later(pid)
