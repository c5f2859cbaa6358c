"""The schedule service over real stores: create checks everything and stores nothing on bad
input; each due tick submits one job and records it (or the error); missed ticks follow the
schedule's policy; pause, resume and delete."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from modelyard.domain.batch import TransformRequest
from modelyard.domain.schedules import MissedPolicy, ScheduleRunStatus
from modelyard.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    InvalidName,
    ModelNotFound,
    NotFound,
)
from tests.services.schedule_parts import T0, Clock, Parts, open_parts

WEEK = timedelta(days=7)
MONDAY_SIX = "0 6 * * 1"  # in Paris: 05:00Z in winter, T0 is one


@pytest.fixture
def parts(db_url: str) -> Iterator[Parts]:
    p = open_parts(db_url, Clock(T0 - timedelta(days=1)))
    yield p
    p.close()


@pytest.fixture
def request_(tmp_path: Path) -> TransformRequest:
    data = tmp_path / "in.csv"
    data.write_text("1,2\n")
    return TransformRequest("churn@prod", str(data), str(tmp_path / "out" / "{tick:%Y-%m-%d}"))


def test_create_checks_the_request_of_the_next_tick_and_stores_it(
    parts: Parts, request_: TransformRequest
) -> None:
    service, port = parts.service()
    created = service.create(
        "weekly", cron="0  6 * * 1", request=request_, timezone="Europe/Paris", missed="skip"
    )
    assert (created.cron, created.timezone, created.missed) == (
        MONDAY_SIX,
        "Europe/Paris",
        MissedPolicy.SKIP,
    )
    assert created.request == request_, "the template is stored, not one tick's output"
    # The check saw the request of the next tick, Monday 2026-12-07 in Paris.
    assert [r.output for r in port.checked] == [
        request_.output.replace("{tick:%Y-%m-%d}", "2026-12-07")
    ]
    assert service.get("weekly") == created
    assert service.next_run(created) == T0


BAD_CREATES = {
    "bad-name": ({"name": "no spaces"}, InvalidName, "invalid schedule name 'no spaces'"),
    "bad-cron": ({"cron": "0 6 * *"}, InvalidInput, "invalid cron expression '0 6 * *'"),
    "never-cron": ({"cron": "0 6 31 2 *"}, InvalidInput, "no date ever matches"),
    "bad-zone": ({"timezone": "Europe/Pariss"}, InvalidInput, "unknown time zone 'Europe/Pariss'"),
    "machine-zone": ({"timezone": "localtime"}, InvalidInput, "'localtime' is not an IANA"),
    "bad-policy": ({"missed": "catch-up"}, InvalidInput, "use one of run-once, skip"),
    "bad-output": ({"output": "out/{date}"}, InvalidInput, "unknown placeholder {date}"),
    "fixed-output": ({"output": "out/fixed"}, InvalidInput, "put {tick} in the output"),
    "unknown-model": ({"model": "nope"}, ModelNotFound, "model 'nope' does not exist"),
    "missing-input": ({"input": "/nonexistent/in.csv"}, InvalidInput, "'/nonexistent/in.csv'"),
}


@pytest.mark.parametrize("case", list(BAD_CREATES), ids=list(BAD_CREATES))
def test_bad_input_is_refused_and_nothing_is_stored(
    parts: Parts, request_: TransformRequest, case: str
) -> None:
    change, error, message = BAD_CREATES[case]
    args = {"name": "weekly", "cron": MONDAY_SIX, "timezone": "Europe/Paris", "missed": "skip"}
    request_fields = {k: v for k, v in change.items() if k in ("output", "model", "input")}
    args.update({k: v for k, v in change.items() if k not in request_fields})
    request = TransformRequest(**{**request_.to_dict(), **request_fields})
    service, _ = parts.service()
    with pytest.raises(error) as info:
        service.create(str(args.pop("name")), request=request, **args)  # type: ignore[arg-type]
    assert message in info.value.message
    assert service.schedules() == []


def test_a_fixed_output_is_fine_when_runs_overwrite_it(
    parts: Parts, request_: TransformRequest, tmp_path: Path
) -> None:
    service, _ = parts.service()
    fixed = TransformRequest(request_.model, request_.input, str(tmp_path / "out"), overwrite=True)
    assert service.create("daily", cron="0 7 * * *", request=fixed).timezone == "UTC"


def test_outputs_that_runs_would_share_or_that_climb_out_are_refused(
    parts: Parts, request_: TransformRequest, tmp_path: Path
) -> None:
    """``{tick:%Y-%m-%d}`` on an hourly schedule would send a day's runs to one folder, all
    but the first failing; ``{tick:..}`` once named the folder above, which the write check
    then emptied. Both are refused, and nothing is written or deleted."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "important.txt").write_text("precious")
    service, _ = parts.service()
    for output, words in [
        (str(tmp_path / "out" / "{tick:%Y-%m-%d}"), "would both write to"),
        (str(victim / "new" / "{tick:..}"), "no '..' segment or control character"),
        (str(tmp_path / "out" / "{tick:%n}"), "no '..' segment or control character"),
    ]:
        request = TransformRequest(request_.model, request_.input, output)
        with pytest.raises(InvalidInput, match=words):
            service.create("hourly", cron="0 * * * *", request=request)
    assert service.schedules() == []
    assert (victim / "important.txt").read_text() == "precious"
    # A format as fine as the schedule is taken; so is a shared folder that runs overwrite.
    fine = TransformRequest(request_.model, request_.input, str(tmp_path / "out" / "{tick}"))
    assert service.create("hourly", cron="0 * * * *", request=fine).name == "hourly"
    shared = dataclasses.replace(request_, overwrite=True)
    assert service.create("daily-files", cron="0 * * * *", request=shared).name == "daily-files"


