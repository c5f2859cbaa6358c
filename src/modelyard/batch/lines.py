"""Reading the lines of one work unit of a text file, in blocks of whole lines.

A unit ``[start, end)`` owns the lines whose first byte lies in it: it skips the line that
began before ``start`` (the previous unit's last) and reads past ``end`` to finish its own
last line. Blocks hold whole lines and are at most ``limit`` bytes (the job's payload size),
so memory stays flat whatever the file's size. A line longer than ``limit`` comes back as an
:class:`Oversize` marker and is skipped. gzip files are inflated as they are read (a gzip
unit is always the whole file: a stream cannot be entered in the middle).

Lines are counted from the unit's first line (0-based): the coordinator turns those into
file line numbers once it knows how many lines the units before held.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass

from modelyard.batch.inputs import open_url

__all__ = ["Block", "LineReader", "Oversize", "count_lines"]

_SKIP_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class Block:
    """Whole lines (each ending with ``\\n`` but perhaps the file's last), the first of which
    is line ``line`` of the unit."""

    data: bytes
    line: int


@dataclass(frozen=True, slots=True)
class Oversize:
    """Line ``line`` of the unit is longer than the block limit (it was skipped)."""

    line: int


class LineReader:
    """Iterate over the blocks of a unit; afterwards ``lines`` is how many lines it held and
    ``first_offset`` the byte offset of its first line.

    Args:
        url: The file.
        gzipped: Inflate it while reading (then ``start`` must be 0 and ``end`` None).
        start: First byte of the unit.
        end: End of the unit (None: to the end of the file).
        limit: The largest block, in bytes.
    """

    def __init__(self, url: str, gzipped: bool, start: int, end: int | None, limit: int) -> None:
        self._url, self._gz, self._start, self._end = url, gzipped, start, end
        self._limit = max(1, limit)
        self.lines = 0
        self.first_offset = start

    def __iter__(self) -> Iterator[Block | Oversize]:
        with open_url(self._url) as raw:
            stream = gzip.GzipFile(fileobj=raw) if self._gz else raw
            yield from self._blocks(stream)

    def _blocks(self, stream: object) -> Iterator[Block | Oversize]:
        read = stream.read  # type: ignore[attr-defined]
        pos, buf, end, limit = self._start, b"", self._end, self._limit
        if pos > 0:
            stream.seek(pos - 1)  # type: ignore[attr-defined]
            pos -= 1
            while True:  # skip the rest of the line that began before the unit
                chunk = read(_SKIP_CHUNK)
                if not chunk:
                    return
                cut = chunk.find(b"\n")
                if cut >= 0:
                    pos += cut + 1
                    buf = chunk[cut + 1 :]
                    break
                pos += len(chunk)
        self.first_offset = pos
        eof = False
        while end is None or pos < end:
            if not eof and len(buf) < limit:
                chunk = read(limit - len(buf))
                if chunk:
                    buf += chunk
                else:
                    eof = True
            if not buf:
                return
            final = False
            if end is not None and pos + len(buf) > end:
                cut = buf.find(b"\n", max(0, end - pos - 1))
                if cut >= 0 or eof:
                    cut, final = (cut + 1 if cut >= 0 else len(buf)), True
                else:
                    cut = buf.rfind(b"\n") + 1
            else:
                cut = buf.rfind(b"\n") + 1 or (len(buf) if eof else 0)
            if cut == 0:
                if len(buf) < limit and not eof:
                    continue  # a short read: the line goes on
                yield Oversize(self.lines)
                self.lines += 1
                pos, buf, eof = self._skip_line(read, pos, buf)
                continue
            block = buf[:cut]
            yield Block(block, self.lines)
            self.lines += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
            pos += cut
            buf = buf[cut:]
            if final:
                return

    @staticmethod
    def _skip_line(read: object, pos: int, buf: bytes) -> tuple[int, bytes, bool]:
        while True:
            cut = buf.find(b"\n")
            if cut >= 0:
                return pos + cut + 1, buf[cut + 1 :], False
            pos += len(buf)
            buf = read(_SKIP_CHUNK)  # type: ignore[operator]
            if not buf:
                return pos, b"", True


def count_lines(url: str, gzipped: bool, upto: int) -> int:
    """How many line ends the file holds before byte ``upto`` (to name a line in a message)."""
    total = done = 0
    with open_url(url) as raw:
        stream = gzip.GzipFile(fileobj=raw) if gzipped else raw
        while done < upto:
            chunk = stream.read(min(1 << 20, upto - done))
            if not chunk:
                break
            total += chunk.count(b"\n")
            done += len(chunk)
    return total
