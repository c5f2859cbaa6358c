"""``CaptureService``: list, read and export captured rows, on a local folder and on an fsspec
URL (``memory://``); windows, variants and columns; files of different configs unified; bad
arguments refused.

The files are written the way servers write them (``CaptureFolder.write`` of Parquet bytes
in the partition layout), with rows whose times the test chooses.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard.domain.capture import METADATA_COLUMNS, partition
from modelyard.errors import (
    AlreadyExists,
    InvalidInput,
    InvalidName,
    StorageNotWritable,
    StorageUnavailable,
)
from modelyard.services.capture import CaptureService
from modelyard.storage.capture_files import CaptureFolder

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["local", "memory"])
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CaptureFolder]:
    if request.param == "local":
        yield CaptureFolder(str(tmp_path / "capture"))
        return
    import fsspec

    url = f"memory://capture-{uuid.uuid4().hex}"
    yield CaptureFolder(url)
    memory = fsspec.filesystem("memory")
    if memory.exists(url):
        memory.rm(url, recursive=True)


def captured(times: list[datetime], variant: str = "blue", **columns: list[Any]) -> pa.Table:
    """Captured rows, one request per row, as a server writes them."""
    n = len(times)
    data: dict[str, Any] = {
        "inference_id": [f"id-{variant}-{t.isoformat()}" for t in times],
        "time": pa.array(times, type=pa.timestamp("us", tz="UTC")),
        "variant": [variant] * n,
        "model": ["churn"] * n,
        "model_version": pa.array([1] * n, type=pa.int64()),
        "latency_ms": [1.5] * n,
        "row": pa.array([0] * n, type=pa.int32()),
        "protocol": ["sagemaker"] * n,
    }
    data.update(columns)
    return pa.table(data)


def put(folder: CaptureFolder, table: pa.Table, name: str, endpoint: str = "api") -> str:
    first = table["time"][0].as_py()
    path = f"{partition(endpoint, first)}/part-{name}.parquet"
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    folder.write(path, buffer.getvalue())
    return path


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_read_list_and_export_round_trip(folder: CaptureFolder, tmp_path: Path) -> None:
    early = [at(10), at(20), at(50)]  # hour 09
    late = [at(61), at(70)]  # hour 10
    put(folder, captured(early, "blue", **{"input.a": [1.0, 2.0, 3.0]}), "a")
    put(folder, captured(late, "green", **{"input.a": [4.0, 5.0]}), "b")
    put(folder, captured([at(65)], "blue", **{"input.a": [9.0]}), "c")
    service = CaptureService(folder, now=lambda: at(120))

    listed = service.list("api")
    assert [(f.hour, f.rows, f.first, f.last) for f in listed] == [
        (T0, 3, at(10), at(50)),
        (at(60), 3 - 1, at(61), at(70)),
        (at(60), 1, at(65), at(65)),
    ]
    assert all(f.size > 0 and f.error is None for f in listed)

    window = service.read("api", since=at(20), until=at(70))  # since kept, until not
    assert list(window["input.a"]) == [2.0, 3.0, 4.0, 9.0]  # sorted by time
    # The Python API takes times as the CLI does: "100m" before now (at 120) is at(20).
    pd.testing.assert_frame_equal(service.read("api", since="100m", until="50m"), window)
    assert list(window["time"]) == [at(20), at(50), at(61), at(65)]
    assert str(window["time"].dtype) == "datetime64[us, UTC]"
    assert list(window.columns) == [*METADATA_COLUMNS, "input.a"]
    blue = service.read("api", since=at(0), variant="blue", columns=["input.a", "output.x"])
    assert list(blue.columns) == ["input.a", "output.x"]
    assert list(blue["input.a"]) == [1.0, 2.0, 3.0, 9.0]
    assert blue["output.x"].isna().all()  # no file has it

    out = tmp_path / "rows.parquet"
    done = service.export("api", at(20), None, out)
    assert (done.rows, done.files, done.until) == (5, 3, at(120))
    exported = pd.read_parquet(out)
    pd.testing.assert_frame_equal(exported, service.read("api", since=at(20)))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_export_writes_the_format_its_suffix_names(folder: CaptureFolder, tmp_path: Path) -> None:
    """CSV and JSON Lines hold no lists: class probabilities go as JSON text in CSV, as JSON
    arrays in JSON Lines; times as ISO text, NaN as null. Another suffix is refused."""
    probabilities = pa.array([[0.25, 0.75], None], type=pa.list_(pa.float64()))
    put(folder, captured([at(1), at(2)], **{"input.a": [1.5, float("nan")]}).append_column(
        "output.proba", probabilities
    ), "a")  # fmt: skip
    service = CaptureService(folder, now=lambda: at(10))
    out = tmp_path / "out"
    out.mkdir()
    as_csv = service.export("api", at(0), None, out / "rows.CSV")
    assert (as_csv.rows, as_csv.format) == (2, "CSV")
    table = pd.read_csv(out / "rows.CSV")
    assert list(table["output.proba"].fillna("")) == ["[0.25,0.75]", ""]
    assert table["input.a"].iloc[0] == 1.5 and pd.isna(table["input.a"].iloc[1])
    assert list(table.columns) == list(service.read("api", since=at(0)).columns)

    assert service.export("api", at(0), None, out / "rows.jsonl").format == "JSON Lines"
    lines = (out / "rows.jsonl").read_text().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["output.proba"] == [0.25, 0.75] and second["output.proba"] is None
    assert second["input.a"] is None  # NaN, which JSON has not
    assert datetime.fromisoformat(first["time"]) == at(1)

    for name, words in [("rows.txt", "suffix '.txt'"), ("rows", "no suffix")]:
        with pytest.raises(InvalidInput, match=rf"{words}\); name it \.parquet"):
            service.export("api", at(0), None, out / name)
    assert sorted(p.name for p in out.iterdir()) == ["rows.CSV", "rows.jsonl"]


def test_a_csv_export_defuses_text_a_spreadsheet_would_run(
    folder: CaptureFolder, tmp_path: Path
) -> None:
    """Found in review: captured text (callers of a public endpoint choose it) starting with
    = + - @ went into the CSV as-is, and a spreadsheet opening it runs it as a formula (CSV
    injection). Such text cells get a leading single quote (OWASP's advice); numbers, and
    text that is only a number, are written as they are."""
    import csv

    texts = ["=HYPERLINK(\"http://x\")", "+SUM(A1)", "-2+3+cmd|' /C calc'!A0", "@cmd",
             "\tTAB", "\rCR", "plain", "-1.5", "", None]  # fmt: skip
    n = len(texts)
    table = captured([at(i) for i in range(n)], **{
        "caller_inference_id": texts,
        "input.comment": pa.array(texts).dictionary_encode(),
        "input.a": [-1.5, -2.0, 3.0, 1e-7, -1e12, 0.0, 1.0, 2.0, 3.0, 4.0],
        "input.n": pa.array([-3] * n, type=pa.int64()),
    })  # fmt: skip
    put(folder, table, "a")
    service = CaptureService(folder, now=lambda: at(60))
    service.export("api", at(0), None, tmp_path / "rows.csv")
    with open(tmp_path / "rows.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    defused = ["'=HYPERLINK(\"http://x\")", "'+SUM(A1)", "'-2+3+cmd|' /C calc'!A0", "'@cmd",
               "'\tTAB", "'\rCR", "plain", "-1.5", "", ""]  # fmt: skip
    assert [r["caller_inference_id"] for r in rows] == defused
    assert [r["input.comment"] for r in rows] == defused
    assert [float(r["input.a"]) for r in rows] == table["input.a"].to_pylist()
    assert {r["input.n"] for r in rows} == {"-3"}
    # Numbers stay numbers for a reader of the CSV.
    read = pd.read_csv(tmp_path / "rows.csv")
    assert read["input.a"].dtype == "float64" and read["input.n"].tolist() == [-3] * n
    # Parquet and JSON Lines hold the values as captured: no spreadsheet reads them as formulas.
    service.export("api", at(0), None, tmp_path / "rows.parquet")
    assert (
        pd.read_parquet(tmp_path / "rows.parquet")["caller_inference_id"].tolist()[:4]
        == (texts[:4])
    )
    service.export("api", at(0), None, tmp_path / "rows.jsonl")
    first = json.loads((tmp_path / "rows.jsonl").read_text().splitlines()[0])
    assert first["input.comment"] == texts[0]


def test_export_never_replaces_a_file_unless_allowed(folder: CaptureFolder, tmp_path: Path) -> None:
    put(folder, captured([at(1)], **{"input.a": [1.0]}), "a")
    service = CaptureService(folder, now=lambda: at(10))
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "rows.parquet"
    out.write_bytes(b"an earlier export")
    with pytest.raises(AlreadyExists, match=r"rows\.parquet already exists"):
        service.export("api", at(0), None, out)
    assert out.read_bytes() == b"an earlier export"
    assert service.export("api", at(0), None, out, overwrite=True).rows == 1
    assert list(pd.read_parquet(out)["input.a"]) == [1.0]
    assert [p.name for p in out.parent.iterdir()] == ["rows.parquet"]


def test_an_export_into_a_missing_folder_is_refused_before_the_rows_are_read(
    folder: CaptureFolder, tmp_path: Path
) -> None:
    put(folder, captured([at(1)], **{"input.a": [1.0]}), "a")
    listing = ListingFolder(folder)
    service = CaptureService(listing, now=lambda: at(10))
    out = tmp_path / "missing" / "rows.parquet"
    missing = re.escape(str(out.parent))
    with pytest.raises(StorageNotWritable, match=f"folder {missing} does not exist"):
        service.export("api", at(0), None, out)
    assert listing.listed == []
    assert not out.parent.exists()


def test_an_export_to_a_folder_or_to_a_bare_suffix_is_refused_naming_it(
    folder: CaptureFolder, tmp_path: Path
) -> None:
    """'-o /' named no file in its refusal, 'x.csv/' wrote the file x.csv and '.parquet' a
    hidden file with no name."""
    put(folder, captured([at(1)], **{"input.a": [1.0]}), "a")
    service = CaptureService(folder, now=lambda: at(10))
    out = tmp_path / "out"
    out.mkdir()
    refusals = [
        ("/", r"^/ names a folder"),
        (str(out), f"^{re.escape(str(out))} is a folder"),
        (f"{out}/rows.csv/", f"^{re.escape(str(out))}/rows\\.csv/ names a folder"),
        (f"{out}/.parquet", f"^'{re.escape(str(out))}/\\.parquet' is only a suffix"),
    ]
    for target, match in refusals:
        with pytest.raises(InvalidInput, match=match):
            service.export("api", at(0), None, target)
    assert list(out.iterdir()) == []


def test_an_export_into_the_capture_root_is_refused_and_writes_nothing(
    folder: CaptureFolder, tmp_path: Path
) -> None:
    """An export written into an hour folder was read back as captured rows: the next export
    (and drift, and feedback) counted every row twice."""
    put(folder, captured([at(1), at(2)], **{"input.a": [1.0, 2.0]}), "a")
    service = CaptureService(folder, now=lambda: at(10))
    root = folder.url
    hour = partition("api", at(1))
    inside = [f"{root}/{hour}/rows.parquet", f"{root}/api/rows.csv", f"{root}/rows.jsonl"]
    if "://" not in root:
        inside += [f"{root}/api/../{hour}/x.parquet", f"file://{root}/{hour}/y.parquet"]
        (tmp_path / "link").symlink_to(root)
        inside.append(str(tmp_path / "link" / hour / "z.parquet"))
    for target in inside:
        with pytest.raises(InvalidInput, match="is inside the capture root"):
            service.export("api", at(0), None, target, overwrite=True)
    assert [f.path for f in service.list("api")] == [f"{hour}/part-a.parquet"]
    assert len(service.read("api", since=at(0))) == 2
    beside = tmp_path / "capture-export.parquet"  # a sibling whose name starts like the root
    assert service.export("api", at(0), None, beside).rows == 2


def test_files_of_different_configs_are_read_as_one_schema(folder: CaptureFolder) -> None:
    # Before: ssn in clear (a number), no feature c. After: ssn hashed (text), c added.
    put(folder, captured([at(1)], **{"input.ssn": [123.0], "output.prediction": [1]}), "old")
    put(
        folder,
        captured(
            [at(2)],
            **{"input.ssn": ["9f86d08"], "input.c": [0.5], "output.prediction": [0.25]},
        ),
        "new",
    )
    rows = CaptureService(folder).read("api", since=at(0), until=at(5))
    assert list(rows["input.ssn"]) == ["123", "9f86d08"]
    assert rows["input.c"].isna().tolist() == [True, False]
    assert list(rows["output.prediction"]) == [1.0, 0.25]  # ints and floats: numbers
    assert list(rows.columns) == [*METADATA_COLUMNS, "input.ssn", "input.c", "output.prediction"]


def test_every_output_column_is_read_as_output_star(folder: CaptureFolder) -> None:
    """Versions of several output columns and of one, in files of their own: ``output.*``
    reads every output column any file has (prediction first, then by number), and nothing
    of the inputs."""
    put(folder, captured([at(1)], **{"input.a": [1.0], "output.prediction": [0.5]}), "one")
    three = {"input.a": [2.0], **{f"output.{i}": [0.1 * i] for i in (10, 2, 0, 1)}}
    put(folder, captured([at(2)], "green", **three), "several")
    service = CaptureService(folder)
    rows = service.read("api", since=at(0), until=at(5), columns=["inference_id", "output.*"])
    assert list(rows.columns) == [
        "inference_id", "output.prediction", "output.0", "output.1", "output.2", "output.10",
    ]  # fmt: skip
    assert rows["output.prediction"].tolist()[0] == 0.5 and rows["output.2"].tolist()[1] == 0.2
    empty = service.read("api", since=at(30), until=at(40), columns=["row", "output.*"])
    assert empty.empty and list(empty.columns) == ["row"]


def test_an_empty_window_has_the_metadata_columns(folder: CaptureFolder, tmp_path: Path) -> None:
    put(folder, captured([at(1)], **{"input.a": [1.0]}), "a")
    service = CaptureService(folder)
    for endpoint, since in (("api", at(30)), ("never-captured", at(0))):
        rows = service.read(endpoint, since=since, until=at(40))
        assert rows.empty and list(rows.columns) == list(METADATA_COLUMNS)
        assert str(rows["time"].dtype) == "datetime64[us, UTC]"
    assert service.list("never-captured") == []
    done = service.export("api", at(30), at(40), tmp_path / "none.parquet")
    assert done.rows == 0 and pq.read_table(tmp_path / "none.parquet").num_rows == 0


def test_bad_arguments_are_refused_naming_the_problem(
    folder: CaptureFolder, tmp_path: Path
) -> None:
    service = CaptureService(folder)
    with pytest.raises(InvalidInput, match=r"since .* is not before until"):
        service.read("api", since=at(10), until=at(10))
    with pytest.raises(InvalidInput, match=r"'inputs\.a'"):
        service.read("api", since=at(0), until=at(1), columns=["inputs.a"])
    with pytest.raises(InvalidInput, match="list of names"):
        service.read("api", since=at(0), until=at(1), columns="input.a")
    with pytest.raises(InvalidName):
        service.read("../etc", since=at(0), until=at(1))
    with pytest.raises(InvalidInput, match=r"since must be a datetime or text .* got int 3600"):
        service.read("api", since=3600)  # type: ignore[arg-type]
    with pytest.raises(InvalidName):
        service.export("api", at(0), at(1), tmp_path / "x.parquet", variant="a/b")
    assert not (tmp_path / "x.parquet").exists()


def test_a_damaged_file_is_named(folder: CaptureFolder) -> None:
    put(folder, captured([at(1)], **{"input.a": [1.0]}), "good")
    folder.write(f"{partition('api', at(2))}/part-bad.parquet", b"not parquet at all")
    service = CaptureService(folder)
    bad = [f for f in service.list("api") if f.error]
    assert [f.path.rsplit("/")[-1] for f in bad] == ["part-bad.parquet"]
    with pytest.raises(StorageUnavailable, match=r"part-bad\.parquet"):
        service.read("api", since=at(0), until=at(5))


def test_an_export_refuses_a_damaged_file_unless_told_to_skip_it(
    folder: CaptureFolder, tmp_path: Path
) -> None:
    put(folder, captured([at(1)], **{"input.a": [1.0]}), "good")
    folder.write(f"{partition('api', at(2))}/part-bad.parquet", b"not parquet at all")
    service = CaptureService(folder)
    out = tmp_path / "rows.parquet"
    with pytest.raises(StorageUnavailable, match=r"part-bad\.parquet"):
        service.export("api", at(0), at(5), out)
    assert not out.exists()
    done = service.export("api", at(0), at(5), out, skip_damaged=True)
    assert (done.rows, done.files) == (1, 1)
    [skipped] = done.skipped
    assert skipped.split(": ", 1)[0].endswith("part-bad.parquet"), skipped
    assert list(pq.read_table(out)["input.a"].to_pylist()) == [1.0]
    assert done.to_dict()["skipped"] == [skipped]


class ListingFolder:
    """A real capture folder that records which folders are listed."""

    def __init__(self, folder: CaptureFolder) -> None:
        self._folder = folder
        self.listed: list[str] = []

    @property
    def url(self) -> str:
        return self._folder.url

    def files(self, folder: str) -> Any:
        self.listed.append(folder)
        return self._folder.files(folder)

    def open(self, path: str) -> Any:
        return self._folder.open(path)

    def holds(self, target: str) -> bool:
        return self._folder.holds(target)


def test_reads_list_only_the_partition_folders_of_their_window(folder: CaptureFolder) -> None:
    days = [T0 - timedelta(days=d) for d in range(40)]  # a file a day, 40 days back
    for i, day in enumerate(days):
        put(folder, captured([day + timedelta(minutes=5)], **{"input.a": [float(i)]}), f"d{i}")
    listing = ListingFolder(folder)
    service = CaptureService(listing, now=lambda: at(120))

    hour = service.read("api", since=at(0), until=at(30))
    assert hour["input.a"].tolist() == [0.0]
    assert listing.listed == ["api/date=2026-03-01/hour=09"]

    listing.listed.clear()
    days3 = service.read("api", since=T0 - timedelta(days=3, hours=-12), until=at(120))
    assert sorted(days3["input.a"].tolist()) == [0.0, 1.0, 2.0]
    # A day needing a few hours: those hour folders; one needing many: its date folder.
    assert listing.listed == [
        "api/date=2026-02-26/hour=21",
        "api/date=2026-02-26/hour=22",
        "api/date=2026-02-26/hour=23",
        "api/date=2026-02-27",
        "api/date=2026-02-28",
        "api/date=2026-03-01",
    ]

    listing.listed.clear()
    found = service.find(
        "api",
        {f"id-blue-{(T0 - timedelta(days=d, minutes=-5)).isoformat()}" for d in (0, 2, 30)},
        spans=[(T0 - timedelta(days=d), T0 - timedelta(days=d) + timedelta(minutes=10))
               for d in (0, 2, 30, 31)],
        columns=["inference_id", "input.a"],
    )  # fmt: skip
    assert found["input.a"].tolist() == [30.0, 2.0, 0.0]
    assert sorted(listing.listed) == sorted(set(listing.listed))  # each folder once
    assert len(listing.listed) == 4

    # Over two months the endpoint is listed once, not a folder per day: a window from year 1
    # to year 9999 reads as fast as the files there are.
    listing.listed.clear()
    ages = service.read("api", since=datetime(1, 1, 1, tzinfo=UTC), until=datetime.max)
    assert sorted(ages["input.a"].tolist()) == [float(i) for i in range(40)]
    assert listing.listed == ["api"]


@pytest.mark.parametrize(
    ("old", "new", "read_as"),
    [
        # A version answering one number a row, then one answering a list (probabilities).
        ([0.5], [[0.1, 0.9]], ["0.5", "[0.1,0.9]"]),
        # Inputs whose field changed from a number to a record, and back.
        ([{"a": 1, "b": "x"}], [2.5], ['{"a":1,"b":"x"}', "2.5"]),
        # Lists of ints, then of floats: one list of floats.
        ([[1, 2]], [[0.5]], [[1.0, 2.0], [0.5]]),
        # Records that gained a field: one record with both, the old one's null.
        ([{"a": 1}], [{"a": 2.5, "b": "x"}], [{"a": 1.0, "b": None}, {"a": 2.5, "b": "x"}]),
        # Lists of records unlike each other (a field's type changed inside): text.
        ([[{"a": [1]}]], [[{"a": 2}]], ['[{"a":[1]}]', '[{"a":2}]']),
    ],
)
def test_a_column_whose_shape_changed_between_files_is_read_with_every_row(
    folder: CaptureFolder, tmp_path: Path, old: list[Any], new: list[Any], read_as: list[Any]
) -> None:
    put(folder, captured([at(1)], **{"output.prediction": old}), "old")
    put(folder, captured([at(2)], "green", **{"output.prediction": new}), "new")
    service = CaptureService(folder)
    rows = service.read("api", since=at(0), until=at(5))
    assert [_plain(v) for v in rows["output.prediction"]] == read_as
    for suffix in (".parquet", ".csv", ".jsonl"):
        done = service.export("api", at(0), at(5), tmp_path / f"rows{suffix}")
        assert done.rows == 2


def _plain(value: Any) -> Any:
    """A value pandas read from Arrow, as plain Python (a list is a numpy array there)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def test_a_column_no_type_holds_is_refused_naming_it_its_types_and_files(
    folder: CaptureFolder, tmp_path: Path
) -> None:
    first = put(folder, captured([at(1)], **{"input.raw": pa.array([b"\xff"])}), "bytes")
    second = put(folder, captured([at(2)], **{"input.raw": [[1.0]]}), "list")
    service = CaptureService(folder)
    with pytest.raises(InvalidInput) as refused:
        service.read("api", since=at(0), until=at(5))
    message = str(refused.value)
    assert "'input.raw'" in message and "binary in" in message and "list<" in message
    assert first in message and second in message
    with pytest.raises(InvalidInput):
        service.export("api", at(0), at(5), tmp_path / "rows.parquet")
    assert not (tmp_path / "rows.parquet").exists()
