"""`modelyard serve` runs batch schedules from its scheduler process: two servers sharing one
store start a missed tick's catch-up run once (``run-once``), record a ``skip`` schedule's
missed tick as skipped, and the job the run started writes its output into the tick's folder."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelyard.bootstrap import Platform
from modelyard.domain.batch import TransformRequest
from modelyard.domain.schedules import ScheduleRunStatus
from modelyard.services.schedules import ScheduleService
from modelyard.storage.sql.engine import make_engine
from modelyard.storage.sql.lease_store import SqlLeaseStore
from modelyard.storage.sql.schedule_store import SqlScheduleStore
from tests.e2e.conftest import Server
from tests.waiting import wait_for


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def test_two_servers_catch_up_a_missed_tick_once_and_skip_the_other(
    platform: Platform, serve: Callable[..., Server], tmp_path: Path, models: dict[str, object]
) -> None:
    import numpy as np

    rows = np.asarray(models["x"])[:200]
    np.savetxt(tmp_path / "in.csv", rows, delimiter=",", fmt="%.6f")
    # Two schedules created 90 minutes ago (no scheduler ran since), whose daily tick fell 30
    # minutes ago: one catches up once, the other skips it.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    tick = now - timedelta(minutes=30)
    engine = make_engine(platform.settings.resolved_db_url)
    try:
        past = ScheduleService(
            SqlScheduleStore(engine),
            SqlLeaseStore(engine),
            submit=platform.batch.submit,
            check=platform.batch.check,
            clock=lambda: now - timedelta(minutes=90),
        )
        for name, missed in (("catch-up", "run-once"), ("skipper", "skip")):
            request = TransformRequest(
                "churn", str(tmp_path / "in.csv"), str(tmp_path / name / "{tick}")
            )
            past.create(
                name, cron=f"{tick.minute} {tick.hour} * * *", request=request, missed=missed
            )
    finally:
        engine.dispose()
    servers = [serve(workers=1), serve(workers=1)]
    schedules = platform.schedules
    [run] = wait_for(
        "the catch-up run", lambda: schedules.runs("catch-up"), lambda found: len(found) == 1
    )
    [skipped] = wait_for("the skipped tick", lambda: schedules.runs("skipper"))
    assert (run.tick, run.status, run.late) == (tick, ScheduleRunStatus.SUBMITTED, True)
    assert (skipped.tick, skipped.status, skipped.job) == (tick, ScheduleRunStatus.SKIPPED, None)
    job = wait_for(
        "the scheduled job to end",
        lambda: schedules.job(run),
        lambda j: j is not None and j.status.finished,
        timeout=120,
    )
    assert job is not None and job.status.value == "Completed", job
    assert (tmp_path / "catch-up" / f"{tick:%Y-%m-%dT%H%M}" / "in.csv.out").exists()
    holder = int(run.holder.rsplit(":", 1)[1])
    assert "scheduler --parent" in _cmdline(holder), "run by a server's scheduler process"
    assert holder not in {s.process.pid for s in servers}
    # Both loops have passed over the tick by now; it still ran once.
    for server in servers:
        wait_for(
            "the server's scheduler to settle",
            lambda s=server: "scheduler running" in s.log.read_text(),
        )
    assert len(schedules.runs("catch-up")) == 1
    assert len([j for j in platform.jobs.store.list_jobs() if j.kind.value == "batch"]) == 1
