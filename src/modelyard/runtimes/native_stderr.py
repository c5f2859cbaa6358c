"""Keeping a model library's C-level messages off the process's stderr.

Some libraries print from native code straight to file descriptor 2 before they raise: LightGBM
writes ``[LightGBM] [Fatal] Unknown model format …`` for a file that is not its model, whatever
its ``verbosity`` or registered logger, and the Python exception it raises then says the same.
Our own error names the problem in one line, so that native line is noise before it (and a CLI
promises a single ``error:`` line).

:func:`muted_lines` points fd 2 at a temporary file for the duration of one library call, then
puts the real stderr back and writes on it whatever else arrived meanwhile: fd 2 belongs to the
whole process, so another thread's output in that window is delayed, never lost. Calls are
serialized by a lock, so two threads never swap fd 2 under each other.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO

__all__ = ["muted_lines"]

_FD = 2
_LOCK = threading.Lock()


@contextmanager
def muted_lines(prefix: bytes) -> Iterator[None]:
    """Drop the lines starting with ``prefix`` that reach fd 2 while the block runs; the rest
    is written to the real stderr when it ends.

    When fd 2 is closed, or a temporary file cannot be made, the block runs as it is.
    """
    with _LOCK:
        _flush()
        saved, sink = _redirectable()
        if saved is None or sink is None:
            yield
            return
        with sink:
            os.dup2(sink.fileno(), _FD)
            try:
                yield
            finally:
                _flush()
                os.dup2(saved, _FD)
                os.close(saved)
                sink.seek(0)
                _write_all(b"".join(line for line in sink if not line.startswith(prefix)))


def _redirectable() -> tuple[int | None, BinaryIO | None]:
    """A copy of fd 2 and a file to send it to meanwhile; Nones when there is no stderr (a
    daemon may run with fd 2 closed) or no temporary file can be made."""
    try:
        saved = os.dup(_FD)
    except OSError:
        return None, None
    try:
        return saved, tempfile.TemporaryFile()
    except OSError:
        os.close(saved)
        return None, None


def _flush() -> None:
    """Write out what Python buffered for stderr, so it lands on the fd it was meant for."""
    stream = sys.stderr
    if stream is not None:
        with suppress(OSError, ValueError):  # a closed or broken stream: nothing to keep
            stream.flush()


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(_FD, view)
        except OSError:  # stderr went away: nothing left to tell it
            return
        view = view[written:]
