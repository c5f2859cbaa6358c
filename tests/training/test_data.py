"""read_dataset: every format, folders, globs, fsspec URLs, and each refusal."""

from __future__ import annotations

import gzip
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from modelyard.errors import InvalidInput
from modelyard.training.data import Dataset, read_dataset


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    data = load_breast_cancer(as_frame=True)
    frame = data.data.iloc[:60, :5].copy()
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame["label"] = data.target.iloc[:60].to_numpy()
    return frame.reset_index(drop=True)


def check(ds: Dataset, frame: pd.DataFrame, target: str = "label") -> None:
    expected = frame.drop(columns=[target])
    assert list(ds.features.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(ds.features, expected, check_dtype=False)
    assert ds.target is not None
    assert list(ds.target) == list(frame[target])


def test_csv_with_header_default_target(tmp_path: Path, cancer: pd.DataFrame) -> None:
    path = tmp_path / "train.csv"
    cancer.to_csv(path, index=False)
    ds = read_dataset(str(path))
    check(ds, cancer)
    assert ds.files == (str(path),)
    assert len(ds) == 60


def test_csv_with_named_target_and_target_column_default(
    tmp_path: Path, cancer: pd.DataFrame
) -> None:
    renamed = cancer.rename(columns={"label": "diagnosis"})
    renamed.to_csv(tmp_path / "a.csv", index=False)
    check(read_dataset(str(tmp_path / "a.csv"), target="diagnosis"), renamed, "diagnosis")
    as_target = cancer.rename(columns={"label": "target"})
    as_target.to_csv(tmp_path / "b.csv", index=False)
    check(read_dataset(str(tmp_path / "b.csv")), as_target, "target")


def test_headerless_csv_takes_the_first_column_as_target(
    tmp_path: Path, cancer: pd.DataFrame
) -> None:
    ordered = cancer[["label", *cancer.columns[:-1]]]
    path = tmp_path / "train.csv"
    ordered.to_csv(path, index=False, header=False)
    ds = read_dataset(str(path))
    assert list(ds.features.columns) == [f"f{i}" for i in range(5)]
    assert ds.target is not None and list(ds.target) == list(cancer["label"])
    assert ds.features.iloc[3, 2] == pytest.approx(cancer.iloc[3, 2])
    with pytest.raises(InvalidInput, match=r"no header row.*name no target column"):
        read_dataset(str(path), target="label")


def test_gzipped_csv(tmp_path: Path, cancer: pd.DataFrame) -> None:
    path = tmp_path / "train.csv.gz"
    path.write_bytes(gzip.compress(cancer.to_csv(index=False).encode()))
    check(read_dataset(str(path)), cancer)


def test_parquet(tmp_path: Path, cancer: pd.DataFrame) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "train.parquet"
    cancer.to_parquet(path)
    check(read_dataset(str(path)), cancer)


def test_json_lines(tmp_path: Path, cancer: pd.DataFrame) -> None:
    cancer.to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    check(read_dataset(str(tmp_path / "train.jsonl")), cancer)
    cancer.to_json(tmp_path / "lines.json", orient="records", lines=True)
    check(read_dataset(str(tmp_path / "lines.json")), cancer)
    cancer.to_json(tmp_path / "array.json", orient="records")
    check(read_dataset(str(tmp_path / "array.json")), cancer)


def test_folder_reads_data_files_sorted(tmp_path: Path, cancer: pd.DataFrame) -> None:
    cancer.iloc[30:].to_csv(tmp_path / "part-2.csv", index=False)
    cancer.iloc[:30].to_csv(tmp_path / "part-1.csv", index=False)
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".part-1.csv.crc").write_text("x")
    (tmp_path / "README.md").write_text("not data")
    ds = read_dataset(str(tmp_path))
    check(ds, cancer)
    assert ds.files == (str(tmp_path / "part-1.csv"), str(tmp_path / "part-2.csv"))


def test_glob(tmp_path: Path, cancer: pd.DataFrame) -> None:
    cancer.iloc[:20].to_csv(tmp_path / "a.csv", index=False)
    cancer.iloc[20:].to_csv(tmp_path / "b.csv", index=False)
    cancer.to_csv(tmp_path / "other.txt", index=False)
    ds = read_dataset(str(tmp_path / "*.csv"))
    check(ds, cancer)
    assert len(ds.files) == 2


