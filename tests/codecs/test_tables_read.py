"""``read_table``'s refusals name the problem: a folder, a missing file, an empty one, an
unsupported type."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.codecs.tables import read_table
from modelyard.errors import InvalidInput


def test_refusals_name_the_path_and_the_problem(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (tmp_path / "empty.csv").write_text("a,b\n")
    (tmp_path / "rows.txt").write_text("1,2\n")
    for path, words in [
        (folder, "is a folder; give one data file (.csv, .json, .jsonl, .parquet)"),
        (tmp_path / "missing.csv", "no such file"),
        (tmp_path / "empty.csv", "holds no rows"),
        (tmp_path / "rows.txt", "unsupported file type .txt"),
    ]:
        with pytest.raises(InvalidInput, match=words.replace("(", r"\(").replace(")", r"\)")):
            read_table(path)
    (tmp_path / "good.csv").write_text("a,b\n1,2\n")
    assert read_table(tmp_path / "good.csv").to_dict("list") == {"a": [1], "b": [2]}


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_a_column_named_twice_is_refused_naming_it(tmp_path: Path, suffix: str) -> None:
    """pandas reads a CSV header 'a,a' as columns 'a' and 'a.1': the second column would be
    taken for another one, and the first used as if it were the only 'a'."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / f"twice{suffix}"
    if suffix == ".csv":
        path.write_text("\ufeffb,a,a,c,c\n1,2,3,4,5\n", encoding="utf-8")  # a BOM, too
    elif suffix == ".parquet":
        arrays = [pa.array([1]), pa.array([2]), pa.array([3]), pa.array([4]), pa.array([5])]
        pq.write_table(pa.Table.from_arrays(arrays, names=["b", "a", "a", "c", "c"]), path)
    else:
        path.write_text('{"columns": ["b", "a", "a", "c", "c"], "data": [[1, 2, 3, 4, 5]]}')
    with pytest.raises(InvalidInput, match=r"twice\.\w+ has duplicate columns: a, c$"):
        read_table(path)
    (tmp_path / "dotted.csv").write_text("a,a.1\n1,2\n")  # names that only look renamed
    assert list(read_table(tmp_path / "dotted.csv").columns) == ["a", "a.1"]
    (tmp_path / "bom.csv").write_text("\ufeffa,b\n1,2\n", encoding="utf-8")
    assert list(read_table(tmp_path / "bom.csv").columns) == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "text", "good"),
    [
        (
            "records.json",
            '[{"b": 1, "a": 2, "a": 3, "c": 4, "c": 5}]',
            '[{"b": 1, "a": 2, "c": 4, "d": 5}]',
        ),
        (
            "columns.json",
            '{"b": [1], "a": [2], "a": [3], "c": [4], "c": [5]}',
            '{"b": [1], "a": [2], "c": [4], "d": [5]}',
        ),
        (
            "rows.jsonl",
            '{"b": 0, "a": 0, "c": 0}\n{"b": 1, "a": 2, "a": 3, "c": 4, "c": 5}\n',
            '{"b": 0, "a": 0, "c": 0}\n\n{"b": 1, "a": 2, "c": 4, "d": 5}\n',
        ),
    ],
)
def test_a_json_key_named_twice_is_refused_naming_it(
    tmp_path: Path, name: str, text: str, good: str
) -> None:
    """JSON keeps the last of two equal keys: a record naming 'a' twice read as a=3 without a
    word, so ``monitor baseline --data`` sketched one of the two values as the feature (and
    ``monitor drift --data`` compared it), where a CSV or Parquet file naming a column twice is
    refused."""
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InvalidInput, match=rf"^{path} has duplicate columns: a, c$"):
        read_table(path)
    path.write_text(good)
    assert list(read_table(path).columns) == ["b", "a", "c", "d"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[{"a": 1}, 5]', "is not a table of rows: 'int' object is not iterable"),
        ("[[1, 2], [3]]", "is not a table of rows"),
        ('{"columns": ["a"], "data": [[1, 2]]}', "is not a table of rows"),
        ("[[[1, 2]]]", r"must be 2-D \(rows x features\), got shape \(1, 1, 2\)"),
        ("[]", "holds no rows"),
    ],
)
def test_a_json_file_that_is_not_a_table_is_refused_naming_it(
    tmp_path: Path, text: str, words: str
) -> None:
    """A list mixing records and numbers was a TypeError traceback (exit 1) from ``monitor
    drift --data``, ``monitor baseline --data`` and ``models register --input-example``; the
    other shapes were refused as 'an input example' without naming the file."""
    path = tmp_path / "odd.json"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=rf"^{path} {words}"):
        read_table(path)


