"""`modelyard serve` keeps its scheduler loop (the deployment controller, the alarms, the
schedules) running: a loop process that dies (killed, out of memory) is started again, so a
deployment started afterwards still moves on and rolls back by itself."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from modelyard.bootstrap import Platform
from tests.e2e.conftest import Server
from tests.waiting import wait_for


def _loops_of(server: Server) -> list[int]:
    """The pids of the scheduler loops ``server`` started (``scheduler --parent PID``)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours
            continue
        if b"scheduler" in argv and str(server.process.pid).encode() in argv:
            found.append(int(proc.name))
    return found


def test_a_scheduler_loop_that_dies_is_started_again(
    platform: Platform, serve: Callable[..., Server]
) -> None:
    """Killed, the loop stayed dead while the server answered on: a deployment started then
    sat in `prepare` for ever (a failing canary would have kept its share of the traffic,
    and its maximum duration never been enforced), and nothing said so."""
    platform.endpoints.create("api", {"main": "churn:1"})
    server = serve(workers=1)
    [first] = wait_for("the server's scheduler loop", lambda: _loops_of(server))
    os.kill(first, signal.SIGKILL)
    again = wait_for(
        "a scheduler loop started again",
        lambda: _loops_of(server),
        lambda pids: pids and first not in pids,
    )
    assert len(again) == 1
    started = platform.deployments.start(
        "api", {"main": "churn:2"}, strategy="canary", canary_size=10,
        wait=timedelta(minutes=5), bake=timedelta(minutes=5),
    )  # fmt: skip
    assert started.deployment is not None
    wait_for(
        "the deployment past its prepare step",
        lambda: platform.deployments.get("api"),
        lambda d: d.step >= 1,
    )
    assert f"scheduler loop (pid {first}) exited with status -9" in server.log.read_text()
