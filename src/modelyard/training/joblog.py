"""A job's log, bounded: the first and the last bytes of what a job printed, and one marker
line between them saying how much was cut.

A script that prints 50 MB must leave neither 50 MB on disk nor 50 MB in the artifact store,
nor send 50 MB to a terminal. :class:`JobLog` writes a job's log file and keeps it under
``head + 2 * tail`` bytes while the job runs: past that, the file is rewritten (a new file
renamed over the old one, so a reader never sees half of it) as its head, the marker and its
last ``tail`` bytes::

    the first lines of the job …                                   about ``head`` bytes
    [modelyard: 48,234,496 bytes (48 lines) cut here; a job log …]  the marker
    … the last lines of the job                                    about ``tail`` bytes

The head and the tail are cut at line ends where that keeps at least half of them. When the
job ends, :func:`finalize` makes the copy that is kept (head, marker and tail, at most
:attr:`LogLimits.kept_bytes`). Readers never load a log whole: :func:`tail_start` and
:func:`head_stop` find line boundaries by scanning in blocks, :func:`read_range` streams, and
:class:`LogFollower` prints a log as it grows, across rewrites.

Positions called *logical* count bytes of everything the job printed, as if nothing had been
cut; the marker relates them to offsets in a rewritten file. A job that prints a line looking
exactly like the marker at the head's end can make the numbers wrong, nothing else.

Stdlib only, no database, no store: every kind of job (training, tuning trials, batch)
writes its log through this module, and the job service keeps it.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from modelyard.errors import InvalidInput

MIB = 1024 * 1024
#: The most one read holds in memory.
CHUNK = 1024 * 1024
_BACK_BLOCK = 64 * 1024  # scanning backwards for line ends
#: Longest marker line: the numbers grow, the words do not.
MARKER_MAX = 200
_MARKER = re.compile(
    rb"(?m)^\[modelyard: (\d[\d,]{0,29}) bytes \((\d[\d,]{0,29}) lines?\) cut here[^\n]{0,120}\n"
)


@dataclass(frozen=True)
class LogLimits:
    """How much of a job's log is kept: its first ``head_bytes`` and last ``tail_bytes``."""

    head_bytes: int = 1 * MIB
    tail_bytes: int = 4 * MIB

    def __post_init__(self) -> None:
        if self.head_bytes < 0 or self.tail_bytes < 1:
            raise InvalidInput(
                f"a job log keeps 0 or more head bytes and 1 or more tail bytes, "
                f"got {self.head_bytes} and {self.tail_bytes}"
            )

    @property
    def kept_bytes(self) -> int:
        """The most a finished job's log holds (the 1: a newline ending a head cut mid-line)."""
        return self.head_bytes + 1 + MARKER_MAX + self.tail_bytes

    @property
    def live_bytes(self) -> int:
        """The most a running job's log file holds, give or take one write."""
        return self.kept_bytes + self.tail_bytes


@dataclass(frozen=True)
class Cut:
    """Where a rewritten log's marker line is, and what it says."""

    at: int  #: offset of the marker line: the length of the head
    length: int  #: the marker line's length, its newline included
    bytes: int  #: bytes of the job's output cut so far, between the head and the tail
    lines: int  #: lines among them

    @property
    def resume(self) -> int:
        """Offset of the tail: the first byte after the marker line."""
        return self.at + self.length

    def offset(self, logical: int) -> int:
        """The file offset of a logical position in the tail (``logical >= at + bytes``)."""
        return logical - self.at - self.bytes + self.resume


def marker(cut_bytes: int, cut_lines: int, limits: LogLimits) -> bytes:
    """The marker line (newline included) for a log with that much cut."""
    return (
        f"[modelyard: {cut_bytes:,} bytes ({cut_lines:,} lines) cut here; a job log keeps "
        f"its first {limits.head_bytes:,} and last {limits.tail_bytes:,} bytes]\n"
    ).encode()


