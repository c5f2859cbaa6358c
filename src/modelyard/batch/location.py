"""A folder a batch job writes into, local or any fsspec URL, with atomic writes.

Every file is written under a temporary name beside its target (hidden: ``.<name>.tmp-…``)
and moved into place once complete, so a reader, or a resumed job, never sees half a file.
On a local disk the move is a rename; on an object store it is a copy, which the store makes
visible at once. The object pickles as its URL, so a worker process can rebuild it.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from modelyard.errors import StorageNotWritable, StorageUnavailable

__all__ = ["Location", "canonical", "within"]

_NOT_WRITABLE = {errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EDQUOT}
_COPY_CHUNK = 1 << 20


def canonical(url: str) -> str:
    """One spelling of the place ``url`` names, protocol included, so that two spellings of
    one place compare equal: ``/x``, ``file:///x`` and ``x/../x`` (from ``/``) all give
    ``file:///x``, with symbolic links resolved; ``memory://a`` and ``memory:///a/`` give
    ``memory:///a``. Without the protocol, ``memory://a`` (path ``/a``) once compared equal
    to nothing it held, nor ``file:///x`` to ``/x``.

    Raises:
        ValueError / ImportError: fsspec cannot read the URL (unknown protocol, missing driver).
    """
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    path = path.rstrip("/") or path
    if type(fs).__name__ == "LocalFileSystem":
        path = os.path.realpath(path)
    return str(fs.unstrip_protocol(path))


def within(inner: str, outer: str) -> bool:
    """Whether the canonical location ``inner`` is ``outer`` or below it."""
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


class Location:
    """A folder at ``url``; paths below it are relative, ``/``-separated."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") or url
        self._fs: Any = None
        self._root = ""

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"])  # type: ignore[misc]

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import fsspec

            self._fs, root = fsspec.core.url_to_fs(self.url)
            self._root = root.rstrip("/") or root
        return self._fs

    @property
    def local(self) -> bool:
        return type(self.fs).__name__ == "LocalFileSystem"

    def path(self, rel: str = "") -> str:
        """The filesystem path of ``rel`` (the folder itself for ``""``)."""
        _ = self.fs
        return f"{self._root}/{rel}" if rel else self._root

    def child(self, rel: str) -> Location:
        """The folder ``rel`` below this one."""
        return Location(f"{self.url}/{rel}")

    def exists(self, rel: str = "") -> bool:
        return bool(self.fs.exists(self.path(rel)))

    def isdir(self, rel: str = "") -> bool:
        return bool(self.fs.isdir(self.path(rel)))

    def makedirs(self, rel: str = "") -> None:
        self.fs.makedirs(self.path(rel), exist_ok=True)

    def listdir(self, rel: str = "") -> list[str]:
        """Names in a folder ([] when it does not exist)."""
        if not self.fs.exists(self.path(rel)):
            return []
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.path(rel), False))

    def read_bytes(self, rel: str) -> bytes:
        data: bytes = self.fs.cat_file(self.path(rel))
        return data

    def open_read(self, rel: str) -> IO[bytes]:
        handle: IO[bytes] = self.fs.open(self.path(rel), "rb")
        return handle

    def remove(self, rel: str, recursive: bool = False) -> None:
        """Delete a file or folder if it is there."""
        path = self.path(rel)
        try:
            if self.fs.exists(path):
                self.fs.rm(path, recursive=recursive)
        except FileNotFoundError:
            pass

    def move(self, src: str, dst: str) -> None:
        """Move a file into place, replacing what is there (its folder made if need be: a
        nested input's output goes in a folder of its own)."""
        folder = dst.rpartition("/")[0]
        if folder:
            self.makedirs(folder)
        if self.local:
            os.replace(self.path(src), self.path(dst))
        else:
            self.fs.mv(self.path(src), self.path(dst))

    @contextmanager
    def writing(self, rel: str) -> Iterator[IO[bytes]]:
        """Write ``rel`` atomically: a temporary name, moved into place when the block ends
        without error (and removed when it raises)."""
        folder, _, name = rel.rpartition("/")
        tmp = f"{folder + '/' if folder else ''}.{name}.tmp-{uuid.uuid4().hex[:12]}"
        try:
            if folder:
                self.makedirs(folder)
            with self.fs.open(self.path(tmp), "wb") as handle:
                yield handle
            self.move(tmp, rel)
        except OSError as exc:
            self.remove(tmp)
            raise self.failure(exc, rel) from None
        except BaseException:
            self.remove(tmp)
            raise

    def write_bytes(self, rel: str, data: bytes) -> None:
        with self.writing(rel) as handle:
            handle.write(data)

    def concatenate(self, parts: list[str], rel: str) -> None:
        """Write ``rel`` atomically as the parts one after the other (one part: moved)."""
        if len(parts) == 1:
            try:
                self.move(parts[0], rel)
            except OSError as exc:
                raise self.failure(exc, rel) from None
            return
        with self.writing(rel) as out:
            for part in parts:
                with self.open_read(part) as src:
                    shutil.copyfileobj(src, out, _COPY_CHUNK)

    def failure(self, exc: OSError, rel: str) -> StorageUnavailable:
        """Our error for an OSError met writing ``rel``."""
        where = f"{self.url}/{rel}" if rel else self.url
        if exc.errno in _NOT_WRITABLE:
            return StorageNotWritable(f"cannot write {where}: {os.strerror(exc.errno or 0)}")
        return StorageUnavailable(f"cannot write {where}: {exc}")