def test_a_file_named_like_a_pattern_is_read_as_itself(
    tmp_path: Path, memory_root: str, cancer: pd.DataFrame
) -> None:
    # data[1].csv exists: it is that file, not the glob matching data1.csv.
    cancer.iloc[:20].to_csv(tmp_path / "data[1].csv", index=False)
    cancer.iloc[20:].to_csv(tmp_path / "data1.csv", index=False)
    ds = read_dataset(str(tmp_path / "data[1].csv"))
    check(ds, cancer.iloc[:20])
    assert ds.files == (str(tmp_path / "data[1].csv"),)
    # A folder named like a pattern is a folder; a pattern naming nothing is still a glob.
    (tmp_path / "day[2]").mkdir()
    cancer.to_csv(tmp_path / "day[2]" / "part.csv", index=False)
    check(read_dataset(str(tmp_path / "day[2]")), cancer)
    check(read_dataset(str(tmp_path / "data[0-9].csv")), cancer.iloc[20:].reset_index(drop=True))
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{memory_root}/d[1].csv", cancer.iloc[:10].to_csv(index=False).encode())
    fs.pipe(f"{memory_root}/d1.csv", cancer.iloc[10:].to_csv(index=False).encode())
    check(read_dataset(f"memory://{memory_root}/d[1].csv"), cancer.iloc[:10])
    with pytest.raises(InvalidInput, match=r"no files match .*nope\[1\]\.csv"):
        read_dataset(str(tmp_path / "nope[1].csv"))


def test_file_url(tmp_path: Path, cancer: pd.DataFrame) -> None:
    cancer.to_csv(tmp_path / "train.csv", index=False)
    ds = read_dataset(f"file://{tmp_path}/train.csv")
    check(ds, cancer)
    assert ds.files == (f"file://{tmp_path}/train.csv",)


def test_memory_url_file_folder_and_glob(memory_root: str, cancer: pd.DataFrame) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{memory_root}/data/one.csv", cancer.iloc[:25].to_csv(index=False).encode())
    fs.pipe(f"{memory_root}/data/two.csv", cancer.iloc[25:].to_csv(index=False).encode())
    single = read_dataset(f"memory://{memory_root}/data/one.csv")
    check(single, cancer.iloc[:25])
    assert single.files == (f"memory://{memory_root}/data/one.csv",)
    check(read_dataset(f"memory://{memory_root}/data"), cancer)
    check(read_dataset(f"memory://{memory_root}/data/*.csv"), cancer)


def test_no_target_when_not_required(tmp_path: Path, cancer: pd.DataFrame) -> None:
    cancer.drop(columns=["label"]).to_csv(tmp_path / "x.csv", index=False)
    ds = read_dataset(str(tmp_path / "x.csv"), require_target=False)
    assert ds.target is None
    assert ds.features.shape == (60, 5)


# --- refusals ---------------------------------------------------------------------------------


def test_missing_path(tmp_path: Path, memory_root: str) -> None:
    with pytest.raises(InvalidInput, match=r"no such file or folder: .*nope.csv"):
        read_dataset(str(tmp_path / "nope.csv"))
    with pytest.raises(InvalidInput, match=r"no such file or folder: memory://.*nope.csv"):
        read_dataset(f"memory://{memory_root}/nope.csv")


def test_empty_folder_and_glob_matching_nothing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(InvalidInput, match=r"no data files .* in the folder"):
        read_dataset(str(tmp_path))
    with pytest.raises(InvalidInput, match=r"no files match .*\*\.csv"):
        read_dataset(str(tmp_path / "*.csv"))