class JobLog:
    """The writer of one job's log file, bounded as the module docstring says.

    Text is appended as UTF-8 on every :meth:`write` (no buffering: ``jobs logs -f`` sees it
    at once). Others may append to the same file (the worker's stdout and stderr point at it):
    after a rewrite this process's descriptors 1 and 2 are pointed at the new file when they
    pointed at the old one, so that output still lands in the log.
    """

    def __init__(self, path: Path, limits: LogLimits | None = None) -> None:
        self.path = Path(path)
        self.limits = limits or LogLimits()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size
        self._cut: Cut | None = None
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        """Append ``text``; rewrite the file when it has outgrown its bound."""
        data = text.encode("utf-8", errors="replace")
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            # The file's own size, not a count of our writes: the worker's stdout and stderr
            # (library logging, warnings) append to it too. fstat costs about a microsecond.
            self._size = os.fstat(self._fd).st_size
            if self._size > self.limits.live_bytes:
                self._rewrite()
        return len(text)

    def flush(self) -> None:
        """Nothing to do (writes are not buffered); here for file-like callers."""

    def close(self) -> None:
        """Close the file (the log stays)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> JobLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _rewrite(self) -> None:
        with open(self.path, "rb", buffering=0) as src:
            before = os.fstat(src.fileno())
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                cut = _shrink(src.fileno(), before.st_size, fd, self.limits, self._cut)
                os.fchmod(fd, stat.S_IMODE(before.st_mode))
            except BaseException:
                os.close(fd)
                os.unlink(tmp)
                raise
            os.close(fd)
            if cut is None:  # nothing to cut after all
                os.unlink(tmp)
                return
            os.replace(tmp, self.path)
        new = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        for std in (1, 2):
            try:
                was = os.fstat(std)
            except OSError:
                continue
            if (was.st_dev, was.st_ino) == (before.st_dev, before.st_ino):
                os.dup2(new, std)
        os.close(self._fd)
        self._fd = new
        self._size = os.fstat(new).st_size
        self._cut = cut


def finalize(path: Path, limits: LogLimits) -> Path:
    """A capped copy of the log at ``path``, made next to it: what is kept when the job ends
    (at most ``limits.kept_bytes``). The log itself is left as it is.

    Raises:
        OSError: the log cannot be read, or the copy written.
    """
    with open(path, "rb", buffering=0) as src:
        size = os.fstat(src.fileno()).st_size
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".kept", dir=path.parent)
        try:
            if _shrink(src.fileno(), size, fd, limits, None) is None:
                _copy(src.fileno(), 0, size, fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
    return Path(tmp)


def find_cut(f: BinaryIO, head_bytes: int) -> Cut | None:
    """The marker of a rewritten log (it starts a line within the first ``head_bytes + 1``
    bytes), or None for a log nothing was cut from."""
    return _find_cut(f.fileno(), head_bytes)


def _find_cut(fd: int, head_bytes: int) -> Cut | None:
    window = _pread(fd, 0, head_bytes + 2 + MARKER_MAX)
    found = _MARKER.search(window)
    if found is None or found.start() > head_bytes + 1:
        return None
    return _cut_of(found)


def tail_start(f: BinaryIO, lines: int) -> int:
    """The offset where the last ``lines`` lines of ``f`` begin (its size for 0)."""
    fd = f.fileno()
    size = os.fstat(fd).st_size
    if lines <= 0:
        return size
    # A final newline ends the last line; it does not begin another.
    pos = size - 1 if size and _pread(fd, size - 1, 1) == b"\n" else size
    found = 0
    while pos > 0:
        begin = max(0, pos - _BACK_BLOCK)
        block = _pread(fd, begin, pos - begin)
        end = len(block)
        while (end := block.rfind(b"\n", 0, end)) >= 0:
            found += 1
            if found == lines:
                return begin + end + 1
        pos = begin
    return 0


def head_stop(f: BinaryIO, lines: int) -> int:
    """The offset just after the first ``lines`` lines of ``f``."""
    fd = f.fileno()
    size = os.fstat(fd).st_size
    pos, found = 0, 0
    while found < lines and pos < size:
        block = _pread(fd, pos, min(CHUNK, size - pos))
        start = 0
        while (hit := block.find(b"\n", start)) >= 0:
            found += 1
            if found == lines:
                return pos + hit + 1
            start = hit + 1
        pos += len(block)
    return pos if found >= lines else size


def read_range(f: BinaryIO, start: int, stop: int | None = None) -> Iterator[str]:
    """The text of ``f`` from ``start`` to ``stop`` (default: its end), in bounded chunks."""
    fd = f.fileno()
    stop = os.fstat(fd).st_size if stop is None else stop
    decoder = _decoder()
    while start < stop:
        block = _pread(fd, start, min(CHUNK, stop - start))
        if not block:
            break
        start += len(block)
        if text := decoder.decode(block):
            yield text
    if text := decoder.decode(b"", final=True):
        yield text


def last_lines(path: Path, lines: int, max_chars: int = 500) -> str:
    """The last ``lines`` lines of the log at ``path``, each cut to ``max_chars`` characters,
    without reading more than that into memory ("" for a missing log)."""
    shown: list[str] = []
    try:
        with open(path, "rb") as f:
            f.seek(tail_start(f, lines))
            while line := f.readline(max_chars * 4):
                text = line.decode("utf-8", errors="replace").rstrip("\r\n")
                long = False
                if not line.endswith(b"\n"):
                    while rest := f.readline(CHUNK):  # the rest of a long line: skipped
                        long = True
                        if rest.endswith(b"\n"):
                            break
                if long or len(text) > max_chars:
                    text = text[:max_chars] + "…"
                shown.append(text)
    except FileNotFoundError:
        return ""
    return "\n".join(shown)


class LogFollower:
    """Shows a job's log as it grows, in order, across rewrites and across the move from the
    live file to the kept copy.

    It remembers how far it got in the job's whole output (a logical position), not in a
    file, and maps that through each file's marker. Output cut before it could be shown is
    replaced by one line saying how much.
    """

    def __init__(self, limits: LogLimits) -> None:
        self._limits = limits
        self._shown = 0  # logical position reached
        self._cut_at: int | None = None  # the marker never moves once it is there
        self._decoder = _decoder()
        self._line_start = True

    def skip_to_last_lines(self, f: BinaryIO, lines: int) -> None:
        """Start at the last ``lines`` lines of ``f`` rather than at its beginning."""
        pos = tail_start(f, lines)
        cut = self._cut(f)
        if cut is None or pos < cut.at:
            self._shown = pos
        elif pos < cut.resume:  # in the marker line: show it
            self._shown = cut.at
        else:
            self._shown = pos - cut.resume + cut.at + cut.bytes

    def read(self, f: BinaryIO) -> Iterator[str]:
        """What ``f`` (the live log or its kept copy) holds beyond what was shown."""
        size = os.fstat(f.fileno()).st_size
        cut = self._cut(f)
        if cut is None:
            yield from self._emit(f, self._shown, size)
            return
        if self._shown < cut.at:
            yield from self._emit(f, self._shown, cut.at)
        if self._shown < cut.at + cut.bytes:
            if self._shown == cut.at:
                line = _pread(f.fileno(), cut.at, cut.length).decode(errors="replace")
            else:  # shown up to somewhere in what has since been cut
                missed = cut.at + cut.bytes - self._shown
                line = f"[modelyard: {missed:,} more bytes were cut here while following]\n"
            yield self._decoder.decode(b"", final=True) + ("" if self._line_start else "\n") + line
            self._decoder = _decoder()
            self._line_start = True
            self._shown = cut.at + cut.bytes
        yield from self._emit(f, cut.offset(self._shown), size)

    def _emit(self, f: BinaryIO, start: int, stop: int) -> Iterator[str]:
        fd = f.fileno()
        while start < stop:
            block = _pread(fd, start, min(CHUNK, stop - start))
            if not block:
                break
            start += len(block)
            self._shown += len(block)
            self._line_start = block.endswith(b"\n")
            if text := self._decoder.decode(block):
                yield text

    def _cut(self, f: BinaryIO) -> Cut | None:
        if self._cut_at is not None:
            found = _MARKER.match(_pread(f.fileno(), self._cut_at, MARKER_MAX + 1))
            if found is not None:
                return _cut_of(found, self._cut_at)
        if os.fstat(f.fileno()).st_size <= self._limits.head_bytes:
            return None
        cut = find_cut(f, self._limits.head_bytes)
        if cut is not None:
            self._cut_at = cut.at
        return cut


def _cut_of(found: re.Match[bytes], base: int = 0) -> Cut:
    return Cut(
        at=base + found.start(),
        length=found.end() - found.start(),
        bytes=int(found.group(1).replace(b",", b"")),
        lines=int(found.group(2).replace(b",", b"")),
    )


def _shrink(src: int, size: int, dest: int, limits: LogLimits, cut: Cut | None) -> Cut | None:
    """Write the head, the marker and the last ``tail_bytes`` of ``src`` to ``dest``; the new
    cut, or None (and nothing written) when the tail already fits."""
    cut = cut or _find_cut(src, limits.head_bytes)
    if cut is None:
        head_end = body = _head_end(src, size, limits.head_bytes)
        cut_bytes = cut_lines = 0
    else:
        head_end, body, cut_bytes, cut_lines = cut.at, cut.resume, cut.bytes, cut.lines
    if size - body <= limits.tail_bytes:
        return None
    begin = _tail_begin(src, body, size, limits.tail_bytes)
    cut_bytes += begin - body
    cut_lines += _count_lines(src, body, begin)
    _copy(src, 0, head_end, dest)
    at = head_end
    if cut is None and head_end and _pread(src, head_end - 1, 1) != b"\n":
        # A head cut mid-line ends with a newline, which stands for the first byte cut (so
        # logical positions stay exact for a follower).
        os.write(dest, b"\n")
        at += 1
        cut_bytes -= 1
    line = marker(cut_bytes, cut_lines, limits)
    os.write(dest, line)
    _copy(src, begin, size, dest)
    return Cut(at=at, length=len(line), bytes=cut_bytes, lines=cut_lines)


def _head_end(fd: int, size: int, head_bytes: int) -> int:
    """Where an uncut log's head ends: after its last newline within ``head_bytes``, unless
    that would keep less than half of them."""
    window = _pread(fd, 0, min(head_bytes, size))
    end = window.rfind(b"\n") + 1
    return end if end * 2 >= len(window) else len(window)


def _tail_begin(fd: int, body: int, size: int, tail_bytes: int) -> int:
    """Where the kept tail begins: the first line start among the last ``tail_bytes``,
    unless that would keep less than half of them."""
    begin = max(body, size - tail_bytes)
    if begin == body:
        return begin
    window = _pread(fd, begin - 1, min(tail_bytes // 2, size - begin) + 1)
    newline = window.find(b"\n")
    return begin + newline if newline >= 0 else begin


def _count_lines(fd: int, start: int, stop: int) -> int:
    count = 0
    while start < stop:
        block = _pread(fd, start, min(CHUNK, stop - start))
        if not block:
            break
        count += block.count(b"\n")
        start += len(block)
    return count


def _copy(src: int, start: int, stop: int, dest: int) -> None:
    while start < stop:
        block = _pread(src, start, min(CHUNK, stop - start))
        if not block:
            break
        start += len(block)
        view = memoryview(block)
        while view:
            view = view[os.write(dest, view) :]


def _pread(fd: int, offset: int, length: int) -> bytes:
    """Up to ``length`` bytes at ``offset`` (fewer only at the end of the file)."""
    parts: list[bytes] = []
    while length > 0:
        block = os.pread(fd, length, offset)
        if not block:
            break
        parts.append(block)
        offset += len(block)
        length -= len(block)
    return b"".join(parts)


def _decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")(errors="replace")
