"""``write_whole``: a file written whole or not at all, never over an existing one unless
allowed; a writer that fails half-way leaves the old file as it was and no temporary file."""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from modelyard.errors import (
    AlreadyExists,
    InvalidInput,
    OutputExists,
    StorageNotWritable,
    StorageUnavailable,
)
from modelyard.services.file_output import check_target, write_whole


def _bytes(data: bytes) -> Callable[[BinaryIO], None]:
    def write(handle: BinaryIO) -> None:
        handle.write(data)

    return write


def test_an_existing_file_is_replaced_only_when_allowed(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    write_whole(str(target), _bytes(b"first"), overwrite=False)
    assert target.read_bytes() == b"first"
    with pytest.raises(AlreadyExists, match=r"out\.bin already exists; allow overwriting"):
        write_whole(str(target), _bytes(b"second"), overwrite=False)
    assert target.read_bytes() == b"first"
    write_whole(str(target), _bytes(b"second"), overwrite=True)
    assert target.read_bytes() == b"second"
    with pytest.raises(InvalidInput, match="is a folder"):
        write_whole(str(tmp_path), _bytes(b"x"), overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, overwrite: bool
) -> None:
    target = tmp_path / "out.bin"
    if overwrite:
        target.write_bytes(b"old")

    def disk_full(handle: BinaryIO) -> None:
        handle.write(b"half of it")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StorageNotWritable, match="No space left on device"):
        write_whole(str(target), disk_full, overwrite=overwrite)

    def broken(handle: BinaryIO) -> None:
        handle.write(b"half of it")
        raise ValueError("the table could not be encoded")

    with pytest.raises(ValueError, match="could not be encoded"):
        write_whole(str(target), broken, overwrite=overwrite)
    assert [p.name for p in tmp_path.iterdir()] == (["out.bin"] if overwrite else [])
    if overwrite:
        assert target.read_bytes() == b"old"


def test_a_file_made_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    """Another process creates the target while the export is being written: without
    overwriting allowed, its file stays."""
    target = tmp_path / "out.bin"

    def racing(handle: BinaryIO) -> None:
        target.write_bytes(b"theirs")
        handle.write(b"mine")

    with pytest.raises(AlreadyExists):
        write_whole(str(target), racing, overwrite=False)
    assert target.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_an_fsspec_url_is_refused_when_taken(tmp_path: Path) -> None:
    url = f"local://{tmp_path / 'out.bin'}"
    write_whole(url, _bytes(b"first"), overwrite=False)
    with pytest.raises(AlreadyExists, match="already exists"):
        write_whole(url, _bytes(b"second"), overwrite=False)
    write_whole(url, _bytes(b"second"), overwrite=True)
    assert (tmp_path / "out.bin").read_bytes() == b"second"


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_failed_write_to_a_url_publishes_nothing(overwrite: bool) -> None:
    """An fsspec file publishes what it holds when it closes, even after its writer failed:
    the URL gets the file only once the writer has finished."""
    import fsspec

    fs = fsspec.filesystem("memory")
    name = f"/file-output-{overwrite}/r.csv"
    if overwrite:
        fs.pipe(name, b"old, good content\n")

    def interrupted(handle: BinaryIO) -> None:
        handle.write(b"partial,")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_whole(f"memory://{name}", interrupted, overwrite=overwrite)
    if overwrite:
        assert fs.cat(name) == b"old, good content\n"
    else:
        assert not fs.exists(name)
        write_whole(f"memory://{name}", _bytes(b"whole\n"), overwrite=False)  # not taken
        assert fs.cat(name) == b"whole\n"
    fs.rm(f"/file-output-{overwrite}", recursive=True)