def test_unsupported_extension(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("a,label\n1,0\n")
    with pytest.raises(InvalidInput, match=r"data.txt: unsupported file type \.txt"):
        read_dataset(str(tmp_path / "data.txt"))
    with pytest.raises(InvalidInput, match=r"unsupported file type"):
        read_dataset(str(tmp_path / "*"))


def test_malformed_and_unreadable_files(tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,label\n1,2,0\n4,5,6,1\n")
    with pytest.raises(InvalidInput, match=r"cannot read .*ragged.csv"):
        read_dataset(str(ragged))
    not_gzip = tmp_path / "plain.csv.gz"
    not_gzip.write_text("a,label\n1,0\n")
    with pytest.raises(InvalidInput, match=r"cannot read .*plain.csv.gz"):
        read_dataset(str(not_gzip))
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(InvalidInput, match=r"cannot read .*binary.csv"):
        read_dataset(str(binary))
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"a": 1, "label": 0}\n{not json\n')
    with pytest.raises(InvalidInput, match=r"cannot read .*bad.jsonl"):
        read_dataset(str(bad_json))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InvalidInput, match=r"empty.csv is empty"):
        read_dataset(str(empty))


def test_target_column_not_there_lists_columns(tmp_path: Path, cancer: pd.DataFrame) -> None:
    cancer.to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(
        InvalidInput, match=r"target column 'churn' is not in .*mean_radius, mean_texture"
    ):
        read_dataset(str(tmp_path / "train.csv"), target="churn")
    cancer.rename(columns={"label": "y"}).to_csv(tmp_path / "y.csv", index=False)
    no_target = r"no column named 'label' or 'target': name the target column"
    with pytest.raises(InvalidInput, match=no_target):
        read_dataset(str(tmp_path / "y.csv"))


def test_empty_dataset(tmp_path: Path) -> None:
    (tmp_path / "header_only.csv").write_text("a,b,label\n")
    with pytest.raises(InvalidInput, match=r"header_only.csv holds no rows"):
        read_dataset(str(tmp_path / "header_only.csv"))


def test_only_the_target(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("label\n1\n0\n")
    with pytest.raises(InvalidInput, match=r"no feature columns"):
        read_dataset(str(tmp_path / "t.csv"))


def test_files_with_different_columns_name_the_odd_one(
    tmp_path: Path, cancer: pd.DataFrame
) -> None:
    cancer.iloc[:30].to_csv(tmp_path / "a.csv", index=False)
    cancer.iloc[30:].drop(columns=["mean_area"]).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(InvalidInput, match=r"b.csv has columns .* but .*a.csv has"):
        read_dataset(str(tmp_path))


def test_header_and_headerless_files_mixed(tmp_path: Path, cancer: pd.DataFrame) -> None:
    cancer.iloc[:30].to_csv(tmp_path / "a.csv", index=False)
    cancer.iloc[30:].to_csv(tmp_path / "b.csv", index=False, header=False)
    with pytest.raises(InvalidInput, match=r"a.csv has a header row but .*b.csv does not"):
        read_dataset(str(tmp_path))


@pytest.mark.parametrize(
    ("header", "named"),
    [
        ("f,f,label", "f"),  # pandas made these f, f.1
        ("f,label,label", "label"),  # the second label became the feature label.1
        ("a,b,a,b,label", "a, b"),
        ("f, f,label", "f"),  # the same name once spaces around it are dropped
    ],
)
def test_duplicate_csv_columns_are_refused_naming_them(
    tmp_path: Path, header: str, named: str
) -> None:
    width = len(header.split(","))
    path = tmp_path / "dup.csv"
    path.write_text(header + "\n" + ",".join(["1"] * width) + "\n" + ",".join(["0"] * width) + "\n")
    with pytest.raises(InvalidInput, match=f"duplicate column names: {named};"):
        read_dataset(str(path))


def test_duplicate_parquet_columns_are_refused_naming_them(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "dup.parquet"
    columns = [pa.array([1.0, 2.0]), pa.array([3.0, 4.0]), pa.array([0, 1])]
    pq.write_table(pa.table(columns, names=["f", "label", "label"]), path)
    with pytest.raises(InvalidInput, match="duplicate column names: label;"):
        read_dataset(str(path))


def test_distinct_columns_that_pandas_would_mangle_into_each_other_are_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("f,f.1,label\n1,2,0\n3,4,1\n")
    assert list(read_dataset(str(path)).features.columns) == ["f", "f.1"]