@pytest.mark.parametrize(
    ("cron", "fmt"),
    [
        ("0 * * * *", "%H"),  # hourly, by the hour of the day: the next day's runs
        ("0 * * * *", "%Y-%H"),  # the year does not tell one day's 05:00 from the next's
        ("0 6 * * *", "%d"),  # daily, by the day of the month: next month's
        ("0 6 * * *", "%a"),  # daily, by the weekday: next week's
        ("0 6 * * 1", "%m-%d"),  # weekly, without the year: next year's
    ],
)
def test_an_output_format_that_comes_round_again_is_refused(
    parts: Parts, request_: TransformRequest, tmp_path: Path, cron: str, fmt: str
) -> None:
    """A {tick} format whose next runs differ but that repeats a day, a week, a month or a
    year on would send a later run to an earlier one's folder, where it fails on the files
    it finds, long after the schedule was made."""
    service, _ = parts.service()
    request = TransformRequest(request_.model, request_.input, str(tmp_path / f"{{tick:{fmt}}}"))
    with pytest.raises(InvalidInput, match="would both write to"):
        service.create("cycling", cron=cron, request=request)
    assert service.schedules() == []
    for fine in ("%Y-%m-%d-%H", "%Y%m%d%H%M", "%Y/%j/%H"):
        ok = TransformRequest(request_.model, request_.input, str(tmp_path / f"{{tick:{fine}}}"))
        assert service.create("fine", cron=cron, request=ok).name == "fine"
        service.delete("fine")


def test_a_second_schedule_writing_the_same_output_is_refused_at_create(
    parts: Parts, request_: TransformRequest, tmp_path: Path
) -> None:
    """Runs of two schedules can overlap even when their crons never coincide (a long run),
    and the second then fails at run time on the first's output claim: refused at create,
    naming the other schedule, however the output is spelled, paused or not."""
    service, _ = parts.service()
    service.create("weekly", cron=MONDAY_SIX, request=request_)
    service.pause("weekly")
    for output in (request_.output, "file://" + request_.output + "/"):
        same = dataclasses.replace(request_, output=output)
        with pytest.raises(Conflict, match=r"schedule 'weekly' writes to .*: give schedule 'dai"):
            service.create("daily", cron="30 7 * * *", request=same)
    assert [s.name for s in service.schedules()] == ["weekly"]
    # The other schedule's output is named with its credentials masked.
    secret = dataclasses.replace(request_, output="memory://u:hunter2@bucket/out/{tick}")
    service.create("signed", cron=MONDAY_SIX, request=secret)
    with pytest.raises(Conflict, match=r"writes to 'memory://u:\*\*\*@bucket") as refused:
        service.create("copy", cron="30 7 * * *", request=secret)
    assert "hunter2" not in str(refused.value)
    service.delete("signed")
    # an output of its own is fine
    other = dataclasses.replace(request_, output=str(tmp_path / "daily" / "{tick:%Y-%m-%d}"))
    assert service.create("daily", cron="30 7 * * *", request=other).name == "daily"