def test_a_url_taken_while_writing_is_not_replaced() -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    name = "/file-output-race/r.csv"

    def racing(handle: BinaryIO) -> None:
        fs.pipe(name, b"theirs")
        handle.write(b"mine")

    with pytest.raises(OutputExists, match="already exists"):
        write_whole(f"memory://{name}", racing, overwrite=False)
    assert fs.cat(name) == b"theirs"
    fs.rm("/file-output-race", recursive=True)


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EPERM, errno.ENOTSUP])
def test_without_hard_links_the_file_is_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """FUSE mounts (rclone, gcsfuse, sshfs) refuse link() with ENOSYS or EPERM: the file is
    moved into place after one more check instead."""
    import os

    def no_links(src: object, dst: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "out.bin"
    write_whole(str(target), _bytes(b"whole"), overwrite=False)
    assert target.read_bytes() == b"whole"
    with pytest.raises(OutputExists):
        write_whole(str(target), _bytes(b"again"), overwrite=False)
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_target_whose_folder_cannot_take_it_is_refused_before_any_work(tmp_path: Path) -> None:
    """The check callers make before the slow part (reading rows, gathering a report) refuses
    a missing folder, or a file where the folder should be, naming it."""
    (tmp_path / "a-file").write_text("not a folder")
    for folder, what in [("missing", "does not exist"), ("a-file", "is not a folder")]:
        out = tmp_path / folder / "r.html"
        named = re.escape(str(tmp_path / folder))
        with pytest.raises(StorageNotWritable, match=f"the folder {named} {what}"):
            check_target(str(out), overwrite=False)
    check_target(str(tmp_path / "r.html"), overwrite=False)  # an existing, writable folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_name_ending_with_a_slash_is_a_folder(tmp_path: Path) -> None:
    """A path type drops the slash: 'r.html/' was written as the file 'r.html'."""
    for out in (f"{tmp_path}/r.html/", f"local://{tmp_path}/r.html/"):
        with pytest.raises(InvalidInput, match=r"r\.html/ names a folder"):
            write_whole(out, _bytes(b"x"), overwrite=False)
    with pytest.raises(InvalidInput, match="no output file was named"):
        write_whole("", _bytes(b"x"), overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_a_dash_is_standard_output_which_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``-o -`` wrote a file named '-' in the working folder."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput, match=r"'-' \(standard output\) is not supported"):
        write_whole("-", _bytes(b"x"), overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_a_target_that_is_no_regular_file_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    """`monitor report -o /dev/null --overwrite` renamed the page over the device: /dev/null
    became a regular file holding the report (for every program on the machine). A pipe, a
    socket, a device, or a link to one, is refused, overwrite or not, and left in place."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    link = tmp_path / "link"
    link.symlink_to(pipe)
    for target in (pipe, link):
        for overwrite in (False, True):
            with pytest.raises(InvalidInput, match=f"{re.escape(str(target))} is not a regular"):
                write_whole(str(target), _bytes(b"x"), overwrite=overwrite)
    assert stat.S_ISFIFO(pipe.lstat().st_mode) and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "pipe"]


def test_a_url_whose_server_refuses_the_connection_is_storage_unavailable() -> None:
    """fsspec's FTP filesystem connects when it is made: a server down (connection refused)
    was a ConnectionRefusedError traceback out of ``monitor report -o ftp://…`` and
    ``capture export``, not an error line naming the target with its password masked."""
    with socket.socket() as held:  # bound, never listening: connecting is refused
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        url = f"ftp://user:SECRETPW@127.0.0.1:{port}/r.html"
        for call in (
            lambda: check_target(url, overwrite=False),
            lambda: write_whole(url, _bytes(b"x"), overwrite=True),
        ):
            with pytest.raises(StorageUnavailable) as caught:
                call()
            assert caught.value.message.startswith(
                f"cannot write ftp://user:***@127.0.0.1:{port}/r.html: "
            )
            assert "SECRETPW" not in caught.value.message


class _RefusingStore:
    """Stands in for an FTP server's answers: ftplib raises errors that are no OSError
    (``error_perm`` for a refused upload, ``EOFError`` for a dropped connection)."""

    def __init__(self, fail_on: str, error: Exception) -> None:
        from fsspec.implementations.memory import MemoryFileSystem

        fail, raised = fail_on, error

        class Refusing(MemoryFileSystem):  # type: ignore[misc]
            protocol = "refusing"

            def exists(self, path: str, **kwargs: object) -> bool:
                if fail == "exists":
                    raise raised
                return bool(super().exists(path, **kwargs))

            def put_file(self, lpath: str, rpath: str, **kwargs: object) -> None:
                if fail == "put":
                    raise raised
                super().put_file(lpath, rpath, **kwargs)

        self.cls = Refusing


@pytest.mark.parametrize(
    ("fail_on", "error"),
    [
        ("put", __import__("ftplib").error_perm("553 Could not create file.")),
        ("exists", EOFError()),
    ],
)
def test_a_store_error_that_is_no_oserror_is_storage_unavailable(
    fail_on: str, error: Exception
) -> None:
    """``monitor report -o ftp://…`` and ``capture export`` ended in an ftplib.error_perm or
    EOFError traceback when the server refused the upload or dropped the connection: any
    failure of the URL's store is StorageUnavailable, naming the target without its
    password."""
    import fsspec

    store = _RefusingStore(fail_on, error)
    fsspec.register_implementation("refusing", store.cls, clobber=True)
    url = "refusing://user:SECRETPW@host/report.html"
    verb = "write" if fail_on == "put" else "read"
    with pytest.raises(StorageUnavailable, match=f"cannot {verb} refusing://") as caught:
        write_whole(url, _bytes(b"<html></html>"), overwrite=False)
    assert "SECRETPW" not in str(caught.value)


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_link_to_a_file_is_written_through_and_kept(tmp_path: Path, overwrite: bool) -> None:
    """A symbolic link named as the output is followed, as a plain write would: the rename put
    a file of its own in the link's place, so the file the link names kept its old content."""
    real = tmp_path / "site" / "report.html"
    real.parent.mkdir()
    link = tmp_path / "report.html"
    link.symlink_to(real)
    if overwrite:
        real.write_bytes(b"old")
    write_whole(str(link), lambda handle: handle.write(b"new"), overwrite=overwrite)
    assert link.is_symlink() and link.resolve() == real
    assert real.read_bytes() == b"new"
    if overwrite:
        return
    with pytest.raises(OutputExists):
        write_whole(str(link), lambda handle: handle.write(b"newer"), overwrite=False)
    assert real.read_bytes() == b"new"


def test_a_loop_of_links_is_an_existing_name_not_a_traceback(tmp_path: Path) -> None:
    """Following links must not raise on a loop (``Path.resolve`` raises RuntimeError on
    3.11): the name is taken as an existing one."""
    loop = tmp_path / "a"
    loop.symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(loop)
    with pytest.raises(OutputExists):
        write_whole(str(loop), lambda handle: handle.write(b"x"), overwrite=False)
    assert loop.is_symlink() and (tmp_path / "b").is_symlink()
