"""``CaptureFolder``: the captured-rows files under a capture root, a local folder or any fsspec
URL (``s3://bucket/capture``, ``memory://capture``).

Files are written whole or not at all: on a local disk to a hidden temporary name that is
renamed into place; on an object store by one upload (an object appears only when complete).
Readers list only finished ``.parquet`` files. Filesystem errors become
:class:`~modelyard.errors.StorageNotWritable` / :class:`~modelyard.errors.StorageUnavailable`
with the URL's credentials masked.
"""

from __future__ import annotations

import errno
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.errors import StorageNotWritable, StorageUnavailable
from modelyard.storage.filesystems import open_filesystem
from modelyard.storage.urls import mask_url, redact

_NOT_WRITABLE = {errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EDQUOT}


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A finished capture file: its path relative to the root, and its size in bytes."""

    path: str
    size: int


class CaptureFolder:
    """Captured files under one root URL (see the module docstring)."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        self._given = url
        self._options = storage_options
        self._opened: tuple[Any, str] | None = None
        self._files_opened = 0
        self._count_lock = threading.Lock()

    @property
    def files_opened(self) -> int:
        """How many files :meth:`open` has opened for reading since this object was made
        (what a read costs on an object store: one request or more per file)."""
        return self._files_opened

    @property
    def url(self) -> str:
        """The root, credentials masked."""
        return mask_url(self._given)

    def _filesystem(self) -> tuple[Any, str]:
        # Made on first use: fsspec is an import only capture needs.
        if self._opened is None:
            self._opened = open_filesystem(
                self._given, self.url, "the capture folder", **self._options
            )
        return self._opened

    def _local(self, fs: Any) -> bool:
        return _protocols(fs)[0] in ("file", "local")

    def holds(self, target: str) -> bool:
        """Whether the file ``target`` (a local path, ``file://`` or any fsspec URL) lies under
        this root: a local path compared once resolved (``..`` and symbolic links followed), a
        URL by protocol and path. A URL whose protocol cannot be opened here is not under it.
        """
        import fsspec

        fs, root = self._filesystem()
        remote = "://" in target and not target.startswith("file://")
        if self._local(fs):
            if remote:
                return False
            base = os.path.realpath(root)
            path = os.path.realpath(os.path.expanduser(target.removeprefix("file://")))
            return os.path.commonpath([base, path]) == base
        if not remote:
            return False
        try:
            other, path = fsspec.core.url_to_fs(target)
        except (ImportError, ValueError):
            return False
        if set(_protocols(other)).isdisjoint(_protocols(fs)):
            return False
        path = str(path).rstrip("/")
        return path == root or path.startswith(f"{root}/")

    def write(self, path: str, data: bytes) -> None:
        """Store ``data`` as ``path`` (relative to the root), whole or not at all.

        Raises:
            StorageNotWritable: no permission, read-only, disk or quota full.
            StorageUnavailable: any other failure.
        """
        fs, root = self._filesystem()
        target = f"{root}/{path}"
        folder, _, name = target.rpartition("/")
        tmp = f"{folder}/.{name}.tmp-{uuid.uuid4().hex}"
        try:
            try:
                self._put(fs, folder, tmp, target, data)
            except FileNotFoundError:  # a prune took the folder away meanwhile: once more
                self._put(fs, folder, tmp, target, data)
        except OSError as exc:
            self._discard(fs, tmp)
            raise self._failed(f"write {path} to {self.url}", exc) from None

    def _put(self, fs: Any, folder: str, tmp: str, target: str, data: bytes) -> None:
        fs.makedirs(folder, exist_ok=True)
        if self._local(fs):
            with fs.open(tmp, "wb") as out:
                out.write(data)
            fs.mv(tmp, target)
        else:
            fs.pipe_file(target, data)

    @staticmethod
    def _discard(fs: Any, path: str) -> None:
        try:
            if fs.exists(path):
                fs.rm(path)
        except OSError:
            pass  # a stray hidden temporary file is never listed

    def files(self, folder: str) -> list[StoredFile]:
        """Every finished ``.parquet`` file under ``folder`` (relative to the root), by path.

        Raises:
            StorageUnavailable: the root cannot be listed.
        """
        _, root = self._filesystem()
        base = f"{root}/{folder}".rstrip("/")
        found = self._listed(base, f"{folder} in {self.url}", lambda fs: fs.find(base, detail=True))
        if found is None:
            return []
        out = []
        for full, info in found.items():
            relative = full[len(root) :].lstrip("/") if full.startswith(root) else full
            name = relative.rpartition("/")[2]
            if name.endswith(".parquet") and not name.startswith((".", "_")):
                out.append(StoredFile(relative, int(info.get("size") or 0)))
        return sorted(out, key=lambda f: f.path)

    def _listed(self, base: str, what: str, listing: Callable[[Any], Any]) -> Any:
        """``listing(fs)`` of ``base``; None when ``base`` does not exist.

        Raises:
            StorageUnavailable: naming ``what`` could not be listed.
        """
        fs, _ = self._filesystem()
        try:
            fs.invalidate_cache(base)  # a long-lived process must see other processes' files
            return listing(fs) if fs.exists(base) else None
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot list {what}: {redact(str(exc), self._given)}"
            ) from None

    def folders(self, under: str = "") -> list[str]:
        """The names of the folders right under ``under`` (relative to the root; by default
        the root itself, whose folders are the endpoints that captured), sorted; none when it
        does not exist.

        Raises:
            StorageUnavailable: it cannot be listed.
        """
        _, root = self._filesystem()
        base = f"{root}/{under}".rstrip("/")
        what = f"{under} in {self.url}" if under else self.url
        found = self._listed(base, what, lambda fs: fs.ls(base, detail=True))
        if found is None:
            return []
        names = (
            str(info["name"]).rstrip("/").rpartition("/")[2]
            for info in found
            if info.get("type") == "directory"
        )
        return sorted(n for n in names if n and not n.startswith((".", "_")))

    def remove(self, paths: Sequence[str]) -> None:
        """Delete the files ``paths`` (relative to the root; one request for them all where
        the storage takes one), then the folders they leave empty up to the root's child (on
        a local disk; an object store has no empty folders). A file already gone (another
        prune got there first) counts as deleted.

        Raises:
            StorageNotWritable: no permission, read-only.
            StorageUnavailable: any other failure.
        """
        if not paths:
            return
        fs, root = self._filesystem()
        try:
            fs.rm([f"{root}/{path}" for path in paths])
        except OSError:  # one by one: the gone are skipped, the culprit is named
            for path in paths:
                try:
                    fs.rm(f"{root}/{path}")
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise self._failed(f"delete {path} from {self.url}", exc) from None
        for folder in sorted({path.rpartition("/")[0] for path in paths}, reverse=True):
            self._prune_folders(fs, root, folder)

    def _failed(self, doing: str, exc: OSError) -> Exception:
        """``exc`` as the typed error of a write or delete (``doing``: what could not be
        done): StorageNotWritable for permissions, read-only or full storage."""
        reason = os.strerror(exc.errno) if exc.errno else redact(str(exc), self._given)
        error = StorageNotWritable if exc.errno in _NOT_WRITABLE else StorageUnavailable
        return error(f"cannot {doing}: {reason}")

    def _prune_folders(self, fs: Any, root: str, folder: str) -> None:
        """Remove ``folder`` and its parents below the root's child while they are empty."""
        while self._local(fs) and folder.count("/") >= 1:  # not the endpoint's own folder
            try:
                full = f"{root}/{folder}"
                if fs.ls(full):
                    return
                fs.rmdir(full)
            except OSError:
                return  # gone already, or a writer's new file got there first: harmless
            folder = folder.rpartition("/")[0]

    def open(self, path: str) -> Any:
        """A binary file object for reading ``path`` (relative to the root); None when there
        is no such file (a prune deleted it after it was listed).

        Raises:
            StorageUnavailable: it cannot be opened.
        """
        fs, root = self._filesystem()
        try:
            handle = fs.open(f"{root}/{path}", "rb")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot read {path} from {self.url}: {redact(str(exc), self._given)}"
            ) from None
        with self._count_lock:  # readers run in several threads (feedback, drift)
            self._files_opened += 1
        return handle


def _protocols(fs: Any) -> tuple[str, ...]:
    """The names of an fsspec filesystem's protocol (one, or its aliases)."""
    return (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
