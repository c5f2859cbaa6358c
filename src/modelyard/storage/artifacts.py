"""Content-addressed artifact store on fsspec: a local folder by default, any fsspec URL.

Layout: ``<root>/sha256/<first two hex>/<digest>``; a derived artifact (``put_derived``) is a
blob plus a pointer file ``<root>/derived/<first two hex>/<source digest>/<kind>`` holding its
digest. Writes go to a temporary name beside the target and are renamed into place, so a reader
never sees half a blob; identical content is stored once. Every read re-hashes the bytes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import uuid
from pathlib import Path
from typing import Any

from modelyard.domain import ArtifactFile
from modelyard.errors import (
    ArtifactCorrupted,
    ArtifactMissing,
    InvalidInput,
    StorageNotWritable,
    StorageUnavailable,
)
from modelyard.storage.base import ArtifactStore
from modelyard.storage.filesystems import open_filesystem
from modelyard.storage.urls import mask_url, redact

_CHUNK = 1 << 20
_KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")
_NOT_WRITABLE = {errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EDQUOT}


def _is_digest(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


class FsspecArtifactStore(ArtifactStore):
    """An :class:`ArtifactStore` over any fsspec filesystem."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        """Open the store at ``url`` (a remote URL's filesystem at once, a folder's on first
        use).

        Raises:
            ConfigError, MissingDependency, StorageUnavailable: see
                :func:`~modelyard.storage.filesystems.open_filesystem`.
        """
        # Messages and ``url`` show the URL with its credentials masked; only fsspec sees them.
        self._url = mask_url(url)
        self._given = url
        self._options = storage_options
        self._opened: tuple[Any, str] | None = None
        if "://" in url and not url.startswith("file://"):
            self._filesystem()  # a remote URL (protocol, credentials) is checked on opening

    def _filesystem(self) -> tuple[Any, str]:
        # A local folder's filesystem is made on first use, which cannot fail: fsspec is an
        # import that commands reading only metadata (``modelyard models list``) never need.
        if self._opened is None:
            self._opened = open_filesystem(
                self._given, self._url, "the artifact store", **self._options
            )
        return self._opened

    @property
    def _fs(self) -> Any:
        return self._filesystem()[0]

    @property
    def _root(self) -> str:
        return self._filesystem()[1]

    @property
    def url(self) -> str:
        return self._url

    def _path(self, digest: str) -> str:
        if not _is_digest(digest):
            raise InvalidInput(f"not a sha256 digest: {digest!r}")
        return f"{self._root}/sha256/{digest[:2]}/{digest}"

    def _fail_write(self, exc: OSError, what: str) -> StorageUnavailable:
        if exc.errno in _NOT_WRITABLE:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            return StorageNotWritable(
                f"cannot write {what} to the artifact store {self._url}: {reason}"
            )
        return StorageUnavailable(
            f"cannot write {what} to the artifact store {self._url}: {self._reason(exc)}"
        )

    def _reason(self, exc: OSError) -> str:
        # A remote filesystem's error may quote the URL it was given, credentials and all.
        return redact(str(exc), self._given)

    def _write_atomic(self, digest: str, write: Any) -> None:
        target = self._path(digest)
        if self._fs.exists(target):
            return
        tmp = f"{target}.tmp-{uuid.uuid4().hex}"
        try:
            self._fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            with self._fs.open(tmp, "wb") as out:
                write(out)
            self._fs.mv(tmp, target)
        except OSError as exc:
            self._discard(tmp)
            raise self._fail_write(exc, f"blob {digest}") from None

    def _discard(self, path: str) -> None:
        try:
            if self._fs.exists(path):
                self._fs.rm(path)
        except OSError:
            pass  # best effort: a stray temporary name is never read as a blob

    def put_file(self, path: Path) -> ArtifactFile:
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as src:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
        hexdigest = digest.hexdigest()

        def write(out: Any) -> None:
            with open(path, "rb") as src:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    out.write(chunk)

        self._write_atomic(hexdigest, write)
        return ArtifactFile(path=path.name, sha256=hexdigest, size=size)

    def put_bytes(self, data: bytes) -> str:
        hexdigest = hashlib.sha256(data).hexdigest()
        self._write_atomic(hexdigest, lambda out: out.write(data))
        return hexdigest

    def _open(self, digest: str) -> Any:
        try:
            return self._fs.open(self._path(digest), "rb")
        except FileNotFoundError:
            raise ArtifactMissing(
                f"artifact {digest} is missing from the artifact store {self._url}"
            ) from None
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot read artifact {digest} from {self._url}: {self._reason(exc)}"
            ) from None

    def _corrupted(self, digest: str, detail: str) -> ArtifactCorrupted:
        return ArtifactCorrupted(
            f"artifact {digest} in {self._url} is corrupted ({detail}); refusing to load it"
        )

    def get_bytes(self, digest: str) -> bytes:
        with self._open(digest) as src:
            data: bytes = src.read()
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise self._corrupted(digest, f"its content hashes to {actual}")
        return data

    def get_file(self, digest: str, dest: Path, size: int | None = None) -> None:
        tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex}")
        hasher = hashlib.sha256()
        written = 0
        try:
            with self._open(digest) as src, open(tmp, "wb") as out:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    hasher.update(chunk)
                    written += len(chunk)
                    out.write(chunk)
            if size is not None and written != size:
                raise self._corrupted(digest, f"{written} bytes, expected {size}")
            if hasher.hexdigest() != digest:
                raise self._corrupted(digest, f"its content hashes to {hasher.hexdigest()}")
            os.replace(tmp, dest)
        except OSError as exc:
            raise self._fail_write(exc, f"a local copy of {digest}") from None
        finally:
            tmp.unlink(missing_ok=True)

    def exists(self, digest: str) -> bool:
        return bool(self._fs.exists(self._path(digest)))

    def _pointer(self, source: str, kind: str) -> str:
        if not _KIND.fullmatch(kind):
            raise InvalidInput(f"not a derived-artifact kind: {kind!r}")
        return f"{self._path(source).replace('/sha256/', '/derived/', 1)}/{kind}"

    def put_derived(self, source: str, kind: str, data: bytes) -> str:
        digest = self.put_bytes(data)
        pointer = self._pointer(source, kind)
        tmp = f"{pointer}.tmp-{uuid.uuid4().hex}"
        try:
            self._fs.makedirs(pointer.rsplit("/", 1)[0], exist_ok=True)
            with self._fs.open(tmp, "wb") as out:
                out.write(digest.encode())
            self._fs.mv(tmp, pointer)
        except OSError as exc:
            self._discard(tmp)
            raise self._fail_write(exc, f"the {kind} of {source}") from None
        return digest

    def get_derived(self, source: str, kind: str) -> bytes | None:
        pointer = self._pointer(source, kind)
        try:
            with self._fs.open(pointer, "rb") as src:
                named = src.read(65).decode("ascii", "replace")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot read the {kind} of {source} from {self._url}: {self._reason(exc)}"
            ) from None
        if not _is_digest(named):
            raise self._corrupted(source, f"its {kind} pointer holds {named[:20]!r}")
        try:
            return self.get_bytes(named)
        except ArtifactMissing:
            return None  # the pointer outlived its blob: derive it again
