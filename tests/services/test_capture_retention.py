"""``CaptureRetention``: captured files deleted by whole partition hour before a cutoff, on a
local folder and on an fsspec URL (``memory://``); dry runs, bad cutoffs and failing deletes;
the scheduler loop's hourly housekeeping applying the retention across endpoints.

The files are written the way servers write them (``test_capture_service``'s helpers).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelyard.errors import (
    ConfigError,
    InvalidInput,
    InvalidName,
    StorageNotWritable,
)
from modelyard.services.capture import CaptureService
from modelyard.services.capture_retention import CaptureRetention
from modelyard.storage.capture_files import CaptureFolder
from modelyard.storage.filesystems import check_protocol
from tests.services.test_capture_service import at, captured, folder, put

__all__ = ["folder"]  # the fixture, shared: local and memory:// roots

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)  # T0 (09:00) + 3.5 h


def hours_of(folder: CaptureFolder, endpoint: str = "api") -> list[str]:
    return [f.path.split("/")[2] for f in folder.files(endpoint) if "/hour=" in f.path]


def fill(folder: CaptureFolder) -> dict[str, str]:
    """Files in hours 09, 10 (two), 11 and 12 of endpoint ``api``, one in hour 09 of ``web``,
    and one outside any partition folder."""
    paths = {
        "09": put(folder, captured([at(10)]), "a"),
        "10a": put(folder, captured([at(61)]), "b"),
        "10b": put(folder, captured([at(119)]), "c"),
        "11": put(folder, captured([at(150)]), "d"),
        "12": put(folder, captured([at(200)]), "e"),
        "web-09": put(folder, captured([at(5)]), "f", endpoint="web"),
    }
    folder.write("api/loose.parquet", b"not in a partition")
    return paths


def retention(folder: CaptureFolder, days: float | None = None) -> CaptureRetention:
    kept = None if days is None else timedelta(days=days)
    return CaptureRetention(folder, kept, now=lambda: NOW)


def test_whole_hours_before_the_cutoff_go_and_the_rest_stay(folder: CaptureFolder) -> None:
    fill(folder)
    sizes = {f.path: f.size for f in folder.files("api")}
    # 11:15 falls in hour 11: hours 09 and 10 end before it, hour 11 is kept whole.
    done = retention(folder).prune("api", datetime(2026, 3, 1, 11, 15, tzinfo=UTC))
    assert (done.files, done.hours, done.endpoints, done.dry_run) == (3, 2, ["api"], False)
    assert done.size == sum(size for path, size in sizes.items() if "hour=09" in path or
                            "hour=10" in path)  # fmt: skip
    assert hours_of(folder) == ["hour=11", "hour=12"]
    assert [f.path for f in folder.files("web")] != []  # another endpoint: untouched
    assert "api/loose.parquet" in {f.path for f in folder.files("api")}  # in no partition
    # What is left reads as before: the service sees only the kept rows.
    rows = CaptureService(folder, now=lambda: NOW).read("api", since=at(0))
    assert [t.to_pydatetime() for t in rows["time"]] == [at(150), at(200)]


def test_a_cutoff_on_an_hour_boundary_takes_that_hour(folder: CaptureFolder) -> None:
    fill(folder)
    done = retention(folder).prune("api", datetime(2026, 3, 1, 11, 0, tzinfo=UTC))
    assert done.hours == 2 and hours_of(folder) == ["hour=11", "hour=12"]


def test_a_dry_run_counts_and_deletes_nothing(folder: CaptureFolder) -> None:
    fill(folder)
    before = folder.files("api")
    done = retention(folder).prune("api", NOW, dry_run=True)
    assert (done.files, done.hours, done.dry_run) == (4, 3, True)
    assert folder.files("api") == before


def test_every_endpoint_when_none_is_named(folder: CaptureFolder) -> None:
    fill(folder)
    done = retention(folder).prune(None, datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    assert (done.endpoints, done.files) == (["api", "web"], 2)
    assert folder.files("web") == [] and hours_of(folder)[0] == "hour=10"


def test_bad_cutoffs_and_names_are_refused_and_delete_nothing(folder: CaptureFolder) -> None:
    fill(folder)
    before = folder.files("api")
    keeper = retention(folder)
    with pytest.raises(InvalidInput, match="in the future"):
        keeper.prune("api", NOW + timedelta(minutes=1))
    with pytest.raises(InvalidName):
        keeper.prune("../api", NOW)
    assert folder.files("api") == before
    with pytest.raises(ValueError, match="longer than 0"):
        CaptureRetention(folder, timedelta(0))


def test_a_cutoff_in_the_first_hour_of_the_calendar_prunes_nothing(
    folder: CaptureFolder,
) -> None:
    # No partition hour ends by then; ``capture prune --before 0001-01-01`` ended in an
    # OverflowError traceback (the day before the cutoff's hour is out of range).
    fill(folder)
    before = folder.files("api")
    for cutoff in ("0001-01-01", datetime(1, 1, 1, 0, 59, tzinfo=UTC)):
        for endpoint in ("api", None):
            done = retention(folder).prune(endpoint, cutoff, dry_run=False)
            assert (done.files, done.hours) == (0, 0)
    assert folder.files("api") == before


def test_an_endpoint_with_nothing_captured_prunes_nothing(folder: CaptureFolder) -> None:
    done = retention(folder).prune("nobody", NOW)
    assert (done.files, done.hours) == (0, 0)
    assert retention(folder).prune(None, NOW).endpoints == []


def test_the_retention_applies_to_every_endpoint(folder: CaptureFolder) -> None:
    fill(folder)
    assert retention(folder).prune_expired() is None  # no retention: kept forever
    assert len(hours_of(folder)) == 5
    # Two hours' retention at 12:30: rows before 10:30 go, so hours 09 and web's 09 go
    # (hour 10 ends after the cutoff and stays whole).
    done = retention(folder, days=2 / 24).prune_expired()
    assert done is not None and done.files == 2
    assert hours_of(folder) == ["hour=10", "hour=10", "hour=11", "hour=12"]
    assert folder.files("web") == []


def test_empty_folders_go_with_their_last_file(tmp_path: Path) -> None:
    root = tmp_path / "capture"
    folder = CaptureFolder(str(root))
    fill(folder)
    retention(folder).prune("api", datetime(2026, 3, 1, 11, 0, tzinfo=UTC))
    assert sorted(p.name for p in (root / "api" / "date=2026-03-01").iterdir()) == [
        "hour=11",
        "hour=12",
    ]
    retention(folder).prune(None, NOW)  # hour 12 is still going on
    assert sorted(p.name for p in (root / "api" / "date=2026-03-01").iterdir()) == ["hour=12"]
    assert not (root / "web" / "date=2026-03-01").exists()
    assert (root / "web").is_dir()  # the endpoint's own folder stays


def test_a_file_that_cannot_be_deleted_is_named(tmp_path: Path) -> None:
    """The delete the filesystem refuses stops the prune with an error naming the file; the
    files deleted before it stay deleted, the rest stay."""
    folder = CaptureFolder(str(tmp_path / "capture"))
    paths = fill(folder)
    locked = tmp_path / "capture" / paths["10a"].rpartition("/")[0]
    with _undeletable(locked), pytest.raises(StorageNotWritable) as raised:
        retention(folder).prune("api", NOW)
    assert "part-b.parquet" in raised.value.message
    assert "at least 1 files deleted before it" in raised.value.message  # hour 09's
    assert hours_of(folder) == ["hour=10", "hour=10", "hour=11", "hour=12"]


@contextmanager
def _undeletable(path: Path) -> Iterator[None]:
    """Files in ``path`` cannot be deleted: a folder without write permission, or (as root,
    whom permissions do not stop) an immutable one."""
    if os.geteuid() != 0:
        path.chmod(0o500)
        try:
            yield
        finally:
            path.chmod(0o700)
        return
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_the_scheduler_loop_runs_the_retention_hourly(folder: CaptureFolder) -> None:
    from modelyard.services.scheduler import Scheduler

    fill(folder)
    keeper = retention(folder, days=2 / 24)
    scheduler = Scheduler(_Idle(), _Idle(), housekeeping=[keeper.prune_expired])  # type: ignore[arg-type]
    scheduler.run_once(NOW)
    assert folder.files("web") == []
    put(folder, captured([at(5)]), "late", endpoint="web")  # a late writer's file
    scheduler.run_once(NOW + timedelta(minutes=30))  # within the hour: no second prune
    assert len(folder.files("web")) == 1
    scheduler.run_once(NOW + timedelta(hours=1))
    assert folder.files("web") == []


class _Idle:
    """A monitor and alarm service with nothing due."""

    def run_due(self, now: datetime) -> list[Any]:
        return []

    def evaluate(self, now: datetime) -> list[Any]:
        return []

    def record(self, now: datetime) -> list[Any]:
        return []

    def notify(self, events: Any, now: datetime) -> list[Any]:
        return list(events)

    def prune(self, now: datetime) -> tuple[int, int]:
        return 0, 0


def test_hours_servers_may_still_write_are_kept_whatever_the_cutoff(
    folder: CaptureFolder,
) -> None:
    """Hour 11 ended a minute before 12:01: with 2 minutes to settle it is kept, and the
    result says the cutoff that applied; 2 minutes later it goes."""
    fill(folder)
    at_1201 = datetime(2026, 3, 1, 12, 1, tzinfo=UTC)
    keeper = CaptureRetention(folder, settle=timedelta(minutes=2), now=lambda: at_1201)
    done = keeper.prune("api", at_1201)
    assert done.before == at_1201 - timedelta(minutes=2) and done.hours == 2  # 09 and 10
    assert hours_of(folder) == ["hour=11", "hour=12"]
    later = CaptureRetention(folder, settle=timedelta(minutes=2), now=lambda: NOW)
    assert later.prune("api", at_1201).hours == 1 and hours_of(folder) == ["hour=12"]


def test_a_file_another_prune_deleted_first_counts_as_deleted(folder: CaptureFolder) -> None:
    paths = fill(folder)
    other = CaptureFolder(folder.url) if "memory://" in folder.url else None
    (other or folder).remove([paths["10a"]])  # the other prune's
    folder.remove([paths["09"], paths["10a"], paths["10b"]])  # this one's, listed before
    assert hours_of(folder) == ["hour=11", "hour=12"]


class PrunedAfterListing:
    """``folder`` as a reader sees it while a prune runs: every file it lists is deleted
    right after the listing, before the reader opens it."""

    def __init__(self, folder: CaptureFolder, doomed: set[str]) -> None:
        self._folder = folder
        self._doomed = doomed
        self.url = folder.url

    def files(self, folder: str) -> Any:
        listed = self._folder.files(folder)
        self._folder.remove([f.path for f in listed if f.path in self._doomed])
        return listed

    def open(self, path: str) -> Any:
        return self._folder.open(path)

    def holds(self, target: str) -> bool:
        return self._folder.holds(target)


def test_reads_racing_a_prune_leave_out_the_files_it_deleted(
    folder: CaptureFolder, tmp_path: Path
) -> None:
    """A file listed by a read, an export or a list, then deleted by a prune before it is
    opened, is left out as a file the prune deleted first would have been: the read does
    not fail on it, and list does not call it unreadable."""
    paths = fill(folder)
    doomed = {paths["09"], paths["10a"]}
    racing = PrunedAfterListing(folder, doomed)
    service = CaptureService(racing, now=lambda: NOW)  # type: ignore[arg-type]
    listed = service.list("api")
    assert [f.path for f in listed if f.hour] == [paths["10b"], paths["11"], paths["12"]]
    assert [f.path for f in listed if f.error] == ["api/loose.parquet"]  # damaged, not gone
    doomed.update({paths["10b"], paths["11"]})
    rows = service.read("api", since=at(0))
    assert rows["time"].tolist() == [at(200)]
    done = service.export("api", at(0), None, tmp_path / "rows.parquet")
    assert (done.rows, done.files) == (1, 1)


def test_a_root_of_an_unknown_protocol_is_a_typed_error() -> None:
    """A setting to fix (ConfigError, which the scheduler loop survives: a ModelyardError);
    the message names the root. Commands refuse it before they start (check_protocol)."""
    folder = CaptureFolder("nosuchprotocol://bucket/capture")
    with pytest.raises(ConfigError, match="the capture folder nosuchprotocol://bucket/capture"):
        CaptureRetention(folder, now=lambda: NOW).prune(None, NOW)
    for url in ("nosuchprotocol://bucket/capture", "simplecache::nosuchprotocol://b/c"):
        with pytest.raises(ConfigError, match="nosuchprotocol"):
            check_protocol(url, url, "the capture folder")
    # Known protocols pass without a filesystem made (nothing is reached), as do folders.
    for url in ("memory://rows", "simplecache::memory://rows", "/var/rows", "file:///var/rows"):
        check_protocol(url, url, "the capture folder")


def test_a_write_whose_folder_a_prune_removed_meanwhile_is_retried(tmp_path: Path) -> None:
    """A prune that empties an hour folder between a writer's ``makedirs`` and its write
    (the folder removed as the prune leaves it): the writer makes it again, once."""
    folder = CaptureFolder(str(tmp_path / "capture"))
    put(folder, captured([at(10)]), "first")
    fs, _ = folder._filesystem()
    made = fs.makedirs
    pruned: list[str] = []

    def makedirs_then_pruned(path: str, exist_ok: bool = False) -> None:
        made(path, exist_ok=exist_ok)
        if not pruned:  # the first time only: a prune got in right after
            pruned.append(path)
            fs.rm(path, recursive=True)

    fs.makedirs = makedirs_then_pruned
    try:
        put(folder, captured([at(20)]), "second")
    finally:
        del fs.makedirs
    assert pruned and [f.path.rpartition("/")[2] for f in folder.files("api")] == [
        "part-second.parquet"
    ]


def test_a_failing_chore_leaves_the_pass_and_the_other_chores_alone(
    folder: CaptureFolder,
) -> None:
    from modelyard.services.scheduler import Scheduler

    fill(folder)

    def broken(now: datetime) -> None:
        raise RuntimeError("a defect in a chore")

    keeper = retention(folder, days=2 / 24)
    chores = [broken, keeper.prune_expired]
    scheduler = Scheduler(_Idle(), _Idle(), housekeeping=chores)  # type: ignore[arg-type]
    assert scheduler.run_once(NOW).runs == []
    assert folder.files("web") == []  # the chore after the broken one ran