def test_a_taken_name_is_refused_before_the_check(parts: Parts, request_: TransformRequest) -> None:
    service, port = parts.service()
    service.create("weekly", cron=MONDAY_SIX, request=request_)
    checks = len(port.checked)
    with pytest.raises(AlreadyExists, match="a schedule named 'weekly' already exists"):
        service.create("weekly", cron="* * * * *", request=request_)
    assert len(port.checked) == checks
    assert service.get("weekly").cron == MONDAY_SIX


def test_each_due_tick_submits_one_job_and_records_it(
    parts: Parts, request_: TransformRequest, tmp_path: Path
) -> None:
    service, _ = parts.service()
    service.create("weekly", cron=MONDAY_SIX, request=request_, timezone="Europe/Paris")
    assert service.run_due(T0 - timedelta(seconds=1)) == [], "not due yet"
    [run] = service.run_due(T0 + timedelta(seconds=2))
    assert (run.tick, run.status, run.late, run.missed) == (
        T0,
        ScheduleRunStatus.SUBMITTED,
        False,
        0,
    )
    [job] = parts.batch_jobs()
    assert run.job == job.name
    assert job.spec["output"] == str(tmp_path / "out" / "2026-12-07")
    assert job.spec["model"] == "churn@prod", "the reference is resolved by each run's job"
    assert service.run_due(T0 + timedelta(seconds=30)) == [], "a tick runs once"
    # Next Monday: its own job, its own output folder.
    [second] = service.run_due(T0 + WEEK + timedelta(seconds=1))
    assert second.tick == T0 + WEEK
    assert sorted(j.spec["output"] for j in parts.batch_jobs()) == [
        str(tmp_path / "out" / "2026-12-07"),
        str(tmp_path / "out" / "2026-12-14"),
    ]
    assert [r.tick for r in service.runs("weekly")] == [T0 + WEEK, T0]
    assert service.job(second) == parts.jobs.get_job(str(second.job))


def test_a_tick_before_the_schedule_existed_never_runs(
    parts: Parts, request_: TransformRequest
) -> None:
    parts.clock.now = T0 + timedelta(minutes=1)  # created just after Monday's tick
    service, _ = parts.service()
    service.create("weekly", cron=MONDAY_SIX, request=request_, timezone="Europe/Paris")
    assert service.run_due(T0 + timedelta(minutes=2)) == []
    assert parts.batch_jobs() == []


def test_a_failed_submission_is_recorded_and_the_next_tick_runs(
    parts: Parts, request_: TransformRequest
) -> None:
    service, port = parts.service()
    service.create("weekly", cron=MONDAY_SIX, request=request_, timezone="Europe/Paris")
    port.fail = ModelNotFound("model 'churn' has no alias 'prod'")
    [failed] = service.run_due(T0)
    assert (failed.status, failed.job, failed.error) == (
        ScheduleRunStatus.FAILED,
        None,
        "model 'churn' has no alias 'prod'",
    )
    assert service.run_due(T0 + timedelta(minutes=1)) == [], "a failed tick is not retried"
    port.fail = None
    [ok] = service.run_due(T0 + WEEK)
    assert ok.status is ScheduleRunStatus.SUBMITTED and ok.missed == 0


def test_a_bug_in_the_submission_is_recorded_not_raised(
    parts: Parts, request_: TransformRequest
) -> None:
    service, port = parts.service()
    service.create("weekly", cron=MONDAY_SIX, request=request_, timezone="Europe/Paris")
    port.fail = ZeroDivisionError("division by zero")
    [failed] = service.run_due(T0)
    assert failed.error == "ZeroDivisionError: division by zero"


def test_missed_ticks_run_once_on_start_up(parts: Parts, request_: TransformRequest) -> None:
    service, _ = parts.service(grace=timedelta(minutes=5))
    service.create("weekly", cron=MONDAY_SIX, request=request_, timezone="Europe/Paris")
    # No scheduler ran for three Mondays; one starts on the Wednesday after the third.
    [run] = service.run_due(T0 + 2 * WEEK + timedelta(days=2))
    assert (run.tick, run.status, run.late, run.missed) == (
        T0 + 2 * WEEK,
        ScheduleRunStatus.SUBMITTED,
        True,
        2,
    )
    [job] = parts.batch_jobs()
    assert job.spec["output"].endswith("2026-12-21"), "the output of the latest missed tick"
    [on_time] = service.run_due(T0 + 3 * WEEK + timedelta(minutes=1))
    assert (on_time.late, on_time.missed) == (False, 0)


