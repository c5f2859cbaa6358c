"""``modelyard models register`` on a pyfunc folder with symlinks (issue 14, defect 1), through
the installed console script: exit 2, one error line naming the link, the store untouched."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

SYSTEM_FILE = Path("/etc/passwd")

pytestmark = pytest.mark.skipif(not SYSTEM_FILE.is_file(), reason="needs /etc/passwd")


def test_register_refuses_links_out_of_the_folder_and_loops(cli: Any, tmp_path: Path) -> None:
    leaky, looped = tmp_path / "leaky", tmp_path / "looped"
    for folder in (leaky, looped):
        folder.mkdir()
        (folder / "model.py").write_text("class Model:\n    def load(self, d): ...\n"
                                         "    def predict(self, x): return x\n")  # fmt: skip
    os.symlink(SYSTEM_FILE, leaky / "passwd")
    os.symlink("/etc", leaky / "zz-etc")
    os.symlink("b", looped / "a")
    os.symlink("a", looped / "b")
    cli.platform().close()  # the database exists before the snapshot
    before = cli.snapshot()
    leak, loop = cli.many(
        ["models", "register", "leaky", leaky, "--flavor", "pyfunc", "--trust-code"],
        ["models", "register", "looped", looped, "--flavor", "pyfunc", "--trust-code"],
    )
    line = leak.error_line(2)
    assert f"symlink 'passwd' -> '{SYSTEM_FILE}' leaves the model folder {leaky}" in line, line
    line = loop.error_line(2)
    assert f"symlink 'a' -> 'b' in {looped} is a symlink loop" in line, line
    assert cli.snapshot() == before
    digest = hashlib.sha256(SYSTEM_FILE.read_bytes()).hexdigest()
    assert not list(cli.home.rglob(digest))
