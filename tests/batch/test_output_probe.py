"""The batch output's write check takes away only what it made: never a folder that was there
(a path ending in ``new/..`` once named the folder above, which it deleted whole)."""

from __future__ import annotations

from pathlib import Path

from modelyard.batch.checks import _probe
from modelyard.batch.location import Location


def test_a_path_climbing_out_of_a_new_folder_deletes_nothing(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    (victim / "kept").mkdir(parents=True)
    (victim / "important.txt").write_text("precious")
    _probe(Location(str(victim / "new" / "..")))
    assert (victim / "important.txt").read_text() == "precious"
    assert (victim / "kept").is_dir()
    # Nothing left behind either: not the probe, not the "new" folder the path walked through.
    assert sorted(p.name for p in victim.iterdir()) == ["important.txt", "kept"]


def test_the_folders_it_made_are_taken_away_deepest_first(tmp_path: Path) -> None:
    (tmp_path / "there").mkdir()
    _probe(Location(str(tmp_path / "there" / "a" / "b" / "c")))
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["there"]


def test_a_new_folder_on_another_filesystem_is_taken_away_too() -> None:
    import uuid

    import fsspec

    url = f"memory://probe-{uuid.uuid4().hex[:8]}/out"
    _probe(Location(url))
    fs, path = fsspec.core.url_to_fs(url)
    assert not fs.exists(path)
