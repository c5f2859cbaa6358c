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
