"""Walking and copying a user's folder for packaging, without ever following a link out of it.

A model folder comes from anywhere (a clone, an archive, a training script), and whatever is
walked ends up in the artifact store, which may be shared. So the walk never follows a link
blindly:

- a symlink whose target resolves outside the folder is refused, naming the link and its target
  (``passwd -> /etc/passwd`` would otherwise store the system's file);
- a symlink loop and a link to nothing are refused, naming the link;
- a symlink to a *file* inside the folder is packaged as a copy of that file (one file known
  under two names); a symlink to a *folder* is refused, because copying it could repeat or loop
  the tree, and the folder itself is walked anyway;
- anything but regular files and folders (a named pipe, a device) is refused: reading one could
  block or never end.

Only the root the caller names is followed when it is itself a link: the user chose that path.
Reading the folder fails as :class:`InvalidModelFile` (bad input); writing the copy raises the
``OSError`` for the caller to report as storage trouble.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from modelyard.errors import InvalidModelFile

__all__ = ["TreeFile", "copy_tree", "list_files", "open_regular"]

#: Decides, from an entry's name alone, that it (and everything under it) is left out.
Ignore = Callable[[str], bool]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a named pipe swapped in after the scan must not block
_BINARY = getattr(os, "O_BINARY", 0)


@dataclass(frozen=True, slots=True)
class TreeFile:
    """One file of a walked folder.

    Attributes:
        rel: Its path inside the folder (a link's own name, not its target's).
        source: The regular file holding its bytes: the path itself, or a link's target, which
            is always inside the folder.
        link: The link's target as written (``os.readlink``), or None for a plain file.
    """

    rel: PurePosixPath
    source: Path
    link: str | None = None


def list_files(root: Path, *, ignore: Ignore | None = None, links: bool = True) -> list[TreeFile]:
    """Every regular file under ``root``, sorted by path, following no link out of it.

    Args:
        root: The folder to walk (followed if it is itself a link).
        ignore: Leaves out entries by name (``__pycache__``, ``.git`` …) and all under them.
        links: Whether symlinks to files inside ``root`` are accepted (as a copy of their
            target); ``False`` refuses every link, for folders modelyard wrote itself.

    Raises:
        InvalidModelFile: a link leaves the folder, loops, points at nothing or at a folder;
            a special file; or the folder cannot be read. The message names the entry.
    """
    return _scan(root, ignore, links)[0]


def copy_tree(source: Path, dest: Path, *, ignore: Ignore | None = None) -> None:
    """Copy the folder ``source`` to the new folder ``dest`` by :func:`list_files`'s rules.

    Folders (empty ones too) are recreated and every file is written as a regular file; no link
    is created. Everything is checked before anything is copied.

    Raises:
        InvalidModelFile: as :func:`list_files` (then ``dest`` is not created).
        OSError: writing ``dest`` failed.
    """
    files, folders = _scan(source, ignore, True)
    dest.mkdir()
    for folder in folders:  # sorted: parents first
        dest.joinpath(*folder.parts).mkdir()
    for file in files:
        with (
            open_regular(file.source, file.rel.as_posix()) as src,
            dest.joinpath(*file.rel.parts).open("xb") as out,
        ):
            shutil.copyfileobj(src, out)


def open_regular(path: Path, label: str | None = None) -> io.FileIO:
    """Open ``path`` for reading only if it is a regular file, not through a final link.

    Args:
        label: How to name the file in an error (defaults to ``path``).

    Raises:
        InvalidModelFile: it cannot be opened, is a link, or is not a regular file.
    """
    name = label or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _BINARY)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidModelFile(f"{name!r} became a symlink while being packaged") from None
        raise InvalidModelFile(f"cannot read {name!r}: {exc.strerror}") from None
    handle = io.FileIO(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise InvalidModelFile(f"{name!r} is not a regular file")
    return handle


def _scan(
    root: Path, ignore: Ignore | None, links: bool
) -> tuple[list[TreeFile], list[PurePosixPath]]:
    """The files and the folders under ``root``, each sorted by path."""
    try:
        top = Path(os.path.realpath(root, strict=True))
    except OSError as exc:
        raise InvalidModelFile(f"cannot read the folder {root}: {exc.strerror}") from None
    if not top.is_dir():
        raise InvalidModelFile(f"not a folder: {root}")
    files: list[TreeFile] = []
    folders: list[PurePosixPath] = []
    pending = [PurePosixPath()]
    while pending:
        rel_dir = pending.pop()
        folder = top.joinpath(*rel_dir.parts)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)  # the same entry is named each time
        except OSError as exc:
            shown = rel_dir.as_posix() if rel_dir.parts else str(root)
            raise InvalidModelFile(f"cannot read the folder {shown!r}: {exc.strerror}") from None
        for entry in entries:
            if ignore is not None and ignore(entry.name):
                continue
            rel = rel_dir / entry.name
            path = folder / entry.name
            if entry.is_symlink():
                files.append(_linked_file(top, root, rel, path, links))
            elif entry.is_dir(follow_symlinks=False):
                pending.append(rel)
                folders.append(rel)
            elif entry.is_file(follow_symlinks=False):
                files.append(TreeFile(rel, path))
            else:
                raise InvalidModelFile(
                    f"{rel.as_posix()!r} in {root} is not a regular file or folder "
                    f"({_kind(path)}); remove it from the model folder"
                )
    files.sort(key=lambda f: f.rel.parts)
    folders.sort(key=lambda f: f.parts)
    return files, folders


def _linked_file(top: Path, root: Path, rel: PurePosixPath, path: Path, links: bool) -> TreeFile:
    """A symlink inside the folder as the file it stands for, or the reason it is refused."""
    try:
        target = os.readlink(path)
    except OSError as exc:
        raise InvalidModelFile(
            f"cannot read the symlink {rel.as_posix()!r}: {exc.strerror}"
        ) from None
    what = f"symlink {rel.as_posix()!r} -> {target!r}"
    if not links:
        raise InvalidModelFile(f"{what} in {root}: a model package holds regular files only")
    # Where the link leads, judged before anything is read through it (a loop stops anywhere).
    if not Path(os.path.realpath(path)).is_relative_to(top):
        raise InvalidModelFile(
            f"{what} leaves the model folder {root}; copy the file into the folder instead"
        )
    try:
        resolved = Path(os.path.realpath(path, strict=True))
        mode = os.stat(resolved).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidModelFile(f"{what} in {root} is a symlink loop") from None
        if exc.errno == errno.ENOENT:
            raise InvalidModelFile(f"{what} in {root} points at nothing") from None
        raise InvalidModelFile(f"cannot follow the {what}: {exc.strerror}") from None
    if not resolved.is_relative_to(top):  # a link along the way changed while we looked
        raise InvalidModelFile(f"{what} leaves the model folder {root}")
    if stat.S_ISDIR(mode):
        raise InvalidModelFile(
            f"{what} in {root} points at a folder; only links to files are packaged "
            "(put the folder itself in the model folder)"
        )
    if not stat.S_ISREG(mode):
        raise InvalidModelFile(f"{what} in {root} points at {_kind(resolved)}, not a regular file")
    return TreeFile(rel, resolved, link=target)


def _kind(path: Path) -> str:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "unreadable"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"
