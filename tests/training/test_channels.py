"""A script's remote channel copied down as fsspec lays it out, names with glob characters
read as themselves (a file called ``d[1].csv`` is that file, not the glob matching ``d1.csv``)."""

from __future__ import annotations

from pathlib import Path

import fsspec

from modelyard.training.runner import _local_channel


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_names_with_glob_characters_are_copied_as_themselves(
    memory_root: str, tmp_path: Path
) -> None:
    fs, root = fsspec.filesystem("memory"), memory_root
    fs.pipe(f"{root}/d[1].csv", b"literal")
    fs.pipe(f"{root}/d1.csv", b"what the glob would match")
    fs.pipe(f"{root}/days[2]/a.csv", b"a")
    fs.pipe(f"{root}/days[2]/sub/b.csv", b"b")
    fs.pipe(f"{root}/days2/x.csv", b"the glob's")
    one = _local_channel(f"memory://{root}/d[1].csv", tmp_path / "one")
    assert files_under(one) == {"d[1].csv": b"literal"}
    folder = _local_channel(f"memory://{root}/days[2]", tmp_path / "folder")
    assert files_under(folder) == {"days[2]/a.csv": b"a", "days[2]/sub/b.csv": b"b"}
    # Plain names and real patterns keep fsspec's own layout.
    plain = _local_channel(f"memory://{root}/days2", tmp_path / "plain")
    assert files_under(plain) == {"days2/x.csv": b"the glob's"}
    pattern = _local_channel(f"memory://{root}/d?.csv", tmp_path / "pattern")
    assert files_under(pattern) == {"d1.csv": b"what the glob would match"}
