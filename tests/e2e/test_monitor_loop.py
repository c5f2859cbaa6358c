"""`modelyard serve` runs the scheduler loop (monitor schedules, alarms) in a process of its own
beside its workers: two servers sharing one store run each tick of a schedule once, from
their loop processes (never a worker), and the loops end with their servers."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from modelyard.bootstrap import Platform
from tests.e2e.conftest import Server
from tests.waiting import wait_for


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(") ")[-1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


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


@pytest.mark.parametrize("workers", [1, 2])
def test_a_server_sent_sigterm_stops_its_loop_and_removes_its_metric_files(
    serve: Callable[..., Server], tmp_path: Path, workers: int
) -> None:
    metrics = tmp_path / "metrics"
    server = serve(workers=workers, MODELYARD_METRICS_DIR=str(metrics))
    (loop,) = wait_for(
        "the server's scheduler loop",
        lambda: [p for p in _children(server.process.pid) if "scheduler --parent" in _cmdline(p)],
    )
    assert len(list(metrics.iterdir())) == 1, "the run's folder of metric files"
    # The server alone, as a supervisor (systemd's KillMode=mixed, a container runtime) does.
    os.kill(server.process.pid, signal.SIGTERM)
    # 0 with one worker or more: a stop asked for, and done (in one process it ended by SIGTERM).
    assert server.process.wait(60) == 0, server.log.read_text()[-2000:]
    wait_for("the loop process to end with its server", lambda: not _alive(loop))
    assert list(metrics.iterdir()) == [], "the server removed its metric files on the way out"
