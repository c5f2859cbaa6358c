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

from collections.abc import Iterator
from dataclasses import dataclass

from modelyard.batch.inputs import open_text

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
        limit: The usual block size, in bytes (a block is never larger, but for one line).
        longest: The longest line taken (default: ``limit``); longer ones are Oversize.
    """

    def __init__(
        self,
        url: str,
        gzipped: bool,
        start: int,
        end: int | None,
        limit: int,
        longest: int | None = None,
    ) -> None:
        self._url, self._gz, self._start, self._end = url, gzipped, start, end
        self._limit = max(1, limit)
        self._longest = max(self._limit, longest or limit)
        self.lines = 0
        self.first_offset = start

    def __iter__(self) -> Iterator[Block | Oversize]:
        with open_text(self._url, self._gz) as stream:
            yield from self._blocks(stream)

    def _blocks(self, stream: object) -> Iterator[Block | Oversize]:
        read = stream.read  # type: ignore[attr-defined]
        pos, buf, end, limit, longest = self._start, b"", self._end, self._limit, self._longest
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
            if not eof and (len(buf) < limit or (b"\n" not in buf and len(buf) < longest)):
                chunk = read(limit - len(buf) if len(buf) < limit else limit)
                if chunk:
                    buf += chunk
                    continue
                eof = True
            if not buf:
                return
            if not eof and b"\n" not in buf:  # a line longer than ``longest``
                yield Oversize(self.lines)
                self.lines += 1
                pos, buf, eof = self._skip_line(read, pos, buf)
                continue
            # Where the lines this unit may take from ``buf`` end: complete lines, and none
            # that starts at or after the unit's end.
            stop = len(buf) if eof else buf.rfind(b"\n") + 1
            if end is not None and pos + len(buf) > end:
                after = buf.find(b"\n", max(0, end - pos - 1))
                if after >= 0:
                    stop = after + 1
            cut = stop if stop <= limit else buf.rfind(b"\n", 0, limit) + 1
            if cut == 0:  # one line longer than the block size (at the end: the last line)
                cut = buf.find(b"\n") + 1 or len(buf)
            if cut > longest:
                yield Oversize(self.lines)
                self.lines += 1
            else:
                block = buf[:cut]
                yield Block(block, self.lines)
                self.lines += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
            pos += cut
            buf = buf[cut:]

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
    with open_text(url, gzipped) as stream:
        while done < upto:
            chunk = stream.read(min(1 << 20, upto - done))
            if not chunk:
                break
            total += chunk.count(b"\n")
            done += len(chunk)
    return total