def test_missed_ticks_are_skipped_under_skip(parts: Parts, request_: TransformRequest) -> None:
    service, _ = parts.service(grace=timedelta(minutes=5))
    service.create(
        "weekly", cron=MONDAY_SIX, request=request_, timezone="Europe/Paris", missed="skip"
    )
    # Within the grace period a tick is on time, whatever the policy.
    [on_time] = service.run_due(T0 + timedelta(minutes=4))
    assert on_time.status is ScheduleRunStatus.SUBMITTED
    [skipped] = service.run_due(T0 + 3 * WEEK + timedelta(hours=2))
    assert (skipped.tick, skipped.status, skipped.job, skipped.late, skipped.missed) == (
        T0 + 3 * WEEK,
        ScheduleRunStatus.SKIPPED,
        None,
        True,
        2,
    )
    assert len(parts.batch_jobs()) == 1, "no job for the skipped ticks"
    assert service.run_due(T0 + 3 * WEEK + timedelta(hours=3)) == []
    [next_one] = service.run_due(T0 + 4 * WEEK)
    assert (next_one.status, next_one.missed) == (ScheduleRunStatus.SUBMITTED, 0)


def test_paused_ticks_never_run_and_resume_starts_afresh(
    parts: Parts, request_: TransformRequest
) -> None:
    service, _ = parts.service()
    service.create("weekly", cron=MONDAY_SIX, request=request_, timezone="Europe/Paris")
    paused, changed = service.pause("weekly")
    assert changed and paused.paused and service.next_run(paused) is None
    assert service.pause("weekly")[1] is False
    assert service.run_due(T0 + timedelta(seconds=1)) == []
    assert service.next_due(T0) is None
    # Resumed on the Wednesday: the Mondays it slept through are not missed ticks, even under
    # run-once; the next Monday runs as usual.
    parts.clock.now = T0 + WEEK + timedelta(days=2)
    resumed, changed = service.resume("weekly")
    assert changed and resumed.active_since == parts.clock.now
    assert service.run_due(parts.clock.now) == []
    [run] = service.run_due(T0 + 2 * WEEK)
    assert (run.tick, run.late, run.missed) == (T0 + 2 * WEEK, False, 0)
    assert service.next_due(T0 + 2 * WEEK) == T0 + 3 * WEEK


def test_delete_forgets_the_schedule_and_its_runs_not_its_jobs(
    parts: Parts, request_: TransformRequest
) -> None:
    service, _ = parts.service()
    service.create("weekly", cron=MONDAY_SIX, request=request_, timezone="Europe/Paris")
    service.run_due(T0)
    service.delete("weekly")
    for call in (service.get, service.runs, service.delete, service.pause, service.resume):
        with pytest.raises(NotFound, match="no schedule named 'weekly'"):
            call("weekly")
    assert len(parts.batch_jobs()) == 1
    assert service.run_due(T0 + WEEK) == []


def test_output_ticks_are_local_times_across_summer_time(
    parts: Parts, request_: TransformRequest, tmp_path: Path
) -> None:
    parts.clock.now = datetime(2027, 3, 20, 12, tzinfo=UTC)  # 2027-03-28 is the change
    service, _ = parts.service()
    hourly = TransformRequest(request_.model, request_.input, str(tmp_path / "{tick}"))
    service.create("night", cron="30 2 * * *", request=hourly, timezone="Europe/Paris")
    paris = ZoneInfo("Europe/Paris")
    ran = []
    now = parts.clock.now
    for _ in range(10):
        now = service.next_due(now) or now
        ran += service.run_due(now)
    ticks = [r.tick.astimezone(paris) for r in ran]
    assert [t.strftime("%d %H:%M %Z") for t in ticks[7:9]] == ["28 03:00 CEST", "29 02:30 CEST"]
    outputs = sorted(j.spec["output"] for j in parts.batch_jobs())
    assert str(tmp_path / "2027-03-28T0300") in outputs
    assert str(tmp_path / "2027-03-27T0230") in outputs


def test_local_paths_are_stored_absolute(
    parts: Parts, request_: TransformRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the scheduler that runs it has another working directory
    service, _ = parts.service()
    relative = TransformRequest(request_.model, "in.csv", "out/{tick:%Y-%m-%d}")
    created = service.create("weekly", cron=MONDAY_SIX, request=relative)
    assert (created.request.input, created.request.output) == (
        str(tmp_path / "in.csv"),
        str(tmp_path / "out" / "{tick:%Y-%m-%d}"),
    )
    remote = TransformRequest(request_.model, request_.input, "s3://bucket/{tick}")
    assert service.create("remote", cron=MONDAY_SIX, request=remote).request.output == (
        "s3://bucket/{tick}"
    )