def test_a_json_lines_file_mixing_objects_and_values_is_refused_naming_it(tmp_path: Path) -> None:
    """pandas raises TypeError for it: a traceback with exit 1 from ``monitor drift --data``."""
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"a": 1}\n5\n')
    with pytest.raises(InvalidInput, match=rf"^cannot read {path}: "):
        read_table(path)


@pytest.mark.parametrize(
    ("name", "text"), [("rows.json", '[{"a": 1, "b": 2}]'), ("rows.jsonl", '{"a": 1, "b": 2}\n')]
)
def test_a_json_file_starting_with_a_bom_reads_like_a_csv_one(
    tmp_path: Path, name: str, text: str
) -> None:
    """A CSV's BOM was skipped, a JSON or JSON Lines file's refused ('Unexpected UTF-8 BOM')."""
    path = tmp_path / name
    path.write_text("\ufeff" + text, encoding="utf-8")
    assert read_table(path).to_dict("list") == {"a": [1], "b": [2]}


@pytest.mark.parametrize("rows", ["1,2,3\n4,5\n", "1,2\n3,4,5\n"])
def test_a_csv_row_longer_than_its_header_is_refused(tmp_path: Path, rows: str) -> None:
    """A first row one field longer than the header was read with its first value as the
    index: a=2 and b=3 for the row '1,2,3', every column shifted without a word."""
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n" + rows)
    with pytest.raises(InvalidInput, match=rf"^cannot read {path}: "):
        read_table(path)
    (tmp_path / "short.csv").write_text("a,b\n1,2\n3\n")  # a missing last value is missing
    assert read_table(tmp_path / "short.csv")["b"].isna().tolist() == [False, True]


def test_column_names_holding_control_characters_are_refused(tmp_path: Path) -> None:
    """Printed by the CLI and the report, an escape sequence in a name reached the terminal."""
    path = tmp_path / "rows.csv"
    path.write_text("a,\x1b[31mred\n1,2\n")
    with pytest.raises(InvalidInput, match=r"rows\.csv: column names must not hold control"):
        read_table(path)


@pytest.mark.parametrize(
    "first", ["0.66,0.83,0.95,0.016", "1,-2,3e-2,4", "6.620714814034843743e-01,1,2,3"]
)
def test_a_csv_whose_first_line_is_numbers_has_no_header(tmp_path: Path, first: str) -> None:
    """Rows as SageMaker sends them (and numpy's savetxt writes them) have no header: their
    first row was taken for one, so it was lost and its numbers became the feature names, and a
    one-row file 'held no rows'."""
    path = tmp_path / "rows.csv"
    path.write_text(first + "\n")
    frame = read_table(path)
    assert list(frame.columns) == [0, 1, 2, 3]  # positions, as for an array
    assert frame.to_numpy().tolist() == [[float(x) for x in first.split(",")]]
    path.write_text(first + "\n5,6,7,8\n")
    assert len(read_table(path)) == 2
    # A header is still a header, and so is pandas' own for unnamed columns ('0,1,2').
    for header in ("a,b,c,d", "f1,2,3,4", "0,1,2,3"):
        path.write_text(header + "\n5,6,7,8\n")
        frame = read_table(path)
        assert [str(c) for c in frame.columns] == header.split(",") and len(frame) == 1
