"""The JSONPath subset of the filters, and the reading of a file's lines by work unit: every
line is read exactly once, by the unit its first byte lies in, whatever the cut."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import pytest

from modelyard.batch.filters import FilterError, parse_filter
from modelyard.batch.lines import Block, LineReader, Oversize, count_lines
from modelyard.errors import InvalidInput

RECORD = {"id": 7, "features": [1, 2, 3, 4], "meta": {"a": 1}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$", RECORD),
        ("$.features", [1, 2, 3, 4]),
        ("$['id','meta']", {"id": 7, "meta": {"a": 1}}),
        ('$["id"]', 7),
        ("$.features[1:]", [2, 3, 4]),
        ("$.features[-1]", 4),
        ("$.features[0,2:]", [1, 3, 4]),
        ("$.features[:-2]", [1, 2]),
        ("$.features[3,0]", [4, 1]),
        ("$.meta.a", 1),
    ],
)
def test_filter_builds_the_selected_record(text: str, expected: object) -> None:
    assert parse_filter(text).apply(RECORD) == expected


def test_filter_on_csv_rows_and_misses() -> None:
    assert parse_filter("$[0,-1]").row(["a", "b", "c"]) == ["a", "c"]
    assert parse_filter("$[1]").row(["a", "b"]) == ["b"]
    assert parse_filter("$[1:]").columns(4) == [1, 2, 3]
    with pytest.raises(FilterError, match="index 5 is out of range"):
        parse_filter("$[5]").row(["a"])
    with pytest.raises(FilterError, match="no field 'x'"):
        parse_filter("$.x").apply(RECORD)
    with pytest.raises(FilterError, match="not an array"):
        parse_filter("$[0]").apply(RECORD)


@pytest.mark.parametrize("text", ["features", "$.", "$[1", "$[a]", "$[1:2:3]", "$..x"])
def test_malformed_filters_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_filter(text)


def read_units(path: Path, cut: int, limit: int, gz: bool = False) -> list[tuple[int, bytes]]:
    """(line number in the file, line) of every line read, unit after unit."""
    size = path.stat().st_size
    found: list[tuple[int, bytes]] = []
    before = 0
    bounds = [0, size] if gz else [*range(0, size, cut), size]
    for start, end in itertools.pairwise(bounds):
        reader = LineReader(str(path), gz, start, None if gz else end, limit)
        for block in reader:
            assert isinstance(block, Block) and len(block.data) <= limit
            for i, line in enumerate(block.data.splitlines()):
                found.append((before + block.line + i + 1, line))
        if not gz and reader.lines:  # a unit's first line is found by counting line ends
            assert count_lines(str(path), False, reader.first_offset) == before
        before += reader.lines
    return found


@pytest.mark.parametrize("cut", [1, 7, 64, 10_000], ids=["1", "7", "64", "whole"])
@pytest.mark.parametrize("ending", [b"\n", b""], ids=["newline-end", "no-newline-end"])
def test_every_line_is_read_once_in_order(tmp_path: Path, cut: int, ending: bytes) -> None:
    lines = [f"{i}," + "x" * (i % 13) for i in range(200)] + ["", "last"]
    data = "\n".join(lines).encode() + ending
    (tmp_path / "f.csv").write_bytes(data)
    expected = list(enumerate([line.encode() for line in lines], start=1))
    assert read_units(tmp_path / "f.csv", cut, limit=50) == expected
    (tmp_path / "f.csv.gz").write_bytes(gzip.compress(data))
    assert read_units(tmp_path / "f.csv.gz", cut, limit=50, gz=True) == expected


def test_a_line_longer_than_the_limit_is_oversize(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_bytes(b"1,2\n" + b"9" * 500 + b"\n3,4\n")
    items = list(LineReader(str(tmp_path / "f.csv"), False, 0, None, 16, longest=100))
    assert [(type(i).__name__, i.line) for i in items] == [
        ("Block", 0),
        ("Oversize", 1),
        ("Block", 2),
    ]
    assert isinstance(items[2], Block) and items[2].data == b"3,4\n"
    longer = list(LineReader(str(tmp_path / "f.csv"), False, 0, None, 16, longest=1000))
    assert not any(isinstance(i, Oversize) for i in longer)
    assert (
        b"".join(i.data for i in longer if isinstance(i, Block))
        == (tmp_path / "f.csv").read_bytes()
    )
