"""The input files of a batch transform: one file, a folder or a glob, local or any fsspec URL.

A folder means every file under it, in nested folders too, as SageMaker's ``S3Prefix`` means
every object under the prefix (links to files are read as the files they lead to; links to
folders are not followed), sorted by path; a file's name is its path below the folder
(``day=1/part.csv``), which its outputs keep. Files and folders whose names start with ``.``
or ``_`` are skipped at any depth, as Hadoop and Spark hide them (``_SUCCESS``, ``.crc``
files, ``_temporary/``). A path that exists is read as itself, even with ``*``, ``?`` or
``[`` in its name (a file called ``data[1].csv``); otherwise such a path is a glob
(``data/*.csv``, ``s3://bucket/day=*/part-*.parquet``) and means every file it matches,
sorted. A link that leads nowhere is refused.

Each file carries a content fingerprint, which keys the job's manifest: its size, its
modification time (or the object store's ETag or checksum) and a hash of its first and last
64 KiB. A changed file gets a new fingerprint, so a resumed job redoes it instead of mixing
old parts with new ones; hashing the whole file would cost as much as reading it once more.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from modelyard.domain.batch import BatchFormat
from modelyard.errors import InvalidInput, StorageUnavailable
from modelyard.storage.filesystems import is_pattern

__all__ = [
    "InputFile",
    "detect_format",
    "is_local",
    "list_inputs",
    "local_path",
    "open_text",
    "open_url",
]

_HTTP = {"http", "https"}
_EDGE = 64 * 1024
_SUFFIXES = {
    ".csv": BatchFormat.CSV,
    ".jsonl": BatchFormat.JSONLINES,
    ".jsonlines": BatchFormat.JSONLINES,
    ".ndjson": BatchFormat.JSONLINES,
    ".parquet": BatchFormat.PARQUET,
    ".pq": BatchFormat.PARQUET,
}
_VERSION_KEYS = ("mtime", "LastModified", "last_modified", "ETag", "etag", "md5Hash", "created")


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input file.

    Attributes:
        url: What to open: a local path, or the fsspec URL (protocol included).
        name: The file's name, which names its outputs (``<name>.out``).
        size: Bytes.
        fingerprint: A hex digest of the file's identity and content (see the module doc).
    """

    url: str
    name: str
    size: int
    fingerprint: str

    @property
    def gzipped(self) -> bool:
        return self.name.lower().endswith(".gz")


def is_local(url: str) -> bool:
    """True for a plain path or a ``file://`` URL (read with the OS, not through fsspec)."""
    return "://" not in url or url.startswith("file://")


def local_path(url: str) -> str:
    """The OS path of a local URL."""
    return url[len("file://") :] if url.startswith("file://") else url


def open_url(url: str, mode: str = "rb") -> Any:
    """Open a local path or an fsspec URL (a file object; the caller closes it)."""
    if is_local(url):
        return open(local_path(url), mode)
    import fsspec

    return fsspec.open(url, mode).open()


@contextmanager
def open_text(url: str, gzipped: bool) -> Iterator[Any]:
    """Open a CSV or JSON Lines input for reading, inflated if ``gzipped``: a truncated or
    corrupt gzip file raises InvalidInput naming the file (Python's own ``EOFError:
    Compressed file ended before the end-of-stream marker was reached`` named none)."""
    with open_url(url) as raw:
        yield _Gunzip(raw, url) if gzipped else raw


class _Gunzip:
    """A gzip stream (read and seek) whose damage is our error, naming the file."""

    _DAMAGE = (EOFError, zlib.error, gzip.BadGzipFile)

    def __init__(self, raw: Any, url: str) -> None:
        self._stream = gzip.GzipFile(fileobj=raw)
        self._url = url

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except self._DAMAGE as exc:
            raise self._damaged(exc) from None

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        try:
            return self._stream.seek(offset, whence)
        except self._DAMAGE as exc:
            raise self._damaged(exc) from None

    def _damaged(self, exc: Exception) -> InvalidInput:
        return InvalidInput(f"{self._url}: the gzip file is truncated or corrupt ({exc})")


def list_inputs(url: str) -> list[InputFile]:
    """The input files ``url`` names: a file, a folder's files, or a glob's matches.

    Raises:
        InvalidInput: nothing there, an empty folder, or a glob with no match (names the URL).
        StorageUnavailable: the location cannot be read.
    """
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
        folder = ""  # a folder input's path: its files are named by their path below it
        if is_pattern(fs, path):
            found = fs.glob(path, detail=True)
            infos = [i for i in _followed(fs, found.values()) if i.get("type") == "file"]
            if not infos:
                raise InvalidInput(f"no input file matches {url}")
        elif fs.isdir(path):
            folder = path.rstrip("/")
            infos = [i for i in _followed(fs, _under(fs, path)) if i.get("type") == "file"]
            if not infos:
                raise InvalidInput(f"the input folder {url} holds no files")
        elif fs.isfile(path):
            infos = [fs.info(path)]
        else:
            raise InvalidInput(f"no such input file or folder: {url}")
        infos.sort(key=lambda i: str(i["name"]))
        local = is_local(url)
        return [_input(fs, info, local, folder) for info in infos]
    except InvalidInput:
        raise
    except (OSError, ValueError) as exc:
        raise StorageUnavailable(f"cannot read the input {url}: {exc}") from None


