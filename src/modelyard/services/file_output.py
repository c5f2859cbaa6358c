"""Writing one output file (a capture export, a report) whole or not at all, and never over an
existing file unless the caller allows it.

A local file is written into a temporary file in the target's folder, then moved into place:
a failure half-way leaves neither half a file nor a damaged old one. Without ``overwrite`` the
move is a hard link, which fails if the name was taken meanwhile (where the filesystem has no
hard links, a rename after one more check). An fsspec URL (``s3://…``) is written into a local
temporary file first and uploaded once the writer has finished: an fsspec file object
publishes what it holds when it closes, even when the writer failed half-way. Object stores
offer no "create if absent", so without ``overwrite`` a URL is checked before and again just
before the upload.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from modelyard.errors import InvalidInput, OutputExists, StorageNotWritable, StorageUnavailable
from modelyard.storage.urls import mask_url, redact

Writer = Callable[[BinaryIO], None]


def is_url(out: str) -> bool:
    """Whether ``out`` is an fsspec URL other than ``file://``."""
    return "://" in out and not out.startswith("file://")


def shown(out: str) -> str:
    """``out`` as it may be printed: a URL without the credentials it may hold."""
    return mask_url(out) if is_url(out) else out


def check_target(out: str, *, overwrite: bool) -> None:
    """Refuse ``out`` before any work is done for it: a folder (an existing one, or a name
    ending with a slash), a local device, pipe or socket, a local file whose folder is missing
    or not writable, or (without ``overwrite``) an existing file.

    Raises:
        InvalidInput: ``out`` is empty, ``-`` (standard output), a folder, or an existing
            local path that is no regular file (a device, pipe or socket).
            StorageNotWritable: its local folder does not exist, is not a folder or is not
            writable. OutputExists: a file is there.
            StorageUnavailable: the URL's store cannot be asked.
    """
    if not out.strip():
        raise InvalidInput("no output file was named; give a file name")
    if out == "-":  # the usual name of standard output, which is no file to write whole
        raise InvalidInput(
            "'-' (standard output) is not supported: the file is written whole or not at "
            "all; give a file name"
        )
    if out.endswith(("/", os.sep)):
        # A path type drops the slash: 'x.csv/' would be written as the file 'x.csv'.
        named = mask_url(out) if is_url(out) else out
        raise InvalidInput(f"{named} names a folder (it ends with a slash); give a file name")
    if is_url(out):
        fs, path = _url_fs(out)
        try:
            found = fs.exists(path)
            folder = found and fs.isdir(path)
        except Exception as exc:  # any: see _unavailable
            raise _unavailable("read", out, exc) from None
        shown = mask_url(out)
    else:
        given = _given(out)  # checked as given (through links), written at ``target``
        target = _local(out)
        found, folder, shown = given.exists(), given.is_dir(), str(given)
        if found and not folder and not given.is_file():
            # The file is moved into place by a rename, which would put it where the device,
            # pipe or socket was (``-o /dev/null --overwrite`` replaced the machine's null
            # device), not write through it.
            raise InvalidInput(
                f"{shown} is not a regular file (a device, pipe or socket, or a link to one); "
                "give a file name"
            )
        if not folder:
            _check_folder(target)
    if folder:
        raise InvalidInput(f"{shown} is a folder; give a file name")
    if found and not overwrite:
        raise OutputExists(f"{shown} already exists", them="it")


def _check_folder(target: Path) -> None:
    """Refuse a local ``target`` whose folder cannot take a new file (it is written into a
    temporary file there, then moved into place)."""
    parent = target.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise StorageNotWritable(f"cannot write {target}: the folder {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StorageNotWritable(f"cannot write {target}: the folder {parent} is not writable")


def write_whole(out: str, write: Writer, *, overwrite: bool) -> None:
    """Write a file at ``out`` (a local path or an fsspec URL) with ``write``, whole or not at
    all (see the module docstring).

    Raises:
        What :func:`check_target` raises; StorageNotWritable: the local file cannot be
        written; StorageUnavailable: the URL cannot be written (or its protocol's package is
        not installed).
    """
    check_target(out, overwrite=overwrite)
    if is_url(out):
        _upload(out, write, overwrite=overwrite)
        return
    target = _local(out)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
    try:
        with tmp.open("xb") as handle:
            write(handle)
        _move(tmp, target, overwrite=overwrite)
    except OSError as exc:
        raise StorageNotWritable(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _move(tmp: Path, target: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if the name was taken since the check
    except FileExistsError:
        raise OutputExists(f"{target} already exists", them="it") from None
    except OSError:
        # No hard links here (EPERM, ENOTSUP, ENOSYS on FUSE mounts, …): check once more and
        # rename; a real lack of space or permission fails again in the rename, named.
        check_target(str(target), overwrite=False)
        os.replace(tmp, target)


def _upload(out: str, write: Writer, *, overwrite: bool) -> None:
    fs, path = _url_fs(out)
    with tempfile.TemporaryDirectory(prefix="modelyard-output-") as folder:
        local = Path(folder) / "out"
        try:
            with local.open("xb") as handle:
                write(handle)
        except OSError as exc:
            raise StorageNotWritable(
                f"cannot write a temporary copy of {mask_url(out)} in {folder}: "
                f"{exc.strerror or exc}"
            ) from None
        if not overwrite:
            check_target(out, overwrite=False)  # taken while the writer ran
        try:
            fs.put_file(str(local), path)
        except Exception as exc:  # any: see _unavailable
            raise _unavailable("write", out, exc) from None


def _given(out: str) -> Path:
    return Path(out.removeprefix("file://")).expanduser()


def _local(out: str) -> Path:
    """The local file ``out`` names; a symbolic link is followed (written through, as a
    plain write would), not replaced by a file of its own (``realpath``: a loop of links is
    left as it is, and taken as an existing name)."""
    path = _given(out)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _url_fs(out: str) -> tuple[Any, str]:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(out)
        return fs, str(path)
    except Exception as exc:  # any: see _unavailable
        # No such protocol, its package missing (ImportError, ValueError), or a filesystem
        # that connects when it is made (FTP, SFTP) and could not.
        raise _unavailable("write", out, exc) from None


def _unavailable(verb: str, out: str, exc: Exception) -> StorageUnavailable:
    """What a failure of the URL's store becomes. Any exception: fsspec's filesystems raise
    their protocol's own, and not all are OSError (ftplib's error_perm for a refused login or
    upload, EOFError for a dropped connection), which ended in a traceback."""
    reason = redact(str(exc) or type(exc).__name__, out)
    return StorageUnavailable(f"cannot {verb} {mask_url(out)}: {reason}")
