"""A folder input means every file under it, nested folders included, as SageMaker's
``S3Prefix`` takes every object under the prefix; each output keeps its input's path below
the folder (``day=1/part.csv`` → ``day=1/part.csv.out``). Files and folders whose names start
with ``.`` or ``_`` are skipped at any depth. Found in review: files in subfolders were
left out, and the job completed without them.

A path that exists is read as itself even when its name holds glob characters: a file
called ``data[1].csv`` was taken for a pattern (matching ``data1.csv``) and not found."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.batch import list_inputs
from modelyard.batch.coordinator import run_job
from modelyard.errors import InvalidInput, JobFailed, OutputExists
from tests.batch.support import Model, csv_text, features, request

ROWS = features(40, seed=31)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    _write(folder / "top.csv", csv_text(ROWS[:10]))
    _write(folder / "day=1" / "part.csv", csv_text(ROWS[10:20]))
    _write(folder / "day=2" / "part.csv", csv_text(ROWS[20:30]))  # the same name, elsewhere
    _write(folder / "day=2" / "hour=3" / "deep.csv", csv_text(ROWS[30:]))
    for hidden in ("_SUCCESS", "day=1/.part.csv.crc", "_temporary/0/x.csv", ".git/y.csv"):
        _write(folder / hidden, b"not,a,record\n")
    return folder


def test_a_folder_input_includes_nested_files_in_order(
    model: Model, nested: Path, tmp_path: Path
) -> None:
    names = [f.name for f in list_inputs(str(nested))]
    assert names == ["day=1/part.csv", "day=2/hour=3/deep.csv", "day=2/part.csv", "top.csv"]

    out = tmp_path / "out"
    outcome = run_job(request(model, nested, out), model.source, job="nested")
    assert outcome.counts.files_done == 4 and outcome.counts.rows_out == len(ROWS)
    assert (out / "top.csv.out").read_bytes() == model.csv(ROWS[:10])
    assert (out / "day=1" / "part.csv.out").read_bytes() == model.csv(ROWS[10:20])
    assert (out / "day=2" / "part.csv.out").read_bytes() == model.csv(ROWS[20:30])
    assert (out / "day=2" / "hour=3" / "deep.csv.out").read_bytes() == model.csv(ROWS[30:])
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == [
        "day=1/part.csv.out",
        "day=2/hour=3/deep.csv.out",
        "day=2/part.csv.out",
        "top.csv.out",
    ]


def test_a_folder_holding_only_hidden_files_holds_no_files(tmp_path: Path) -> None:
    _write(tmp_path / "in" / "_temporary" / "a.csv", b"1\n")
    _write(tmp_path / "in" / "sub" / ".b.csv", b"1\n")
    with pytest.raises(InvalidInput, match=r"input folder .*in holds no files"):
        list_inputs(str(tmp_path / "in"))


def test_a_nested_output_already_there_is_refused(
    model: Model, nested: Path, tmp_path: Path
) -> None:
    _write(tmp_path / "out" / "day=2" / "part.csv.out", b"old\n")
    with pytest.raises(OutputExists, match=r"out/day=2/part\.csv\.out already exist"):
        run_job(request(model, nested, tmp_path / "out"), model.source, job="taken")
    assert (tmp_path / "out" / "day=2" / "part.csv.out").read_bytes() == b"old\n"
    assert not (tmp_path / "out" / "top.csv.out").exists()


def test_a_stopped_nested_job_resumes_over_its_own_outputs(
    model: Model, nested: Path, tmp_path: Path
) -> None:
    from tests.batch.test_resume import Counting

    out = tmp_path / "out"
    job_request = request(model, nested, out)
    with pytest.raises(JobFailed, match="stopped with 2 of 4 files done"):
        run_job(job_request, model.source, job="halted", executor=Counting(stop_after=2))
    assert (out / "day=1" / "part.csv.out").exists()  # its own: not an output in the way
    run_job(job_request, model.source, job="halted")
    assert (out / "day=2" / "hour=3" / "deep.csv.out").read_bytes() == model.csv(ROWS[30:])
    assert (out / "top.csv.out").read_bytes() == model.csv(ROWS[:10])


@pytest.mark.parametrize("name", ["data[1].csv", "rows*.csv", "what?.csv"])
def test_a_file_named_like_a_pattern_is_read_as_itself(
    model: Model, tmp_path: Path, name: str
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / name).write_bytes(csv_text(ROWS[:5]))
    (tmp_path / "in" / "data1.csv").write_bytes(csv_text(ROWS[5:]))  # what [1] would match
    files = list_inputs(str(tmp_path / "in" / name))
    assert [f.name for f in files] == [name]
    run_job(request(model, tmp_path / "in" / name, tmp_path / "out"), model.source, job="lit")
    assert (tmp_path / "out" / f"{name}.out").read_bytes() == model.csv(ROWS[:5])
    assert not (tmp_path / "out" / "data1.csv.out").exists()


def test_a_folder_named_like_a_pattern_is_a_folder(model: Model, tmp_path: Path) -> None:
    folder = tmp_path / "batch[2024]"
    _write(folder / "a.csv", csv_text(ROWS))
    assert [f.name for f in list_inputs(str(folder))] == ["a.csv"]
    # An output inside it is refused, as for any input folder.
    with pytest.raises(InvalidInput, match="lies inside the input folder"):
        run_job(request(model, folder, folder / "out"), model.source, job="inside")
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv"]
    # A pattern that matches no existing path is still a pattern.
    assert [f.name for f in list_inputs(str(tmp_path / "batch?2024?" / "*.csv"))] == ["a.csv"]