def detect_format(file: InputFile, content_type: BatchFormat | None) -> BatchFormat:
    """The format of ``file``: the request's content type, else its extension (``.gz`` aside).

    Raises:
        InvalidInput: the extension is unknown and no content type was given, or a gzipped
            Parquet file (Parquet compresses inside the file).
    """
    stem = file.name[:-3] if file.gzipped else file.name
    found = content_type or _SUFFIXES.get(os.path.splitext(stem)[1].lower())
    if found is None:
        known = ", ".join(sorted(_SUFFIXES))
        raise InvalidInput(
            f"cannot tell the format of {file.url} from its name (known: {known}, "
            "optionally .gz): give the content type (text/csv, application/jsonlines or "
            "application/x-parquet)"
        )
    if found is BatchFormat.PARQUET and file.gzipped:
        raise InvalidInput(f"{file.url}: a Parquet file is compressed inside; do not gzip it")
    return found


def _followed(fs: Any, infos: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``infos`` with each symbolic link described by what it leads to (under the link's own
    name): fsspec lists a link as type ``other``, with the link's own time, so a folder's
    linked files were left out of the job, and a changed target kept its fingerprint.

    Raises:
        InvalidInput: a link leads nowhere (names the link and its target).
    """
    followed = []
    for info in infos:
        if info.get("islink"):
            try:
                info = fs.info(info["name"])
            except FileNotFoundError:
                raise InvalidInput(
                    f"the input {info['name']} is a link to {info.get('destination')}, which "
                    "does not exist"
                ) from None
        followed.append(info)
    return followed


def _under(fs: Any, path: str) -> list[dict[str, Any]]:
    """What a folder holds, nested folders' files included, but for hidden names at any
    depth. Over HTTP(S) only the page's own links: following a listing's links would crawl
    the site."""
    root = path.rstrip("/")
    if _HTTP & set(_protocols(fs)):
        listed: Iterable[dict[str, Any]] = fs.ls(path, detail=True)
    else:
        listed = fs.find(path, withdirs=False, detail=True).values()
    return [i for i in listed if not _hidden(_relative(str(i["name"]), root))]


def _relative(name: str, root: str) -> str:
    """``name`` below ``root``; else its last segment (the folders above the input folder
    may be hidden ones, ``~/.data/in``, without hiding what it holds)."""
    if name.startswith(root + "/"):
        return name[len(root) + 1 :]
    return name.rstrip("/").rsplit("/", 1)[-1]


def _hidden(rel: str) -> bool:
    return any(part[:1] in (".", "_") for part in rel.strip("/").split("/"))


def _input(fs: Any, info: dict[str, Any], local: bool, folder: str) -> InputFile:
    path = str(info["name"])
    size = int(info.get("size") or 0)
    url = path if local else fs.unstrip_protocol(path)
    digest = hashlib.sha256(f"{size}\0".encode())
    digest.update("\0".join(str(info.get(k)) for k in _VERSION_KEYS).encode())
    try:
        with fs.open(path, "rb") as handle:
            digest.update(handle.read(_EDGE))
            if size > 2 * _EDGE:
                handle.seek(size - _EDGE)
                digest.update(handle.read(_EDGE))
    except OSError as exc:
        raise InvalidInput(f"cannot read the input file {url}: {exc.strerror or exc}") from None
    name = _name(fs, path, folder)
    return InputFile(url=url, name=name, size=size, fingerprint=digest.hexdigest())


def _name(fs: Any, path: str, folder: str = "") -> str:
    """The file's name: its path below ``folder`` (a folder input's), else the last segment
    of its path. Over HTTP(S) a URL's query and fragment are not part of it: a presigned
    URL's (``day.csv?X-Amz-Signature=…``) would hide the extension that tells the format,
    and put the signature in the output file's name."""
    if _HTTP & set(_protocols(fs)):
        parts = urlsplit(path)
        path = parts.path.rstrip("/") or parts.hostname or ""  # a site's root: its host
    elif folder and path.startswith(folder + "/"):
        return path[len(folder) + 1 :]
    return path.rstrip("/").rsplit("/", 1)[-1]


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
