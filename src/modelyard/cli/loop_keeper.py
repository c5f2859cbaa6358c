"""The scheduler loop of ``modelyard serve``, kept running beside the server workers.

The loop is a process of its own (:func:`~modelyard.cli.monitor_schedule.start_loop_process`);
it drives the deployments, evaluates the alarms and runs the schedules. One that dies on its own
(killed, out of memory, a crash) would leave the server answering while every deployment sat
at its step, a failing canary included, its maximum duration never enforced. So it is started
again, after a wait that grows while it keeps dying, and the server's log says so. A loop that
ends with status 0 was asked to stop (SIGTERM, Ctrl-C): it is left stopped.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable

import typer

from modelyard.cli.monitor_schedule import start_loop_process, stop_loop_process

#: Seconds before starting a loop that died again, by how many times in a row it has died.
BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
#: A loop that ran this long before it died was working: the next wait is the shortest again.
HEALTHY_S = 60.0


class LoopKeeper:
    """Starts the scheduler loop, and starts it again whenever it dies, until :meth:`stop`.

    Args:
        start: Starts a loop process (``start_loop_process``; tests give their own).
    """

    def __init__(self, start: Callable[[], subprocess.Popen[bytes]] = start_loop_process) -> None:
        self._start = start
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # between a start here and stop()
        self._process = start()
        self._thread = threading.Thread(target=self._keep, name="scheduler loop", daemon=True)
        self._thread.start()

    def _keep(self) -> None:
        deaths = 0
        while True:
            process = self._process
            began = time.monotonic()
            status = process.wait()
            if self._stopping.is_set() or status == 0:
                return
            deaths = 1 if time.monotonic() - began >= HEALTHY_S else deaths + 1
            wait_s = BACKOFF_S[min(deaths, len(BACKOFF_S)) - 1]
            typer.echo(
                f"the scheduler loop (pid {process.pid}) exited with status {status}; "
                f"starting it again in {wait_s:g} s (deployments, alarms and schedules wait "
                "for it)",
                err=True,
            )
            if self._stopping.wait(wait_s):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = self._start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the loop running now (and start no other); wait for it."""
        with self._lock:
            self._stopping.set()
            process = self._process
        stop_loop_process(process, timeout_s)
        self._thread.join(timeout_s)
