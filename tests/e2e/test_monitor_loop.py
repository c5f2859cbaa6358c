"""`modelyard serve` runs the scheduler loop (monitor schedules, alarms) in a process of its own
beside its workers: two servers sharing one store run each tick of a schedule once, from
their loop processes (never a worker), and the loops end with their servers."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from modelyard.bootstrap import Platform
from tests.e2e.conftest import Server
from tests.waiting import wait_for


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its parent to read its exit status.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1][:1] != "Z"


def test_two_servers_run_each_tick_once_from_their_loop_processes(
    platform: Platform, serve: Callable[..., Server]
) -> None:
    platform.endpoints.create("churn-api", {"main": "churn:1"})
    platform.monitors.schedule(
        "churn-api", every=timedelta(seconds=10), window=timedelta(minutes=1)
    )
    servers = [serve(workers=1), serve(workers=1)]
    runs = wait_for(
        "three ticks run by the servers' scheduler loops",
        lambda: platform.monitors.runs("churn-api"),
        lambda found: len(found) >= 3,
        timeout=120,
    )
    ticks = sorted(r.tick for r in runs)
    assert len(set(ticks)) == len(ticks)
    assert all(t.timestamp() % 10 == 0 for t in ticks), "ticks on the 10 s grid"
    pids = {int(r.holder.rsplit(":", 1)[1]) for r in runs}
    server_pids = {s.process.pid for s in servers}
    assert not pids & server_pids, "ticks ran in the loop processes, not in the servers"
    for pid in pids:
        assert "scheduler --parent" in _cmdline(pid), _cmdline(pid)
    for server in servers:
        log = server.log.read_text()
        assert "already ended" not in log, "no process tried to run a tick that had run"
        server.stop()
    for pid in pids:
        wait_for(f"loop process {pid} to end with its server", lambda p=pid: not _alive(p))
