"""Walking and copying a user's folder (issue 14, defect 1): no link is ever followed out of it.

Real folders, real symlinks (one to the system's ``/etc/passwd``), a real artifact store.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath

import pytest

from modelyard.errors import InvalidModelFile
from modelyard.storage import packages
from modelyard.storage.artifacts import FsspecArtifactStore
from modelyard.storage.tree import copy_tree, list_files, open_regular

SYSTEM_FILE = Path("/etc/passwd")

pytestmark = pytest.mark.skipif(
    not SYSTEM_FILE.is_file() or not hasattr(os, "symlink"), reason="needs /etc/passwd, symlinks"
)


def folder_with(root: Path, links: dict[str, str], files: dict[str, str] | None = None) -> Path:
    """``root`` holding ``files`` (name -> text) and ``links`` (name -> target as written)."""
    for name, text in (files or {"model.py": "class Model: ...\n"}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for name, target in links.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / name)
    return root


def blobs(store_root: Path) -> set[str]:
    return {p.name for p in store_root.rglob("*") if p.is_file()}


def test_a_link_to_a_system_file_is_refused_naming_the_link(tmp_path: Path) -> None:
    root = folder_with(tmp_path / "m", {"passwd": str(SYSTEM_FILE)})
    with pytest.raises(InvalidModelFile) as caught:
        list_files(root)
    assert f"symlink 'passwd' -> '{SYSTEM_FILE}' leaves the model folder" in str(caught.value)
    with pytest.raises(InvalidModelFile, match="'passwd'"):
        copy_tree(root, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()  # checked before anything was copied


@pytest.mark.parametrize(
    ("links", "words"),
    [
        ({"sub/deep/up": "../../../secret.txt"}, "symlink 'sub/deep/up' -> '../../../secret.txt'"),
        ({"etc": "/etc"}, "symlink 'etc' -> '/etc' leaves"),
        ({"sub/out": "/tmp/../etc/passwd"}, "symlink 'sub/out' -> '/tmp/../etc/passwd' leaves"),
        ({"self": "self"}, "symlink 'self' -> 'self' in"),
        ({"a": "b", "b": "a"}, "symlink 'a' -> 'b' in"),
        ({"gone": "missing.txt"}, "symlink 'gone' -> 'missing.txt' in"),
        ({"data": "sub"}, "symlink 'data' -> 'sub' in"),
        ({"sub/up": ".."}, "symlink 'sub/up' -> '..' in"),
    ],
    ids=["relative-escape", "system-folder", "dotdot", "self-loop", "loop", "dangling",
         "folder-inside", "parent-loop"],
)  # fmt: skip
def test_every_unsafe_link_is_refused_with_its_reason(
    tmp_path: Path, links: dict[str, str], words: str
) -> None:
    (tmp_path / "secret.txt").write_text("not yours\n")
    root = folder_with(tmp_path / "m", links, {"model.py": "", "sub/keep.txt": "x"})
    with pytest.raises(InvalidModelFile) as caught:
        list_files(root)
    message = str(caught.value)
    assert words in message, message
    reason = {"self": "loop", "a": "loop", "gone": "nothing", "data": "folder", "sub/up": "folder"}
    assert reason.get(next(iter(links)), "leaves the model folder") in message
    assert "None" not in message


def test_links_inside_the_folder_are_copied_as_regular_files(tmp_path: Path) -> None:
    root = folder_with(
        tmp_path / "m",
        {"weights.txt": "data/weights.txt", "data/again.txt": "./weights.txt"},
        {"model.py": "print()\n", "data/weights.txt": "1.5\n", "empty/.keep": ""},
    )
    (root / "empty" / ".keep").unlink()
    found = list_files(root)
    assert [f.rel.as_posix() for f in found] == [
        "data/again.txt", "data/weights.txt", "model.py", "weights.txt",
    ]  # fmt: skip
    linked = {f.rel: f for f in found}[PurePosixPath("weights.txt")]
    assert linked.link == "data/weights.txt" and linked.source == (root / "data/weights.txt")
    copy_tree(root, tmp_path / "copy")
    copy = tmp_path / "copy"
    assert (copy / "weights.txt").read_text() == "1.5\n"
    assert not (copy / "weights.txt").is_symlink() and not (copy / "data/again.txt").is_symlink()
    assert (copy / "empty").is_dir()  # empty folders are kept, like shutil.copytree


def test_ignored_names_are_not_walked_even_when_they_are_links(tmp_path: Path) -> None:
    root = folder_with(
        tmp_path / "m", {".git": "/etc", "__pycache__/x.pyc": str(SYSTEM_FILE)}, {"a.py": ""}
    )
    skip = {".git", "__pycache__"}
    assert [f.rel.as_posix() for f in list_files(root, ignore=skip.__contains__)] == ["a.py"]


def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    root = folder_with(tmp_path / "m", {})
    os.mkfifo(root / "pipe")
    with pytest.raises(InvalidModelFile, match=r"'pipe' in .* not a regular file .*named pipe"):
        copy_tree(root, tmp_path / "copy")
    with pytest.raises(InvalidModelFile, match="not a regular file"):
        open_regular(root / "pipe")


def test_the_root_itself_may_be_a_link(tmp_path: Path) -> None:
    real = folder_with(tmp_path / "real", {"alias.py": "model.py"})
    os.symlink(real, tmp_path / "named")
    assert [f.rel.as_posix() for f in list_files(tmp_path / "named")] == ["alias.py", "model.py"]
    with pytest.raises(InvalidModelFile, match="cannot read the folder"):
        list_files(tmp_path / "missing")


def test_upload_refuses_any_link_and_stores_nothing(tmp_path: Path) -> None:
    store_root = tmp_path / "artifacts"
    store = FsspecArtifactStore(str(store_root))
    staging = folder_with(tmp_path / "staging", {"model/zz-passwd": str(SYSTEM_FILE)},
                          {"model/a.txt": "first\n"})  # fmt: skip
    with pytest.raises(InvalidModelFile, match="symlink 'model/zz-passwd'"):
        packages.upload(store, staging, {"flavor": "x"})
    assert blobs(store_root) == set()  # not even a.txt, walked before the link
    inside = folder_with(tmp_path / "staging2", {"b.txt": "a.txt"}, {"a.txt": "first\n"})
    with pytest.raises(InvalidModelFile, match=r"symlink 'b\.txt' -> 'a\.txt'"):
        packages.upload(store, inside, {"flavor": "x"})
    digest = hashlib.sha256(SYSTEM_FILE.read_bytes()).hexdigest()
    assert digest not in blobs(store_root) and blobs(store_root) == set()
