"""Inputs reached through symbolic links: a folder or a glob whose files are links (a data
lake's ``latest/`` folder, a DVC checkout) reads every linked file as the file itself; a
link that leads nowhere is refused by name, before any work. fsspec lists a link as type
``other``, and the job once left every linked file out and completed without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard.batch import list_inputs
from modelyard.batch.coordinator import run_job
from modelyard.errors import InvalidInput
from tests.batch.support import Model, csv_text, features, request

ROWS = features(12, seed=21)


@pytest.fixture
def linked(tmp_path: Path) -> Path:
    """``in/`` holding a real file, a link to a file elsewhere and a link to a folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "b.csv").write_bytes(csv_text(ROWS[6:]))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_bytes(csv_text(ROWS[:6]))
    os.symlink(elsewhere / "b.csv", folder / "b.csv")
    os.symlink(elsewhere, folder / "sub")  # a folder: not a file of the input folder
    return folder


@pytest.mark.parametrize("spell", ["folder", "glob"])
def test_linked_files_are_read_as_files(
    model: Model, linked: Path, tmp_path: Path, spell: str
) -> None:
    source = linked if spell == "folder" else linked / "*"
    files = list_inputs(str(source))
    assert [f.name for f in files] == ["a.csv", "b.csv"]
    assert files[1].size == (linked / "b.csv").stat().st_size  # the file's, not the link's

    out = tmp_path / f"out-{spell}"
    run_job(request(model, source, out), model.source, job=f"links-{spell}")
    assert (out / "a.csv.out").read_bytes() == model.csv(ROWS[:6])
    assert (out / "b.csv.out").read_bytes() == model.csv(ROWS[6:])


def test_a_linked_file_that_changes_gets_a_new_fingerprint(linked: Path, tmp_path: Path) -> None:
    # The fingerprint keys a resumed job's finished work: it must follow the file, not the link.
    before = list_inputs(str(linked))[1].fingerprint
    target = tmp_path / "elsewhere" / "b.csv"
    target.write_bytes(csv_text(ROWS[:6]))
    os.utime(target, (1, 1))
    assert list_inputs(str(linked))[1].fingerprint != before


def test_a_link_to_nothing_is_refused_by_name(model: Model, linked: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "gone.csv", linked / "c.csv")
    with pytest.raises(InvalidInput, match=r"in/c\.csv is a link to .*gone\.csv, which"):
        run_job(request(model, linked, tmp_path / "out"), model.source, job="dangling")
    assert not (tmp_path / "out").exists()
