"""CSV batch transforms write, for every row, what the endpoint answers for it: the model's
in-process prediction, written by the serving codec. Headerless (as SageMaker sends rows) and
with a header, joined with the input, filtered, gzipped, split into many work units and run
by several worker processes."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import numpy as np
import pytest

from modelyard.batch.coordinator import run_job, transform
from modelyard.domain.batch import BatchCounts, BatchStrategy, JoinSource
from tests.batch.support import NAMES, Model, csv_text, features, request

ROWS = features(300)


def lines(data: bytes) -> list[bytes]:
    return data.splitlines()


def test_headerless_csv_equals_in_process_predictions(model: Model, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "rows.csv").write_bytes(csv_text(ROWS))
    seen: list[BatchCounts] = []
    counts = transform(
        request(model, tmp_path / "in", tmp_path / "out"),
        model.source,
        job="csv-plain",
        progress=seen.append,
        stop=threading.Event(),
    )
    assert (tmp_path / "out" / "rows.csv.out").read_bytes() == model.csv(ROWS)
    assert counts == BatchCounts(300, 300, 0, 1, 1)
    assert seen[-1] == counts
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["rows.csv.out"]


@pytest.mark.parametrize("header", [True, None], ids=["header-true", "header-detected"])
@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["plain", "byte-order-mark"])
def test_header_is_skipped(model: Model, tmp_path: Path, header: bool | None, bom: bytes) -> None:
    # A spreadsheet's CSV export starts with a byte order mark: no part of the first name.
    source = tmp_path / "rows.csv"
    source.write_bytes(bom + csv_text(ROWS, header=NAMES))
    run_job(request(model, source, tmp_path / "out", header=header), model.source, job="h")
    assert (tmp_path / "out" / "rows.csv.out").read_bytes() == model.csv(ROWS)


def test_header_in_another_order_puts_columns_in_the_signature_order(
    model: Model, tmp_path: Path
) -> None:
    order = [3, 0, 4, 1, 2]
    source = tmp_path / "rows.csv"
    source.write_bytes(csv_text(ROWS[:, order], header=[NAMES[i] for i in order]))
    outcome = run_job(request(model, source, tmp_path / "out"), model.source, job="order")
    assert (tmp_path / "out" / "rows.csv.out").read_bytes() == model.csv(ROWS)
    assert outcome.fast_rows == len(ROWS)


def test_join_puts_the_input_line_before_the_prediction(model: Model, tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_bytes(csv_text(ROWS))
    run_job(
        request(model, source, tmp_path / "out", join_source=JoinSource.INPUT),
        model.source,
        job="join",
    )
    out = lines((tmp_path / "out" / "rows.csv.out").read_bytes())
    expected = [
        a + b"," + b for a, b in zip(lines(csv_text(ROWS)), lines(model.csv(ROWS)), strict=True)
    ]
    assert out == expected


def test_filters_pick_columns_by_index(model: Model, tmp_path: Path) -> None:
    ids = np.arange(len(ROWS)).reshape(-1, 1) + 1000
    source = tmp_path / "rows.csv"
    source.write_bytes(csv_text(np.hstack([ids, ROWS])))
    run_job(
        request(
            model,
            source,
            tmp_path / "out",
            input_filter="$[1:]",
            join_source=JoinSource.INPUT,
            output_filter="$[0,-1]",
        ),
        model.source,
        job="filters",
    )
    out = lines((tmp_path / "out" / "rows.csv.out").read_bytes())
    predictions = lines(model.csv(ROWS))
    assert out == [f"{1000 + i},".encode() + p for i, p in enumerate(predictions)]


def test_two_dimensional_predictions_with_join(multi_model: Model, tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_bytes(csv_text(ROWS[:40]))
    run_job(
        request(
            multi_model,
            source,
            tmp_path / "out",
            join_source=JoinSource.INPUT,
            output_filter="$[-3:]",
        ),
        multi_model.source,
        job="multi",
    )
    assert (tmp_path / "out" / "rows.csv.out").read_bytes() == multi_model.csv(ROWS[:40])


def test_gzip_folder_split_and_single_record(model: Model, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv.gz").write_bytes(gzip.compress(csv_text(ROWS[:100])))
    (folder / "b.csv").write_bytes(csv_text(ROWS[100:]))
    (folder / "_SUCCESS").write_bytes(b"")
    counts = transform(
        request(model, folder, tmp_path / "out", batch_strategy=BatchStrategy.SINGLE_RECORD),
        model.source,
        job="gz",
        unit_bytes=1024,  # b.csv is cut into many units, on line boundaries
        stop=threading.Event(),
    )
    out = tmp_path / "out"
    assert (out / "a.csv.out").read_bytes() == model.csv(ROWS[:100])
    assert (out / "b.csv.out").read_bytes() == model.csv(ROWS[100:])
    assert counts.files_done == 2 and counts.rows_out == len(ROWS)


def test_worker_processes_write_the_same_bytes(model: Model, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"part-{i}.csv").write_bytes(csv_text(ROWS[i * 100 : (i + 1) * 100]))
    counts = transform(
        request(model, folder, tmp_path / "out", workers=2),
        model.source,
        job="pool",
        unit_bytes=2048,
        stop=threading.Event(),
    )
    for i in range(3):
        expected = model.csv(ROWS[i * 100 : (i + 1) * 100])
        assert (tmp_path / "out" / f"part-{i}.csv.out").read_bytes() == expected
    assert counts == BatchCounts(300, 300, 0, 3, 3)
    assert not (tmp_path / "out" / ".modelyard-batch").exists()


def test_fsspec_url_in_memory(model: Model) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/batch-test/in/rows.csv", csv_text(ROWS[:50]))
    try:
        run_job(
            request(model, "memory://batch-test/in", "memory://batch-test/out"),
            model.source,
            job="mem",
        )
        assert fs.cat("/batch-test/out/rows.csv.out") == model.csv(ROWS[:50])
    finally:
        fs.rm("/batch-test", recursive=True)
