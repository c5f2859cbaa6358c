"""Bad input gets a clear error before any work, and nothing is written."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from modelyard.batch import check_request, list_inputs
from modelyard.batch.coordinator import run_job
from modelyard.domain.batch import BatchFormat, JoinSource, SplitType, TransformRequest
from modelyard.errors import (
    InvalidInput,
    OutputExists,
    SignatureMismatch,
    StorageNotWritable,
)
from tests.batch.support import NAMES, Model, csv_text, features, request

ROWS = features(20, seed=8)


def test_missing_input_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"no such input file or folder: .*nowhere"):
        list_inputs(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".hidden").write_text("x")
    with pytest.raises(InvalidInput, match=r"input folder .*empty holds no files"):
        list_inputs(str(tmp_path / "empty"))
    with pytest.raises(InvalidInput, match="no input file matches"):
        list_inputs(str(tmp_path / "*.csv"))


def test_glob_lists_matches_in_order(tmp_path: Path) -> None:
    for name in ("b.csv", "a.csv", "c.txt"):
        (tmp_path / name).write_text("1\n")
    assert [f.name for f in list_inputs(str(tmp_path / "*.csv"))] == ["a.csv", "b.csv"]


def test_column_count_is_checked_before_any_work(model: Model, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(csv_text(ROWS[:, :4]))
    with pytest.raises(
        SignatureMismatch, match=r"in\.csv: line 1 has 4 columns; the model takes 5"
    ):
        run_job(request(model, tmp_path / "in.csv", tmp_path / "out"), model.source, job="w")
    assert not (tmp_path / "out").exists()


def test_a_header_that_does_not_name_the_features(model: Model, tmp_path: Path) -> None:
    header = [*NAMES[:4], "other"]
    (tmp_path / "in.csv").write_bytes(csv_text(ROWS, header=header))
    with pytest.raises(SignatureMismatch, match=r"missing \['f4'\], unexpected \['other'\]"):
        run_job(
            request(model, tmp_path / "in.csv", tmp_path / "out", header=True),
            model.source,
            job="hdr",
        )


def test_existing_output_is_refused_unless_overwrite(model: Model, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(csv_text(ROWS))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "in.csv.out").write_bytes(b"old\n")
    with pytest.raises(OutputExists, match=r"in\.csv\.out already exist") as refused:
        run_job(request(model, tmp_path / "in.csv", tmp_path / "out"), model.source, job="e")
    # The engine names the request field that allows it, never a CLI flag (the CLI does).
    assert refused.value.allow == "overwrite" and "--" not in refused.value.message
    assert (tmp_path / "out" / "in.csv.out").read_bytes() == b"old\n"
    run_job(
        request(model, tmp_path / "in.csv", tmp_path / "out", overwrite=True),
        model.source,
        job="e",
    )
    assert (tmp_path / "out" / "in.csv.out").read_bytes() == model.csv(ROWS)


def test_output_that_cannot_be_written(model: Model, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(csv_text(ROWS))
    target = f"/sys/modelyard-batch-{uuid.uuid4().hex[:8]}"  # sysfs: read-only, even for root
    with pytest.raises(StorageNotWritable, match="modelyard-batch-"):
        run_job(request(model, tmp_path / "in.csv", target), model.source, job="ro")


def test_output_folder_must_not_be_the_input_folder(model: Model, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(csv_text(ROWS))
    with pytest.raises(InvalidInput, match="holds the input files"):
        run_job(request(model, tmp_path, tmp_path), model.source, job="same")
    # Nor the input folder under another name: a symbolic link to it.
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(InvalidInput, match="holds the input files"):
        run_job(request(model, tmp_path, tmp_path / "link"), model.source, job="linked")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "link"]


def test_unknown_format_needs_a_content_type(model: Model, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows").write_bytes(csv_text(ROWS))
    with pytest.raises(InvalidInput, match=r"cannot tell the format of .*rows"):
        run_job(request(model, tmp_path / "in", tmp_path / "out"), model.source, job="fmt")
    run_job(
        request(model, tmp_path / "in", tmp_path / "out", content_type=BatchFormat.CSV),
        model.source,
        job="fmt",
    )
    assert (tmp_path / "out" / "rows.out").read_bytes() == model.csv(ROWS)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_payload_mb": 0}, "max_payload_mb must be more than 0"),
        ({"max_errors": -1}, "max_errors must be 0 or more"),
        ({"workers": 0}, "workers must be 1 or more"),
        ({"input_filter": "features"}, "must start with"),
        ({"output_filter": "$[1:x]"}, "not a list of indexes"),
        ({"content_type": BatchFormat.CSV, "input_filter": "$.a"}, "picked by index"),
        ({"content_type": BatchFormat.PARQUET, "header": True}, "header applies to CSV"),
        ({"split_type": SplitType.NONE, "join_source": JoinSource.INPUT}, "split_type=line"),
    ],
    ids=["payload", "errors", "workers", "filter", "slice", "csv-names", "header", "split"],
)
def test_check_request(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_request(TransformRequest(model="m", input="in", output="out", **fields))  # type: ignore[arg-type]


def _memory_inputs() -> str:
    import fsspec

    root = f"memory://in-{uuid.uuid4().hex[:8]}"
    fs, path = fsspec.core.url_to_fs(root)
    fs.pipe(f"{path}/rows.csv", csv_text(ROWS))
    return root


@pytest.mark.parametrize(
    "spell",
    [
        lambda root: root,  # memory://in-…
        lambda root: root.replace("memory://", "memory:///") + "/",
        lambda root: f"{root}/sub",  # inside the input folder
    ],
    ids=["same", "other-spelling", "nested"],
)
def test_an_object_store_output_holding_the_inputs_is_refused(model: Model, spell: Any) -> None:
    from modelyard.batch import check_output

    root = _memory_inputs()
    output = spell(root)
    with pytest.raises(InvalidInput, match="holds the input files"):
        check_output(request(model, root, output), list_inputs(root))
    assert check_output(request(model, root, f"{root}-out"), list_inputs(root)) is None


def test_a_file_url_output_is_the_local_input_folder(model: Model, tmp_path: Path) -> None:
    from modelyard.batch import check_output

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv").write_bytes(csv_text(ROWS))
    for output in (f"file://{tmp_path}/in", f"file://{tmp_path}/in/sub"):
        with pytest.raises(InvalidInput, match="holds the input files"):
            check_output(request(model, tmp_path / "in", output), list_inputs(str(tmp_path / "in")))
    inputs = list_inputs(f"file://{tmp_path}/in")
    with pytest.raises(InvalidInput, match="holds the input files"):
        check_output(request(model, f"file://{tmp_path}/in", tmp_path / "in"), inputs)
    # A file input's neighbour folder is no input folder: data/x.csv into data/out is fine.
    single = str(tmp_path / "in" / "rows.csv")
    check_output(request(model, single, tmp_path / "in" / "out"), list_inputs(single))
